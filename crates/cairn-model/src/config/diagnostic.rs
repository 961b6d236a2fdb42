//! A configuration error that points at the file, line and column, with the
//! offending line and a caret under it, like a compiler's.

use std::fmt;
use std::ops::Range;

/// An error in a config file. `Display` renders the location, the message, the line
/// and, when there is one, what is allowed instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    /// What is allowed, or how to fix it.
    pub help: Option<String>,
    source_line: String,
    underline: usize,
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error at `span` (byte offsets into `text`); `None` points at the start.
    pub fn at(
        file: &str,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        let span = span.unwrap_or(0..0);
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let source_line = text[line_start..line_end].trim_end_matches('\r').to_owned();
        let column = text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let underline = text[start..end].chars().count().max(1);
        ConfigError {
            file: file.to_owned(),
            line: text[..start].matches('\n').count() + 1,
            column,
            message: message.into(),
            help,
            source_line,
            underline,
        }
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        writeln!(f, "{pad} |")?;
        writeln!(
            f,
            "{number} | {}",
            crate::run::printable(self.source_line.as_bytes())
        )?;
        write!(
            f,
            "{pad} | {}{}",
            " ".repeat(self.column - 1),
            "^".repeat(self.underline)
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Converts a TOML/serde error into a located error. serde's messages already say
/// what is allowed ("expected one of `name`, `chain`").
pub(crate) fn from_toml(file: &str, text: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim().to_owned();
    let help = if message.starts_with("unknown field") {
        Some("remove the key or correct its spelling; unknown keys are never ignored".to_owned())
    } else if message.starts_with("missing field") {
        Some("add the field; it has no default".to_owned())
    } else {
        None
    };
    ConfigError::at(file, text, err.span(), message, help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_line_and_column() {
        let text = "a = 1\nbé = 2\nc = 3\n";
        let start = text.find("= 2").unwrap_or(0);
        let e = ConfigError::at(
            "x.toml",
            text,
            Some(start..start + 3),
            "bad",
            Some("fix".into()),
        );
        assert_eq!((e.line, e.column), (2, 4));
        assert_eq!(
            e.to_string(),
            "x.toml:2:4: bad\n  |\n2 | bé = 2\n  |    ^^^\n  = help: fix"
        );
    }

    #[test]
    fn span_past_end_is_clamped() {
        let e = ConfigError::at("x.toml", "abc", Some(10..20), "eof", None);
        assert_eq!((e.line, e.column), (1, 4));
        let e = ConfigError::at("x.toml", "", None, "empty", None);
        assert_eq!((e.line, e.column), (1, 1));
    }
}

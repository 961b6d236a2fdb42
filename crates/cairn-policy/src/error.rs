//! The crate's one error type: what made a policy impossible to load or evaluate.
//! A denial is not an error (it is a [`crate::Decision`]); an `Err` means "could
//! not evaluate", and the caller denies.

use std::time::Duration;

/// Why a policy could not be loaded or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// No policy file was handed in: a gate without policy denies.
    #[error("no policy: a gate needs at least one policy file")]
    NoPolicy,
    /// Malformed Rego, located.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u32,
        column: u32,
        message: String,
    },
    /// Rego that parsed but could not be prepared (e.g. recursion, a conflict),
    /// with the location when regorus gave one.
    #[error("{location}: {message}")]
    Compile { location: String, message: String },
    /// A bound was exceeded before evaluation started.
    #[error("{what} is too large: {size} > {limit}")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    /// The input is nested deeper than allowed.
    #[error("the input is nested too deeply (more than {limit} levels)")]
    TooDeep { limit: usize },
    /// Two policy files with the same name.
    #[error("policy file {0} is given twice")]
    DuplicateFile(String),
    /// The policy data (params) is not a JSON object.
    #[error("policy data must be a JSON object")]
    DataNotObject,
    /// The input or data could not be turned into JSON or Rego values.
    #[error("{what} is not valid JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The policy ran longer than its budget.
    #[error("the policy ran longer than its {limit:?} budget")]
    TimeLimit { limit: Duration },
    /// Evaluation failed (a builtin error, a conflict, a refused builtin).
    #[error("evaluation failed: {message}")]
    Evaluation { message: String },
}

impl PolicyError {
    /// A stable short code for the error, for records and UIs.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::NoPolicy => "no-policy",
            PolicyError::Syntax { .. } => "syntax",
            PolicyError::Compile { .. } => "compile",
            PolicyError::TooLarge { .. } => "too-large",
            PolicyError::TooDeep { .. } => "too-deep",
            PolicyError::DuplicateFile(_) => "duplicate-file",
            PolicyError::DataNotObject => "data-not-object",
            PolicyError::Json { .. } => "json",
            PolicyError::TimeLimit { .. } => "time-limit",
            PolicyError::Evaluation { .. } => "evaluation",
        }
    }
}

/// A regorus error message parsed for its `--> file:line:col` location.
pub(crate) struct Located {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// regorus formats located errors as `\n--> FILE:LINE:COL\n …source excerpt… \nerror: MESSAGE`.
pub(crate) fn locate(text: &str) -> Option<Located> {
    let start = text.find("--> ")?;
    let rest = &text[start + 4..];
    let location = rest.lines().next()?;
    let mut parts = location.rsplitn(3, ':');
    let column = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    let file = parts.next()?.to_owned();
    let message = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| first_line(text));
    Some(Located {
        file,
        line,
        column,
        message,
    })
}

/// The first non-empty line of a message (regorus messages start with a newline).
pub(crate) fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_owned()
}

/// One line that says what went wrong and where, from a regorus error.
pub(crate) fn one_line(text: &str) -> String {
    match locate(text) {
        Some(l) => format!("{}:{}:{}: {}", l.file, l.line, l.column, l.message),
        None => first_line(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_a_regorus_message() {
        let text = "\n--> policies/a.rego:3:7\n  |\n3 | deny contains x if {\n  |       ^\nerror: unexpected token";
        let l = locate(text).unwrap();
        assert_eq!(
            (l.file.as_str(), l.line, l.column),
            ("policies/a.rego", 3, 7)
        );
        assert_eq!(l.message, "unexpected token");
        assert_eq!(one_line(text), "policies/a.rego:3:7: unexpected token");
    }

    #[test]
    fn a_message_without_location_keeps_its_first_line() {
        assert!(locate("recursion detected\nmore").is_none());
        assert_eq!(one_line("\nrecursion detected\nmore"), "recursion detected");
    }
}

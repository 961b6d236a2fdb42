//! Presenting records: JSON wire shapes (the domain types stay free of serde) and
//! text for people.

pub(crate) use cairn_engine::wire::{duration_ms, line_json, run_json};
use cairn_model::LogLine;
use cairn_model::time::human_duration_ms;
use serde_json::Value;

/// `1.2s`, or `-` when the span is not known yet.
pub(crate) fn duration_text(start: Option<i64>, end: Option<i64>) -> String {
    duration_ms(start, end).map_or_else(|| "-".to_owned(), human_duration_ms)
}

pub(crate) fn short_commit(commit: &str) -> &str {
    &commit[..12.min(commit.len())]
}

/// A log line for a terminal: cairn's own lines marked, step output as printed.
pub(crate) fn line_text(line: &LogLine) -> String {
    match line.stream {
        cairn_model::LogStream::System => format!("cairn: {}", line.display_text()),
        _ => line.display_text(),
    }
}

/// Prints a JSON value on one line.
pub(crate) fn print_json(v: &Value) {
    println!("{v}");
}

/// Whether stdout's reader went away (EPIPE): from then on output is dropped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether stderr could not be written.
static STDERR_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// A write to stdout that failed for another reason than EPIPE (a full disk):
/// the command's output is incomplete, which `main` reports as a failure.
static STDOUT_FAILED: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

/// Text for a terminal: control characters other than newline and tab escaped
/// as JSON escapes them (`\u001b`), so nothing cairn prints — a lockfile's text in a diagnostic, a
/// name from a registry, a server's answer — can move the cursor, retitle the
/// terminal or hide a line. JSON stays JSON: serde escapes the C0 controls
/// itself, and DEL and the C1 controls it leaves raw in strings become the
/// same `\u007f` escapes, which a JSON reader decodes to the same text.
pub(crate) fn terminal_safe(args: std::fmt::Arguments<'_>) -> std::borrow::Cow<'static, str> {
    let text = match args.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(args.to_string()),
    };
    safe_text(text)
}

/// [`terminal_safe`] of text already formatted.
fn safe_text(text: std::borrow::Cow<'_, str>) -> std::borrow::Cow<'_, str> {
    if !may_hold_control(text.as_bytes())
        || !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            // JSON's own escape (every control character is at most U+009F):
            // in a `--json` document, where serde leaves DEL and the C1
            // controls raw inside strings, the escaped text is still JSON and
            // decodes to the same string.
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether `bytes` may hold a control character other than newline and tab.
/// Control characters are U+0000-U+001F, U+007F and U+0080-U+009F, the last
/// encoded as 0xC2 0x80-0x9F: text with none of those bytes has none. A scan's
/// JSON (a third of a megabyte) is checked without decoding, 64 bytes at a
/// time without a branch per byte (which the compiler turns into vector
/// compares): a tenth of the instructions of a byte-at-a-time `any`.
fn may_hold_control(bytes: &[u8]) -> bool {
    bytes.chunks(64).any(|block| {
        block.iter().fold(false, |seen, &b| {
            seen | ((b < 0x20) & (b != b'\n') & (b != b'\t')) | (b == 0x7f) | (b == 0xc2)
        })
    })
}

/// Writes to stdout (every `print!`/`println!` of this crate comes here, see
/// `main.rs`). A closed pipe (`cairn runs | head -1`) is not an error: output
/// stops quietly and the command finishes its work with its own exit code.
/// Any other write error is remembered for [`stdout_failure`].
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    if stdout_closed() {
        return;
    }
    put_stdout(&terminal_safe(args), newline);
}

/// Writes text already formatted to stdout, made [`terminal_safe`], like
/// [`write_stdout`] (a large report goes out in pieces through here, not
/// formatted into one string first).
pub(crate) fn write_stdout_str(text: &str) {
    if stdout_closed() {
        return;
    }
    put_stdout(&safe_text(std::borrow::Cow::Borrowed(text)), false);
}

fn put_stdout(text: &str, newline: bool) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = written {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe
            && let Ok(mut failed) = STDOUT_FAILED.lock()
        {
            failed.get_or_insert(e);
        }
    }
}

/// Writes bytes to stdout, like [`write_stdout`].
pub(crate) fn write_stdout_bytes(bytes: &[u8]) {
    use std::io::Write;
    if stdout_closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe
            && let Ok(mut failed) = STDOUT_FAILED.lock()
        {
            failed.get_or_insert(e);
        }
    }
}

/// Writes to stderr; a closed or failing stderr only stops further messages.
pub(crate) fn write_stderr(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let text = terminal_safe(args);
    let mut err = std::io::stderr().lock();
    let written = err.write_all(text.as_bytes()).and_then(|()| {
        if newline {
            err.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if written.is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether stdout stopped taking output: a loop that only prints (`logs
/// --follow`) ends here.
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The first write error on stdout other than a closed pipe, if any.
pub(crate) fn stdout_failure() -> Option<std::io::Error> {
    STDOUT_FAILED
        .lock()
        .ok()
        .and_then(|mut failed| failed.take())
}

#[cfg(test)]
mod tests {
    use super::{safe_text, terminal_safe};

    #[test]
    fn control_characters_are_escaped_whatever_their_encoding() {
        for (input, want) in [
            ("plain\ttext\n", "plain\ttext\n"),
            ("© café", "© café"),
            ("a\u{1b}[2Jb", "a\\u001b[2Jb"),
            ("del\u{7f}", "del\\u007f"),
            ("© next line\u{85}", "© next line\\u0085"),
            ("csi\u{9b}", "csi\\u009b"),
        ] {
            assert_eq!(terminal_safe(format_args!("{input}")), want, "{input:?}");
            // Text written as it is (a `--json` report's chunks) is made
            // safe the same way, and borrowed when nothing needs an escape.
            let safe = safe_text(std::borrow::Cow::Borrowed(input));
            assert_eq!(safe, want, "{input:?}");
            assert_eq!(
                matches!(safe, std::borrow::Cow::Borrowed(_)),
                input == want,
                "{input:?}"
            );
        }
        // Checked in blocks of 64 bytes: a control character in any block, at
        // its edges too, is found.
        for at in [0, 63, 64, 127, 128, 300] {
            for c in ['\u{1b}', '\u{7f}', '\u{85}'] {
                let mut input = "x".repeat(at);
                input.push(c);
                input.push_str(&"y".repeat(100));
                let want = format!(
                    "{}\\u{:04x}{}",
                    "x".repeat(at),
                    u32::from(c),
                    "y".repeat(100)
                );
                assert_eq!(terminal_safe(format_args!("{input}")), want, "{at} {c:?}");
            }
        }
        let long = format!("{}\n\t©{}", "x".repeat(500), "é".repeat(100));
        assert_eq!(terminal_safe(format_args!("{long}")), long);
    }

    /// A `--json` document whose strings hold DEL and C1 controls (an
    /// advisory's summary, a package name: text cairn does not write) leaves
    /// the terminal-safe writer as JSON that decodes to the same value, and
    /// with no raw control character in it.
    #[test]
    fn json_made_terminal_safe_is_still_the_same_json() {
        let value = serde_json::json!({
            "summary": "del\u{7f} nel\u{85} csi\u{9b}[2J esc\u{1b}[0m \"q\" \\ tab\t nl\n",
            "names": ["\u{80}", "a\u{9f}b", "© café"],
        });
        let text = serde_json::to_string(&value).expect("json");
        assert!(
            text.contains('\u{7f}') && text.contains('\u{85}'),
            "serde leaves them raw: {text}"
        );
        let safe = terminal_safe(format_args!("{text}"));
        assert!(
            !safe.chars().any(char::is_control),
            "no raw control character: {safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }
}

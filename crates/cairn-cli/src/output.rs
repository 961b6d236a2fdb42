//! Presenting records: JSON wire shapes (the domain types stay free of serde) and
//! text for people.

pub use cairn_engine::wire::{duration_ms, line_json, run_json};
use cairn_model::LogLine;
use cairn_model::time::human_duration_ms;
use serde_json::Value;

/// `1.2s`, or `-` when the span is not known yet.
pub fn duration_text(start: Option<i64>, end: Option<i64>) -> String {
    duration_ms(start, end).map_or_else(|| "-".to_owned(), human_duration_ms)
}

pub fn short_commit(commit: &str) -> &str {
    &commit[..12.min(commit.len())]
}

/// A log line for a terminal: cairn's own lines marked, step output as printed.
pub fn line_text(line: &LogLine) -> String {
    match line.stream {
        cairn_model::LogStream::System => format!("cairn: {}", line.display_text()),
        _ => line.display_text(),
    }
}

/// Prints a JSON value on one line.
pub fn print_json(v: &Value) {
    println!("{v}");
}

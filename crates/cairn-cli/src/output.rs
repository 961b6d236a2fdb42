//! Presenting records: JSON wire shapes (the domain types stay free of serde) and
//! text for people.

use cairn_model::time::{human_duration_ms, rfc3339_utc};
use cairn_model::{LogLine, RunRecord, StageRecord};
use serde_json::{Value, json};

pub fn run_json(run: &RunRecord, stages: Option<&[StageRecord]>) -> Value {
    let mut v = json!({
        "id": run.id.0,
        "workload": run.workload,
        "commit": run.commit,
        "ref": run.git_ref,
        "status": run.status.as_str(),
        "reason": run.reason,
        "created_at": rfc3339_utc(run.created_at_ms),
        "started_at": run.started_at_ms.map(rfc3339_utc),
        "finished_at": run.finished_at_ms.map(rfc3339_utc),
        "duration_ms": duration_ms(run.started_at_ms, run.finished_at_ms),
    });
    if let Some(stages) = stages {
        v["stages"] = stages.iter().map(stage_json).collect();
    }
    v
}

pub fn stage_json(s: &StageRecord) -> Value {
    json!({
        "index": s.index,
        "name": s.name,
        "kind": s.kind.as_str(),
        "command": s.command,
        "status": s.status.as_str(),
        "exit_code": s.exit_code,
        "reason": s.reason,
        "started_at": s.started_at_ms.map(rfc3339_utc),
        "finished_at": s.finished_at_ms.map(rfc3339_utc),
        "duration_ms": duration_ms(s.started_at_ms, s.finished_at_ms),
    })
}

pub fn line_json(stage: &str, line: &LogLine) -> Value {
    json!({
        "stage": stage,
        "seq": line.seq,
        "stream": line.stream.as_str(),
        "at": rfc3339_utc(line.at_ms),
        "text": String::from_utf8_lossy(&line.text),
    })
}

pub fn duration_ms(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some(end? - start?)
}

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

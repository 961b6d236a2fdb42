//! THE way a JSON-lines record file in the data directory is appended to
//! (`changes.jsonl`, `changes-undelivered.jsonl`, the overdue-exposure ledger,
//! `outbox.jsonl`): the whole line in one `write` to an `O_APPEND` file, so
//! lines written at once by threads or by processes sharing the data
//! directory never interleave (a `writeln!` of a JSON value is many writes).

use std::io::Write;
use std::path::Path;

/// Appends `value` and a newline to `path` (created 0600 if missing, never
/// through a symlink), durably when `sync`.
pub(crate) fn append(path: &Path, value: &serde_json::Value, sync: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let line = format!("{value}\n");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(line.as_bytes())?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_appended_at_once_never_interleave() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("records.jsonl");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for n in 0..100 {
                        let value = serde_json::json!({"t": t, "n": n, "pad": "x".repeat(500)});
                        super::append(&path, &value, false).unwrap_or_else(|e| panic!("{e}"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap_or_else(|_| panic!("a writer panicked"));
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.lines().count(), 800);
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(v["pad"].as_str().map(str::len), Some(500), "{line}");
        }
    }
}

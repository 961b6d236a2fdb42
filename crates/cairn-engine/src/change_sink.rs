//! Change records to a change-management system: each record, after it is
//! stored and appended to `<data>/changes.jsonl`, is POSTed as JSON to the
//! organisation's `[changes] webhook`, signed with HMAC-SHA256 when a secret
//! file is configured (`X-Cairn-Signature-256: sha256=<hex>`). A delivery that
//! fails does not undo the change (it already happened, and is in the log and
//! the store): the record is kept in `<data>/changes-undelivered.jsonl` with why,
//! and the caller is told.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use cairn_model::config::ChangeSink;
use serde_json::{Value, json};

use crate::DataDir;

/// How long the change-management system may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest secret read from the secret file.
const MAX_SECRET: u64 = 4096;

/// Delivers `record` (change `id`) to the sink's webhook, if one is set.
/// `None`: no webhook; `Some(Ok(()))`: delivered (2xx); `Some(Err(why))`: not
/// delivered, kept in the undelivered file.
pub fn deliver(
    sink: &ChangeSink,
    data: &DataDir,
    id: i64,
    record: &Value,
) -> Option<Result<(), String>> {
    deliver_with(
        sink,
        data,
        ("X-Cairn-Change-Id", id.to_string()),
        id,
        record,
    )
}

/// Delivers a notice that is no change record (`kind`, e.g. `exposure-overdue`)
/// the same way, with `X-Cairn-Event: KIND` instead of a change id; a failed
/// delivery is kept in the same undelivered file (with id 0).
pub fn deliver_notice(
    sink: &ChangeSink,
    data: &DataDir,
    kind: &str,
    record: &Value,
) -> Option<Result<(), String>> {
    deliver_with(sink, data, ("X-Cairn-Event", kind.to_owned()), 0, record)
}

fn deliver_with(
    sink: &ChangeSink,
    data: &DataDir,
    header: (&str, String),
    id: i64,
    record: &Value,
) -> Option<Result<(), String>> {
    let url = sink.webhook.as_deref()?;
    let result = post(sink, url, &header, record);
    if let Err(why) = &result {
        let path = data.root().join("changes-undelivered.jsonl");
        let line = json!({"id": id, "webhook": url, "error": why, "record": record});
        let kept = crate::jsonl::append(&path, &line, true);
        if let Err(e) = kept {
            return Some(Err(format!(
                "{why}; and it could not be kept in {}: {e}",
                path.display()
            )));
        }
        return Some(Err(format!("{why}; kept in {}", path.display())));
    }
    Some(result)
}

fn post(
    sink: &ChangeSink,
    url: &str,
    header: &(&str, String),
    record: &Value,
) -> Result<(), String> {
    let body = record.to_string();
    let agent = cairn_registry::http::agent("cairn-change-sink", Some(TIMEOUT));
    let mut request = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header(header.0, &header.1);
    if let Some(file) = &sink.secret_file {
        let secret = read_secret(file)?;
        request = request.header("X-Cairn-Signature-256", &signature(&secret, &body));
    }
    match request.send(body.as_str()) {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("the change webhook answered {}", response.status())),
        Err(e) => Err(format!("the change webhook could not be reached: {e}")),
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, the value of
/// `X-Cairn-Signature-256` (the change webhook and notification webhooks).
pub fn signature(secret: &[u8], body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, body.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The secret, from a file only its owner may read.
fn read_secret(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the change webhook's secret file {path}: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "the change webhook's secret file {path} is readable by others; chmod 600 it"
        ));
    }
    let mut secret = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET).read_to_end(&mut secret))
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    while secret.last().is_some_and(u8::is_ascii_whitespace) {
        secret.pop();
    }
    if secret.is_empty() {
        return Err(format!("the change webhook's secret file {path} is empty"));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A one-request HTTP server answering `status`; returns what it received.
    fn receiver(status: u16) -> (String, std::thread::JoinHandle<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/cairn", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        (url, handle)
    }

    #[test]
    fn a_change_record_is_posted_signed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "k3y\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (url, server) = receiver(200);
        let sink = ChangeSink {
            webhook: Some(url),
            secret_file: Some(secret.display().to_string()),
        };
        let record = json!({"kind": "deploy", "to": "sha256:ab"});
        let data = DataDir::at(dir.path());
        assert_eq!(deliver(&sink, &data, 7, &record), Some(Ok(())));
        let (head, body) = server.join().unwrap();
        assert_eq!(body, record.to_string());
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"k3y");
        let tag: String = aws_lc_rs::hmac::sign(&key, body.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("x-cairn-signature-256: sha256={tag}")),
            "{head}"
        );
        assert!(head.contains("x-cairn-change-id: 7"), "{head}");
        assert!(!dir.path().join("changes-undelivered.jsonl").exists());
    }

    #[test]
    fn a_failed_delivery_is_kept_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::at(dir.path());
        let (url, server) = receiver(503);
        let sink = ChangeSink {
            webhook: Some(url),
            secret_file: None,
        };
        let why = deliver(&sink, &data, 1, &json!({"kind": "rollback"}))
            .unwrap()
            .unwrap_err();
        server.join().unwrap();
        assert!(why.contains("503") && why.contains("kept in"), "{why}");
        // Nobody listening at all.
        let sink = ChangeSink {
            webhook: Some("http://127.0.0.1:9/none".into()),
            secret_file: None,
        };
        let why = deliver(&sink, &data, 2, &json!({})).unwrap().unwrap_err();
        assert!(why.contains("could not be reached"), "{why}");
        let kept = std::fs::read_to_string(dir.path().join("changes-undelivered.jsonl")).unwrap();
        assert_eq!(kept.lines().count(), 2);
        // No webhook configured: nothing to do.
        assert_eq!(deliver(&ChangeSink::default(), &data, 3, &json!({})), None);
        // A secret others may read is refused, not used.
        let secret = dir.path().join("open");
        std::fs::write(&secret, "x").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let sink = ChangeSink {
            webhook: Some("http://127.0.0.1:9/none".into()),
            secret_file: Some(secret.display().to_string()),
        };
        let why = deliver(&sink, &data, 4, &json!({})).unwrap().unwrap_err();
        assert!(why.contains("readable by others"), "{why}");
    }
}

//! PEM (RFC 7468): one labelled block, base64 body in 64-column lines.

use crate::EvidenceError;

/// PEM text longer than this is refused before decoding.
pub(crate) const MAX_PEM_BYTES: usize = 16 * 1024;

pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let body = crate::b64::encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // base64 output is ASCII, so byte chunks are char boundaries.
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Exactly one `label` block, optionally surrounded by whitespace (RFC 7468 §2
/// strict form, without explanatory text).
pub(crate) fn decode(label: &'static str, text: &str) -> Result<Vec<u8>, EvidenceError> {
    let err = |reason| EvidenceError::Pem { label, reason };
    if text.len() > MAX_PEM_BYTES {
        return Err(EvidenceError::TooLarge {
            what: "PEM text",
            size: text.len(),
            limit: MAX_PEM_BYTES,
        });
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut lines = text.trim().lines().map(str::trim_end);
    if lines.next() != Some(begin.as_str()) {
        return Err(err("it does not start with the BEGIN line"));
    }
    let mut body = String::new();
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if line.starts_with("-----") || line.contains(':') {
            return Err(err("unexpected line inside the block"));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(err("the END line is missing"));
    }
    if lines.next().is_some() {
        return Err(err("text after the END line"));
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| err("the body is not standard base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_wraps_at_64_columns() {
        let der: Vec<u8> = (0..=255).collect();
        let pem = encode("PUBLIC KEY", &der);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        assert_eq!(decode("PUBLIC KEY", &pem).expect("decodes"), der);
    }

    #[test]
    fn refuses_wrong_label_junk_and_truncation() {
        let pem = encode("PUBLIC KEY", b"abc");
        let cases = [
            ("wrong label", pem.replace("PUBLIC KEY", "PRIVATE KEY")),
            ("junk after", format!("{pem}junk\n")),
            ("junk before", format!("junk\n{pem}")),
            ("no end", pem.lines().take(2).collect::<Vec<_>>().join("\n")),
            ("two blocks", format!("{pem}{pem}")),
            ("bad base64", pem.replace("YWJj", "Y*Jj")),
        ];
        for (name, text) in cases {
            assert!(decode("PUBLIC KEY", &text).is_err(), "{name} was accepted");
        }
        let huge = "A".repeat(MAX_PEM_BYTES + 1);
        assert!(matches!(
            decode("PUBLIC KEY", &huge),
            Err(EvidenceError::TooLarge { .. })
        ));
    }
}

//! A small SMTP client for notifications (RFC 5321 §3–4: `EHLO`, `MAIL FROM`,
//! `RCPT TO`, `DATA` with dot-stuffing, `QUIT`; RFC 3207 `STARTTLS`): one
//! message per connection, every read and write bounded by a timeout, every
//! reply line bounded. When the server offers STARTTLS the session is upgraded
//! (rustls on aws-lc-rs, the webpki roots, the server's host name verified)
//! before any address is sent; a server that is not on loopback and offers no
//! STARTTLS gets nothing (mail is sent in clear only to loopback).
//!
//! Written here rather than taken from `lettre`: the few commands cairn needs
//! are smaller than the dependency tree lettre brings (its builder, its
//! transports, a second TLS configuration), and this client reuses the TLS
//! setup cairn already trusts. Addresses are checked at config time
//! (`is_email_address`: no CR, LF, `<`, `>`), headers are ASCII (the subject
//! RFC 2047-encoded), the body base64, so no input can inject a command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use crate::outbox::Failure;

/// One message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Longest reply line read (RFC 5321 §4.5.3.1.5: 512), and most lines per reply.
const MAX_LINE: u64 = 2048;
const MAX_LINES: usize = 64;

/// Sends `mail` through `server` (`host:port`).
pub fn send(server: &str, mail: &Mail, timeout: Duration) -> Result<(), Failure> {
    let retry =
        |what: &str, e: std::io::Error| Failure::Retry(format!("SMTP {server}: {what}: {e}"));
    let (host, _) = server
        .rsplit_once(':')
        .ok_or_else(|| Failure::Permanent(format!("SMTP {server} is not host:port")))?;
    let addr = server
        .to_socket_addrs()
        .map_err(|e| retry("cannot resolve", e))?
        .next()
        .ok_or_else(|| Failure::Retry(format!("SMTP {server}: no address")))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| retry("cannot connect", e))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| retry("socket", e))?;
    tcp.set_write_timeout(Some(timeout))
        .map_err(|e| retry("socket", e))?;
    let loopback = addr.ip().is_loopback();
    let mut s = Session {
        server: server.to_owned(),
        io: BufReader::new(
            Box::new(tcp.try_clone().map_err(|e| retry("socket", e))?) as Box<dyn Stream>
        ),
    };
    s.expect(None, 220)?;
    let ext = s.expect(Some("EHLO cairn.invalid"), 250)?;
    let offers_tls = ext.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS"));
    if offers_tls {
        s.expect(Some("STARTTLS"), 220)?;
        let tls = tls_client(host)?;
        let stream = rustls::StreamOwned::new(tls, tcp);
        s.io = BufReader::new(Box::new(stream));
        s.expect(Some("EHLO cairn.invalid"), 250)?;
    } else if !loopback {
        return Err(Failure::Permanent(format!(
            "SMTP {server} offers no STARTTLS; cairn sends mail in clear only to loopback"
        )));
    }
    s.expect(Some(&format!("MAIL FROM:<{}>", mail.from)), 250)?;
    for to in &mail.to {
        s.expect_any(Some(&format!("RCPT TO:<{to}>")), &[250, 251])?;
    }
    s.expect(Some("DATA"), 354)?;
    s.write_raw(&message(mail))?;
    s.expect(Some("."), 250)?;
    let _ = s.expect(Some("QUIT"), 221);
    Ok(())
}

fn tls_client(host: &str) -> Result<rustls::ClientConnection, Failure> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Failure::Permanent(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| Failure::Permanent(format!("SMTP host {host} is not a TLS server name")))?;
    rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Failure::Permanent(format!("TLS setup: {e}")))
}

struct Session {
    server: String,
    io: BufReader<Box<dyn Stream>>,
}

impl Session {
    fn write_raw(&mut self, text: &str) -> Result<(), Failure> {
        let w = self.io.get_mut();
        w.write_all(text.as_bytes())
            .and_then(|()| w.flush())
            .map_err(|e| Failure::Retry(format!("SMTP {}: write: {e}", self.server)))
    }

    fn expect(&mut self, command: Option<&str>, code: u16) -> Result<Vec<String>, Failure> {
        self.expect_any(command, &[code])
    }

    /// Sends `command` (if any), reads the reply; its lines after the code
    /// when the code is one of `codes`.
    fn expect_any(&mut self, command: Option<&str>, codes: &[u16]) -> Result<Vec<String>, Failure> {
        if let Some(c) = command {
            self.write_raw(&format!("{c}\r\n"))?;
        }
        let verb = command
            .map(|c| c.split([' ', ':']).next().unwrap_or(c).to_owned())
            .unwrap_or_else(|| "greeting".to_owned());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            (&mut self.io)
                .take(MAX_LINE)
                .read_line(&mut line)
                .map_err(|e| Failure::Retry(format!("SMTP {} ({verb}): {e}", self.server)))?;
            let line = line.trim_end();
            let (code, rest) = (line.get(..3), line.get(3..4));
            let Some(code) = code.and_then(|c| c.parse::<u16>().ok()) else {
                return Err(Failure::Retry(format!(
                    "SMTP {} ({verb}): not an SMTP reply",
                    self.server
                )));
            };
            lines.push(line.get(4..).unwrap_or_default().to_owned());
            if rest != Some("-") || lines.len() >= MAX_LINES {
                if codes.contains(&code) {
                    return Ok(lines);
                }
                let text: String = line.chars().take(200).collect();
                let why = format!("SMTP {} answered {verb} with {text}", self.server);
                // 4xx: transient (RFC 5321 §4.2.1); 5xx: permanent.
                return Err(if (400..500).contains(&code) {
                    Failure::Retry(why)
                } else {
                    Failure::Permanent(why)
                });
            }
        }
    }
}

/// The message as sent after `DATA`: ASCII headers, the body base64, CRLF
/// line ends, ending in `<CRLF>.<CRLF>` — base64 lines never start with a dot,
/// so no dot-stuffing is needed.
fn message(mail: &Mail) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let subject = if mail.subject.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        mail.subject.clone()
    } else {
        format!("=?UTF-8?B?{}?=", b64.encode(mail.subject.as_bytes()))
    };
    let now = crate::host::now_ms();
    let mut m = String::new();
    m.push_str(&format!("From: <{}>\r\n", mail.from));
    m.push_str(&format!(
        "To: {}\r\n",
        mail.to
            .iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(now / 1000)));
    m.push_str(&format!(
        "Message-ID: <cairn.{now}.{}@cairn.invalid>\r\n",
        std::process::id()
    ));
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let encoded = b64.encode(mail.body.as_bytes());
    for chunk in encoded.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        m.push_str("\r\n");
    }
    m
}

/// `Sun, 06 Dec 2026 10:00:00 +0000` (RFC 5322 §3.3).
fn rfc5322_date(unix_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = cairn_model::time::civil_from_days(days);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m as usize).saturating_sub(1).min(11)],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_and_the_message_are_as_rfc_5322_wants() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_551_200),
            "Sun, 06 Dec 2026 10:00:00 +0000"
        );
        let m = message(&Mail {
            from: "cairn@example.org".into(),
            to: vec!["a@example.org".into(), "b@example.org".into()],
            subject: "Promotion denied — ünïcode".into(),
            body: ".\r\nQUIT\r\n".into(),
        });
        assert!(
            m.contains("To: <a@example.org>, <b@example.org>\r\n"),
            "{m}"
        );
        assert!(m.contains("Subject: =?UTF-8?B?"), "{m}");
        // A body cannot end the DATA section or smuggle a command.
        assert!(!m.contains("\r\n.\r\n") && !m.contains("QUIT"), "{m}");
        assert!(m.is_ascii());
    }
}

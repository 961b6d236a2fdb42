//! A small token server for docker-registry's `auth.token`: checks basic
//! credentials and answers ES256 JWTs (x5c header) granting the scopes asked.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;

pub(crate) const SERVICE: &str = "cairn-test-registry";
pub(crate) const ISSUER: &str = "cairn-test-issuer";

/// (authorization header present and right, scopes) per token request.
pub(crate) type Seen = Arc<Mutex<Vec<(bool, Vec<String>)>>>;

pub(crate) struct TokenServer {
    pub port: u16,
    pub root_cert: PathBuf,
    /// (authorization header present and right, scopes) per request.
    pub requests: Seen,
}

impl TokenServer {
    pub(crate) fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// Makes a P-256 key and self-signed certificate with the openssl CLI in
    /// `dir` and serves tokens for `user`/`password` on a free port.
    pub(crate) fn start(dir: &Path, user: &str, password: &str) -> Self {
        let key_pem = dir.join("token.key");
        let cert_pem = dir.join("token.crt");
        let key_der = dir.join("token.key.der");
        let cert_der = dir.join("token.crt.der");
        super::run(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            super::path_str(&key_pem),
            "-out",
            super::path_str(&cert_pem),
            "-subj",
            "/CN=cairn-test-token",
            "-days",
            "2",
        ]));
        super::run(Command::new("openssl").args([
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            super::path_str(&key_pem),
            "-outform",
            "DER",
            "-out",
            super::path_str(&key_der),
        ]));
        super::run(Command::new("openssl").args([
            "x509",
            "-in",
            super::path_str(&cert_pem),
            "-outform",
            "DER",
            "-out",
            super::path_str(&cert_der),
        ]));
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &std::fs::read(&key_der).expect("key der"),
        )
        .expect("P-256 key");
        let cert = std::fs::read(&cert_der).expect("cert der");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                let mut authorized = false;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        authorized = v.trim() == expected;
                    }
                }
                let scopes: Vec<String> = target
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or("")
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(decode)
                    .collect();
                seen.lock()
                    .expect("lock")
                    .push((authorized, scopes.clone()));
                let (status, body) = if authorized {
                    let jwt = sign(&key, &cert, &scopes);
                    ("200 OK", format!(r#"{{"token":"{jwt}","expires_in":300}}"#))
                } else {
                    (
                        "401 Unauthorized",
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#
                            .to_owned(),
                    )
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            root_cert: cert_pem,
            requests,
        }
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex"));
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf8")
}

fn sign(key: &EcdsaKeyPair, cert_der: &[u8], scopes: &[String]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (t, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": t, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let header = serde_json::json!({
        "typ": "JWT", "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(cert_der)],
    });
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "cairn", "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
        "jti": format!("{now}-{}", scopes.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .expect("sign");
    format!("{signing_input}.{}", b64(sig.as_ref()))
}

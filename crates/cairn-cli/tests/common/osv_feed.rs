//! A real HTTP server for advisory-feed tests (std::net, one thread): serves
//! OSV zips with an `ETag` and `Last-Modified`, answers `304 Not Modified` to a
//! request whose `If-None-Match` (or, without one, `If-Modified-Since`) names
//! the current version, and records the conditional headers of every request.
//! Other routes answer an HTTP error, a body that is no zip, or a
//! `Content-Length` over any limit.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// What a path answers.
#[derive(Clone)]
pub(crate) enum Route {
    /// A zip, at a version (its ETag is `"v<version>"`).
    Zip { bytes: Vec<u8>, version: u32 },
    /// An HTTP status with a short text body.
    Status(u16),
    /// 200 with this body (not a zip).
    Body(Vec<u8>),
    /// 200 announcing this `Content-Length`, then closing without a body.
    Announce(u64),
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub path: String,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// The status answered.
    pub status: u16,
}

pub(crate) struct OsvServer {
    pub url: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn last_modified(version: u32) -> String {
    format!("Sun, 06 Dec 2026 {:02}:00:00 GMT", version % 24)
}

impl OsvServer {
    pub(crate) fn start() -> OsvServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_owned();
                let mut headers = HashMap::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let route = r.lock().unwrap().get(&path).cloned();
                let inm = headers.get("if-none-match").cloned();
                let ims = headers.get("if-modified-since").cloned();
                let (status, head, body): (u16, String, Vec<u8>) = match route {
                    None => (404, String::new(), b"not found".to_vec()),
                    Some(Route::Status(code)) => (code, String::new(), b"no".to_vec()),
                    Some(Route::Body(b)) => (200, String::new(), b),
                    Some(Route::Announce(len)) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                        );
                        s.lock().unwrap().push(Seen {
                            path,
                            if_none_match: inm,
                            if_modified_since: ims,
                            status: 200,
                        });
                        continue;
                    }
                    Some(Route::Zip { bytes, version }) => {
                        let etag = format!("\"v{version}\"");
                        let lm = last_modified(version);
                        let head = format!("ETag: {etag}\r\nLast-Modified: {lm}\r\n");
                        let fresh = match &inm {
                            Some(tags) => tags.split(',').any(|t| t.trim() == etag),
                            None => ims.as_deref() == Some(lm.as_str()),
                        };
                        if fresh {
                            (304, head, Vec::new())
                        } else {
                            (200, head, bytes)
                        }
                    }
                };
                s.lock().unwrap().push(Seen {
                    path,
                    if_none_match: inm,
                    if_modified_since: ims,
                    status,
                });
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    if status == 304 { 0 } else { body.len() }
                );
                if status != 304 {
                    let _ = stream.write_all(&body);
                }
                let _ = stream.flush();
            }
        });
        OsvServer { url, routes, seen }
    }

    pub(crate) fn set(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_owned(), route);
    }

    /// Serves `bytes` at `path` as a new version.
    pub(crate) fn zip(&self, path: &str, bytes: Vec<u8>) {
        let mut routes = self.routes.lock().unwrap();
        let version = match routes.get(path) {
            Some(Route::Zip { version, .. }) => version + 1,
            _ => 1,
        };
        routes.insert(path.to_owned(), Route::Zip { bytes, version });
    }

    /// Requests seen so far, and clears the list.
    pub(crate) fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// A zip of `(name, text)` entries, made by Python's zipfile in `dir`.
pub(crate) fn zip_of(dir: &Path, entries: &[(&str, &str)]) -> Vec<u8> {
    let out = dir.join("made.zip");
    let mut script = format!(
        "import zipfile, json, sys\nz = zipfile.ZipFile({:?}, 'w', zipfile.ZIP_DEFLATED)\n",
        out.to_str().unwrap()
    );
    for (name, text) in entries {
        script.push_str(&format!("z.writestr({name:?}, {text:?})\n"));
    }
    script.push_str("z.close()\n");
    let mut child = Command::new("python3")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "python3 zipfile failed");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    bytes
}

/// An OSV record for npm `name` below `fixed`, with a CVSS 9.8 (critical) score.
pub(crate) fn npm_record(id: &str, modified: &str, name: &str, fixed: &str) -> String {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": modified,
        "published": "2026-12-01T00:00:00Z",
        "summary": format!("{name} is vulnerable"),
        "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }],
        "affected": [{
            "package": { "ecosystem": "npm", "name": name, "purl": format!("pkg:npm/{name}") },
            "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": fixed }] }]
        }]
    })
    .to_string()
}

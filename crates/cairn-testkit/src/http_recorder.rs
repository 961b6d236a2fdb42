//! A loopback HTTP/1.1 server for tests of what cairn sends out (forge commit
//! statuses, notifications): it records every request (method, path, headers,
//! body) and answers from a script — a status, or a hang that outlasts the
//! client's timeout — then 201 for anything past the script; or, for GitHub's
//! Checks API, as GitHub documents it ([`Recorder::github_checks`]). It also
//! checks a request against each forge's documented commit status API and
//! GitHub's check run API.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the server answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Read the request, then say nothing for this long.
    Hang(Duration),
}

/// What the server sends back.
enum Reply {
    Answer(Answer),
    Json(u16, String),
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// The running server; it stops with the test process.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub fn start(script: Vec<Answer>) -> Recorder {
        let mut script = script.into_iter();
        Recorder::serve(move |_| script.next().map(Reply::Answer))
    }

    /// A server that keeps check runs as GitHub's Checks API documents:
    /// "Create a check run" (`POST /repos/{o}/{r}/check-runs`, 201 with its
    /// `id`), "Update a check run" (`PATCH /repos/{o}/{r}/check-runs/{id}`),
    /// and "List check runs for a Git reference" (`GET
    /// /repos/{o}/{r}/commits/{sha}/check-runs?check_name=…`); commit
    /// statuses are answered 201. Anything else is a 404.
    pub fn github_checks() -> Recorder {
        let runs: Mutex<Vec<serde_json::Value>> = Mutex::new(Vec::new());
        Recorder::serve(move |seen| {
            let mut runs = runs.lock().unwrap();
            let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
            let parts: Vec<&str> = path.split('/').collect();
            let body = match (seen.method.as_str(), parts.as_slice()) {
                ("POST", ["", "repos", _, _, "statuses", _]) => (201, "{}".to_owned()),
                ("POST", ["", "repos", _, _, "check-runs"]) => {
                    let mut run = seen.json();
                    run["id"] = serde_json::json!(runs.len() + 1);
                    runs.push(run.clone());
                    (201, run.to_string())
                }
                ("PATCH", ["", "repos", _, _, "check-runs", id]) => {
                    match id
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| runs.get_mut(i.wrapping_sub(1)))
                    {
                        Some(run) => {
                            for (k, v) in seen.json().as_object().unwrap() {
                                run[k] = v.clone();
                            }
                            (200, run.to_string())
                        }
                        None => (404, "{}".to_owned()),
                    }
                }
                ("GET", ["", "repos", _, _, "commits", sha, "check-runs"]) => {
                    let name = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("check_name="))
                        .map(|n| n.replace("%2F", "/"));
                    let found: Vec<&serde_json::Value> = runs
                        .iter()
                        .filter(|r| r["head_sha"] == *sha)
                        .filter(|r| name.as_deref().is_none_or(|n| r["name"] == n))
                        .collect();
                    (
                        200,
                        serde_json::json!({"total_count": found.len(), "check_runs": found})
                            .to_string(),
                    )
                }
                _ => (404, "{}".to_owned()),
            };
            Some(Reply::Json(body.0, body.1))
        })
    }

    fn serve(mut answer: impl FnMut(&Seen) -> Option<Reply> + Send + 'static) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                let reply = answer(&request).unwrap_or(Reply::Answer(Answer::Status(201)));
                log.lock().unwrap().push(request);
                let answer = match reply {
                    Reply::Json(code, body) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        continue;
                    }
                    Reply::Answer(a) => a,
                };
                match answer {
                    Answer::Status(code) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                        );
                    }
                    Answer::Hang(d) => {
                        // Hold the connection open without answering, on its own
                        // thread so the next request is served.
                        std::thread::spawn(move || {
                            std::thread::sleep(d);
                            drop(stream);
                        });
                    }
                }
            }
        });
        Recorder { url, seen }
    }

    /// What was received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests were received (at most `limit`), then returns them.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.seen();
            if seen.len() >= n || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<Seen> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':')?;
        let n = n.trim().to_ascii_lowercase();
        let v = v.trim().to_owned();
        if n == "content-length" {
            length = v.parse().ok()?;
        }
        headers.push((n, v));
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

/// Checks `seen` against forge `forge`'s documented "create a commit status"
/// request for `repository` (`owner/name`) and `sha`, with `token`; returns
/// the state it carries.
pub fn check_forge_status(
    forge: &str,
    seen: &Seen,
    repository: &str,
    sha: &str,
    token: &str,
) -> Result<String, String> {
    let fail = |why: String| Err(format!("{forge}: {why}: {seen:?}"));
    if seen.method != "POST" {
        return fail("not a POST".into());
    }
    let (path, auth, states, label): (String, (&str, String), &[&str], &str) = match forge {
        "github" => (
            format!("/repos/{repository}/statuses/{sha}"),
            ("authorization", format!("Bearer {token}")),
            &["error", "failure", "pending", "success"],
            "context",
        ),
        "gitlab" => (
            format!(
                "/api/v4/projects/{}/statuses/{sha}",
                repository.replace('/', "%2F")
            ),
            ("private-token", token.to_owned()),
            &["pending", "running", "success", "failed", "canceled"],
            "name",
        ),
        "gitea" => (
            format!("/api/v1/repos/{repository}/statuses/{sha}"),
            ("authorization", format!("token {token}")),
            &["pending", "success", "error", "failure"],
            "context",
        ),
        other => return fail(format!("unknown forge {other}")),
    };
    if seen.path != path {
        return fail(format!("path is not {path}"));
    }
    if seen.header(auth.0) != Some(auth.1.as_str()) {
        return fail(format!("no `{}` header with the token", auth.0));
    }
    if !seen
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return fail("the body is not declared JSON".into());
    }
    if seen.header("user-agent").is_none_or(str::is_empty) {
        return fail("no User-Agent".into());
    }
    if forge == "github" {
        if seen.header("accept") != Some("application/vnd.github+json") {
            return fail("Accept is not application/vnd.github+json".into());
        }
        if seen.header("x-github-api-version") != Some("2022-11-28") {
            return fail("no X-GitHub-Api-Version".into());
        }
    }
    let body = seen.json();
    let Some(object) = body.as_object() else {
        return fail("the body is not an object".into());
    };
    let allowed = ["state", "target_url", "description", label];
    if let Some(extra) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return fail(format!(
            "the body has `{extra}`, which the API does not document"
        ));
    }
    let Some(state) = object.get("state").and_then(|s| s.as_str()) else {
        return fail("no state".into());
    };
    if !states.contains(&state) {
        return fail(format!("state `{state}` is not one of {states:?}"));
    }
    if !object
        .get("target_url")
        .and_then(|u| u.as_str())
        .is_some_and(|u| u.starts_with("http"))
    {
        return fail("no target_url".into());
    }
    if !object
        .get(label)
        .and_then(|c| c.as_str())
        .is_some_and(|c| c.starts_with("cairn/"))
    {
        return fail(format!("no `{label}`"));
    }
    if object
        .get("description")
        .and_then(|d| d.as_str())
        .is_none_or(|d| d.chars().count() > 140)
    {
        return fail("no description of at most 140 characters".into());
    }
    Ok(state.to_owned())
}

/// Checks `seen` against GitHub's documented check run requests ("List check
/// runs for a Git reference", "Create a check run", "Update a check run") for
/// `repository` and `sha` with `token`; returns `GET`, or for a create or an
/// update its `status` and, when completed, its `conclusion`
/// (`completed/success`).
pub fn check_github_check_run(
    seen: &Seen,
    repository: &str,
    sha: &str,
    token: &str,
) -> Result<String, String> {
    let fail = |why: String| Err(format!("github check run: {why}: {seen:?}"));
    if seen.header("authorization") != Some(format!("Bearer {token}").as_str()) {
        return fail("no `authorization: Bearer` header with the token".into());
    }
    if seen.header("accept") != Some("application/vnd.github+json") {
        return fail("Accept is not application/vnd.github+json".into());
    }
    if seen.header("x-github-api-version") != Some("2022-11-28") {
        return fail("no X-GitHub-Api-Version".into());
    }
    if seen.header("user-agent").is_none_or(str::is_empty) {
        return fail("no User-Agent".into());
    }
    let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
    let create = format!("/repos/{repository}/check-runs");
    let list = format!("/repos/{repository}/commits/{sha}/check-runs");
    let update = path
        .strip_prefix(&format!("{create}/"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    match seen.method.as_str() {
        "GET" if path == list => {
            return if query
                .split('&')
                .any(|kv| kv.starts_with("check_name=cairn%2F"))
            {
                Ok("GET".to_owned())
            } else {
                fail("the list is not narrowed to cairn's check_name".into())
            };
        }
        "POST" if path == create => {}
        "PATCH" if update => {}
        _ => return fail("not a documented check run request".into()),
    }
    if !seen
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return fail("the body is not declared JSON".into());
    }
    let body = seen.json();
    let Some(object) = body.as_object() else {
        return fail("the body is not an object".into());
    };
    let allowed: &[&str] = if seen.method == "POST" {
        &[
            "name",
            "head_sha",
            "external_id",
            "details_url",
            "status",
            "conclusion",
            "completed_at",
            "output",
        ]
    } else {
        &[
            "details_url",
            "status",
            "conclusion",
            "completed_at",
            "output",
        ]
    };
    if let Some(extra) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return fail(format!(
            "the body has `{extra}`, which the API does not document here"
        ));
    }
    if seen.method == "POST"
        && (object.get("head_sha").and_then(|s| s.as_str()) != Some(sha)
            || !object
                .get("name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.starts_with("cairn/")))
    {
        return fail("a create needs `name` cairn/… and `head_sha`".into());
    }
    let status = object
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    if !["queued", "in_progress", "completed"].contains(&status) {
        return fail(format!(
            "status `{status}` is not queued, in_progress or completed"
        ));
    }
    let conclusion = object.get("conclusion").and_then(|c| c.as_str());
    let conclusions = [
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "success",
        "skipped",
        "stale",
        "timed_out",
    ];
    let completed_at = object
        .get("completed_at")
        .and_then(|t| t.as_str())
        .is_some_and(|t| t.ends_with('Z'));
    match (status, conclusion) {
        ("completed", Some(c)) if conclusions.contains(&c) && !completed_at => {
            return fail("a completed check run needs completed_at (ISO 8601)".into());
        }
        ("completed", Some(c)) if conclusions.contains(&c) => {}
        ("completed", _) => {
            return fail("a completed check run needs a documented conclusion".into());
        }
        (_, Some(_)) => return fail("a conclusion before completed".into()),
        _ => {}
    }
    let output = &body["output"];
    if output["title"].as_str().is_none_or(str::is_empty) || output["summary"].as_str().is_none() {
        return fail("output needs title and summary".into());
    }
    if !body["details_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("http"))
    {
        return fail("no details_url".into());
    }
    Ok(match conclusion {
        Some(c) => format!("{status}/{c}"),
        None => status.to_owned(),
    })
}

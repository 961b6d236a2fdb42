//! `cairn logs RUN --server URL`: a run's logs from a `cairn up` server, read
//! from its Server-Sent Events stream (every line from the start, then live
//! until the run ends). Authenticates with CAIRN_TOKEN's bearer token.

use std::io::{BufRead, BufReader, Read};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use serde_json::Value;

use crate::cli::{Cli, LogsArgs};
use crate::exit::{Failure, USER};
use crate::output::print_json;

/// The longest SSE line read (a log line is at most 64 KiB, JSON-escaped).
const MAX_EVENT_LINE: u64 = 1 << 20;

pub(super) fn follow(cli: &Cli, args: &LogsArgs, server: &str) -> Result<ExitCode, Failure> {
    let base = server.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Failure::user(anyhow!(
            "--server must be an http:// or https:// URL, not `{base}`"
        )));
    }
    let token = std::env::var(cairn_engine::access::TOKEN_ENV).map_err(|_| {
        Failure::user(anyhow!(
            "set CAIRN_TOKEN to your identity's token to read from {base}"
        ))
    })?;
    let agent = cairn_registry::http::agent("cairn-cli", None);
    let run = match args.run.as_str() {
        "last" => {
            let newest = get_json(&agent, &format!("{base}/api/runs?limit=1"), &token)?;
            newest["runs"][0]["id"]
                .as_i64()
                .ok_or_else(|| Failure::user(anyhow!("the server has no runs yet")))?
        }
        id => id
            .parse::<i64>()
            .map_err(|_| Failure::user(anyhow!("`{id}` is not a run id")))?,
    };
    let url = format!("{base}/api/runs/{run}/events");
    let response = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Accept", "text/event-stream")
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(problem(status, response.into_body().into_reader()));
    }
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut event = String::new();
    let mut data = String::new();
    let mut outcome = None;
    let mut headed = std::collections::BTreeSet::new();
    loop {
        if crate::output::stdout_closed() {
            // The reader went away (`| head`): nobody to follow for.
            return Ok(ExitCode::SUCCESS);
        }
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(MAX_EVENT_LINE)
            .read_until(b'\n', &mut line)
            .context("reading the event stream")?;
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            if let Some(status) = dispatch(cli, args, &mut headed, &event, &data) {
                outcome = Some(status);
                break;
            }
            event.clear();
            data.clear();
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    match outcome.as_deref() {
        Some("succeeded") => Ok(ExitCode::SUCCESS),
        Some(_) => Ok(ExitCode::from(USER)),
        None => Err(Failure::from(anyhow!(
            "the server closed the stream before the run ended"
        ))),
    }
}

/// Prints one event; returns the run's final status on `end`.
fn dispatch(
    cli: &Cli,
    args: &LogsArgs,
    headed: &mut std::collections::BTreeSet<String>,
    event: &str,
    data: &str,
) -> Option<String> {
    let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    match event {
        "log" => {
            let stage = value["stage"].as_str().unwrap_or("?");
            if args.stage.as_deref().is_some_and(|s| s != stage) {
                return None;
            }
            if cli.json {
                print_json(&value);
                return None;
            }
            if args.stage.is_none() && headed.insert(stage.to_owned()) {
                println!("── {stage} ──");
            }
            let text = value["text"].as_str().unwrap_or_default();
            match value["stream"].as_str() {
                Some("cairn") => println!("cairn: {text}"),
                _ => println!("{text}"),
            }
            None
        }
        "stage" if !cli.json && args.stage.is_none() => {
            let name = value["name"].as_str().unwrap_or("?");
            match value["status"].as_str() {
                Some("running") => {
                    if headed.insert(name.to_owned()) {
                        println!("── {name} ({}) ──", value["kind"].as_str().unwrap_or(""));
                    }
                }
                Some("pending") | None => {}
                Some(status) => {
                    let reason = value["reason"]
                        .as_str()
                        .map(|r| format!(" · {r}"))
                        .unwrap_or_default();
                    println!("── {name} {status}{reason}");
                }
            }
            None
        }
        "end" => Some(value["status"].as_str().unwrap_or("unknown").to_owned()),
        "shutdown" => Some("interrupted".to_owned()),
        "error" => {
            eprintln!("error from the server: {data}");
            Some("failed".to_owned())
        }
        _ => None,
    }
}

fn get_json(agent: &ureq::Agent, url: &str, token: &str) -> Result<Value, Failure> {
    let response = agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status().as_u16();
    let body = response.into_body().into_reader();
    if status != 200 {
        return Err(problem(status, body));
    }
    let mut text = String::new();
    body.take(MAX_EVENT_LINE)
        .read_to_string(&mut text)
        .context("reading the answer")?;
    Ok(serde_json::from_str(&text).context("the server's answer is not JSON")?)
}

/// A problem+json answer as a failure naming the server's detail.
fn problem(status: u16, body: impl Read) -> Failure {
    let mut text = String::new();
    let _ = body.take(64 << 10).read_to_string(&mut text);
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or(text);
    let error = anyhow!("the server answered {status}: {detail}");
    if (400..500).contains(&status) {
        Failure::user(error)
    } else {
        Failure::from(error)
    }
}

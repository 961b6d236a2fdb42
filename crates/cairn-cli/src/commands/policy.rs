//! `cairn policy test` (the Rego unit tests of the default set and of the
//! organisation's `policy/*_test.rego`) and `cairn policy eval` (a gate against a
//! digest: the input and the decision, to explain a denial; nothing is recorded).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_engine::promotion::{Intent, Promoter, Request};
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::{Failure, USER};
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PolicyCommand {
    /// Run the Rego unit tests (`test_*` rules) of the default set and the organisation's policies.
    Test,
    /// Evaluate the gate for an image and environment; print the input and the decision.
    Eval {
        workload: String,
        image: String,
        #[arg(long)]
        to: String,
    },
}

fn rego_files(dir: &Path, tests: bool) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rego"))
        .filter(|p| p.to_string_lossy().ends_with("_test.rego") == tests)
        .collect();
    paths.sort();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        out.push((p.display().to_string(), text));
    }
    Ok(out)
}

pub(super) fn policy(cli: &Cli, cmd: &PolicyCommand) -> Result<ExitCode, Failure> {
    match cmd {
        PolicyCommand::Test => {
            let dir = cli
                .platform_dir
                .as_deref()
                .map(|p| p.join(cairn_engine::promotion::POLICY_DIR));
            let mut policies: Vec<(String, String)> = cairn_policy::default_policy_files()
                .into_iter()
                .map(|(f, t)| (f.to_owned(), t.to_owned()))
                .collect();
            let mut tests: Vec<(String, String)> = cairn_policy::DEFAULT_POLICY_TESTS
                .iter()
                .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
                .collect();
            if let Some(dir) = &dir {
                policies.extend(rego_files(dir, false)?);
                tests.extend(rego_files(dir, true)?);
            }
            let p: Vec<(&str, &str)> = policies
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let t: Vec<(&str, &str)> = tests
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let data = cairn_policy::DefaultParams::new(cairn_policy::POLICY_TEST_BUILDER_ID)
                .to_data()
                .map_err(|e| Failure::user(anyhow!(e)))?;
            let report = cairn_policy::run_policy_tests(&p, &t, &data)
                .map_err(|e| Failure::user(anyhow!(e)))?;
            let mut failed = 0;
            for case in &report.cases {
                let (mark, detail) = match &case.outcome {
                    cairn_policy::TestOutcome::Pass => ("ok", String::new()),
                    cairn_policy::TestOutcome::Fail => {
                        failed += 1;
                        ("FAIL", String::new())
                    }
                    cairn_policy::TestOutcome::Error { message } => {
                        failed += 1;
                        ("ERROR", format!(": {message}"))
                    }
                };
                if !cli.json {
                    println!("{mark}: {}:{} {}{detail}", case.file, case.line, case.name);
                }
            }
            if cli.json {
                print_json(&json!({
                    "tests": report.cases.len(),
                    "failed": failed,
                    "ok": report.ok(),
                }));
            } else {
                println!("{} tests, {failed} failed", report.cases.len());
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(USER)
            })
        }
        PolicyCommand::Eval {
            workload,
            image,
            to,
        } => {
            let data = data_dir(cli)?;
            let store = open_store(&data)?;
            let actor = cairn_engine::access::actor_from_env(&*store)?;
            let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
            let promoter = Promoter {
                data: &data,
                store: &*store,
                org: &org,
                platform_dir: cli.platform_dir.as_deref(),
            };
            let (input, decision) = promoter.evaluate(&Request {
                workload: workload.clone(),
                image: image.clone(),
                environment: to.clone(),
                actor,
                intent: Intent::Promote,
                override_reason: None,
            })?;
            if cli.json {
                print_json(&json!({ "input": input, "decision": decision }));
            } else {
                println!(
                    "input:\n{}",
                    serde_json::to_string_pretty(&input).unwrap_or_default()
                );
                println!(
                    "decision: {}",
                    if decision.allow { "allow" } else { "deny" }
                );
                for r in &decision.reasons {
                    println!("  - [{}] {}", r.rule, r.message);
                }
                println!(
                    "policy {}  input {}",
                    decision.policy_digest, decision.input_digest
                );
            }
            Ok(if decision.allow {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(USER)
            })
        }
    }
}

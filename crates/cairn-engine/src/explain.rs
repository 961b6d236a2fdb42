//! Why a run failed or was interrupted: the stage, its command, the exit code, the
//! last lines of its log, the failed tests named in the log, and a hint. The same
//! explanation serves `cairn explain` and, later, the web UI.

use cairn_model::test_report::{Missing, failed_tests, missing};
use cairn_model::{LogLine, RunId, RunRecord, StageRecord, StageStatus};
use cairn_store::Store;

use crate::EngineError;

/// How much of a failed stage's log is read to find failed tests.
const SCAN_LINES: usize = 50_000;

#[derive(Debug, Clone)]
pub struct Explanation {
    pub run: RunRecord,
    pub stages: Vec<StageRecord>,
    /// The stage that failed or was interrupted, if any.
    pub culprit: Option<Culprit>,
}

#[derive(Debug, Clone)]
pub struct Culprit {
    pub stage: StageRecord,
    pub last_lines: Vec<LogLine>,
    pub failed_tests: Vec<String>,
    pub hint: Option<String>,
}

/// Explains run `id`, with the last `tail` log lines of the culprit stage.
pub fn explain(store: &dyn Store, id: RunId, tail: usize) -> Result<Explanation, EngineError> {
    let run = store.run(id)?.ok_or(EngineError::RunNotFound(id))?;
    let stages = store.stages(id)?;
    let culprit = stages
        .iter()
        .find(|s| matches!(s.status, StageStatus::Failed | StageStatus::Interrupted))
        .cloned();
    let culprit = match culprit {
        None => None,
        Some(stage) => {
            let last_lines = store.log_tail(stage.id, tail)?;
            let mut texts = Vec::new();
            let mut after = None;
            while texts.len() < SCAN_LINES {
                let page = store.logs(stage.id, after, 5_000)?;
                let Some(last) = page.last() else { break };
                after = Some(last.seq);
                texts.extend(
                    page.into_iter()
                        .filter(|l| l.stream != cairn_model::LogStream::System)
                        .map(|l| l.display_text()),
                );
            }
            let failed_tests = failed_tests(texts.iter().map(String::as_str));
            let missing = missing(texts.iter().map(String::as_str), stage.exit_code);
            let hint = match (&missing, stage.status) {
                (Some(Missing::Network(sign)), StageStatus::Failed)
                    if stage.kind == cairn_model::StageKind::Fetch =>
                {
                    Some(format!(
                        "the fetch stage could not reach the network (`{sign}`): check that the registry it names is reachable from this machine; the fetch sandbox reaches out through slirp4netns and never to the host's loopback, link-local or cloud metadata addresses"
                    ))
                }
                (Some(m), StageStatus::Failed) => Some(missing_hint(m)),
                _ => hint(&stage, &failed_tests),
            };
            Some(Culprit {
                stage,
                last_lines,
                failed_tests,
                hint,
            })
        }
    };
    Ok(Explanation {
        run,
        stages,
        culprit,
    })
}

/// The fix for a missing tool, module or lockfile: never "fix the failing test".
pub fn missing_hint(m: &Missing) -> String {
    match m {
        Missing::Command(name) => format!(
            "not a failing test: the program {} is not installed in the sandbox (exit 127, command not found; steps see /usr, /bin, the workspace and the chain's declared tools). Choose a build image that carries it, or declare it as a tool in the chain (chains/<name>.toml, [[sandbox.tool]]); a tool the project installs itself belongs in build.fetch",
            name.as_deref().map_or("the step runs".to_owned(), |n| format!("`{n}`"))
        ),
        // pip or venv themselves: the Python tooling, not a project dependency.
        Missing::PythonModule(module)
            if matches!(module.as_str(), "pip" | "venv" | "ensurepip" | "setuptools") =>
        {
            format!(
                "not a failing test: Python's `{module}` is not installed in the sandbox, so nothing can be fetched. Choose a build image that carries it (Debian's python3-pip / python3-venv), or declare a Python toolchain in the chain ([[sandbox.tool]])"
            )
        }
        Missing::PythonModule(module) => format!(
            "not a failing test: the Python module `{module}` is not installed. Add the package that provides it to the fetch stage (build.fetch, e.g. `python3 -m pip install --target .deps {top} ...`, or list it in requirements.txt or the project's test extra)",
            top = module.split('.').next().unwrap_or(module)
        ),
        Missing::NodeModule(module) => format!(
            "not a failing test: the Node module `{module}` is not installed. Add it to package.json's dependencies or devDependencies so the fetch stage (`npm ci` / `npm install`) installs it"
        ),
        Missing::RustCrate(krate) => format!(
            "not a failing test: the crate `{krate}` is not a dependency of the package. Add it to Cargo.toml ([dev-dependencies] for a test-only crate) and commit the updated Cargo.lock, so the fetch stage (`cargo fetch`) downloads it"
        ),
        Missing::GoPackage(package) => format!(
            "not a failing test: no module in go.mod provides the package `{package}`. Add it (`go get {package}`) and commit go.mod and go.sum, so the fetch stage (`go mod download`) downloads it"
        ),
        Missing::Network(sign) => format!(
            "not a failing test: the step needs the network (`{sign}`), and only the fetch stage has one; download what the tests need in build.fetch, or skip the tests that need the network when it is absent"
        ),
        Missing::CargoLockfile => "not a failing test: cargo was given `--locked` but Cargo.lock is missing or does not match Cargo.toml. Commit an up-to-date Cargo.lock (`cargo generate-lockfile`), or drop `--locked` from build.fetch".to_owned(),
    }
}

fn hint(stage: &StageRecord, failed: &[String]) -> Option<String> {
    if stage.status == StageStatus::Interrupted {
        return Some(
            "the process running the chain died; run it again with `cairn run --commit <commit>`"
                .into(),
        );
    }
    if !failed.is_empty() {
        return Some(format!(
            "fix the failing test{} and push a new commit",
            if failed.len() > 1 { "s" } else { "" }
        ));
    }
    match stage.exit_code {
        Some(127) => Some("the command does not exist inside the sandbox: steps see /usr, /bin, the workspace and the chain's declared tools (chains/<name>.toml, [[sandbox.tool]])".into()),
        _ => {
            let reason = stage.reason.as_deref().unwrap_or_default();
            if reason.contains("timed out") {
                Some("the step ran past the chain's timeout: make it faster or raise `timeout` for the stage in the chain".into())
            } else if reason.contains("memory") || reason.contains("signal 9") {
                Some("the step was killed, most likely by the sandbox's memory or process limit ([sandbox] memory / processes in the chain)".into())
            } else if reason.contains("network") {
                Some("only the dependency-fetch step has network; fetch dependencies in build.fetch".into())
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(m: Missing, want: &[&str]) {
        let h = missing_hint(&m);
        for w in want {
            assert!(h.contains(w), "{m:?}: {h}\n--- wanted: {w}");
        }
        assert!(h.starts_with("not a failing test"), "{h}");
    }

    #[test]
    fn each_missing_thing_gets_its_fix() {
        check(
            Missing::Command(Some("cargo".into())),
            &[
                "`cargo` is not installed",
                "build image",
                "[[sandbox.tool]]",
            ],
        );
        check(Missing::Command(None), &["exit 127", "build image"]);
        check(
            Missing::PythonModule("yaml.loader".into()),
            &["`yaml.loader`", "fetch stage", "--target .deps yaml "],
        );
        check(
            Missing::PythonModule("pip".into()),
            &["`pip` is not installed", "python3-pip", "build image"],
        );
        check(
            Missing::NodeModule("left-pad".into()),
            &["`left-pad`", "devDependencies", "npm ci"],
        );
        check(
            Missing::CargoLockfile,
            &["Commit an up-to-date Cargo.lock", "drop `--locked`"],
        );
        check(
            Missing::RustCrate("quickcheck".into()),
            &["`quickcheck`", "[dev-dependencies]", "cargo fetch"],
        );
        check(
            Missing::Network("Temporary failure in name resolution".into()),
            &[
                "needs the network (`Temporary failure in name resolution`)",
                "only the fetch stage",
            ],
        );
        check(
            Missing::GoPackage("github.com/x/y".into()),
            &[
                "`github.com/x/y`",
                "go get github.com/x/y",
                "go mod download",
            ],
        );
    }
}

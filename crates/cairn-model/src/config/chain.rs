//! The organisation's chain (`chains/<name>.toml`): the ordered stages every
//! workload goes through, and the sandbox policy they run under.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;
use super::workload::checked_name;
use super::{parse_duration, parse_size, parse_toml};
use crate::run::StageKind;

/// The chain a workload uses when it names none.
pub const DEFAULT_CHAIN_NAME: &str = "default";
/// The built-in default chain.
pub const DEFAULT_CHAIN_TOML: &str = include_str!("default_chain.toml");

const MAX_STAGES: usize = 64;
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const MAX_PROCESSES: u32 = 65_536;
const MIN_MEMORY: u64 = 16 << 20;

/// A validated chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub description: Option<String>,
    pub sandbox: SandboxPolicy,
    /// In order; the first is always the `source` stage.
    pub stages: Vec<ChainStage>,
}

/// What every sandboxed step of the chain gets: limits, environment, tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub processes: u32,
    /// Variables set in every step (after cairn's own, which they may override).
    pub env: Vec<(String, String)>,
    /// Host variables passed through by name, when set on the host.
    pub pass_env: Vec<String>,
    /// Host directories mounted read-only into every step (toolchains).
    pub tools: Vec<Tool>,
}

/// A host directory mounted read-only at `at`; `bin`, if set, is put on `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub host: String,
    pub at: String,
    pub bin: Option<String>,
}

/// One stage of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStage {
    pub name: String,
    pub kind: StageKind,
    /// Only for `command` stages: the command the chain runs.
    pub command: Option<String>,
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    name: Spanned<String>,
    description: Option<String>,
    sandbox: Option<RawSandbox>,
    stage: Spanned<Vec<RawStage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    processes: Option<Spanned<u32>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    pass_env: Vec<Spanned<String>>,
    #[serde(default)]
    tool: Vec<RawTool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    host: Spanned<String>,
    at: Spanned<String>,
    bin: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Spanned<String>,
    kind: Spanned<String>,
    command: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

/// Parses and validates a chain file. `file` names it in errors.
pub fn parse_chain(file: &str, text: &str) -> Result<Chain, ConfigError> {
    let raw: RawChain = parse_toml(file, text)?;
    let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
        ConfigError::at(file, text, Some(span), msg, Some(help.to_owned()))
    };
    let duration = |d: &Spanned<String>| {
        parse_duration(d.get_ref())
            .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT)
            .ok_or_else(|| {
                err(
                    d.span(),
                    format!("invalid timeout `{}`", d.get_ref()),
                    "a number and a unit (ms, s, m, h), more than zero and at most 24h, e.g. \"30m\"",
                )
            })
    };

    let name = checked_name(file, text, &raw.name, "chain name")?;
    let sandbox = {
        let raw_sb = raw.sandbox;
        let mut policy = SandboxPolicy {
            timeout: Duration::from_secs(30 * 60),
            memory_bytes: 2 << 30,
            processes: 512,
            env: Vec::new(),
            pass_env: Vec::new(),
            tools: Vec::new(),
        };
        if let Some(sb) = raw_sb {
            if let Some(t) = &sb.timeout {
                policy.timeout = duration(t)?;
            }
            if let Some(m) = &sb.memory {
                policy.memory_bytes = parse_size(m.get_ref()).filter(|b| *b >= MIN_MEMORY).ok_or_else(
                    || {
                        err(
                            m.span(),
                            format!("invalid memory limit `{}`", m.get_ref()),
                            "a size with a binary unit, at least 16MiB, e.g. \"2GiB\" or \"512MiB\"",
                        )
                    },
                )?;
            }
            if let Some(p) = &sb.processes {
                if *p.get_ref() == 0 || *p.get_ref() > MAX_PROCESSES {
                    return Err(err(
                        p.span(),
                        format!("invalid process limit {}", p.get_ref()),
                        "between 1 and 65536",
                    ));
                }
                policy.processes = *p.get_ref();
            }
            for (k, v) in &sb.env {
                if !is_env_name(k) || v.contains('\0') {
                    return Err(ConfigError::at(
                        file,
                        text,
                        None,
                        format!("invalid environment variable `{k}` in [sandbox.env]"),
                        Some("names are A-Z, a-z, 0-9 and _, not starting with a digit; values have no NUL".into()),
                    ));
                }
                policy.env.push((k.clone(), v.clone()));
            }
            for p in &sb.pass_env {
                if !is_env_name(p.get_ref()) {
                    return Err(err(
                        p.span(),
                        format!("invalid environment variable name `{}`", p.get_ref()),
                        "names are A-Z, a-z, 0-9 and _, not starting with a digit",
                    ));
                }
                policy.pass_env.push(p.get_ref().clone());
            }
            for t in &sb.tool {
                for path in [Some(&t.host), Some(&t.at), t.bin.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    let p = path.get_ref();
                    if !p.starts_with('/') || p.split('/').any(|c| c == "..") || p.contains('\0') {
                        return Err(err(
                            path.span(),
                            format!("`{p}` is not an absolute path"),
                            "tool paths are absolute, without `..`",
                        ));
                    }
                }
                if t.at.get_ref() == "/workspace" || !t.at.get_ref().starts_with("/opt/") {
                    return Err(err(
                        t.at.span(),
                        format!("tools are mounted under /opt/, not at `{}`", t.at.get_ref()),
                        "use e.g. at = \"/opt/rust\"",
                    ));
                }
                policy.tools.push(Tool {
                    host: t.host.get_ref().clone(),
                    at: t.at.get_ref().clone(),
                    bin: t.bin.as_ref().map(|b| b.get_ref().clone()),
                });
            }
        }
        policy
    };

    if raw.stage.get_ref().is_empty() || raw.stage.get_ref().len() > MAX_STAGES {
        return Err(err(
            raw.stage.span(),
            format!("a chain has 1 to {MAX_STAGES} stages"),
            "declare stages with [[stage]]",
        ));
    }
    let mut stages: Vec<ChainStage> = Vec::new();
    for (i, s) in raw.stage.get_ref().iter().enumerate() {
        let name = checked_name(file, text, &s.name, "stage name")?;
        if stages.iter().any(|st| st.name == name) {
            return Err(err(
                s.name.span(),
                format!("stage `{name}` is declared twice"),
                "stage names are unique within a chain",
            ));
        }
        let kind: StageKind = s.kind.get_ref().parse().map_err(|_| {
            let allowed: Vec<&str> = StageKind::ALL.iter().map(|k| k.as_str()).collect();
            err(
                s.kind.span(),
                format!("unknown stage kind `{}`", s.kind.get_ref()),
                &format!("one of: {}", allowed.join(", ")),
            )
        })?;
        if (i == 0) != (kind == StageKind::Source) {
            return Err(err(
                s.kind.span(),
                "the first stage, and only the first, is of kind `source`".into(),
                "every chain starts by materialising the exact commit",
            ));
        }
        let command = match (&s.command, kind) {
            (Some(c), StageKind::Command) => {
                if c.get_ref().trim().is_empty() || c.get_ref().contains('\0') {
                    return Err(err(
                        c.span(),
                        "command is empty".into(),
                        "give a shell command line",
                    ));
                }
                Some(c.get_ref().clone())
            }
            (None, StageKind::Command) => {
                return Err(err(
                    s.name.span(),
                    format!("stage `{name}` of kind `command` has no `command`"),
                    "add command = \"...\"",
                ));
            }
            (Some(c), _) => {
                return Err(err(
                    c.span(),
                    format!("stage `{name}` of kind `{kind}` takes its command from the workload"),
                    "only stages of kind `command` declare a command in the chain",
                ));
            }
            (None, _) => None,
        };
        let timeout = match &s.timeout {
            Some(t) => duration(t)?,
            None => sandbox.timeout,
        };
        stages.push(ChainStage {
            name,
            kind,
            command,
            timeout,
        });
    }
    Ok(Chain {
        name,
        description: raw.description,
        sandbox,
        stages,
    })
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chain_parses() {
        let c = parse_chain("default", DEFAULT_CHAIN_TOML).unwrap();
        assert_eq!(c.name, "default");
        let kinds: Vec<StageKind> = c.stages.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                StageKind::Source,
                StageKind::Fetch,
                StageKind::UnitTest,
                StageKind::Build,
                StageKind::AcceptanceTest
            ]
        );
        assert_eq!(c.sandbox.memory_bytes, 2 << 30);
        assert!(
            c.sandbox
                .env
                .contains(&("CI".to_owned(), "true".to_owned()))
        );
    }

    fn check_err(text: &str, line: usize, fragment: &str) {
        let e = parse_chain("chains/x.toml", text).expect_err(text);
        assert_eq!(e.line, line, "{e}");
        assert!(
            e.to_string().contains(fragment),
            "{e}\n--- wanted: {fragment}"
        );
    }

    const SRC: &str = "name = \"x\"\n[[stage]]\nname = \"source\"\nkind = \"source\"\n";

    #[test]
    fn stage_rules() {
        let c = parse_chain(
            "x",
            &format!("{SRC}[[stage]]\nname = \"lint\"\nkind = \"command\"\ncommand = \"true\"\ntimeout = \"5s\"\n"),
        )
        .unwrap();
        assert_eq!(c.stages[1].command.as_deref(), Some("true"));
        assert_eq!(c.stages[1].timeout, Duration::from_secs(5));

        check_err(
            &format!("{SRC}[[stage]]\nname = \"b\"\nkind = \"bild\"\n"),
            7,
            "unknown stage kind `bild`",
        );
        check_err(
            &format!("{SRC}[[stage]]\nname = \"b\"\nkind = \"bild\"\n"),
            7,
            "unit-test",
        );
        check_err(
            &format!("{SRC}[[stage]]\nname = \"source\"\nkind = \"build\"\n"),
            6,
            "declared twice",
        );
        check_err(
            &format!("{SRC}[[stage]]\nname = \"b\"\nkind = \"source\"\n"),
            7,
            "only the first",
        );
        check_err(
            "name = \"x\"\n[[stage]]\nname = \"b\"\nkind = \"build\"\n",
            4,
            "only the first",
        );
        check_err(
            &format!("{SRC}[[stage]]\nname = \"l\"\nkind = \"command\"\n"),
            6,
            "has no `command`",
        );
        check_err(
            &format!("{SRC}[[stage]]\nname = \"b\"\nkind = \"build\"\ncommand = \"x\"\n"),
            8,
            "from the workload",
        );
        check_err(&format!("{SRC}timeout = \"0s\"\n"), 5, "invalid timeout");
        check_err(
            &format!("{SRC}colour = \"red\"\n"),
            5,
            "unknown field `colour`",
        );
        check_err("name = \"x\"\nstage = []\n", 2, "1 to 64 stages");
    }

    #[test]
    fn sandbox_rules() {
        let ok = format!(
            "name = \"x\"\n[sandbox]\ntimeout = \"1h\"\nmemory = \"512MiB\"\nprocesses = 64\npass_env = [\"HTTP_PROXY\"]\n[[sandbox.tool]]\nhost = \"/usr/lib/rust\"\nat = \"/opt/rust\"\nbin = \"/opt/rust/bin\"\n{}",
            SRC.trim_start_matches("name = \"x\"\n")
        );
        let c = parse_chain("x", &ok).unwrap();
        assert_eq!(c.sandbox.processes, 64);
        assert_eq!(c.sandbox.memory_bytes, 512 << 20);
        assert_eq!(c.sandbox.tools[0].bin.as_deref(), Some("/opt/rust/bin"));
        assert_eq!(c.stages[0].timeout, Duration::from_secs(3600));

        check_err(&ok.replace("512MiB", "1MiB"), 4, "invalid memory limit");
        check_err(
            &ok.replace("processes = 64", "processes = 0"),
            5,
            "invalid process limit",
        );
        check_err(
            &ok.replace("processes = 64", "processes = \"many\""),
            5,
            "invalid type",
        );
        check_err(
            &ok.replace("HTTP_PROXY", "1X"),
            6,
            "invalid environment variable name",
        );
        check_err(
            &ok.replace("at = \"/opt/rust\"", "at = \"/workspace\""),
            9,
            "mounted under /opt/",
        );
        check_err(
            &ok.replace("host = \"/usr/lib/rust\"", "host = \"usr\""),
            8,
            "not an absolute path",
        );
        check_err(
            &ok.replace("timeout = \"1h\"", "timeout = \"25h\""),
            3,
            "invalid timeout",
        );
    }
}

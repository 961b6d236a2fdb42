//! The command-line grammar (clap). Settings layer here, in one place: flags, then
//! environment variables, then the user's config file (`config_file.rs` turns
//! its keys into the variables that are unset), then defaults.

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "A secure software supply chain: one chain from git push to production, with evidence."
)]
pub(crate) struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// cairn's data directory (default: .cairn in the working directory).
    #[arg(long, global = true, env = "CAIRN_HOME", value_name = "DIR")]
    pub cairn_home: Option<PathBuf>,
    /// Run as root: where sandbox-visible files go (workspaces, unpacked root
    /// filesystems); must be root-owned and writable by no one else.
    #[arg(long, global = true, env = "CAIRN_SANDBOX_DIR", value_name = "DIR")]
    pub sandbox_dir: Option<PathBuf>,
    /// The organisation's platform config (chains/<name>.toml, org.toml, policy/*.rego).
    #[arg(long, global = true, env = "CAIRN_PLATFORM_DIR", value_name = "DIR")]
    pub platform_dir: Option<PathBuf>,
    /// The store: `sqlite://DIR` or `postgres://USER@HOST/DB` (unix socket or
    /// loopback). Default: the SQLite store in the data directory.
    #[arg(
        long,
        global = true,
        env = "CAIRN_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<crate::commands::DatabaseUrl>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `args` (the program's name first) as [`Parser::try_parse_from`]
    /// does, with the same result, but builds the grammar of the one
    /// subcommand the command line names: every other subcommand keeps only
    /// its name and description, its arguments left to clap's
    /// [`clap::Command::defer`] (built if clap needs them, for a
    /// suggestion or `help`). Building all of cairn's grammar was a fifth of
    /// a `cairn scan`'s instructions; [`Cli::command`] still builds all of it
    /// (completions, man pages).
    pub(crate) fn parse_lazily<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // The first word that is a subcommand's name; a guess (`--cairn-home
        // scan run` names `run`), which decides only what is built first:
        // a subcommand built later parses the same.
        let named = args
            .iter()
            .skip(1)
            .take_while(|a| *a != "--")
            .filter_map(|a| a.to_str())
            .find(|a| !a.starts_with('-') && Command::has_subcommand(a))
            .map(str::to_owned);
        Self::parse_building(args, Builds::Only(named))
    }

    /// Parses `args` with the grammar `builds` says.
    fn parse_building(args: Vec<OsString>, builds: Builds) -> Result<Cli, clap::Error> {
        BUILDS.with(|b| *b.borrow_mut() = builds);
        let parsed = Cli::try_parse_from(args);
        BUILDS.with(|b| *b.borrow_mut() = Builds::All);
        parsed
    }
}

/// Which subcommands' arguments are built with the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Builds {
    /// All of them, as the derive builds them ([`Cli::command`]).
    All,
    /// Only this one's (none: none), while [`Cli::parse_lazily`] parses.
    Only(Option<String>),
}

thread_local! {
    static BUILDS: RefCell<Builds> = const { RefCell::new(Builds::All) };
}

/// Whether the subcommand `name`'s arguments are built now (else deferred).
fn builds_now(name: &str) -> bool {
    BUILDS.with(|b| match &*b.borrow() {
        Builds::All => true,
        Builds::Only(only) => only.as_deref() == Some(name),
    })
}

/// A subcommand's arguments (`T: Args`) or subcommands (`T: Subcommand`),
/// which [`Cli::parse_lazily`] leaves out of the grammar unless the command
/// line names that subcommand: clap builds them when it needs them
/// ([`clap::Command::defer`]). Parsing gives the same `T`; the value derefs
/// to it.
#[derive(Debug)]
pub(crate) struct Deferred<T>(pub T);

impl<T> std::ops::Deref for Deferred<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }
    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

/// Runs `build` on `cmd` the way the derive's eager path would have: there,
/// the variant's description is set after `T`'s grammar, so it wins over a
/// description `T` sets (`LogArgs`' doc comment); here it is kept.
fn build_keeping_about(
    cmd: clap::Command,
    build: fn(clap::Command) -> clap::Command,
) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let cmd = build(cmd);
    let cmd = match about {
        Some(a) => cmd.about(a),
        None => cmd.about(None::<&str>),
    };
    match long_about {
        Some(a) => cmd.long_about(a),
        None => cmd.long_about(None::<&str>),
    }
}

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        if builds_now(cmd.get_name()) {
            return T::augment_args(cmd);
        }
        cmd.defer(|cmd| build_keeping_about(cmd, T::augment_args))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        if builds_now(cmd.get_name()) {
            return T::augment_args_for_update(cmd);
        }
        cmd.defer(|cmd| build_keeping_about(cmd, T::augment_args_for_update))
    }
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        if builds_now(cmd.get_name()) {
            return T::augment_subcommands(cmd);
        }
        cmd.defer(|cmd| build_keeping_about(cmd, T::augment_subcommands))
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        if builds_now(cmd.get_name()) {
            return T::augment_subcommands_for_update(cmd);
        }
        cmd.defer(|cmd| build_keeping_about(cmd, T::augment_subcommands_for_update))
    }
    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Onboard the app in this git repository: read how it builds and tests, write
    /// cairn.toml (--dry-run: print it) and keep .cairn/ out of git.
    Init(Deferred<InitArgs>),
    /// Run the chain for one exact commit (default: HEAD) of the app here.
    Run(Deferred<RunArgs>),
    /// List runs, newest first.
    Runs(Deferred<RunsArgs>),
    /// Show a run's logs, all stages or one.
    Logs(Deferred<LogsArgs>),
    /// Explain why a run failed: the stage, command, exit code, failed tests, last lines.
    Explain(Deferred<ExplainArgs>),
    /// List the signed evidence of a run or about a digest (sha256:…), or export it as Sigstore bundles.
    Evidence(Deferred<crate::commands::EvidenceArgs>),
    /// Verify a Sigstore bundle for an artifact, offline: by certificate identity or by key.
    Verify(Deferred<crate::commands::VerifyArgs>),
    /// The transparency log of production changes: show, prove, verify, bench; and a
    /// scratch log (`--scratch`) that `append` writes.
    Log(Deferred<crate::commands::LogArgs>),
    /// cairn's evidence signing key: create, show, rotate.
    #[command(subcommand)]
    Key(Deferred<crate::commands::KeyCommand>),
    /// Write an SBOM (CycloneDX 1.6 or SPDX 2.3 JSON) of a source tree or root filesystem.
    Sbom(Deferred<crate::commands::SbomArgs>),
    /// Vulnerability advisories: import OSV records into the store.
    #[command(subcommand)]
    Vulns(Deferred<crate::commands::VulnsCommand>),
    /// Match a source tree's or root filesystem's components against stored advisories.
    Scan(Deferred<crate::commands::ScanArgs>),
    /// Every stored SBOM (artifact, workload, environment) containing a package[@range].
    Where(Deferred<crate::commands::WhereArgs>),
    /// Findings on what runs in each environment: first seen, severity, fix, SLA deadline, state.
    Exposures(Deferred<crate::commands::ExposuresArgs>),
    /// Remediate open exposures: a base without the finding, rebase, retest, promote (`--plan`: only say how).
    Remediate(Deferred<crate::commands::RemediateArgs>),
    /// The catalog of validated base images: import, create, list, show.
    #[command(subcommand)]
    Base(Deferred<crate::commands::BaseCommand>),
    /// Images cairn built: list, push (with evidence) to a registry, pull.
    #[command(subcommand)]
    Image(Deferred<crate::commands::ImageCommand>),
    /// Move an image onto a newer catalog base without rebuilding it.
    Rebase(Deferred<crate::commands::RebaseArgs>),
    /// Identities (users, service accounts): add, list, revoke, whoami (acting as CAIRN_TOKEN's identity).
    #[command(subcommand)]
    Identity(Deferred<crate::commands::IdentityCommand>),
    /// Roles bound to identities, per organisation, workload or environment: grant, revoke, list.
    #[command(subcommand)]
    Role(Deferred<crate::commands::RoleCommand>),
    /// Review one exact commit: approve or request changes (signed, in the log).
    #[command(subcommand)]
    Review(Deferred<crate::commands::ReviewCommand>),
    /// Promote an image to an environment through its gate (logged, then deployed).
    Promote(Deferred<crate::commands::PromoteArgs>),
    /// Go back to an earlier digest in an environment (the gate decides again).
    Rollback(Deferred<crate::commands::RollbackArgs>),
    /// Stop what runs of a workload in an environment (logged, then stopped).
    Undeploy(Deferred<crate::commands::UndeployArgs>),
    /// What runs where, since when, deployed by whom.
    Status,
    /// The change records, each proven to be in the audit log.
    Audit(Deferred<crate::commands::AuditArgs>),
    /// The gates' Rego: run its unit tests, or evaluate a gate for an image.
    #[command(subcommand)]
    Policy(Deferred<crate::commands::PolicyCommand>),
    /// Serve the API, web UI, forge webhooks, live logs and metrics, and run queued runs.
    Up(Deferred<crate::commands::UpArgs>),
    /// Serve the API, web UI and webhooks with no workers, on a shared database
    /// (`--database`); replicas keep no state of their own.
    Serve(Deferred<crate::commands::ServeArgs>),
    /// Claim queued runs from the shared database (`--database`) and execute them.
    Worker(Deferred<crate::commands::WorkerArgs>),
    /// Onboarded workloads: add (with the forge's repository name), list.
    #[command(subcommand)]
    Workload(Deferred<crate::commands::WorkloadCommand>),
    /// Rebuild a lost or emptied store from the audit log (identities, roles,
    /// change records, deployments) and say what could not come back.
    Recover,
    /// Copy the data directory (store, log, keys, images, server secrets) into a
    /// new directory, with a manifest of digests.
    Backup(Deferred<crate::commands::BackupArgs>),
    /// Remove run workspaces and unpacked image root filesystems not in use and
    /// unused for a while (`--older-than-days`, default 7).
    Gc(Deferred<crate::commands::GcArgs>),
    /// Restore a backup made by `cairn backup` into the data directory, verified.
    Restore(Deferred<crate::commands::RestoreArgs>),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    /// (e.g. `cairn completions bash > /etc/bash_completion.d/cairn`).
    Completions(Deferred<crate::commands::CompletionsArgs>),
    /// Write the man pages (cairn.1 and one per command, from this grammar) into DIR.
    Man(Deferred<crate::commands::ManArgs>),
    /// Measure cairn against its peers on this machine.
    #[command(subcommand)]
    Bench(Deferred<BenchCommand>),
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The app's directory (default: the working directory).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The workload's name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite an existing cairn.toml.
    #[arg(long)]
    pub force: bool,
    /// Print the cairn.toml that would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The ecosystem to use when the project looks like several
    /// (cargo, npm, go, maven, python, make).
    #[arg(long)]
    pub ecosystem: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The commit to run (any git revision; default: HEAD).
    #[arg(long, default_value = "HEAD")]
    pub commit: String,
    /// The app's directory (default: the working directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Print every log line as it comes.
    #[arg(long, short)]
    pub verbose: bool,
    /// Keep the run's workspace in the data directory afterwards.
    #[arg(long)]
    pub keep_workspace: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    /// Only this workload's runs.
    #[arg(long)]
    pub workload: Option<String>,
    /// Only runs with this status (queued, running, succeeded, failed, interrupted).
    #[arg(long)]
    pub status: Option<String>,
    /// Only runs of this commit (its id or a prefix of it).
    #[arg(long)]
    pub commit: Option<String>,
    /// Only runs started this way (cli, api, webhook, push).
    #[arg(long)]
    pub trigger: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The run: its id, or `last` for the newest.
    pub run: String,
    /// Only this stage.
    pub stage: Option<String>,
    /// Keep printing new lines until the run ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Read from a `cairn up` server (its live event stream) instead of the
    /// local store; the token is CAIRN_TOKEN's.
    #[arg(long, env = "CAIRN_SERVER", value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The run (its id, or `last`), `promotion`, `change:N`, or `remediation[:WORKLOAD]`.
    pub run: String,
    /// How many of the failing stage's last log lines to show.
    #[arg(long, default_value_t = 20)]
    pub lines: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// `cairn scan` of a Cargo.lock beside `cargo audit --no-fetch` on the same RustSec data.
    Scan(crate::commands::ScanBenchArgs),
    /// `cairn where` lookups (p50/p99/max) over synthetic stored SBOMs.
    Where {
        /// Synthetic SBOMs to store.
        #[arg(long, default_value_t = 10_000)]
        sboms: usize,
        /// Components per SBOM.
        #[arg(long, default_value_t = 300)]
        components: usize,
        /// Lookups of random package names to time.
        #[arg(long, default_value_t = 1_000)]
        lookups: usize,
    },
    /// A new advisory batch through the feed → exposures listed, over synthetic stored SBOMs.
    Exposures {
        #[arg(long, default_value_t = 10_000)]
        sboms: usize,
        #[arg(long, default_value_t = 100)]
        workloads: usize,
        /// npm packages per SBOM (besides the Debian packages).
        #[arg(long, default_value_t = 150)]
        npm: usize,
        /// Debian source packages per SBOM (real names and versions).
        #[arg(long, default_value_t = 120)]
        debian: usize,
        /// Records in the batch (half Debian, half npm).
        #[arg(long, default_value_t = 40)]
        advisories: usize,
    },
    /// OS matching of a Debian root filesystem beside the Python/libapt reference matcher.
    OsMatch {
        /// The root filesystem (default: this host's os-release and dpkg database).
        #[arg(long)]
        rootfs: Option<PathBuf>,
        /// OSV.dev's Debian records (default: $CAIRN_CONFORMANCE_DIR/osv/debian-12.zip).
        #[arg(long)]
        osv: Option<PathBuf>,
        #[arg(long, default_value = "crates/cairn-cli/tests/os_reference_matcher.py")]
        reference: PathBuf,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Assemble an image with a large layer and push it to a real registry, beside sha256sum.
    Push {
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// A registry (HOST:PORT, plain HTTP on loopback); default: start Debian's docker-registry.
        #[arg(long)]
        registry: Option<String>,
    },
    /// `cairn up` under load: concurrent clients on loopback, mixed reads and signed pushes.
    Serve {
        #[arg(long, default_value_t = 200)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Reads spread over two `cairn serve` replicas on the PostgreSQL
        /// database --database names, beside `cairn up` on SQLite.
        #[arg(long)]
        replicas: bool,
    },
    /// A gate decision (default Rego set, realistic input) beside regorus alone.
    Gate {
        #[arg(long, default_value_t = 5000)]
        iterations: usize,
    },
    /// The example app's chain with its image build, cold and warm.
    Image {
        /// The app (a directory with cairn.toml).
        #[arg(long, default_value = "examples/hello-web")]
        app: PathBuf,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// A sandboxed no-op step start (p50/p99), beside bare `bwrap --ro-bind / / true`.
    Sandbox {
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// One sandboxed no-op step only: no warm-up, no peer, nothing printed
        /// but its time (what scripts/perf-guard counts instructions of).
        #[arg(long)]
        once: bool,
    },
    /// A chain of no-op stages end to end (store, git, sandbox), repeated.
    /// Runs per minute with 1, 2 and 3 `cairn worker` processes on the
    /// PostgreSQL database `--database` names (a chain of no-op stages).
    Workers {
        #[arg(long, default_value_t = 60)]
        runs: usize,
        /// No-op stages after the source stage.
        #[arg(long, default_value_t = 3)]
        stages: usize,
    },
    Chain {
        /// No-op stages after the source stage.
        #[arg(long, default_value_t = 10)]
        stages: usize,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Sigstore bundles verified per second, beside npm @sigstore/verify on the same bundle.
    Verify {
        /// A conformance case folder (bundle.sigstore.json; artifact and trusted root
        /// there or in its parent).
        #[arg(
            long,
            default_value = "../shared/conformance/sigstore-bundle-verify/happy-path-v0.3"
        )]
        case: PathBuf,
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        /// Where @sigstore/verify is installed (default: $CAIRN_INTEROP_DIR/npm/node_modules).
        #[arg(long)]
        node_modules: Option<PathBuf>,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// A parse's outcome, compared as text: the parsed command line, or
    /// clap's error (help and version are errors too) as it would be printed.
    fn outcome(parsed: Result<Cli, clap::Error>) -> String {
        match parsed {
            Ok(cli) => format!("{cli:?}"),
            Err(e) => format!("{:?} (exit {}):\n{}", e.kind(), e.exit_code(), e.render()),
        }
    }

    /// `cmd`'s subcommands at every depth, each as the words that name it.
    fn paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            paths(sub, &path, out);
        }
    }

    /// Every example command line of the roles table, every subcommand's
    /// help at every depth (short and long, and through `help`), the top
    /// level's help and version, and mistakes (unknown or misspelt words,
    /// missing and invalid values): the lazily built grammar answers each
    /// exactly as the whole grammar does, both with the subcommand the line
    /// names built first and with every subcommand deferred (what a wrong
    /// guess leaves).
    #[test]
    fn the_lazy_grammar_answers_as_the_whole_one() {
        let mut lines: Vec<Vec<String>> = crate::authz::TABLE
            .iter()
            .map(|row| row.example.iter().map(|w| (*w).to_owned()).collect())
            .collect();
        let mut all = Vec::new();
        paths(&Cli::command(), &[], &mut all);
        assert!(all.len() > 60, "{}", all.len());
        for path in &all {
            for tail in [&["--help"][..], &["-h"], &["--bogus"], &[]] {
                lines.push(
                    path.iter()
                        .cloned()
                        .chain(tail.iter().map(|w| (*w).to_owned()))
                        .collect(),
                );
            }
            lines.push(
                std::iter::once("help".to_owned())
                    .chain(path.iter().cloned())
                    .collect(),
            );
        }
        for line in [
            &[][..],
            &["--help"],
            &["-h"],
            &["--version"],
            &["-V"],
            &["help"],
            &["frobnicate"],
            &["sacn", "."],
            &["scan", "--fial-on", "high", "."],
            &["scan", ".", "--fail-on", "severe"],
            &[
                "scan", "--json", ".", "--format", "sarif", "--vex", "a", "--vex", "b",
            ],
            &["--json", "--cairn-home", "scan", "runs", "--limit", "3"],
            &["--cairn-home", "/x", "--json", "key", "rotate"],
            &["runs", "--limit", "many"],
            &["log", "--scratch"],
            &["bench", "scan", "--crates", "3"],
            &["--", "scan", "."],
        ] {
            lines.push(line.iter().map(|w| (*w).to_owned()).collect());
        }
        let mut with_usage = 0;
        for line in &lines {
            let args: Vec<OsString> = std::iter::once("cairn")
                .chain(line.iter().map(String::as_str))
                .map(OsString::from)
                .collect();
            let whole = outcome(Cli::try_parse_from(args.clone()));
            let lazy = outcome(Cli::parse_lazily(args.clone()));
            assert_eq!(lazy, whole, "cairn {}", line.join(" "));
            let none_built = outcome(Cli::parse_building(args.clone(), Builds::Only(None)));
            assert_eq!(none_built, whole, "cairn {} (all deferred)", line.join(" "));
            with_usage += usize::from(whole.contains("Usage: cairn ") && line.len() > 1);
        }
        assert!(
            with_usage > 100,
            "{with_usage} lines ended in help or usage"
        );
        assert_eq!(BUILDS.with(|b| b.borrow().clone()), Builds::All);
    }

    /// The lazy grammar leaves out what it does not need: the subcommand
    /// the line names is whole, every other one has only its name and
    /// description until clap builds it.
    #[test]
    fn the_lazy_grammar_defers_every_other_subcommand() {
        BUILDS.with(|b| *b.borrow_mut() = Builds::Only(Some("scan".to_owned())));
        let cmd = Cli::command();
        BUILDS.with(|b| *b.borrow_mut() = Builds::All);
        let args = |name: &str| {
            let sub = cmd.find_subcommand(name).unwrap();
            assert!(sub.get_about().is_some(), "{name}");
            sub.get_arguments().count() + sub.get_subcommands().count()
        };
        assert!(args("scan") >= 5);
        for other in ["run", "runs", "sbom", "key", "bench", "up", "log"] {
            assert_eq!(args(other), 0, "{other}");
        }
        let whole = Cli::command();
        assert!(
            whole
                .find_subcommand("run")
                .unwrap()
                .get_arguments()
                .count()
                >= 4
        );
        assert!(
            whole
                .find_subcommand("key")
                .unwrap()
                .get_subcommands()
                .count()
                >= 3
        );
    }
}

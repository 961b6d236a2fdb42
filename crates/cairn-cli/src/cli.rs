//! The command-line grammar (clap). Settings layer here, in one place: flags, then
//! environment variables, then the user's config file (`config_file.rs` turns
//! its keys into the variables that are unset), then defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Onboard the app in this git repository: read how it builds and tests, write
    /// cairn.toml (--dry-run: print it) and keep .cairn/ out of git.
    Init(InitArgs),
    /// Run the chain for one exact commit (default: HEAD) of the app here.
    Run(RunArgs),
    /// List runs, newest first.
    Runs(RunsArgs),
    /// Show a run's logs, all stages or one.
    Logs(LogsArgs),
    /// Explain why a run failed: the stage, command, exit code, failed tests, last lines.
    Explain(ExplainArgs),
    /// List the signed evidence of a run or about a digest (sha256:…), or export it as Sigstore bundles.
    Evidence(crate::commands::EvidenceArgs),
    /// Verify a Sigstore bundle for an artifact, offline: by certificate identity or by key.
    Verify(crate::commands::VerifyArgs),
    /// The transparency log of production changes: show, prove, verify, bench; and a
    /// scratch log (`--scratch`) that `append` writes.
    Log(crate::commands::LogArgs),
    /// cairn's evidence signing key: create, show, rotate.
    #[command(subcommand)]
    Key(crate::commands::KeyCommand),
    /// Write an SBOM (CycloneDX 1.6 or SPDX 2.3 JSON) of a source tree or root filesystem.
    Sbom(crate::commands::SbomArgs),
    /// Vulnerability advisories: import OSV records into the store.
    #[command(subcommand)]
    Vulns(crate::commands::VulnsCommand),
    /// Match a source tree's or root filesystem's components against stored advisories.
    Scan(crate::commands::ScanArgs),
    /// Every stored SBOM (artifact, workload, environment) containing a package[@range].
    Where(crate::commands::WhereArgs),
    /// Findings on what runs in each environment: first seen, severity, fix, SLA deadline, state.
    Exposures(crate::commands::ExposuresArgs),
    /// Remediate open exposures: a base without the finding, rebase, retest, promote (`--plan`: only say how).
    Remediate(crate::commands::RemediateArgs),
    /// The catalog of validated base images: import, create, list, show.
    #[command(subcommand)]
    Base(crate::commands::BaseCommand),
    /// Images cairn built: list, push (with evidence) to a registry, pull.
    #[command(subcommand)]
    Image(crate::commands::ImageCommand),
    /// Move an image onto a newer catalog base without rebuilding it.
    Rebase(crate::commands::RebaseArgs),
    /// Identities (users, service accounts): add, list, revoke, whoami (acting as CAIRN_TOKEN's identity).
    #[command(subcommand)]
    Identity(crate::commands::IdentityCommand),
    /// Roles bound to identities, per organisation, workload or environment: grant, revoke, list.
    #[command(subcommand)]
    Role(crate::commands::RoleCommand),
    /// Review one exact commit: approve or request changes (signed, in the log).
    #[command(subcommand)]
    Review(crate::commands::ReviewCommand),
    /// Promote an image to an environment through its gate (logged, then deployed).
    Promote(crate::commands::PromoteArgs),
    /// Go back to an earlier digest in an environment (the gate decides again).
    Rollback(crate::commands::RollbackArgs),
    /// Stop what runs of a workload in an environment (logged, then stopped).
    Undeploy(crate::commands::UndeployArgs),
    /// What runs where, since when, deployed by whom.
    Status,
    /// The change records, each proven to be in the audit log.
    Audit(crate::commands::AuditArgs),
    /// The gates' Rego: run its unit tests, or evaluate a gate for an image.
    #[command(subcommand)]
    Policy(crate::commands::PolicyCommand),
    /// Serve the API, web UI, forge webhooks, live logs and metrics, and run queued runs.
    Up(crate::commands::UpArgs),
    /// Serve the API, web UI and webhooks with no workers, on a shared database
    /// (`--database`); replicas keep no state of their own.
    Serve(crate::commands::ServeArgs),
    /// Claim queued runs from the shared database (`--database`) and execute them.
    Worker(crate::commands::WorkerArgs),
    /// Onboarded workloads: add (with the forge's repository name), list.
    #[command(subcommand)]
    Workload(crate::commands::WorkloadCommand),
    /// Rebuild a lost or emptied store from the audit log (identities, roles,
    /// change records, deployments) and say what could not come back.
    Recover,
    /// Copy the data directory (store, log, keys, images, server secrets) into a
    /// new directory, with a manifest of digests.
    Backup(crate::commands::BackupArgs),
    /// Remove run workspaces and unpacked image root filesystems not in use and
    /// unused for a while (`--older-than-days`, default 7).
    Gc(crate::commands::GcArgs),
    /// Restore a backup made by `cairn backup` into the data directory, verified.
    Restore(crate::commands::RestoreArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    /// (e.g. `cairn completions bash > /etc/bash_completion.d/cairn`).
    Completions(crate::commands::CompletionsArgs),
    /// Write the man pages (cairn.1 and one per command, from this grammar) into DIR.
    Man(crate::commands::ManArgs),
    /// Measure cairn against its peers on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
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

//! One module per subcommand; `dispatch` opens what each needs.

mod backup;
mod base;
mod bench;
mod completions;
mod database;
mod evidence;
mod explain;
mod exposures;
mod gc;
mod identity;
mod image;
mod init;
mod key;
mod log;
mod logs;
mod policy;
mod promote;
mod recover;
mod remediate;
mod review;
mod run;
mod runs;
mod sbom;
mod scan;
mod serve;
mod tls;
mod up;
mod verify;
mod vulns;
mod where_;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cairn_engine::DataDir;
use cairn_store::Store;

use crate::cli::{Cli, Command};
use crate::exit::Failure;

pub(crate) use backup::{BackupArgs, RestoreArgs};
pub(crate) use base::BaseCommand;
pub(crate) use cairn_bench::scan::ScanBenchArgs;
pub(crate) use completions::{CompletionsArgs, ManArgs};
pub(crate) use database::{DatabaseUrl, open_url as open_database};
pub(crate) use evidence::EvidenceArgs;
pub(crate) use exposures::ExposuresArgs;
pub(crate) use gc::GcArgs;
pub(crate) use identity::{IdentityCommand, RoleCommand};
pub(crate) use image::{ImageCommand, RebaseArgs};
pub(crate) use key::KeyCommand;
pub(crate) use log::{LogArgs, LogCommand};
pub(crate) use policy::PolicyCommand;
pub(crate) use promote::{AuditArgs, PromoteArgs, RollbackArgs, UndeployArgs};
pub(crate) use remediate::RemediateArgs;
pub(crate) use review::ReviewCommand;
pub(crate) use sbom::SbomArgs;
pub(crate) use scan::ScanArgs;
pub(crate) use serve::{ServeArgs, WorkerArgs};
pub(crate) use up::UpArgs;
pub(crate) use verify::VerifyArgs;
pub(crate) use vulns::VulnsCommand;
pub(crate) use where_::WhereArgs;
pub(crate) use workload::WorkloadCommand;

pub(crate) fn dispatch(cli: &Cli) -> Result<ExitCode, Failure> {
    database::select(cli.database.as_ref());
    // The roles model first: `authz::TABLE` says what each command needs.
    crate::authz::guard(cli)?;
    match &cli.command {
        Command::Init(args) => init::init(cli, args),
        Command::Run(args) => run::run(cli, args),
        Command::Runs(args) => runs::runs(cli, args),
        Command::Logs(args) => logs::logs(cli, args),
        Command::Explain(args) => explain::explain(cli, args),
        Command::Key(cmd) => key::key(cli, cmd),
        Command::Evidence(args) => evidence::evidence(cli, args),
        Command::Verify(args) => verify::verify(cli, args),
        Command::Bench(cmd) => bench::bench(cli, cmd),
        Command::Log(args) => log::log(cli, args),
        Command::Sbom(args) => sbom::sbom(cli, args),
        Command::Vulns(cmd) => vulns::vulns(cli, cmd),
        Command::Scan(args) => scan::scan(cli, args),
        Command::Where(args) => where_::where_(cli, args),
        Command::Exposures(args) => exposures::exposures(cli, args),
        Command::Remediate(args) => remediate::remediate(cli, args),
        Command::Base(cmd) => base::base(cli, cmd),
        Command::Image(cmd) => image::image(cli, cmd),
        Command::Rebase(args) => image::rebase(cli, args),
        Command::Identity(cmd) => identity::identity(cli, cmd),
        Command::Role(cmd) => identity::role(cli, cmd),
        Command::Review(cmd) => review::review(cli, cmd),
        Command::Promote(args) => promote::promote(cli, args),
        Command::Rollback(args) => promote::rollback(cli, args),
        Command::Undeploy(args) => promote::undeploy(cli, args),
        Command::Status => promote::status(cli),
        Command::Audit(args) => promote::audit(cli, args),
        Command::Policy(cmd) => policy::policy(cli, cmd),
        Command::Up(args) => up::up(cli, args),
        Command::Serve(args) => serve::serve_cmd(cli, args),
        Command::Worker(args) => serve::worker_cmd(cli, args),
        Command::Workload(cmd) => workload::workload(cli, cmd),
        Command::Recover => recover::recover(cli),
        Command::Backup(args) => backup::backup(cli, args),
        Command::Gc(args) => gc::gc(cli, args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::Restore(args) => backup::restore(cli, args),
    }
}

pub(crate) fn data_dir(cli: &Cli) -> Result<DataDir, Failure> {
    let cwd: PathBuf = std::env::current_dir().context("cannot read the working directory")?;
    let mut data = DataDir::resolve(cli.cairn_home.as_deref(), &cwd);
    if let Some(dir) = cli
        .sandbox_dir
        .as_deref()
        .filter(|d| !d.as_os_str().is_empty())
    {
        data = data.with_sandbox_dir(dir)?;
    }
    // Every command that reads or writes state (the store, the signing key, the
    // log) refuses a data directory that `git add -A` would commit.
    data.check_not_committable()?;
    Ok(data)
}

/// Opens the store checked against the audit log (`cairn_engine::pairing`: a
/// missing or empty store beside a non-empty log is refused), says which log
/// entries lack their effect in the store, and marks runs whose process died as
/// interrupted.
pub(crate) fn open_store(data: &DataDir) -> Result<Arc<dyn Store>, Failure> {
    if let Some(url) = database::selected() {
        let (store, pairing) = database::open_paired(data, database::open_url(url)?)?;
        report_pairing(&pairing);
        return recover_dead_runs(store);
    }
    let (store, pairing) = cairn_engine::pairing::open_store(data).map_err(|e| {
        let failure = Failure::from(e);
        Failure {
            code: failure.code,
            error: failure.error.context(format!(
                "cannot open cairn's store in {}",
                data.root().display()
            )),
        }
    })?;
    report_pairing(&pairing);
    report_disk_full(&store);
    recover_dead_runs(Arc::new(store))
}

/// Says on stderr when the store's disk is (almost) full.
fn report_disk_full(store: &cairn_store::SqliteStore) {
    if let Some(dir) = store.read_only_because_full() {
        eprintln!(
            "cairn: disk full at {}: the store is open read-only; commands that write will fail until space is freed",
            dir.display()
        );
    } else if let Some(dir) = store.disk_full() {
        eprintln!(
            "cairn: disk full at {}: less than 1 MiB free; commands that write will fail until space is freed",
            dir.display()
        );
    }
}

/// Opens the store for a command that only reads (`cairn scan`): checked
/// against the audit log as [`open_store`] does, but through one connection
/// that SQLite keeps from writing (`cairn_engine::pairing::open_store_reading`),
/// and without marking dead runs interrupted (the next command that writes
/// does). A store that must be created, migrated or re-paired first is opened
/// as [`open_store`] opens it. On PostgreSQL: [`open_store`].
pub(crate) fn open_store_reading(data: &DataDir) -> Result<Arc<dyn Store>, Failure> {
    if database::selected().is_some() {
        return open_store(data);
    }
    let (store, pairing) = cairn_engine::pairing::open_store_reading(data).map_err(|e| {
        let failure = Failure::from(e);
        Failure {
            code: failure.code,
            error: failure.error.context(format!(
                "cannot open cairn's store in {}",
                data.root().display()
            )),
        }
    })?;
    report_pairing(&pairing);
    report_disk_full(&store);
    Ok(Arc::new(store))
}

/// Marks runs whose process died (on this host) as interrupted, saying so.
pub(crate) fn recover_dead_runs(store: Arc<dyn Store>) -> Result<Arc<dyn Store>, Failure> {
    let recovered = match cairn_engine::recovery::recover_interrupted(&*store) {
        Err(cairn_engine::EngineError::Store(e)) if e.is_disk_full() => {
            eprintln!(
                "cairn: {e}; runs left by dead processes are marked interrupted once space is freed"
            );
            Vec::new()
        }
        other => other?,
    };
    for id in recovered {
        eprintln!("cairn: run {id} was left running by a process that died; marked interrupted");
    }
    Ok(store)
}

/// Says on stderr what the pairing check found beside a store it opened.
pub(crate) fn report_pairing(pairing: &cairn_engine::pairing::Pairing) {
    if pairing.adopted {
        eprintln!(
            "cairn: the store predates its pairing with the audit log; it now records the log's {} entries as seen",
            pairing.log_size
        );
    }
    if pairing.unexplained.is_empty() {
        return;
    }
    eprintln!(
        "cairn: {} audit log {} without {} effect in the store (`cairn recover` records them):",
        pairing.unexplained.len(),
        if pairing.unexplained.len() == 1 {
            "entry is"
        } else {
            "entries are"
        },
        if pairing.unexplained.len() == 1 {
            "its"
        } else {
            "their"
        }
    );
    for u in pairing.unexplained.iter().take(20) {
        eprintln!(
            "  entry {}: {} — {}",
            u.entry.index, u.entry.summary, u.lacks
        );
    }
    if pairing.unexplained.len() > 20 {
        eprintln!("  … and {} more", pairing.unexplained.len() - 20);
    }
}

/// A run named on the command line: its id, or `last` for the newest run.
pub(crate) fn resolve_run(store: &dyn Store, text: &str) -> Result<cairn_model::RunId, Failure> {
    if text == "last" {
        let newest = store.runs(&cairn_store::RunFilter {
            workload: None,
            status: None,
            limit: 1,
            ..Default::default()
        })?;
        return newest
            .first()
            .map(|r| r.id)
            .ok_or_else(|| Failure::user(anyhow::anyhow!("there are no runs yet")));
    }
    let id: i64 = text.parse().map_err(|_| {
        Failure::user(anyhow::anyhow!(
            "`{text}` is not a run id (a number, or `last`)"
        ))
    })?;
    let id = cairn_model::RunId(id);
    match store.run(id)? {
        Some(_) => Ok(id),
        None => Err(Failure::user(anyhow::anyhow!(
            "run {id} not found; `cairn runs` lists runs"
        ))),
    }
}

//! THE table of CLI commands × the roles model (as `cairn-server`'s
//! `routes.rs` is for routes): what each command may change and which action
//! of `cairn_policy` it needs. [`guard`] applies it before any command runs, so
//! once an organisation has identities no state-changing command works without
//! a token; the tests run every row's example without one and check it is
//! refused, and check that every command clap knows has a row.

use cairn_policy::{Action, Scope};

use crate::cli::{BenchCommand, Cli, Command, Deferred};
use crate::commands::{
    BaseCommand, IdentityCommand, ImageCommand, KeyCommand, LogCommand, ReviewCommand, RoleCommand,
    WorkloadCommand,
};
use crate::exit::Failure;

/// What a command needs from the roles model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// It changes nothing of cairn's: it reads, or writes only what the user
    /// named (a file, the app's own `cairn.toml`) or a scratch directory.
    Nothing,
    /// An organisation-wide change: authorised here, before the command runs.
    Organisation(Action),
    /// A change whose scope the command learns as it goes (a run's workload, a
    /// promotion's environment): the actor is authenticated here, and the
    /// command (or the engine) authorises `Action` at that scope.
    Scoped(Action),
}

/// One row: a command (`"base import"`; a flag that makes it change state is
/// part of the name), what it needs, and arguments that reach its guard (for
/// the tests).
pub(crate) struct Row {
    pub command: &'static str,
    pub needs: Needs,
    /// Read by the tests only (as `routes.rs`'s examples are).
    #[cfg_attr(not(test), allow(dead_code))]
    pub example: &'static [&'static str],
}

const fn row(command: &'static str, needs: Needs, example: &'static [&'static str]) -> Row {
    Row {
        command,
        needs,
        example,
    }
}

use Needs::{Nothing, Organisation as Org, Scoped};

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Every command.
pub(crate) const TABLE: &[Row] = &[
    // The app's own cairn.toml, not cairn's state.
    row("init", Nothing, &["init"]),
    row("run", Scoped(Action::Run), &["run"]),
    row("runs", Nothing, &["runs"]),
    row("logs", Nothing, &["logs", "1"]),
    row("explain", Nothing, &["explain", "1"]),
    row("evidence", Nothing, &["evidence", "1"]),
    row("verify", Nothing, &["verify", "--bundle", "b.json", "x"]),
    // An entry in the audit log, signed with the log's key.
    row(
        "log append",
        Org(Action::ManageKeys),
        &["log", "--scratch", "append", "x"],
    ),
    row("log show", Nothing, &["log", "show"]),
    row("log prove", Nothing, &["log", "prove", "inclusion", "0"]),
    row("log verify", Nothing, &["log", "verify"]),
    row("log checkpoint", Nothing, &["log", "checkpoint"]),
    // A scratch log in a temporary directory.
    row("log bench", Nothing, &["log", "bench"]),
    row("key create", Org(Action::ManageKeys), &["key", "create"]),
    row("key show", Nothing, &["key", "show"]),
    row("key rotate", Org(Action::ManageKeys), &["key", "rotate"]),
    row(
        "key hsm",
        Org(Action::ManageKeys),
        &[
            "key",
            "hsm",
            "--module",
            "/m.so",
            "--token",
            "t",
            "--key-label",
            "k",
            "--pin-env",
            "P",
        ],
    ),
    row(
        "key log-hsm",
        Org(Action::ManageKeys),
        &[
            "key",
            "log-hsm",
            "--module",
            "/m.so",
            "--token",
            "t",
            "--key-label",
            "k",
            "--pin-env",
            "P",
        ],
    ),
    row("sbom", Nothing, &["sbom", "."]),
    row(
        "sbom --record",
        Org(Action::ImportData),
        &["sbom", ".", "--record"],
    ),
    row(
        "vulns import",
        Org(Action::ImportData),
        &["vulns", "import", "."],
    ),
    // Imports what the organisation's advisory sources hold now.
    row("vulns sync", Org(Action::ImportData), &["vulns", "sync"]),
    row("scan", Nothing, &["scan", "."]),
    row("where", Nothing, &["where", "x"]),
    row("exposures", Nothing, &["exposures"]),
    row("remediate", Nothing, &["remediate"]),
    row(
        "remediate --plan",
        Nothing,
        &["remediate", "--all", "--plan"],
    ),
    // Runs the workload's chain again (the command authorises `run` at each
    // workload); promotions only where org.toml's auto_promote says so.
    row(
        "remediate --all",
        Scoped(Action::Run),
        &["remediate", "--all"],
    ),
    // A signed acceptance of exposures: authorised by the engine as `override`
    // at the exposure's workload and environment.
    row(
        "exposures accept",
        Scoped(Action::Override),
        &[
            "exposures",
            "accept",
            DIGEST,
            "--env",
            "production",
            "--vex",
            "v.json",
            "--for",
            "1d",
        ],
    ),
    row(
        "base import",
        Org(Action::ChangeCatalog),
        &["base", "import", "./root", "--name", "tiny"],
    ),
    row(
        "base create",
        Org(Action::ChangeCatalog),
        &["base", "create", "tiny", "--name", "tiny"],
    ),
    row(
        "base refresh",
        Org(Action::ChangeCatalog),
        &["base", "refresh", "tiny"],
    ),
    row("base list", Nothing, &["base", "list"]),
    row("base show", Nothing, &["base", "show", "tiny"]),
    row("image list", Nothing, &["image", "list"]),
    // Publishes the image and its evidence: authorised at the image's workload.
    row(
        "image push",
        Scoped(Action::Run),
        &["image", "push", DIGEST, "127.0.0.1:5000/app:1"],
    ),
    // Writes the pulled image into the data directory's layout.
    row(
        "image pull",
        Org(Action::ImportData),
        &[
            "image",
            "pull",
            "127.0.0.1:5000/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ],
    ),
    row(
        "rebase",
        Scoped(Action::Run),
        &["rebase", DIGEST, "--onto", "tiny"],
    ),
    // Without any identity this is the bootstrap (the engine allows exactly one).
    row(
        "identity add",
        Org(Action::ManageIdentities),
        &["identity", "add", "eve"],
    ),
    row("identity list", Nothing, &["identity", "list"]),
    row(
        "identity revoke",
        Org(Action::ManageIdentities),
        &["identity", "revoke", "eve"],
    ),
    row("identity whoami", Nothing, &["identity", "whoami"]),
    row(
        "identity add-key",
        Org(Action::ManageIdentities),
        &["identity", "add-key", "eve", "eve.pub"],
    ),
    row(
        "identity link",
        Org(Action::ManageIdentities),
        &[
            "identity", "link", "eve", "--forge", "github", "--login", "eve",
        ],
    ),
    row(
        "role grant",
        Org(Action::ManageIdentities),
        &["role", "grant", "eve", "viewer"],
    ),
    row(
        "role revoke",
        Org(Action::ManageIdentities),
        &["role", "revoke", "eve", "viewer"],
    ),
    row("role list", Nothing, &["role", "list"]),
    row(
        "review approve",
        Scoped(Action::Approve),
        &["review", "approve"],
    ),
    row(
        "review request-changes",
        Scoped(Action::Approve),
        &["review", "request-changes"],
    ),
    row(
        "promote",
        Scoped(Action::Promote),
        &["promote", "app", DIGEST, "--to", "staging"],
    ),
    row(
        "rollback",
        Scoped(Action::Rollback),
        &["rollback", "app", "--env", "staging"],
    ),
    // Stops a deployment: authorised as a promotion to the environment is.
    row(
        "undeploy",
        Scoped(Action::Promote),
        &["undeploy", "app", "--env", "staging"],
    ),
    row("status", Nothing, &["status"]),
    row("audit", Nothing, &["audit"]),
    row("policy test", Nothing, &["policy", "test"]),
    row(
        "policy eval",
        Nothing,
        &["policy", "eval", "app", DIGEST, "--to", "staging"],
    ),
    // Starts the server, whose every route goes through the roles model.
    row("up", Nothing, &["up", "--help"]),
    // The same server without workers, and workers without a server: the
    // authority is the database and data directory the process can open.
    row("serve", Nothing, &["serve", "--help"]),
    row("worker", Nothing, &["worker", "--help"]),
    row(
        "workload add",
        Org(Action::ChangeChain),
        &["workload", "add"],
    ),
    row("workload list", Nothing, &["workload", "list"]),
    // The data directory as a whole: the store rebuilt from the log, or copied
    // with the signing keys (a backup holds them), or replaced by a copy.
    row("recover", Org(Action::ManageKeys), &["recover"]),
    row("backup", Org(Action::ManageKeys), &["backup", "/tmp/b"]),
    // Removes cached workspaces and root filesystems of this installation.
    row("gc", Org(Action::ManageKeys), &["gc"]),
    row("restore", Org(Action::ManageKeys), &["restore", "/tmp/b"]),
    // Read nothing, change nothing: text generated from the grammar.
    row("completions", Nothing, &["completions", "bash"]),
    row("man", Nothing, &["man", "/tmp/man"]),
    // Benchmarks work in scratch directories.
    row("bench", Nothing, &["bench", "--help"]),
];

/// The table's name of a parsed command (every variant is named: the compiler
/// sees to that).
pub(crate) fn name(command: &Command) -> &'static str {
    match command {
        Command::Init(_) => "init",
        Command::Run(_) => "run",
        Command::Runs(_) => "runs",
        Command::Logs(_) => "logs",
        Command::Explain(_) => "explain",
        Command::Evidence(_) => "evidence",
        Command::Verify(_) => "verify",
        Command::Log(args) => match &args.cmd {
            LogCommand::Append { .. } => "log append",
            LogCommand::Show { .. } => "log show",
            LogCommand::Prove { .. } => "log prove",
            LogCommand::Verify { .. } => "log verify",
            LogCommand::Checkpoint { .. } => "log checkpoint",
            LogCommand::Bench { .. } => "log bench",
        },
        Command::Key(cmd) => match &cmd.0 {
            KeyCommand::Create { .. } => "key create",
            KeyCommand::Show => "key show",
            KeyCommand::Rotate { .. } => "key rotate",
            KeyCommand::Hsm { .. } => "key hsm",
            KeyCommand::LogHsm { .. } => "key log-hsm",
        },
        Command::Sbom(args) if args.record => "sbom --record",
        Command::Sbom(_) => "sbom",
        Command::Vulns(Deferred(crate::commands::VulnsCommand::Import { .. })) => "vulns import",
        Command::Vulns(Deferred(crate::commands::VulnsCommand::Sync)) => "vulns sync",
        Command::Scan(_) => "scan",
        Command::Where(_) => "where",
        Command::Exposures(args) if args.action.is_some() => "exposures accept",
        Command::Exposures(_) => "exposures",
        Command::Remediate(a) if a.plan => "remediate --plan",
        Command::Remediate(a) if a.all || a.exposure.is_some() => "remediate --all",
        Command::Remediate(_) => "remediate",
        Command::Base(cmd) => match &cmd.0 {
            BaseCommand::Import { .. } => "base import",
            BaseCommand::Create { .. } => "base create",
            BaseCommand::Refresh { .. } => "base refresh",
            BaseCommand::List => "base list",
            BaseCommand::Show { .. } => "base show",
        },
        Command::Image(cmd) => match &cmd.0 {
            ImageCommand::List { .. } => "image list",
            ImageCommand::Push { .. } => "image push",
            ImageCommand::Pull { .. } => "image pull",
        },
        Command::Rebase(_) => "rebase",
        Command::Identity(cmd) => match &cmd.0 {
            IdentityCommand::Add { .. } => "identity add",
            IdentityCommand::List => "identity list",
            IdentityCommand::Revoke { .. } => "identity revoke",
            IdentityCommand::Whoami => "identity whoami",
            IdentityCommand::Link { .. } => "identity link",
            IdentityCommand::AddKey { .. } => "identity add-key",
        },
        Command::Role(cmd) => match &cmd.0 {
            RoleCommand::Grant(_) => "role grant",
            RoleCommand::Revoke(_) => "role revoke",
            RoleCommand::List => "role list",
        },
        Command::Review(cmd) => match &cmd.0 {
            ReviewCommand::Approve(_) => "review approve",
            ReviewCommand::RequestChanges(_) => "review request-changes",
        },
        Command::Promote(_) => "promote",
        Command::Rollback(_) => "rollback",
        Command::Undeploy(_) => "undeploy",
        Command::Status => "status",
        Command::Audit(_) => "audit",
        Command::Policy(cmd) => match &cmd.0 {
            crate::commands::PolicyCommand::Test => "policy test",
            crate::commands::PolicyCommand::Eval { .. } => "policy eval",
        },
        Command::Up(_) => "up",
        Command::Serve(_) => "serve",
        Command::Worker(_) => "worker",
        Command::Recover => "recover",
        Command::Backup(_) => "backup",
        Command::Gc(_) => "gc",
        Command::Completions(_) => "completions",
        Command::Man(_) => "man",
        Command::Restore(_) => "restore",
        Command::Workload(cmd) => match &cmd.0 {
            WorkloadCommand::Add { .. } => "workload add",
            WorkloadCommand::List => "workload list",
        },
        Command::Bench(Deferred(BenchCommand::Scan(_)))
        | Command::Bench(Deferred(BenchCommand::Where { .. }))
        | Command::Bench(Deferred(BenchCommand::Exposures { .. }))
        | Command::Bench(Deferred(BenchCommand::OsMatch { .. }))
        | Command::Bench(Deferred(BenchCommand::Push { .. }))
        | Command::Bench(Deferred(BenchCommand::Serve { .. }))
        | Command::Bench(Deferred(BenchCommand::Gate { .. }))
        | Command::Bench(Deferred(BenchCommand::Image { .. }))
        | Command::Bench(Deferred(BenchCommand::Sandbox { .. }))
        | Command::Bench(Deferred(BenchCommand::Chain { .. }))
        | Command::Bench(Deferred(BenchCommand::Workers { .. }))
        | Command::Bench(Deferred(BenchCommand::Verify { .. })) => "bench",
    }
}

/// What `command` needs; a command missing from the table needs a platform-admin
/// (fail closed; the tests keep the table complete).
pub(crate) fn needs(command: &Command) -> Needs {
    let name = name(command);
    TABLE
        .iter()
        .find(|row| row.command == name)
        .map_or(Needs::Organisation(Action::ChangeChain), |row| row.needs)
}

/// Applies the table before `cli`'s command runs: once the organisation has
/// identities, a state-changing command needs `CAIRN_TOKEN`'s identity, and an
/// organisation-wide one a role that grants its action.
pub(crate) fn guard(cli: &Cli) -> Result<(), Failure> {
    let (action, scope) = match needs(&cli.command) {
        Needs::Nothing => return Ok(()),
        Needs::Organisation(action) => (action, Some(Scope::organisation())),
        Needs::Scoped(action) => (action, None),
    };
    // A shared database (`--database`) holds the identities, whatever the data
    // directory holds: it is always asked.
    if let Some(url) = &cli.database {
        let store = crate::commands::open_database(url)?;
        cairn_engine::access::cli_actor(&*store, action, scope.as_ref())?;
        return Ok(());
    }
    let data = crate::commands::data_dir(cli)?;
    if !data.root().exists() {
        // No data directory, so no identities yet.
        return Ok(());
    }
    // A store lost beside its log holds no identities to check, and opening it
    // here would create an empty one over what `cairn recover` must see: the
    // command's own (checked) open refuses it, or recovers or restores it.
    if let Err(cairn_engine::EngineError::StoreLost { .. }) =
        cairn_engine::pairing::refuse_missing_store(&data)
    {
        return Ok(());
    }
    let store = cairn_store::SqliteStore::open(data.root()).map_err(|e| {
        Failure::from(anyhow::Error::new(e).context(format!(
            "cannot open cairn's store in {}",
            data.root().display()
        )))
    })?;
    cairn_engine::access::cli_actor(&store, action, scope.as_ref())?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn leaves(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        let mut any = false;
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            any = true;
            let name = if prefix.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{prefix} {}", sub.get_name())
            };
            // `log prove` and `bench` are one row each, whatever follows.
            if name == "log prove" || name == "bench" {
                out.push(name);
                continue;
            }
            leaves(sub, &name, out);
        }
        if !any {
            out.push(prefix.to_owned());
        }
    }

    #[test]
    fn every_command_clap_knows_has_a_row() {
        let mut all = Vec::new();
        leaves(&Cli::command(), "", &mut all);
        assert!(all.len() > 30, "{all:?}");
        for command in &all {
            assert!(
                TABLE.iter().any(|row| row.command == *command),
                "`cairn {command}` has no row in authz::TABLE"
            );
        }
        for row in TABLE {
            let cli =
                Cli::try_parse_from(std::iter::once("cairn").chain(row.example.iter().copied()));
            match cli {
                Ok(cli) => assert_eq!(name(&cli.command), row.command, "{:?}", row.example),
                // `--help` examples (up, bench) end in clap's help.
                Err(e) => assert!(
                    row.needs == Needs::Nothing && !e.use_stderr(),
                    "{}: {e}",
                    row.command
                ),
            }
        }
    }

    fn parse(data: &std::path::Path, example: &[&str]) -> Option<Cli> {
        let home = data.to_str().unwrap();
        let args = ["cairn", "--cairn-home", home]
            .into_iter()
            .chain(example.iter().copied());
        Cli::try_parse_from(args).ok()
    }

    /// The table drives the refusal: once an identity exists, every row that
    /// changes state is refused without a token (exit 1, saying what to do),
    /// and the rows that do not are let through.
    #[test]
    fn with_identities_every_state_changing_command_needs_a_token() {
        assert!(
            std::env::var_os("CAIRN_TOKEN").is_none(),
            "run the tests without CAIRN_TOKEN"
        );
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("fresh");
        let data = cairn_engine::DataDir::at(tmp.path().join("data"));
        std::fs::create_dir_all(data.root()).unwrap();
        let store = cairn_store::SqliteStore::open(data.root()).unwrap();
        cairn_engine::access::create_identity(
            &store,
            &data,
            None,
            "admin",
            cairn_model::IdentityKind::User,
            1,
        )
        .unwrap();
        let mut refused = 0;
        for row in TABLE {
            let Some(cli) = parse(data.root(), row.example) else {
                continue; // `--help` rows: clap answers before any guard
            };
            match (row.needs, guard(&cli)) {
                (Needs::Nothing, result) => assert!(result.is_ok(), "{}", row.command),
                (_, Ok(())) => panic!("`cairn {}` ran without a token", row.command),
                (_, Err(failure)) => {
                    let text = failure.error.to_string();
                    println!("cairn {}: exit {}: {text}", row.command, failure.code);
                    assert_eq!(failure.code, crate::exit::USER, "{}", row.command);
                    assert!(text.contains("CAIRN_TOKEN"), "{}: {text}", row.command);
                    refused += 1;
                }
            }
            // Before the first identity there is nobody to ask for.
            let cli = parse(&fresh, row.example).unwrap();
            assert!(guard(&cli).is_ok(), "{} on a fresh install", row.command);
        }
        assert!(refused >= 20, "{refused} rows refused");
    }

    #[test]
    fn organisation_rows_name_organisation_actions() {
        for row in TABLE {
            if let Needs::Organisation(action) = row.needs {
                assert_eq!(
                    action.reach(),
                    cairn_policy::Reach::Organisation,
                    "{}",
                    row.command
                );
            }
        }
    }
}

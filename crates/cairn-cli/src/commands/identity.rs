//! `cairn identity` and `cairn role`: who may use cairn, and what each may do
//! (see `cairn_engine::access`).
//!
//! Every command acts as the identity whose token is in the environment variable
//! `CAIRN_TOKEN`, and is authorised by cairn-policy's one function:
//! `manage-identities` (organisation-wide `platform-admin`) to add or revoke
//! identities and to grant or revoke roles, `view` at the organisation to list
//! them. `whoami` only needs a valid token (it shows the actor's own bindings).
//!
//! The one exception is the bootstrap: while cairn has no identity at all,
//! `cairn identity add NAME` without `CAIRN_TOKEN` creates the first identity and
//! binds it `platform-admin` organisation-wide.
//!
//! A new identity's token is printed once, on stdout, and never again: cairn
//! keeps only its SHA-256. No other command prints a token or its hash.
//!
//! Every change (identity added or revoked, role granted or revoked) is first
//! recorded in the audit log as an `access-change` entry (`cairn log show N`);
//! when it cannot be, nothing changes and the error says so.

use std::process::ExitCode;

use cairn_engine::EngineError;
use cairn_engine::access::{self, NewIdentity, TOKEN_ENV};
use cairn_model::time::rfc3339_utc;
use cairn_model::{IdentityKind, IdentityRecord, RoleBinding};
use cairn_policy::Identity;
use cairn_store::Store;
use serde_json::{Value, json};

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum IdentityCommand {
    /// Add a user (or a service account) and print its token once. The first
    /// identity needs no CAIRN_TOKEN and becomes an organisation-wide platform-admin.
    Add {
        /// The identity's name (letters, digits, '.', '_', '-', '@'; at most 64).
        name: String,
        /// A service account (for automation) instead of a person; it may never
        /// approve or override.
        #[arg(long)]
        service_account: bool,
        /// The token stops working after this many days (default: until revoked).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in: Option<u32>,
    },
    /// List identities (never their tokens).
    List,
    /// Revoke an identity: its token stops working at once.
    Revoke { name: String },
    /// Show the identity CAIRN_TOKEN belongs to, and its roles.
    Whoami,
    /// Link a forge login to an identity: its pull-request approvals (webhooks
    /// to `cairn up`) become signed reviews by the identity.
    Link {
        /// The identity's name.
        name: String,
        /// github, gitlab or gitea.
        #[arg(long)]
        forge: String,
        /// The login on that forge.
        #[arg(long)]
        login: String,
    },
    /// Register an SSH commit-signing key for an identity: commits whose
    /// signature verifies with it are bound to the identity (it may not approve
    /// them), and org.toml's `[review] require_signed_commits` accepts them.
    AddKey {
        /// The identity's name.
        name: String,
        /// The public key file (`ssh-keygen`'s `.pub`), at most 16 KiB.
        public_key: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum RoleCommand {
    /// Bind a role to an identity: organisation-wide, for a workload, or for a
    /// workload in one environment.
    Grant(RoleArgs),
    /// Remove a binding (the same identity, role and scope as granted).
    Revoke(RoleArgs),
    /// List every binding.
    List,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    /// The identity's name.
    pub identity: String,
    /// viewer, developer, maintainer, release-manager or platform-admin.
    pub role: String,
    /// Only for this workload (default: organisation-wide).
    #[arg(long)]
    pub workload: Option<String>,
    /// Only in this environment of the workload (needs --workload).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
}

pub(super) fn identity(cli: &Cli, cmd: &IdentityCommand) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let store: &dyn Store = &*store;
    match cmd {
        IdentityCommand::Add {
            name,
            service_account,
            expires_in,
        } => {
            let kind = if *service_account {
                IdentityKind::ServiceAccount
            } else {
                IdentityKind::User
            };
            // Without CAIRN_TOKEN this can only be the bootstrap; the engine
            // refuses it once any identity exists.
            let unset = std::env::var_os(TOKEN_ENV)
                .is_none_or(|v| v.to_str().is_some_and(|t| t.trim().is_empty()));
            let actor = if unset {
                None
            } else {
                Some(access::actor_from_env(store)?)
            };
            let now = cairn_engine::now_ms();
            let expires = expires_in.map(|days| now + i64::from(days) * 86_400_000);
            let created = logged(access::create_expiring_identity(
                store,
                &data,
                actor.as_ref(),
                name,
                kind,
                now,
                expires,
            ))?;
            print_created(cli, &created);
        }
        IdentityCommand::List => {
            let actor = access::actor_from_env(store)?;
            let identities = access::list_identities(store, &actor)?;
            if cli.json {
                print_json(&Value::Array(
                    identities.iter().map(identity_json).collect(),
                ));
            } else if identities.is_empty() {
                println!("no identities");
            } else {
                for i in &identities {
                    println!(
                        "{:<24} {:<16} created {}  {}",
                        i.name,
                        i.kind.as_str(),
                        rfc3339_utc(i.created_at_ms),
                        match (i.revoked_at_ms, i.expires_at_ms) {
                            (Some(at), _) => format!("revoked {}", rfc3339_utc(at)),
                            (None, Some(at)) if at <= cairn_engine::now_ms() =>
                                format!("expired {}", rfc3339_utc(at)),
                            (None, Some(at)) => format!("active until {}", rfc3339_utc(at)),
                            (None, None) => "active".to_owned(),
                        }
                    );
                }
            }
        }
        IdentityCommand::Revoke { name } => {
            let actor = access::actor_from_env(store)?;
            let revoked = logged(access::revoke_identity(
                store,
                &data,
                &actor,
                name,
                cairn_engine::now_ms(),
            ))?;
            if cli.json {
                print_json(&json!({"name": name, "revoked": revoked}));
            } else if revoked {
                println!("revoked {name}: its token no longer authenticates");
            } else {
                println!("{name} was already revoked");
            }
        }
        IdentityCommand::Whoami => {
            let actor = access::actor_from_env(store)?;
            let own: Vec<RoleBinding> = store
                .bindings()?
                .into_iter()
                .filter(|b| b.identity == actor.name)
                .collect();
            if cli.json {
                print_json(&json!({
                    "name": actor.name,
                    "kind": kind_name(&actor),
                    "roles": own.iter().map(binding_json).collect::<Vec<_>>(),
                }));
            } else {
                println!("{} ({})", actor.name, kind_name(&actor));
                if own.is_empty() {
                    println!("no roles");
                }
                for b in &own {
                    println!("{} {}", b.role, scope_text(b));
                }
            }
        }
        IdentityCommand::Link { name, forge, login } => {
            let actor = access::actor_from_env(store)?;
            access::link_forge_account(store, &data, &actor, forge, login, name)?;
            if cli.json {
                print_json(&json!({"identity": name, "forge": forge, "login": login}));
            } else {
                println!(
                    "{forge} login {login} is now {name}: its approvals count as {name}'s reviews"
                );
            }
        }
        IdentityCommand::AddKey { name, public_key } => {
            let actor = access::actor_from_env(store)?;
            let text = read_public_key(public_key)?;
            let fingerprint = access::add_signing_key(store, &data, &actor, name, text.trim())?;
            if cli.json {
                print_json(&json!({"identity": name, "fingerprint": fingerprint}));
            } else {
                println!("commits signed by {fingerprint} are now bound to {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A public key file: a regular file (no symlink followed), at most 16 KiB.
fn read_public_key(path: &std::path::Path) -> Result<String, Failure> {
    use std::io::Read;
    let bad = |why: String| Failure::user(anyhow::anyhow!("{}: {why}", path.display()));
    let meta = std::fs::symlink_metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(bad("it is not a regular file".to_owned()));
    }
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open it: {e}")))?;
    let mut text = String::new();
    file.take(16 * 1024 + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("it is not a text file: {e}")))?;
    if text.len() > 16 * 1024 {
        return Err(bad("it is larger than 16 KiB".to_owned()));
    }
    Ok(text)
}

pub(super) fn role(cli: &Cli, cmd: &RoleCommand) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let store: &dyn Store = &*store;
    let actor = access::actor_from_env(store)?;
    match cmd {
        RoleCommand::Grant(args) => {
            let binding = binding_of(args)?;
            logged(access::grant_role(store, &data, &actor, &binding))?;
            if cli.json {
                print_json(&json!({"granted": binding_json(&binding)}));
            } else {
                println!(
                    "granted {} to {} {}",
                    binding.role,
                    binding.identity,
                    scope_text(&binding)
                );
            }
        }
        RoleCommand::Revoke(args) => {
            let binding = binding_of(args)?;
            let removed = logged(access::revoke_role(store, &data, &actor, &binding))?;
            if cli.json {
                print_json(&json!({"revoked": binding_json(&binding), "existed": removed}));
            } else if removed {
                println!(
                    "revoked {} from {} {}",
                    binding.role,
                    binding.identity,
                    scope_text(&binding)
                );
            } else {
                println!(
                    "{} had no {} binding {}; nothing changed (`cairn role list` shows bindings)",
                    binding.identity,
                    binding.role,
                    scope_text(&binding)
                );
            }
        }
        RoleCommand::List => {
            let bindings = access::list_bindings(store, &actor)?;
            if cli.json {
                print_json(&Value::Array(bindings.iter().map(binding_json).collect()));
            } else if bindings.is_empty() {
                println!("no role bindings");
            } else {
                for b in &bindings {
                    println!("{:<24} {:<16} {}", b.identity, b.role, scope_text(b));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An engine result whose failure to record the change in the audit log says
/// that nothing was changed.
fn logged<T>(result: Result<T, EngineError>) -> Result<T, Failure> {
    result.map_err(|err| match err {
        EngineError::AuditKey(_)
        | EngineError::AuditLog { .. }
        | EngineError::AuditAppend(_)
        | EngineError::AuditProof { .. } => {
            let mut failure = Failure::from(err);
            failure.error = failure.error.context(
                "nothing was changed: the change could not be recorded in the audit log first",
            );
            failure
        }
        other => other.into(),
    })
}

fn binding_of(args: &RoleArgs) -> Result<RoleBinding, Failure> {
    Ok(access::role_binding(
        &args.identity,
        &args.role,
        args.workload.as_deref(),
        args.environment.as_deref(),
    )?)
}

fn kind_name(actor: &Identity) -> &'static str {
    match actor.kind {
        cairn_policy::IdentityKind::User => IdentityKind::User.as_str(),
        cairn_policy::IdentityKind::ServiceAccount => IdentityKind::ServiceAccount.as_str(),
    }
}

fn scope_text(b: &RoleBinding) -> String {
    match (&b.workload, &b.environment) {
        (None, _) => "organisation-wide".to_owned(),
        (Some(w), None) => format!("for workload {w}"),
        (Some(w), Some(e)) => format!("for workload {w} in {e}"),
    }
}

fn binding_json(b: &RoleBinding) -> Value {
    json!({
        "identity": b.identity,
        "role": b.role,
        "workload": b.workload,
        "environment": b.environment,
    })
}

/// An identity for listings: no token, no token hash.
fn identity_json(i: &IdentityRecord) -> Value {
    json!({
        "name": i.name,
        "kind": i.kind.as_str(),
        "created_at": rfc3339_utc(i.created_at_ms),
        "revoked_at": i.revoked_at_ms.map(rfc3339_utc),
        "expires_at": i.expires_at_ms.map(rfc3339_utc),
    })
}

/// The one place a token is printed: to its owner, once, on stdout.
fn print_created(cli: &Cli, created: &NewIdentity) {
    let r = &created.record;
    if cli.json {
        let mut v = identity_json(r);
        v["bootstrap"] = json!(created.bootstrap);
        v["roles"] = if created.bootstrap {
            json!([{"identity": r.name, "role": "platform-admin", "workload": null, "environment": null}])
        } else {
            json!([])
        };
        v["token"] = json!(created.token.expose());
        v["token_note"] = json!("shown once: cairn keeps only its SHA-256");
        print_json(&v);
        return;
    }
    println!("added {} {}", r.kind.as_str(), r.name);
    if created.bootstrap {
        println!(
            "{} is the first identity: bound platform-admin organisation-wide (it manages identities and roles)",
            r.name
        );
    } else {
        println!(
            "{} has no role yet: `cairn role grant {} ROLE [--workload W] [--env E]`",
            r.name, r.name
        );
    }
    println!(
        "token (shown once, never again; set it as CAIRN_TOKEN to act as {}):",
        r.name
    );
    println!("{}", created.token.expose());
}

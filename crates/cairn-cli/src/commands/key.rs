//! `cairn key`: cairn's evidence signing key (see `cairn_engine::keys` for where
//! and how it is kept). The secret is never printed.
//!
//! Every key change is appended to the audit log (`cairn log show`) as a
//! `key-rotation` entry before the new key is written; if the log cannot record
//! it, the key is not replaced. `cairn key show` also names the log's key and
//! `<data>/trusted_root.json`, with which `cairn verify` checks cairn's bundles.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_engine::DataDir;
use cairn_engine::audit::{self, AuditLog};
use cairn_engine::hsm::TokenKey;
use cairn_engine::keys::{KeyStore, Retired};
use cairn_engine::log_key::{self, LogKeyChange};
use cairn_evidence::{Algorithm, VerifyingKey};
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Create cairn's signing key (refuses to replace one without --force).
    Create {
        /// The signature algorithm. P-256 is the default: every Sigstore and
        /// in-toto verifier accepts it.
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::P256)]
        algorithm: KeyAlgorithm,
        /// Replace an existing key (its public key is kept in keys/retired/).
        #[arg(long)]
        force: bool,
    },
    /// Show the public key (PEM) and its key id.
    Show,
    /// Replace the signing key with a new one; keep the old public key in keys/retired/.
    Rotate {
        /// The new key's algorithm (default: the current key's).
        #[arg(long, value_enum, conflicts_with = "key_label")]
        algorithm: Option<KeyAlgorithm>,
        /// For a key in a PKCS#11 token: generate the new key in the same token
        /// under this label (ECDSA P-256, never extractable).
        #[arg(long, value_name = "LABEL")]
        key_label: Option<String>,
    },
    /// Sign with an ECDSA P-256 key held in a PKCS#11 token (an HSM): the
    /// private key never leaves it. Logged as a key rotation; the old key is retired.
    Hsm {
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Sign the audit log's checkpoints with an Ed25519 key held in a PKCS#11
    /// token (CKM_EDDSA; sensitive, never extractable): the log's writer no
    /// longer holds the key. Logged as a `log-checkpoint` key rotation under
    /// the old key, whose last checkpoint is signed again by both keys; the
    /// old key is retired and `trusted_root.json` lists both.
    LogHsm {
        #[command(flatten)]
        token: TokenArgs,
    },
}

/// Where a key in a PKCS#11 token is.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The PKCS#11 module (the token vendor's shared library), absolute path.
    #[arg(long, value_name = "PATH")]
    module: PathBuf,
    /// The token's label.
    #[arg(long, value_name = "LABEL")]
    token: String,
    /// The key's label (CKA_LABEL of its private and public objects).
    #[arg(long, value_name = "LABEL")]
    key_label: String,
    /// A file holding the user PIN (mode 0600).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "pin_env",
        conflicts_with = "pin_env"
    )]
    pin_file: Option<PathBuf>,
    /// The name of an environment variable holding the user PIN.
    #[arg(long, value_name = "VAR")]
    pin_env: Option<String>,
    /// Generate the key in the token (refused if the label is taken)
    /// instead of using one already there.
    #[arg(long)]
    generate: bool,
}

impl TokenArgs {
    fn config(&self) -> TokenKey {
        TokenKey {
            module: self.module.clone(),
            token: self.token.clone(),
            key_label: self.key_label.clone(),
            pin_file: self.pin_file.clone(),
            pin_env: self.pin_env.clone(),
            public_key: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlgorithm {
    Ed25519,
    P256,
}

impl From<KeyAlgorithm> for Algorithm {
    fn from(a: KeyAlgorithm) -> Self {
        match a {
            KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
            KeyAlgorithm::P256 => Algorithm::EcdsaP256Sha256,
        }
    }
}

pub(super) fn key(cli: &Cli, cmd: &KeyCommand) -> Result<ExitCode, Failure> {
    let data = super::data_dir(cli)?;
    if let KeyCommand::LogHsm { token } = cmd {
        let report = log_hsm(&data, token)?;
        if cli.json {
            print_json(&report.json());
        } else {
            print!("{}", report.text());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = run(&data, cmd)?;
    if cli.json {
        print_json(&report.json());
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::SUCCESS)
}

/// What a `cairn key` command did: public material and paths only.
#[derive(Debug)]
struct Report {
    action: &'static str,
    key: VerifyingKey,
    /// The key file, or `None` for a key in a token.
    path: Option<PathBuf>,
    /// The token holding the key, when it is in one.
    token: Option<TokenKey>,
    retired: Option<Retired>,
    /// The audit log entry that recorded the change.
    logged: Option<u64>,
    /// The log's verifier key, trusted root and where its key is, once a
    /// log exists.
    log: Option<LogMaterial>,
}

/// The log's public material: its verifier key, `trusted_root.json`, and
/// where its private key is (a file, or a token and label).
#[derive(Debug)]
struct LogMaterial {
    verifier: String,
    trusted_root: PathBuf,
    location: Option<String>,
}

impl Report {
    fn json(&self) -> Value {
        json!({
            "action": self.action,
            "key_id": self.key.key_id().as_str(),
            "algorithm": self.key.algorithm().name(),
            "public_key": self.key.to_pem(),
            "path": self.path.as_ref().map(|p| p.display().to_string()),
            "location": self.location(),
            "pkcs11": self.token.as_ref().map(|t| json!({
                "module": t.module.display().to_string(),
                "token": t.token,
                "key_label": t.key_label,
            })),
            "retired": self.retired.as_ref().map(|r| json!({
                "key_id": r.key.key_id().as_str(),
                "algorithm": r.key.algorithm().name(),
                "path": r.path.display().to_string(),
            })),
            "log_index": self.logged,
            "log_verifier": self.log.as_ref().map(|l| l.verifier.as_str()),
            "log_key_location": self.log.as_ref().and_then(|l| l.location.as_deref()),
            "trusted_root": self.log.as_ref().map(|l| l.trusted_root.display().to_string()),
        })
    }

    /// Where the private key is: the file, or the token and key label.
    fn location(&self) -> String {
        match (&self.token, &self.path) {
            (Some(t), _) => format!("{} (module {})", t.location(), t.module.display()),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => String::new(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        if self.action != "show" {
            out.push_str(&format!(
                "{} {} signing key in {}\n",
                self.action,
                self.key.algorithm(),
                self.location()
            ));
        }
        if let Some(r) = &self.retired {
            out.push_str(&format!(
                "retired key {} (public key kept in {})\n",
                r.key.key_id(),
                r.path.display()
            ));
        }
        if let Some(index) = self.logged {
            out.push_str(&format!("logged as audit log entry {index}\n"));
        }
        if self.action == "show" {
            out.push_str(&format!("signing key in {}\n", self.location()));
        }
        out.push_str(&format!(
            "key id: {}\nalgorithm: {}\n{}",
            self.key.key_id(),
            self.key.algorithm(),
            self.key.to_pem()
        ));
        if let Some(log) = &self.log {
            out.push_str(&format!("log key: {}\n", log.verifier));
            if let Some(location) = &log.location {
                out.push_str(&format!("log key in {location}\n"));
            }
            out.push_str(&format!("trusted root: {}\n", log.trusted_root.display()));
        }
        out
    }
}

fn run(data: &DataDir, cmd: &KeyCommand) -> Result<Report, Failure> {
    let keys = KeyStore::new(data);
    let path = keys.signing_key_path();
    let (action, key, retired, logged) = match cmd {
        KeyCommand::Create { algorithm, force } => {
            // Refuse before touching the log when there is a key and no --force.
            if !*force && keys.load()?.is_some() {
                return Err(cairn_engine::EngineError::KeyExists { path }.into());
            }
            let audit = AuditLog::open_waiting(data, audit::LOCK_WAIT)?;
            let change = keys.create((*algorithm).into(), *force, &audit)?;
            (
                "created",
                change.key,
                change.retired,
                Some(change.logged.index),
            )
        }
        KeyCommand::Show => {
            // The recorded public key: showing never opens the private key
            // (nor a token).
            let key =
                keys.public_key()?
                    .ok_or_else(|| cairn_engine::EngineError::NoSigningKey {
                        dir: keys.dir().to_owned(),
                    })?;
            let token = keys.token_config()?;
            return Ok(Report {
                action: "show",
                key,
                path: if token.is_some() { None } else { Some(path) },
                token,
                retired: None,
                logged: None,
                log: log_material(data),
            });
        }
        KeyCommand::Rotate {
            algorithm,
            key_label,
        } => {
            let audit = AuditLog::open_waiting(data, audit::LOCK_WAIT)?;
            let change = match key_label {
                Some(label) => keys.rotate_in_token(label, &audit)?,
                None => keys.rotate(algorithm.map(Algorithm::from), &audit)?,
            };
            (
                "rotated to a new",
                change.key,
                change.retired,
                Some(change.logged.index),
            )
        }
        KeyCommand::LogHsm { .. } => {
            // `key` hands this one to `log_hsm`: it changes the log's key,
            // not the evidence key this report is about.
            return Err(Failure::user(anyhow::anyhow!(
                "`cairn key log-hsm` moves the log's key; it has no evidence key report"
            )));
        }
        KeyCommand::Hsm { token } => {
            let config = token.config();
            config.validate()?;
            let audit = AuditLog::open_waiting(data, audit::LOCK_WAIT)?;
            let change = keys.use_token(&config, token.generate, &audit)?;
            (
                "now using the",
                change.key,
                change.retired,
                Some(change.logged.index),
            )
        }
    };
    let token = match key.token_location() {
        Some(_) => keys.token_config()?,
        None => None,
    };
    Ok(Report {
        action,
        key: key.verifying_key().clone(),
        path: if token.is_some() { None } else { Some(path) },
        token,
        retired,
        logged,
        log: log_material(data),
    })
}

/// The log's verifier key, trusted root and key location, when the log has a
/// key (showing a key never creates a log, nor opens a token).
fn log_material(data: &DataDir) -> Option<LogMaterial> {
    let verifier = log_key::current_verifier(data).ok()??;
    Some(LogMaterial {
        verifier: verifier.to_string(),
        trusted_root: audit::trusted_root_path(data),
        location: log_key::location(data).ok().flatten(),
    })
}

/// What `cairn key log-hsm` did: public material and paths only.
#[derive(Debug)]
struct LogReport {
    change: LogKeyChange,
    token: TokenKey,
    trusted_root: PathBuf,
}

impl LogReport {
    fn json(&self) -> Value {
        json!({
            "action": "log-key-moved",
            "log_verifier": self.change.verifier.to_string(),
            "algorithm": "ed25519",
            "location": self.change.location,
            "pkcs11": {
                "module": self.token.module.display().to_string(),
                "token": self.token.token,
                "key_label": self.token.key_label,
            },
            "retired": self.change.retired.as_ref().map(|r| json!({
                "log_verifier": r.verifier.to_string(),
                "retired_at": r.retired_at,
                "path": r.path.display().to_string(),
            })),
            "log_index": self.change.logged.index,
            "trusted_root": self.trusted_root.display().to_string(),
        })
    }

    fn text(&self) -> String {
        let mut out = format!(
            "the log's checkpoints are now signed by the Ed25519 key in {}\nlog key: {}\n",
            self.change.location, self.change.verifier
        );
        if let Some(r) = &self.change.retired {
            out.push_str(&format!(
                "retired log key {} (kept in {}); the checkpoint of size {} is signed by both\n",
                r.verifier,
                r.path.display(),
                self.change.logged.tree_size
            ));
        }
        out.push_str(&format!(
            "logged as audit log entry {}\ntrusted root: {}\n",
            self.change.logged.index,
            self.trusted_root.display()
        ));
        out
    }
}

fn log_hsm(data: &DataDir, args: &TokenArgs) -> Result<LogReport, Failure> {
    let config = args.config();
    config.validate()?;
    let change = log_key::use_token(data, &config, args.generate)?;
    Ok(LogReport {
        change,
        token: config,
        trusted_root: audit::trusted_root_path(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Grammar {
        #[command(subcommand)]
        cmd: KeyCommand,
    }

    #[test]
    fn grammar() {
        use clap::Parser;
        let parse =
            |args: &[&str]| Grammar::try_parse_from(["key"].iter().chain(args)).map(|g| g.cmd);
        assert!(matches!(
            parse(&["create"]),
            Ok(KeyCommand::Create {
                algorithm: KeyAlgorithm::P256,
                force: false
            })
        ));
        assert!(matches!(
            parse(&["create", "--algorithm", "ed25519", "--force"]),
            Ok(KeyCommand::Create {
                algorithm: KeyAlgorithm::Ed25519,
                force: true
            })
        ));
        assert!(matches!(parse(&["show"]), Ok(KeyCommand::Show)));
        assert!(matches!(
            parse(&["rotate"]),
            Ok(KeyCommand::Rotate {
                algorithm: None,
                key_label: None
            })
        ));
        assert!(matches!(
            parse(&["rotate", "--algorithm", "p256"]),
            Ok(KeyCommand::Rotate {
                algorithm: Some(KeyAlgorithm::P256),
                key_label: None
            })
        ));
        assert!(parse(&["create", "--algorithm", "rsa"]).is_err());
        let hsm = |pin: &[&str]| {
            let mut args = vec![
                "hsm",
                "--module",
                "/usr/lib/softhsm/libsofthsm2.so",
                "--token",
                "t",
                "--key-label",
                "k",
            ];
            args.extend_from_slice(pin);
            parse(&args)
        };
        assert!(matches!(
            hsm(&["--pin-env", "PIN"]),
            Ok(KeyCommand::Hsm {
                token: TokenArgs {
                    generate: false,
                    ..
                }
            })
        ));
        assert!(matches!(
            parse(&[
                "log-hsm",
                "--module",
                "/usr/lib/softhsm/libsofthsm2.so",
                "--token",
                "t",
                "--key-label",
                "log-1",
                "--pin-file",
                "/p",
                "--generate",
            ]),
            Ok(KeyCommand::LogHsm {
                token: TokenArgs { generate: true, .. }
            })
        ));
        assert!(
            parse(&[
                "log-hsm",
                "--module",
                "/m.so",
                "--token",
                "t",
                "--key-label",
                "k"
            ])
            .is_err()
        );
        assert!(hsm(&["--pin-file", "/p", "--generate"]).is_ok());
        assert!(hsm(&[]).is_err(), "a PIN source is required");
        assert!(hsm(&["--pin-file", "/p", "--pin-env", "PIN"]).is_err());
        assert!(parse(&["rotate", "--key-label", "k2", "--algorithm", "p256"]).is_err());
    }

    #[test]
    fn exit_codes() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let keys = DataDir::at(tmp.path());
        assert_eq!(
            run(&keys, &KeyCommand::Show).expect_err("no key").code,
            crate::exit::USER
        );
        run(
            &keys,
            &KeyCommand::Create {
                algorithm: KeyAlgorithm::P256,
                force: false,
            },
        )
        .expect("creates");
        let again = run(
            &keys,
            &KeyCommand::Create {
                algorithm: KeyAlgorithm::P256,
                force: false,
            },
        );
        assert_eq!(again.expect_err("exists").code, crate::exit::USER);
    }

    #[test]
    fn output_never_shows_the_secret() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = DataDir::at(tmp.path());
        let keys = KeyStore::new(&data);
        run(
            &data,
            &KeyCommand::Create {
                algorithm: KeyAlgorithm::Ed25519,
                force: false,
            },
        )
        .expect("creates");
        let body =
            |text: String| -> String { text.lines().filter(|l| !l.starts_with("-----")).collect() };
        let secret = body(std::fs::read_to_string(keys.signing_key_path()).expect("read"));
        let rotated = run(
            &data,
            &KeyCommand::Rotate {
                algorithm: None,
                key_label: None,
            },
        )
        .expect("rotates");
        let shown = run(&data, &KeyCommand::Show).expect("shows");
        let new_secret = body(std::fs::read_to_string(keys.signing_key_path()).expect("read"));
        for report in [&rotated, &shown] {
            for out in [
                report.text(),
                report.json().to_string(),
                format!("{report:?}"),
            ] {
                assert!(!out.contains("PRIVATE KEY"), "{out}");
                assert!(!out.contains(&secret[..32]), "{out}");
                assert!(!out.contains(&new_secret[..32]), "{out}");
                assert!(out.contains(report.key.key_id().as_str()), "{out}");
            }
        }
        assert!(shown.text().contains("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(shown.json()["public_key"], shown.key.to_pem());
        assert!(rotated.text().contains("logged as audit log entry 1"));
        assert_eq!(rotated.json()["log_index"], 1);
        assert!(shown.text().contains("log key: cairn.local/log+"));
        assert!(shown.text().contains("log key in "), "{}", shown.text());
        // Neither shows the log's secret key either.
        let log_secret =
            std::fs::read_to_string(cairn_engine::audit::key_path(&data)).expect("read");
        for out in [shown.text(), rotated.json().to_string()] {
            assert!(!out.contains(log_secret.trim()), "{out}");
            assert!(!out.contains("PRIVATE+KEY"), "{out}");
        }
    }
}

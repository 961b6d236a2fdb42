//! `cairn key`: cairn's evidence signing key (see `cairn_engine::keys` for where
//! and how it is kept). The secret is never printed.
//!
//! Rotation is not yet recorded in the transparency log: that entry comes with the
//! log (DESIGN "Audit production": key changes are logged before they take effect).

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_engine::keys::{KeyStore, Retired};
use cairn_evidence::{Algorithm, VerifyingKey};
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
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
        #[arg(long, value_enum)]
        algorithm: Option<KeyAlgorithm>,
    },
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

pub fn key(cli: &Cli, cmd: &KeyCommand) -> Result<ExitCode, Failure> {
    let data = super::data_dir(cli)?;
    let report = run(&KeyStore::new(&data), cmd)?;
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
    path: PathBuf,
    retired: Option<Retired>,
}

impl Report {
    fn json(&self) -> Value {
        json!({
            "action": self.action,
            "key_id": self.key.key_id().as_str(),
            "algorithm": self.key.algorithm().name(),
            "public_key": self.key.to_pem(),
            "path": self.path.display().to_string(),
            "retired": self.retired.as_ref().map(|r| json!({
                "key_id": r.key.key_id().as_str(),
                "algorithm": r.key.algorithm().name(),
                "path": r.path.display().to_string(),
            })),
        })
    }

    fn text(&self) -> String {
        let mut out = String::new();
        if self.action != "show" {
            out.push_str(&format!(
                "{} {} signing key in {}\n",
                self.action,
                self.key.algorithm(),
                self.path.display()
            ));
        }
        if let Some(r) = &self.retired {
            out.push_str(&format!(
                "retired key {} (public key kept in {})\n",
                r.key.key_id(),
                r.path.display()
            ));
            out.push_str("note: the rotation is not in the transparency log yet; that entry comes with the log\n");
        }
        out.push_str(&format!(
            "key id: {}\nalgorithm: {}\n{}",
            self.key.key_id(),
            self.key.algorithm(),
            self.key.to_pem()
        ));
        out
    }
}

fn run(keys: &KeyStore, cmd: &KeyCommand) -> Result<Report, Failure> {
    let path = keys.signing_key_path();
    let (action, key, retired) = match cmd {
        KeyCommand::Create { algorithm, force } => {
            let (key, retired) = keys.create((*algorithm).into(), *force)?;
            ("created", key, retired)
        }
        KeyCommand::Show => ("show", keys.require()?, None),
        KeyCommand::Rotate { algorithm } => {
            let (key, retired) = keys.rotate(algorithm.map(Algorithm::from))?;
            ("rotated to a new", key, retired)
        }
    };
    Ok(Report {
        action,
        key: key.verifying_key().clone(),
        path,
        retired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_engine::DataDir;

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
            Ok(KeyCommand::Rotate { algorithm: None })
        ));
        assert!(matches!(
            parse(&["rotate", "--algorithm", "p256"]),
            Ok(KeyCommand::Rotate {
                algorithm: Some(KeyAlgorithm::P256)
            })
        ));
        assert!(parse(&["create", "--algorithm", "rsa"]).is_err());
    }

    #[test]
    fn exit_codes() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let keys = KeyStore::new(&DataDir::at(tmp.path()));
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
        let keys = KeyStore::new(&DataDir::at(tmp.path()));
        run(
            &keys,
            &KeyCommand::Create {
                algorithm: KeyAlgorithm::Ed25519,
                force: false,
            },
        )
        .expect("creates");
        let body =
            |text: String| -> String { text.lines().filter(|l| !l.starts_with("-----")).collect() };
        let secret = body(std::fs::read_to_string(keys.signing_key_path()).expect("read"));
        let rotated = run(&keys, &KeyCommand::Rotate { algorithm: None }).expect("rotates");
        let shown = run(&keys, &KeyCommand::Show).expect("shows");
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
        assert!(rotated.text().contains("not in the transparency log yet"));
    }
}

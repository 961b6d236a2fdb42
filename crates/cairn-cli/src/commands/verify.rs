//! `cairn verify`: offline verification of a Sigstore bundle for an artifact,
//! by certificate identity and OIDC issuer (Fulcio) or by public key.
//!
//! Everything is checked against a trusted root the caller names
//! (`--trusted-root`, or `CAIRN_SIGSTORE_TRUSTED_ROOT`); there is deliberately
//! no built-in root: Sigstore rotates its keys through TUF, and a root frozen
//! into the binary would go stale silently. Without a root nothing verifies —
//! even `--key` bundles carry log entries whose keys only the root holds.
//! cairn's own bundles are the one case with a root at hand: their log entry is
//! in cairn's audit log, whose key the engine writes as a trusted root to
//! `<data>/trusted_root.json`; with `--key` and no root given, that root is
//! used, and the bundle goes through the same verifier as any other (its entry
//! is a Rekor v2 `dsse` entry with an inclusion proof and signed checkpoint).
//! Exit codes: 0 verified, 1 not verified (or unusable input), 2 cairn failed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_model::time::rfc3339_utc;
use cairn_sigstore::{
    ArtifactHasher, ArtifactInput, MAX_BUNDLE_BYTES, SignedContent, TrustedRoot,
    VerificationPolicy, Verified, VerifyError,
};
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::exit::{Failure, USER};
use crate::output::print_json;

/// The largest public key file read.
const MAX_KEY_BYTES: u64 = 64 << 10;

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The Sigstore bundle (`*.sigstore.json`, bundle v0.1–v0.3).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The Sigstore trusted root (`trusted_root.json`): log, CA, CT and TSA keys.
    #[arg(long, value_name = "FILE", env = "CAIRN_SIGSTORE_TRUSTED_ROOT")]
    pub trusted_root: Option<PathBuf>,
    /// Verify a key-based bundle with this public key (PEM or DER).
    #[arg(long, value_name = "PUBKEY", conflicts_with_all = ["certificate_identity", "certificate_oidc_issuer"])]
    pub key: Option<PathBuf>,
    /// The signer's identity the certificate must name (SAN URI or email).
    #[arg(long, value_name = "ID", requires = "certificate_oidc_issuer")]
    pub certificate_identity: Option<String>,
    /// The OIDC issuer the certificate must name.
    #[arg(long, value_name = "URL", requires = "certificate_identity")]
    pub certificate_oidc_issuer: Option<String>,
    /// The signed file (for a DSSE bundle: the subject of the in-toto statement).
    #[arg(value_name = "ARTIFACT")]
    pub artifact: PathBuf,
}

/// Opens a file named on the command line: a missing file is the user's
/// input (1), any other I/O failure is cairn's (2).
fn open_input(path: &Path, what: &str) -> Result<std::fs::File, Failure> {
    std::fs::File::open(path).map_err(|e| {
        let user = matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
        );
        let err = anyhow!(e).context(format!("cannot open the {what} {}", path.display()));
        if user {
            Failure::user(err)
        } else {
            Failure::from(err)
        }
    })
}

/// Reads a whole input file of at most `max` bytes.
fn read_input(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, Failure> {
    let file = open_input(path, what)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(Failure::user(anyhow!(
            "the {what} {} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// SHA-256 of the artifact, read in pieces: artifacts may be large.
fn hash_artifact(path: &Path) -> Result<[u8; 32], Failure> {
    let mut file = open_input(path, "artifact")?;
    let mut hasher = ArtifactHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure::from(
                    anyhow!(e).context(format!("cannot read the artifact {}", path.display())),
                ));
            }
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

fn policy(args: &VerifyArgs) -> Result<VerificationPolicy, Failure> {
    match (
        &args.key,
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
    ) {
        (Some(key), None, None) => Ok(VerificationPolicy::Key(read_input(
            key,
            "public key",
            MAX_KEY_BYTES,
        )?)),
        (None, Some(san), Some(issuer)) => Ok(VerificationPolicy::Identity {
            san: san.clone(),
            issuer: issuer.clone(),
        }),
        _ => Err(Failure::user(anyhow!(
            "say whom the signature must come from: --key PUBKEY, or \
             --certificate-identity ID with --certificate-oidc-issuer URL"
        ))),
    }
}

fn time_text(unix: i64) -> String {
    rfc3339_utc(unix.saturating_mul(1000))
}

fn verified_json(args: &VerifyArgs, v: &Verified) -> Value {
    let (content, payload_type) = match &v.content {
        SignedContent::MessageSignature => ("message-signature", None),
        SignedContent::Dsse { payload_type } => ("dsse", Some(payload_type.as_str())),
    };
    json!({
        "verified": true,
        "artifact": args.artifact.display().to_string(),
        "sha256": cairn_model::Digest::from_bytes(v.artifact_sha256).hex(),
        "bundle": args.bundle.display().to_string(),
        "media_type": v.media_type,
        "content": content,
        "payload_type": payload_type,
        "identities": v.identities,
        "issuer": v.issuer,
        "tlog_entries": v.tlog_entries.iter().map(|e| json!({
            "log": e.log_base_url,
            "log_index": e.log_index,
            "kind": e.kind,
            "integrated_time": e.signed_time.map(time_text),
            "inclusion_proof": e.inclusion_proof,
        })).collect::<Vec<_>>(),
        "timestamps": v.timestamps.iter().copied().map(time_text).collect::<Vec<_>>(),
    })
}

fn print_verified(args: &VerifyArgs, v: &Verified) {
    println!(
        "verified: {} ({})",
        args.artifact.display(),
        cairn_model::Digest::from_bytes(v.artifact_sha256)
    );
    match &v.content {
        SignedContent::MessageSignature => println!("signature: message signature"),
        SignedContent::Dsse { payload_type } => {
            println!("signature: DSSE envelope ({payload_type})");
        }
    }
    if v.identities.is_empty() {
        println!("signer:    the given public key");
    } else {
        println!("identity:  {}", v.identities.join(", "));
        if let Some(issuer) = &v.issuer {
            println!("issuer:    {issuer}");
        }
    }
    for e in &v.tlog_entries {
        let when = e
            .signed_time
            .map(|t| format!(", integrated {}", time_text(t)))
            .unwrap_or_default();
        let mut how = Vec::new();
        if e.signed_time.is_some() {
            how.push("inclusion promise");
        }
        if e.inclusion_proof {
            how.push("inclusion proof and checkpoint");
        }
        let proof = format!(", {}", how.join(" + "));
        println!(
            "log entry: {} #{} ({}{when}{proof})",
            e.log_base_url, e.log_index, e.kind
        );
    }
    for t in &v.timestamps {
        println!("timestamp: {} (RFC 3161, trusted TSA)", time_text(*t));
    }
}

fn rejected(cli: &Cli, args: &VerifyArgs, err: &VerifyError) -> Result<ExitCode, Failure> {
    if cli.json {
        print_json(&json!({
            "verified": false,
            "artifact": args.artifact.display().to_string(),
            "bundle": args.bundle.display().to_string(),
            "check": err.check(),
            "error": err.to_string(),
        }));
        return Ok(ExitCode::from(USER));
    }
    Err(Failure::user(anyhow!(
        "verification failed ({}): {err}",
        err.check()
    )))
}

pub(super) fn verify(cli: &Cli, args: &VerifyArgs) -> Result<ExitCode, Failure> {
    let policy = policy(args)?;
    // cairn's own bundles: with --key and no trusted root given, the root cairn
    // writes for its own audit log (`<data>/trusted_root.json`) is used, so that
    // `cairn verify --bundle B --key K ARTIFACT` checks the log entry too.
    let own_root = match (&args.trusted_root, &args.key) {
        (None, Some(_)) => Some(cairn_engine::audit::trusted_root_path(&super::data_dir(
            cli,
        )?))
        .filter(|p| p.is_file()),
        _ => None,
    };
    let Some(root_path) = args.trusted_root.as_ref().or(own_root.as_ref()) else {
        return Err(Failure::user(anyhow!(
            "a trusted root is needed: --trusted-root FILE (or CAIRN_SIGSTORE_TRUSTED_ROOT); \
             cairn has no built-in Sigstore root, and no log of its own in this data directory"
        )));
    };
    let root_bytes = read_input(
        root_path,
        "trusted root",
        cairn_sigstore::MAX_TRUSTED_ROOT_BYTES as u64,
    )?;
    let root = match TrustedRoot::from_json(&root_bytes) {
        Ok(root) => root,
        Err(e) => {
            return Err(Failure::user(anyhow!(e).context(format!(
                "cannot use the trusted root {}",
                root_path.display()
            ))));
        }
    };
    let bundle = read_input(&args.bundle, "bundle", MAX_BUNDLE_BYTES as u64)?;
    let digest = hash_artifact(&args.artifact)?;
    let now = cairn_engine::now_ms() / 1000;
    if now <= 0 {
        return Err(anyhow!("the system clock is before 1970").into());
    }
    let mut result =
        cairn_sigstore::verify(&bundle, ArtifactInput::Sha256(digest), &policy, &root, now);
    if matches!(result, Err(VerifyError::NeedsArtifactBytes)) {
        // Ed25519 and P-384 keys sign the artifact itself: read it whole.
        let mut artifact = Vec::new();
        open_input(&args.artifact, "artifact")?
            .read_to_end(&mut artifact)
            .with_context(|| format!("cannot read the artifact {}", args.artifact.display()))?;
        result = cairn_sigstore::verify(
            &bundle,
            ArtifactInput::Bytes(&artifact),
            &policy,
            &root,
            now,
        );
    }
    match result {
        Ok(v) => {
            if cli.json {
                print_json(&verified_json(args, &v));
            } else {
                print_verified(args, &v);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => rejected(cli, args, &e),
    }
}

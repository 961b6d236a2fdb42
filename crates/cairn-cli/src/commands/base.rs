//! `cairn base`: the organisation's catalog of validated base images.
//!
//! - `import SOURCE --name NAME`: an OCI layout (`oci:DIR[:REF]` or a directory
//!   with an `oci-layout` file), a root filesystem (a directory or a tarball), or a
//!   registry reference pinned by digest from an allowed registry. Docker Hub is
//!   refused before anything is read.
//! - `create tiny|debian --name NAME`: makes a base offline — `tiny` from a few
//!   files (for static binaries and fast tests), `debian` with
//!   `mmdebstrap --variant=minbase` from Debian's packages — then imports it the
//!   same way.
//! - `refresh NAME [--from SOURCE]`: a new version of a base, from a newer
//!   source or by running its recorded recipe again (see
//!   `cairn_engine::images::refresh`); the old version stays in its history.
//! - `list`, `show NAME`.
//!
//! Every import goes through the same steps: pinned digest, verified blobs, safe
//! unpack, SBOM of the root filesystem, scan against the stored advisories, the
//! catalog's gate (`[base] max_severity` in org.toml), signed SBOM evidence in the
//! audit log, and only then the name.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_engine::images::Images;
use cairn_engine::images::catalog::{self, Admission, BaseSource, Vetting};
use cairn_engine::images::refresh::{self, Refreshed};
use cairn_engine::images::registry::Connection;
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub enum BaseCommand {
    /// Import a base into the catalog (an OCI layout, a root filesystem, or a pinned registry reference).
    Import {
        /// `oci:DIR[:REF]`, a layout directory, a rootfs directory or tarball, or `HOST/REPO@sha256:…`.
        source: String,
        /// The catalog name workloads use (`[image] base = "NAME"`).
        #[arg(long)]
        name: String,
        /// Plain HTTP to a loopback registry (tests, a local mirror).
        #[arg(long)]
        plain_http: bool,
        /// The publisher's signature (a Sigstore bundle of a statement about the
        /// manifest digest), required when org.toml names `[base] signers`.
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
    },
    /// Make a base offline and import it: `tiny` (a few files, for static binaries) or `debian` (mmdebstrap minbase).
    Create {
        #[arg(value_enum)]
        kind: BaseKind,
        #[arg(long)]
        name: String,
        /// The Debian suite for `debian`.
        #[arg(long, default_value = "bookworm")]
        suite: String,
    },
    /// A new version of a catalog base: from `--from SOURCE` (as `base import`
    /// reads it), else by running its recorded recipe again (`debian`:
    /// mmdebstrap against the archive as it is now). The old version stays in
    /// the base's history.
    Refresh {
        name: String,
        /// The newer source: `oci:DIR[:REF]`, a layout directory, a rootfs
        /// directory or tarball, or `HOST/REPO@sha256:…`.
        #[arg(long, value_name = "SOURCE")]
        from: Option<String>,
        /// Plain HTTP to a loopback registry (tests, a local mirror).
        #[arg(long)]
        plain_http: bool,
        /// The publisher's signature over the new version (see `base import`).
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
    },
    /// The catalog: every base's current entry.
    List,
    /// One base: its entries over time, newest first.
    Show { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaseKind {
    Tiny,
    Debian,
}

pub fn base(cli: &Cli, cmd: &BaseCommand) -> Result<ExitCode, Failure> {
    match cmd {
        BaseCommand::Import {
            source,
            name,
            plain_http,
            signature,
        } => {
            let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
            // Docker Hub, a registry off the allow-list or an unpinned reference is
            // refused here, before anything is read.
            let source = BaseSource::parse(source, &org)?;
            let signature = read_signature(signature.as_deref())?;
            import(cli, source, name, *plain_http, signature)
        }
        BaseCommand::Refresh {
            name,
            from,
            plain_http,
            signature,
        } => {
            let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
            let from = from
                .as_deref()
                .map(|s| BaseSource::parse(s, &org))
                .transpose()?;
            let signature = read_signature(signature.as_deref())?;
            refresh_base(cli, name, from, *plain_http, signature)
        }
        BaseCommand::Create { kind, name, suite } => create(cli, *kind, name, suite),
        BaseCommand::List => list(cli),
        BaseCommand::Show { name } => show(cli, name),
    }
}

/// The publisher's signature file, bounded.
fn read_signature(path: Option<&Path>) -> Result<Option<Vec<u8>>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > 1 << 20 {
        return Err(Failure::user(anyhow!(
            "{} is larger than 1 MiB",
            path.display()
        )));
    }
    Ok(Some(std::fs::read(path).with_context(|| {
        format!("cannot read {}", path.display())
    })?))
}

fn refresh_base(
    cli: &Cli,
    name: &str,
    from: Option<BaseSource>,
    plain_http: bool,
    signature: Option<Vec<u8>>,
) -> Result<ExitCode, Failure> {
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    let actor = cairn_engine::access::cli_actor(
        &*store,
        cairn_policy::Action::ChangeCatalog,
        Some(&cairn_policy::Scope::organisation()),
    )?;
    let images = Images::open(&data)?;
    let connection = Connection {
        plain_http,
        ..Connection::default()
    };
    let pull = |r: &cairn_model::image_ref::ImageRef| {
        cairn_engine::images::registry::pull(&images, &org, r, &connection)
    };
    let signatures = |candidate: &catalog::Candidate| {
        let mut bundles: Vec<Vec<u8>> = signature.iter().cloned().collect();
        if !org.base_signers.is_empty()
            && let BaseSource::Registry(r) = &candidate.source
        {
            let digest = candidate.image.manifest_digest.to_string();
            bundles.extend(cairn_engine::images::registry::attached(
                &org,
                &r.to_string(),
                &digest,
                &connection,
            )?);
        }
        Ok(bundles)
    };
    let ctx = refresh::Refresh {
        data: &data,
        store: &*store,
        images: &images,
        org: &org,
        actor: actor.as_ref(),
        pull: Some(&pull),
        signatures: &signatures,
    };
    match refresh::refresh(&ctx, name, from, &mut |note| eprintln!("cairn: {note}"))? {
        Refreshed::Unchanged { digest } => {
            if cli.json {
                print_json(&json!({ "name": name, "digest": digest, "unchanged": true }));
            } else {
                println!(
                    "base `{name}` is unchanged: the new version is the one it has ({digest}); nothing was recorded"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Refreshed::Admitted(admission) => report(cli, name, admission, actor.as_ref()),
    }
}

fn import(
    cli: &Cli,
    source: BaseSource,
    name: &str,
    plain_http: bool,
    signature: Option<Vec<u8>>,
) -> Result<ExitCode, Failure> {
    let org = cairn_engine::load_org(cli.platform_dir.as_deref())?;
    let data = data_dir(cli)?;
    let store = open_store(&data)?;
    // Once the organisation has identities: a platform-admin, before any work.
    let actor = cairn_engine::access::cli_actor(
        &*store,
        cairn_policy::Action::ChangeCatalog,
        Some(&cairn_policy::Scope::organisation()),
    )?;
    let images = Images::open(&data)?;
    let connection = Connection {
        plain_http,
        ..Connection::default()
    };
    let pull = |r: &cairn_model::image_ref::ImageRef| {
        cairn_engine::images::registry::pull(&images, &org, r, &connection)
    };
    eprintln!("cairn: importing {} as `{name}`", source.describe());
    let candidate = catalog::stage(&images, name, source, Some(&pull))?;
    eprintln!(
        "cairn: {} unpacked and verified ({} layers); making its SBOM",
        candidate.image.manifest_digest,
        candidate.image.layers.len()
    );
    let mut vetting = vet(&*store, &candidate.rootfs, name)?;
    // The publisher's signature: given, or attached to the image in its registry.
    let mut bundles: Vec<Vec<u8>> = signature.into_iter().collect();
    if !org.base_signers.is_empty()
        && let BaseSource::Registry(r) = &candidate.source
    {
        let digest = candidate.image.manifest_digest.to_string();
        bundles.extend(cairn_engine::images::registry::attached(
            &org,
            &r.to_string(),
            &digest,
            &connection,
        )?);
    }
    vetting.signature = catalog::check_signature(&org, &candidate, &bundles);
    if let Ok(Some(key)) = &vetting.signature {
        eprintln!("cairn: the publisher's signature verifies (key {key})");
    }
    eprintln!(
        "cairn: {} components, {} known vulnerabilities",
        vetting.packages,
        vetting.vulnerabilities.len()
    );
    let admission = catalog::admit(
        &data,
        &*store,
        &images,
        &org,
        &candidate,
        &vetting,
        actor.as_ref(),
    )?;
    report(cli, name, admission, actor.as_ref())
}

/// Prints what the catalog's gate decided.
fn report(
    cli: &Cli,
    name: &str,
    admission: Admission,
    actor: Option<&cairn_policy::Identity>,
) -> Result<ExitCode, Failure> {
    match admission {
        Admission::Admitted {
            record,
            evidence,
            replaces,
            log_index,
        } => {
            if cli.json {
                print_json(&json!({
                    "name": record.name,
                    "digest": record.digest,
                    "source": record.source,
                    "packages": record.packages,
                    "vulnerabilities": record.vulnerabilities,
                    "sbom_evidence": evidence,
                    "replaces": replaces,
                    "log_index": log_index,
                    "actor": actor.map(|a| a.name.clone()),
                }));
            } else {
                println!(
                    "base `{}` is in the catalog: {} ({} packages, {} known vulnerabilities; signed SBOM evidence {evidence}; catalog change logged at entry {log_index})",
                    record.name, record.digest, record.packages, record.vulnerabilities
                );
                if let Some(old) = replaces.filter(|old| *old != record.digest) {
                    println!(
                        "it replaces {old} as `{}`; `cairn base show {}` lists both",
                        record.name, record.name
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Admission::Refused { reasons } => {
            for r in &reasons {
                eprintln!("refused: {r}");
            }
            Err(Failure::user(anyhow!(
                "base `{name}` did not pass the catalog's gate ({} reasons); nothing was named",
                reasons.len()
            )))
        }
    }
}

/// The SBOM and the scan of an unpacked base (see [`refresh::vet`]).
fn vet(store: &dyn cairn_store::Store, rootfs: &Path, name: &str) -> Result<Vetting, Failure> {
    Ok(refresh::vet(store, rootfs, name, &mut |note| {
        eprintln!("cairn: {note}")
    })?)
}

fn create(cli: &Cli, kind: BaseKind, name: &str, suite: &str) -> Result<ExitCode, Failure> {
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let (rootfs, how): (PathBuf, String) = match kind {
        BaseKind::Tiny => {
            let root = work.path().join("rootfs");
            refresh::make_tiny(&root)?;
            (root, refresh::TINY_HOW.to_owned())
        }
        BaseKind::Debian => {
            let tar = work.path().join("rootfs.tar");
            if !suite
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(Failure::user(anyhow!(
                    "`{suite}` is not a Debian suite name"
                )));
            }
            eprintln!("cairn: mmdebstrap --variant=minbase {suite} (from Debian's packages)");
            let status = std::process::Command::new("mmdebstrap")
                .args(["--variant=minbase", "--quiet", suite])
                .arg(&tar)
                .status()
                .map_err(|e| {
                    anyhow!("cannot run mmdebstrap ({e}); install it: apt-get install mmdebstrap")
                })?;
            if !status.success() {
                return Err(anyhow!("mmdebstrap failed ({status})").into());
            }
            (tar, format!("mmdebstrap --variant=minbase {suite}"))
        }
    };
    import(cli, BaseSource::Created { rootfs, how }, name, false, None)
}

fn list(cli: &Cli) -> Result<ExitCode, Failure> {
    let store = open_store(&data_dir(cli)?)?;
    let bases = store.bases()?;
    if cli.json {
        print_json(&json!(bases.iter().map(base_json).collect::<Vec<_>>()));
        return Ok(ExitCode::SUCCESS);
    }
    if bases.is_empty() {
        println!(
            "the catalog is empty; `cairn base create tiny --name tiny` or `cairn base import SOURCE --name NAME` adds a base"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<73} {:>8} {:>6}  SOURCE",
        "NAME", "DIGEST", "PACKAGES", "VULNS"
    );
    for b in &bases {
        println!(
            "{:<20} {:<73} {:>8} {:>6}  {}",
            b.name, b.digest, b.packages, b.vulnerabilities, b.source
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show(cli: &Cli, name: &str) -> Result<ExitCode, Failure> {
    let store = open_store(&data_dir(cli)?)?;
    let history = store.base_history(name)?;
    if history.is_empty() {
        return Err(Failure::user(anyhow!(
            "base `{name}` is not in the catalog; `cairn base list` shows it"
        )));
    }
    if cli.json {
        print_json(&json!(history.iter().map(base_json).collect::<Vec<_>>()));
        return Ok(ExitCode::SUCCESS);
    }
    for (i, b) in history.iter().enumerate() {
        println!(
            "{} {}  imported {}  {} packages, {} known vulnerabilities  from {}",
            if i == 0 { "current " } else { "previous" },
            b.digest,
            cairn_model::time::rfc3339_utc(b.imported_at_ms),
            b.packages,
            b.vulnerabilities,
            b.source
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn base_json(b: &cairn_model::BaseRecord) -> serde_json::Value {
    json!({
        "name": b.name,
        "digest": b.digest,
        "source": b.source,
        "imported_at": cairn_model::time::rfc3339_utc(b.imported_at_ms),
        "packages": b.packages,
        "vulnerabilities": b.vulnerabilities,
    })
}

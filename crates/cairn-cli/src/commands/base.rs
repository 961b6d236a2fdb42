//! `cairn base`: the organisation's catalog of validated base images.
//!
//! - `import SOURCE --name NAME`: an OCI layout (`oci:DIR[:REF]` or a directory
//!   with an `oci-layout` file), a root filesystem (a directory or a tarball), or a
//!   registry reference pinned by digest from an allowed registry. Docker Hub is
//!   refused before anything is read.
//! - `create tiny|debian --name NAME [--include P,Q] [--variant V]`: makes a base
//!   by a recipe (`cairn_engine::images::recipe`) — `tiny` from a few files (for
//!   static binaries and fast tests), `debian` with `mmdebstrap` from Debian's
//!   packages, reproducibly (SOURCE_DATE_EPOCH), a toolchain with `--include` —
//!   then imports it the same way; the recipe and the package list are kept
//!   with the entry and compared with the previous one.
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
use cairn_engine::EngineError;
use cairn_engine::images::Images;
use cairn_engine::images::catalog::{self, Admission, BaseSource};
use cairn_engine::images::recipe;
use cairn_engine::images::refresh::{self, Refreshed};
use cairn_model::{BaseRecipe, DebianRecipe};
use serde_json::json;

use super::{data_dir, open_store};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BaseCommand {
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
    /// Make a base and import it: `tiny` (a few files, for static binaries) or `debian` (mmdebstrap from Debian's packages; a toolchain with `--include`).
    Create {
        #[arg(value_enum)]
        kind: BaseKind,
        #[arg(long)]
        name: String,
        /// The Debian suite for `debian`.
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// The mmdebstrap variant for `debian` (minbase, buildd, essential, apt, required, important, standard).
        #[arg(long, default_value = "minbase")]
        variant: String,
        /// Debian packages beyond the variant's, for a toolchain image
        /// (e.g. `rustc,cargo`; `python3,python3-pip,python3-venv`; `nodejs,npm`;
        /// `golang`; `default-jdk,maven`; `build-essential`).
        #[arg(long, value_delimiter = ',', value_name = "PACKAGES")]
        include: Vec<String>,
        /// Every time inside the base is at most this (seconds since 1970);
        /// default: the newest Release date apt holds for the suite.
        #[arg(long, value_name = "SECONDS")]
        source_date_epoch: Option<u64>,
        /// For `rust`: the toolchain directory to pack into /usr/local
        /// (rustup's layout, e.g. ~/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu).
        #[arg(long, value_name = "DIR")]
        toolchain: Option<PathBuf>,
        /// For `rust`: the toolchain's components to pack.
        #[arg(long, value_delimiter = ',', value_name = "COMPONENTS", default_values_t = cairn_model::RUST_COMPONENTS.iter().map(|c| (*c).to_owned()))]
        component: Vec<String>,
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
pub(crate) enum BaseKind {
    Tiny,
    Debian,
    /// A Rust toolchain directory in /usr/local of a Debian base with the C linker.
    Rust,
}

/// The Debian packages a Rust toolchain base needs besides the toolchain:
/// the linker rustc calls (`cc`) and libc's start files and headers.
const RUST_SYSTEM: &[&str] = &["ca-certificates", "gcc", "libc6-dev"];

pub(super) fn base(cli: &Cli, cmd: &BaseCommand) -> Result<ExitCode, Failure> {
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
        BaseCommand::Create {
            kind,
            name,
            suite,
            variant,
            include,
            source_date_epoch,
            toolchain,
            component,
        } => {
            if toolchain.is_some() != (*kind == BaseKind::Rust) {
                return Err(Failure::user(anyhow!(
                    "--toolchain DIR is for `rust` bases, and a `rust` base needs it"
                )));
            }
            let recipe = match kind {
                BaseKind::Tiny => {
                    if !include.is_empty() || source_date_epoch.is_some() || variant != "minbase" {
                        return Err(Failure::user(anyhow!(
                            "--include, --variant and --source-date-epoch are for `debian` bases; `tiny` has no packages"
                        )));
                    }
                    BaseRecipe::Tiny
                }
                BaseKind::Debian => {
                    // Checked before the epoch is looked up: a bad name is the
                    // user's input, said as such.
                    DebianRecipe::new(suite, variant, include, 0).map_err(EngineError::from)?;
                    let epoch = match source_date_epoch {
                        Some(e) => *e,
                        None => recipe::debian_epoch(suite)?,
                    };
                    BaseRecipe::Debian(
                        DebianRecipe::new(suite, variant, include, epoch)
                            .map_err(EngineError::from)?,
                    )
                }
                BaseKind::Rust => {
                    let mut packages: Vec<String> =
                        RUST_SYSTEM.iter().map(|p| (*p).to_owned()).collect();
                    packages.extend(include.iter().cloned());
                    DebianRecipe::new(suite, variant, &packages, 0).map_err(EngineError::from)?;
                    // The directory as the administrator named it, resolved
                    // once here (rustup's `1.95.0-…` may be a symlink to its
                    // `stable-…`); nothing below it is ever followed.
                    let dir = toolchain.as_deref().unwrap_or(Path::new(""));
                    let dir = std::fs::canonicalize(dir).map_err(|e| {
                        Failure::user(anyhow!(
                            "the toolchain directory {} cannot be used ({e}); nothing was imported",
                            dir.display()
                        ))
                    })?;
                    let dir = dir.to_str().ok_or_else(|| {
                        Failure::user(anyhow!("the toolchain directory's path is not UTF-8"))
                    })?;
                    cairn_model::RustRecipe::new(
                        DebianRecipe::new(suite, variant, &packages, 0)
                            .map_err(EngineError::from)?,
                        dir,
                        component,
                    )
                    .map_err(EngineError::from)?;
                    let epoch = match source_date_epoch {
                        Some(e) => *e,
                        None => recipe::debian_epoch(suite)?,
                    };
                    BaseRecipe::Rust(
                        cairn_model::RustRecipe::new(
                            DebianRecipe::new(suite, variant, &packages, epoch)
                                .map_err(EngineError::from)?,
                            dir,
                            component,
                        )
                        .map_err(EngineError::from)?,
                    )
                }
            };
            create(cli, &recipe, name)
        }
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
    with_catalog(cli, plain_http, signature, &mut |ctx| {
        let previous = ctx.store.base_history(name)?.into_iter().next();
        match refresh::refresh(ctx, name, from.clone(), &mut |note| {
            eprintln!("cairn: {note}");
        })? {
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
            Refreshed::Admitted(admission) => report(cli, name, admission, previous, ctx.actor),
        }
    })
}

fn import(
    cli: &Cli,
    source: BaseSource,
    name: &str,
    plain_http: bool,
    signature: Option<Vec<u8>>,
) -> Result<ExitCode, Failure> {
    with_catalog(cli, plain_http, signature, &mut |ctx| {
        let previous = ctx.store.base_history(name)?.into_iter().next();
        let admission = refresh::import(ctx, name, source.clone(), &mut |note| {
            eprintln!("cairn: {note}");
        })?;
        report(cli, name, admission, previous, ctx.actor)
    })
}

/// Runs `f` with what a change to the catalog needs: org.toml, the store, the
/// actor (a platform-admin once the organisation has identities, checked
/// before any work), the image store, registry pulls, and the publisher's
/// signatures (given, or attached to the image in its registry).
fn with_catalog(
    cli: &Cli,
    plain_http: bool,
    signature: Option<Vec<u8>>,
    f: &mut dyn FnMut(&refresh::Refresh<'_>) -> Result<ExitCode, Failure>,
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
    let connection = super::image::connection(plain_http);
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
    f(&refresh::Refresh {
        data: &data,
        store: &*store,
        images: &images,
        org: &org,
        actor: actor.as_ref(),
        pull: Some(&pull),
        signatures: &signatures,
    })
}

/// Prints what the catalog's gate decided.
fn report(
    cli: &Cli,
    name: &str,
    admission: Admission,
    previous: Option<cairn_model::BaseRecord>,
    actor: Option<&cairn_policy::Identity>,
) -> Result<ExitCode, Failure> {
    match admission {
        Admission::Admitted {
            record,
            evidence,
            replaces,
            log_index,
        } => {
            // Package by package against the entry it replaces (when that one
            // kept its list): the same packages must give the same digest.
            let compared = previous
                .filter(|p| !p.package_list.is_empty())
                .map(|p| recipe::compare_packages(&p.package_list, &record.package_list));
            if cli.json {
                print_json(&json!({
                    "name": record.name,
                    "digest": record.digest,
                    "source": record.source,
                    "recipe": record.recipe.as_ref().map(recipe_json),
                    "packages": record.packages,
                    "package_list": record.package_list,
                    "vulnerabilities": record.vulnerabilities,
                    "sbom_evidence": evidence,
                    "replaces": replaces,
                    "compared_with_previous": compared.as_ref().map(|(added, removed, changed)| json!({
                        "added": added, "removed": removed, "changed": changed,
                    })),
                    "log_index": log_index,
                    "actor": actor.map(|a| a.name.clone()),
                }));
            } else {
                println!(
                    "base `{}` is in the catalog: {} ({} packages, {} known vulnerabilities; signed SBOM evidence {evidence}; catalog change logged at entry {log_index})",
                    record.name, record.digest, record.packages, record.vulnerabilities
                );
                if let Some(old) = &replaces {
                    if *old == record.digest {
                        println!(
                            "the same digest as the entry it follows: the base was made again identically"
                        );
                    } else {
                        println!(
                            "it replaces {old} as `{}`; `cairn base show {}` lists both",
                            record.name, record.name
                        );
                    }
                }
                if let Some((added, removed, changed)) = &compared {
                    if added.is_empty() && removed.is_empty() && changed.is_empty() {
                        println!(
                            "packages: the same {} as the previous entry",
                            record.package_list.len()
                        );
                    } else {
                        println!(
                            "packages since the previous entry: {} added, {} removed, {} changed",
                            added.len(),
                            removed.len(),
                            changed.len()
                        );
                        for p in added.iter().take(50) {
                            println!("  + {p}");
                        }
                        for p in removed.iter().take(50) {
                            println!("  - {p}");
                        }
                        for p in changed.iter().take(50) {
                            println!("  ~ {p}");
                        }
                    }
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

fn create(cli: &Cli, recipe: &BaseRecipe, name: &str) -> Result<ExitCode, Failure> {
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    eprintln!("cairn: making `{name}`: {}", recipe.describe());
    let rootfs = recipe::run_recipe(recipe, work.path())?;
    let source = BaseSource::Created {
        rootfs,
        recipe: recipe.clone(),
    };
    import(cli, source, name, false, None)
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
        if let Some(r) = &b.recipe {
            println!("         recipe: {}", r.to_json());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn base_json(b: &cairn_model::BaseRecord) -> serde_json::Value {
    json!({
        "name": b.name,
        "digest": b.digest,
        "source": b.source,
        "recipe": b.recipe.as_ref().map(recipe_json),
        "imported_at": cairn_model::time::rfc3339_utc(b.imported_at_ms),
        "packages": b.packages,
        "package_list": b.package_list,
        "vulnerabilities": b.vulnerabilities,
    })
}

/// A recipe as `--json` shows it (the same fields the store keeps).
fn recipe_json(r: &BaseRecipe) -> serde_json::Value {
    serde_json::from_str(&r.to_json()).unwrap_or(serde_json::Value::Null)
}

//! A new version of a catalog base (`cairn base refresh NAME [--from SOURCE]`):
//! from a given newer source, or by running again the recipe its current entry
//! records — `mmdebstrap` against the archive as it is now for a `debian` base,
//! the `tiny` recipe, the same root filesystem or layout path read again. The
//! new version enters through exactly the steps of an import (pinned digest,
//! verified blobs, safe unpack, SBOM, scan, the catalog's gate, signed evidence,
//! a `catalog-change` entry naming the digest it replaces); the old version
//! stays in the name's history, so what is deployed on it stays known.

use std::path::Path;

use cairn_model::config::OrgConfig;
use cairn_model::{BaseRecipe, DebianRecipe};
use cairn_sbom::cyclonedx::DocumentInput;
use cairn_store::Store;

use super::Images;
use super::catalog::{self, Admission, BaseSource, Candidate, Puller, Vetting};
use crate::host::now_ms;
use crate::{DataDir, EngineError};

/// How a `debian` base made before recipes were recorded says what it was,
/// before its suite.
const LEGACY_DEBIAN_HOW: &str = "mmdebstrap --variant=minbase ";

/// What a base's new version is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// A recipe cairn runs (`cairn base create`), with a fresh epoch for a
    /// Debian one: the archive has moved on since.
    Made(BaseRecipe),
    /// A source read again (a root filesystem or a layout path) or given.
    Source(BaseSource),
}

impl Recipe {
    /// The recipe of a catalog entry: the recipe it records, else (an entry
    /// from before recipes were recorded, or an import) its recorded source. A
    /// registry reference is pinned by digest, so reading it again gives the
    /// same version: the newer one must be named.
    pub fn of_entry(
        name: &str,
        entry: &cairn_model::BaseRecord,
        org: &OrgConfig,
    ) -> Result<Recipe, EngineError> {
        let refuse = |why: String| EngineError::BaseRefresh {
            name: name.to_owned(),
            why,
        };
        if let Some(recipe) = &entry.recipe {
            return Ok(Recipe::Made(recipe.clone()));
        }
        let source = entry.source.as_str();
        if let Some(how) = source.strip_prefix("created: ") {
            if how.starts_with("tiny ") {
                return Ok(Recipe::Made(BaseRecipe::Tiny));
            }
            if let Some(suite) = how.strip_prefix(LEGACY_DEBIAN_HOW) {
                let recipe = DebianRecipe::new(suite, "minbase", &[], 0)
                    .map_err(|e| refuse(EngineError::from(e).to_string()))?;
                return Ok(Recipe::Made(BaseRecipe::Debian(recipe)));
            }
            return Err(refuse(format!(
                "its recorded recipe `{how}` is not one cairn can run again; name the new version with --from SOURCE"
            )));
        }
        if let Some(path) = source.strip_prefix("rootfs:") {
            return Ok(Recipe::Source(BaseSource::Rootfs(path.into())));
        }
        if source.starts_with("oci:") {
            return Ok(Recipe::Source(BaseSource::parse(source, org)?));
        }
        Err(refuse(format!(
            "it was imported from {source}, pinned by digest: reading it again gives the same version; name the newer one with --from HOST/REPO@sha256:…"
        )))
    }
}

/// Runs `recipe` into `work` (a fresh directory) and returns the source to
/// import. `note` gets what it does.
pub fn run_recipe(
    recipe: Recipe,
    work: &Path,
    note: &mut dyn FnMut(&str),
) -> Result<BaseSource, EngineError> {
    let refuse = |why: String| EngineError::BaseRefresh {
        name: String::new(),
        why,
    };
    match recipe {
        Recipe::Made(BaseRecipe::Debian(d)) => {
            // The archive as it is now: its newest Release date is the epoch.
            let epoch = super::recipe::debian_epoch(&d.suite)?;
            let d = DebianRecipe::new(&d.suite, &d.variant, &d.include, epoch)
                .map_err(|e| refuse(EngineError::from(e).to_string()))?;
            let recipe = BaseRecipe::Debian(d);
            note(&format!(
                "{} (from Debian's packages, as the archive is now)",
                recipe.describe()
            ));
            let rootfs = super::recipe::run_recipe(&recipe, work)?;
            Ok(BaseSource::Created { rootfs, recipe })
        }
        Recipe::Made(recipe) => {
            let rootfs = super::recipe::run_recipe(&recipe, work)?;
            Ok(BaseSource::Created { rootfs, recipe })
        }
        Recipe::Source(BaseSource::Rootfs(path)) if !path.exists() => Err(refuse(format!(
            "its recorded source {} no longer exists; name the new version with --from SOURCE",
            path.display()
        ))),
        Recipe::Source(source) => {
            // Read again without an admin at hand (the server's loop): a path
            // others may write to could hand cairn anyone's root filesystem.
            if let BaseSource::Rootfs(path) | BaseSource::Layout { dir: path, .. } = &source {
                use std::os::unix::fs::MetadataExt;
                let meta =
                    std::fs::symlink_metadata(path).map_err(EngineError::io("inspect", path))?;
                if meta.file_type().is_symlink() || meta.mode() & 0o022 != 0 {
                    return Err(refuse(format!(
                        "its recorded source {} is a symlink or writable by group or others: cairn does not read it again by itself; name the new version with --from SOURCE",
                        path.display()
                    )));
                }
            }
            Ok(source)
        }
    }
}

/// The SBOM and the scan of an unpacked base. `note` gets what was skipped
/// and what could not be matched.
pub fn vet(
    store: &dyn Store,
    rootfs: &Path,
    name: &str,
    note: &mut dyn FnMut(&str),
) -> Result<Vetting, EngineError> {
    let mut collected = crate::inventory::collect_rootfs(rootfs)?;
    collected.name = name.to_owned();
    for s in &collected.skipped {
        note(&format!("skipped {}: {}", s.path, s.reason));
    }
    let mut uuid = [0u8; 16];
    aws_lc_rs::rand::fill(&mut uuid).map_err(|_| EngineError::NoRandomness)?;
    let timestamp = cairn_model::time::rfc3339_utc(now_ms());
    let doc = cairn_sbom::cyclonedx::to_json(&DocumentInput {
        subject: collected.subject(),
        components: &collected.report.components,
        uuid,
        timestamp: &timestamp,
        tool_version: env!("CARGO_PKG_VERSION"),
    })
    .map_err(|e| EngineError::BaseRefresh {
        name: name.to_owned(),
        why: format!("cannot write its SBOM document: {e}"),
    })?;
    let sbom: serde_json::Value =
        serde_json::from_slice(&doc).map_err(|e| EngineError::BaseRefresh {
            name: name.to_owned(),
            why: format!("its SBOM document does not read back: {e}"),
        })?;
    let evaluation = crate::inventory::evaluate(store, &collected)?;
    // A stored record that does not parse stops the admission: a base is not
    // admitted on a scan that skipped advisories.
    if let Some(bad) = evaluation
        .not_evaluated
        .iter()
        .find(|n| n.subject.starts_with("advisory "))
    {
        return Err(EngineError::BaseRefresh {
            name: name.to_owned(),
            why: format!("stored {} does not parse: {}", bad.subject, bad.reason),
        });
    }
    // What could not be matched (an OS package of an unknown release, a
    // malformed version) is counted and its first reason shown, never passed.
    let unmatched: Vec<_> = evaluation
        .not_evaluated
        .iter()
        .filter(|n| !n.subject.starts_with("advisory "))
        .collect();
    if let Some(first) = unmatched.first() {
        note(&format!(
            "not evaluated against advisories: {} (first: {}: {})",
            unmatched.len(),
            first.subject,
            first.reason
        ));
    }
    let vulnerabilities = evaluation
        .report
        .vulnerabilities
        .iter()
        .map(|f| {
            let rating = f
                .severity
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |s| s.rating.as_str().to_owned());
            (f.advisory_id.clone(), rating)
        })
        .collect();
    Ok(Vetting {
        sbom,
        packages: collected.report.components.len() as u64,
        package_list: super::recipe::package_list(&collected.report.components),
        vulnerabilities,
        signature: Ok(None),
    })
}

/// What [`refresh`] did.
#[derive(Debug)]
pub enum Refreshed {
    /// The new version is the catalog's entry for the name now.
    Admitted(Admission),
    /// The recipe (or the source) gives the version the name has already.
    Unchanged { digest: String },
}

/// The publisher's signatures (Sigstore bundles) over a candidate.
pub type Signatures<'a> = &'a dyn Fn(&Candidate) -> Result<Vec<Vec<u8>>, EngineError>;

/// Everything a refresh needs from its caller.
#[allow(missing_debug_implementations)]
pub struct Refresh<'a> {
    pub data: &'a DataDir,
    pub store: &'a dyn Store,
    pub images: &'a Images,
    pub org: &'a OrgConfig,
    /// Who asked (authorised for `change-catalog` by the caller).
    pub actor: Option<&'a cairn_policy::Identity>,
    pub pull: Option<Puller<'a>>,
    /// The publisher's signatures over the new version, when the organisation
    /// names base signers (given, or attached in its registry).
    pub signatures: Signatures<'a>,
}

/// Makes a new version of catalog base `name`: from `from`, else from its
/// current entry's recipe; admitted through the catalog's gate like any
/// import. `note` gets each step.
pub fn refresh(
    ctx: &Refresh<'_>,
    name: &str,
    from: Option<BaseSource>,
    note: &mut dyn FnMut(&str),
) -> Result<Refreshed, EngineError> {
    let current = ctx
        .store
        .base_history(name)?
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::BaseRefresh {
            name: name.to_owned(),
            why: "it is not in the catalog; `cairn base import` or `cairn base create` adds it"
                .to_owned(),
        })?;
    let work = super::rebase::scratch_dir(ctx.data)?;
    let source = match from {
        Some(source) => source,
        None => {
            let recipe = Recipe::of_entry(name, &current, ctx.org)?;
            note(&format!(
                "running the recipe of `{name}` again (recorded source: {})",
                current.source
            ));
            run_recipe(recipe, work.path(), note).map_err(|e| match e {
                EngineError::BaseRefresh { why, .. } => EngineError::BaseRefresh {
                    name: name.to_owned(),
                    why,
                },
                other => other,
            })?
        }
    };
    note(&format!("importing {} as `{name}`", source.describe()));
    let candidate = catalog::stage(ctx.images, name, source, ctx.pull)?;
    let digest = candidate.image.manifest_digest.to_string();
    if digest == current.digest {
        return Ok(Refreshed::Unchanged { digest });
    }
    Ok(Refreshed::Admitted(vet_and_admit(
        ctx, name, &candidate, note,
    )?))
}

/// Imports `source` as catalog base `name` (`cairn base import`, and the
/// last steps of every refresh): staged (pinned digest, verified blobs, safe
/// unpack), its SBOM and scan, the publisher's signatures checked, then the
/// catalog's gate. `note` gets each step.
pub fn import(
    ctx: &Refresh<'_>,
    name: &str,
    source: BaseSource,
    note: &mut dyn FnMut(&str),
) -> Result<Admission, EngineError> {
    note(&format!("importing {} as `{name}`", source.describe()));
    let candidate = catalog::stage(ctx.images, name, source, ctx.pull)?;
    vet_and_admit(ctx, name, &candidate, note)
}

/// A staged candidate's SBOM and scan, its publisher's signatures, and the
/// catalog's gate: the one way into the catalog.
fn vet_and_admit(
    ctx: &Refresh<'_>,
    name: &str,
    candidate: &Candidate,
    note: &mut dyn FnMut(&str),
) -> Result<Admission, EngineError> {
    note(&format!(
        "{} unpacked and verified ({} layers); making its SBOM",
        candidate.image.manifest_digest,
        candidate.image.layers.len()
    ));
    let mut vetting = vet(ctx.store, &candidate.rootfs, name, note)?;
    let bundles = (ctx.signatures)(candidate)?;
    vetting.signature = catalog::check_signature(ctx.org, candidate, &bundles);
    if let Ok(Some(key)) = &vetting.signature {
        note(&format!("the publisher's signature verifies (key {key})"));
    }
    note(&format!(
        "{} components, {} known vulnerabilities",
        vetting.packages,
        vetting.vulnerabilities.len()
    ));
    catalog::admit(
        ctx.data, ctx.store, ctx.images, ctx.org, candidate, &vetting, ctx.actor,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_recorded_source_gives_its_recipe_or_says_why_not() {
        let org = OrgConfig::default();
        let entry = |source: &str, recipe: Option<BaseRecipe>| cairn_model::BaseRecord {
            name: "b".into(),
            digest: "sha256:00".into(),
            source: source.into(),
            imported_at_ms: 0,
            packages: 0,
            vulnerabilities: 0,
            recipe,
            package_list: Vec::new(),
        };
        let of = |source: &str| Recipe::of_entry("b", &entry(source, None), &org);
        assert_eq!(
            of("created: tiny (users, groups, /tmp; for static binaries)").unwrap(),
            Recipe::Made(BaseRecipe::Tiny)
        );
        let Recipe::Made(BaseRecipe::Debian(d)) =
            of("created: mmdebstrap --variant=minbase bookworm").unwrap()
        else {
            panic!("a legacy debian entry is a debian recipe")
        };
        assert_eq!(
            (d.suite.as_str(), d.variant.as_str()),
            ("bookworm", "minbase")
        );
        let recorded = DebianRecipe::new("bookworm", "minbase", &["make".to_owned()], 7).unwrap();
        assert_eq!(
            Recipe::of_entry(
                "b",
                &entry(
                    "created: whatever",
                    Some(BaseRecipe::Debian(recorded.clone()))
                ),
                &org
            )
            .unwrap(),
            Recipe::Made(BaseRecipe::Debian(recorded))
        );
        assert_eq!(
            of("rootfs:/srv/base").unwrap(),
            Recipe::Source(BaseSource::Rootfs("/srv/base".into()))
        );
        assert!(of("created: mmdebstrap --variant=minbase ../x").is_err());
        let pinned = of("registry.example.org/base@sha256:00")
            .unwrap_err()
            .to_string();
        assert!(pinned.contains("pinned by digest"), "{pinned}");
        assert!(of("created: something else").is_err());
    }
}

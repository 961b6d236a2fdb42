//! Images as cairn records them: the base-image catalog and the images built by
//! runs (their manifest digests are what gets tested, signed and deployed).

use crate::RunId;

/// One entry of the base-image catalog: a base that passed the catalog's gate.
/// A name may have several entries over time; the newest is the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRecord {
    pub name: String,
    /// The manifest digest, `sha256:…`.
    pub digest: String,
    /// Where it came from: `rootfs:PATH`, `oci:DIR[:REF]` or a registry reference.
    pub source: String,
    pub imported_at_ms: i64,
    /// Components in its SBOM (OS packages and any lockfiles).
    pub packages: u64,
    /// Known vulnerabilities found when it entered the catalog.
    pub vulnerabilities: u64,
    /// How cairn made it (`cairn base create`), so it can be made again; `None`
    /// for an imported base.
    pub recipe: Option<BaseRecipe>,
    /// Its OS packages as `name=version` (sorted), from its SBOM, so a later
    /// entry can be compared package by package.
    pub package_list: Vec<String>,
}

/// How `cairn base create` makes a base: the data a later create (or `cairn
/// base refresh`) needs to make it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRecipe {
    /// A few files for static binaries.
    Tiny,
    /// `mmdebstrap` from Debian's packages.
    Debian(DebianRecipe),
    /// A Rust toolchain directory (rustup's or rust-installer's layout)
    /// packed into `/usr/local` of a Debian base made by `mmdebstrap`.
    Rust(RustRecipe),
}

/// The Rust components a toolchain base holds unless told otherwise.
pub const RUST_COMPONENTS: &[&str] = &["cargo", "rust-std", "rustc"];

/// A Rust toolchain base: the named components of the toolchain directory
/// (each one's files as its rust-installer manifest lists them), under
/// `/usr/local` of a Debian base (`system`: minbase with the C linker and
/// libc's development files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustRecipe {
    pub system: DebianRecipe,
    /// The toolchain directory on the host (absolute, as resolved when made).
    pub toolchain: String,
    /// Component names without their target (`cargo`, `rust-std`, `rustc`;
    /// sorted, no duplicates).
    pub components: Vec<String>,
}

impl RustRecipe {
    /// A checked recipe: an absolute toolchain path without `..`, control
    /// characters or a NUL, and component names rust-installer could write.
    pub fn new(
        system: DebianRecipe,
        toolchain: &str,
        components: &[String],
    ) -> Result<RustRecipe, RecipeError> {
        let path_ok = toolchain.starts_with('/')
            && toolchain.len() <= 4096
            && !toolchain.chars().any(char::is_control)
            && !toolchain.split('/').any(|c| c == "..");
        if !path_ok {
            return Err(RecipeError::Toolchain(toolchain.to_owned()));
        }
        if components.is_empty() || components.len() > 64 {
            return Err(RecipeError::Component(components.join(",")));
        }
        let mut list = Vec::with_capacity(components.len());
        for c in components {
            if !is_debian_package_name(c) || c.contains('+') {
                return Err(RecipeError::Component(c.clone()));
            }
            list.push(c.clone());
        }
        list.sort();
        list.dedup();
        Ok(RustRecipe {
            system,
            toolchain: toolchain.to_owned(),
            components: list,
        })
    }
}

/// `mmdebstrap --variant=VARIANT --include=INCLUDE SUITE` with
/// `SOURCE_DATE_EPOCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianRecipe {
    pub suite: String,
    pub variant: String,
    /// Packages beyond the variant's (sorted, no duplicates).
    pub include: Vec<String>,
    /// Every time inside the base (mtimes, shadow's last-change days) is at or
    /// before this: the newest `Date:` of the suite's Release files when it was
    /// made, or the value given.
    pub source_date_epoch: u64,
}

/// The variants `mmdebstrap` knows that a base may use.
pub const DEBIAN_VARIANTS: &[&str] = &[
    "minbase",
    "buildd",
    "essential",
    "apt",
    "required",
    "important",
    "standard",
];

/// Most packages one recipe may include.
pub const MAX_INCLUDE: usize = 256;

/// Why a recipe is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("`{0}` is not a Debian suite name (lower-case letters, digits and `-`)")]
    Suite(String),
    #[error("`{0}` is not an mmdebstrap variant cairn uses (one of: {list})", list = DEBIAN_VARIANTS.join(", "))]
    Variant(String),
    #[error(
        "`{0}` is not a Debian package name (lower-case letters, digits, `+`, `-`, `.`; at least two characters, starting with a letter or digit)"
    )]
    Package(String),
    #[error("a recipe includes at most {MAX_INCLUDE} packages ({0} given)")]
    TooMany(usize),
    #[error("`{0}` is not a toolchain directory cairn takes (an absolute path without `..`)")]
    Toolchain(String),
    #[error(
        "`{0}` is not a Rust component name (lower-case letters, digits, `-`, `.`; e.g. cargo, rust-std, rustc)"
    )]
    Component(String),
    #[error("the recipe text is not one cairn wrote: {0}")]
    Text(String),
}

/// A Debian package name (Debian Policy 5.6.1): `[a-z0-9][a-z0-9+.-]+`.
pub fn is_debian_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 128
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        })
}

impl DebianRecipe {
    /// A checked recipe: the include list sorted and de-duplicated (so the same
    /// package set is the same recipe, whatever order it was typed in).
    pub fn new(
        suite: &str,
        variant: &str,
        include: &[String],
        source_date_epoch: u64,
    ) -> Result<DebianRecipe, RecipeError> {
        let suite_ok = !suite.is_empty()
            && suite.len() <= 64
            && suite
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !suite_ok {
            return Err(RecipeError::Suite(suite.to_owned()));
        }
        if !DEBIAN_VARIANTS.contains(&variant) {
            return Err(RecipeError::Variant(variant.to_owned()));
        }
        if include.len() > MAX_INCLUDE {
            return Err(RecipeError::TooMany(include.len()));
        }
        let mut list = Vec::with_capacity(include.len());
        for name in include {
            if !is_debian_package_name(name) {
                return Err(RecipeError::Package(name.clone()));
            }
            list.push(name.clone());
        }
        list.sort();
        list.dedup();
        Ok(DebianRecipe {
            suite: suite.to_owned(),
            variant: variant.to_owned(),
            include: list,
            source_date_epoch,
        })
    }
}

impl BaseRecipe {
    /// How the catalog's `source` describes it.
    pub fn describe(&self) -> String {
        match self {
            BaseRecipe::Tiny => "tiny (users, groups, /tmp; for static binaries)".to_owned(),
            BaseRecipe::Debian(d) => {
                let mut out = format!("mmdebstrap --variant={}", d.variant);
                if !d.include.is_empty() {
                    out.push_str(&format!(" --include={}", d.include.join(",")));
                }
                out.push_str(&format!(
                    " {} (SOURCE_DATE_EPOCH={})",
                    d.suite, d.source_date_epoch
                ));
                out
            }
            BaseRecipe::Rust(r) => format!(
                "rust toolchain {} ({}) in /usr/local on {}",
                r.toolchain,
                r.components.join(", "),
                BaseRecipe::Debian(r.system.clone()).describe()
            ),
        }
    }

    /// The recipe as the JSON text the store keeps.
    pub fn to_json(&self) -> String {
        fn debian(d: &DebianRecipe) -> serde_json::Value {
            serde_json::json!({
                "kind": "debian",
                "suite": d.suite,
                "variant": d.variant,
                "include": d.include,
                "source_date_epoch": d.source_date_epoch,
            })
        }
        let value = match self {
            BaseRecipe::Tiny => serde_json::json!({ "kind": "tiny" }),
            BaseRecipe::Debian(d) => debian(d),
            BaseRecipe::Rust(r) => serde_json::json!({
                "kind": "rust",
                "toolchain": r.toolchain,
                "components": r.components,
                "system": debian(&r.system),
            }),
        };
        value.to_string()
    }

    /// Reads [`BaseRecipe::to_json`]'s text back, checked as when it was made.
    pub fn from_json(text: &str) -> Result<BaseRecipe, RecipeError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| RecipeError::Text(e.to_string()))?;
        Self::from_value(&value)
    }

    fn from_value(value: &serde_json::Value) -> Result<BaseRecipe, RecipeError> {
        let bad = |why: &str| RecipeError::Text(why.to_owned());
        let strings = |v: &serde_json::Value, what: &str| -> Result<Vec<String>, RecipeError> {
            v.as_array()
                .ok_or_else(|| bad(what))?
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(what)))
                .collect()
        };
        match value["kind"].as_str() {
            Some("rust") => {
                let BaseRecipe::Debian(system) = Self::from_value(&value["system"])? else {
                    return Err(bad("a rust recipe's system is not a debian recipe"));
                };
                let toolchain = value["toolchain"]
                    .as_str()
                    .ok_or_else(|| bad("no toolchain"))?;
                let components = strings(&value["components"], "no component list")?;
                Ok(BaseRecipe::Rust(RustRecipe::new(
                    system,
                    toolchain,
                    &components,
                )?))
            }
            Some("tiny") => Ok(BaseRecipe::Tiny),
            Some("debian") => {
                let suite = value["suite"].as_str().ok_or_else(|| bad("no suite"))?;
                let variant = value["variant"].as_str().ok_or_else(|| bad("no variant"))?;
                let include = strings(&value["include"], "no include list")?;
                let epoch = value["source_date_epoch"]
                    .as_u64()
                    .ok_or_else(|| bad("no source_date_epoch"))?;
                Ok(BaseRecipe::Debian(DebianRecipe::new(
                    suite, variant, &include, epoch,
                )?))
            }
            _ => Err(bad("unknown kind")),
        }
    }

    /// `SOURCE_DATE_EPOCH` of what it makes (0 for `tiny`).
    pub fn source_date_epoch(&self) -> u64 {
        match self {
            BaseRecipe::Tiny => 0,
            BaseRecipe::Debian(d) => d.source_date_epoch,
            BaseRecipe::Rust(r) => r.system.source_date_epoch,
        }
    }
}

/// An image built (or rebased) by cairn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The manifest digest, `sha256:…`.
    pub digest: String,
    pub workload: String,
    /// The run that built it (none for a rebase made outside a run).
    pub run: Option<RunId>,
    pub commit: String,
    pub base_name: String,
    pub base_digest: String,
    pub created_at_ms: i64,
    /// For a rebase: the image it was rebased from.
    pub rebased_from: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipe_is_checked_sorted_and_read_back() {
        let include = ["python3", "make", "python3"].map(str::to_owned);
        let d = DebianRecipe::new("bookworm", "minbase", &include, 1_700_000_000).unwrap();
        assert_eq!(d.include, ["make", "python3"]);
        let r = BaseRecipe::Debian(d);
        assert_eq!(BaseRecipe::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(
            r.describe(),
            "mmdebstrap --variant=minbase --include=make,python3 bookworm (SOURCE_DATE_EPOCH=1700000000)"
        );
        assert_eq!(
            BaseRecipe::from_json(&BaseRecipe::Tiny.to_json()).unwrap(),
            BaseRecipe::Tiny
        );
    }

    #[test]
    fn a_rust_recipe_is_checked_and_read_back() {
        let system = DebianRecipe::new("bookworm", "minbase", &["gcc".to_owned()], 7).unwrap();
        let components = ["rustc", "cargo", "rustc"].map(str::to_owned);
        let r = RustRecipe::new(system.clone(), "/opt/rust", &components).unwrap();
        assert_eq!(r.components, ["cargo", "rustc"]);
        let r = BaseRecipe::Rust(r);
        assert_eq!(BaseRecipe::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(r.source_date_epoch(), 7);
        assert_eq!(
            r.describe(),
            "rust toolchain /opt/rust (cargo, rustc) in /usr/local on mmdebstrap --variant=minbase --include=gcc bookworm (SOURCE_DATE_EPOCH=7)"
        );
        for (dir, comps, want) in [
            ("relative/rust", vec!["rustc"], "not a toolchain directory"),
            ("/opt/../etc", vec!["rustc"], "not a toolchain directory"),
            ("/opt/rust\n", vec!["rustc"], "not a toolchain directory"),
            ("/opt/rust", vec![], "not a Rust component"),
            ("/opt/rust", vec!["--x"], "not a Rust component"),
            ("/opt/rust", vec!["a/b"], "not a Rust component"),
        ] {
            let comps: Vec<String> = comps.into_iter().map(str::to_owned).collect();
            let err = RustRecipe::new(system.clone(), &dir.replace("\\n", "\n"), &comps)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{dir} {comps:?}: {err}");
        }
    }

    #[test]
    fn a_bad_recipe_is_refused_naming_what() {
        let one = |s: &str| vec![s.to_owned()];
        for (suite, variant, include, want) in [
            ("Bookworm", "minbase", vec![], "not a Debian suite"),
            ("bookworm;rm", "minbase", vec![], "not a Debian suite"),
            ("bookworm", "custom", vec![], "not an mmdebstrap variant"),
            (
                "bookworm",
                "minbase",
                one("--hook-dir=/x"),
                "not a Debian package",
            ),
            ("bookworm", "minbase", one("a,b"), "not a Debian package"),
            ("bookworm", "minbase", one("Make"), "not a Debian package"),
            ("bookworm", "minbase", one("x"), "not a Debian package"),
        ] {
            let err = DebianRecipe::new(suite, variant, &include, 0).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{suite} {variant} {include:?}: {err}"
            );
        }
        let many: Vec<String> = (0..=MAX_INCLUDE).map(|i| format!("p{i}")).collect();
        assert!(matches!(
            DebianRecipe::new("bookworm", "minbase", &many, 0),
            Err(RecipeError::TooMany(_))
        ));
        assert!(BaseRecipe::from_json(r#"{"kind":"debian","suite":"x y","variant":"minbase","include":[],"source_date_epoch":1}"#).is_err());
    }
}

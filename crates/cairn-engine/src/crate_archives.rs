//! Licences of Cargo registry crates, from the `.crate` archives a run's
//! dependency fetch downloaded into the workspace's CARGO_HOME
//! (`.home/.cargo/registry/cache/<index>/<name>-<version>.crate`): `Cargo.lock`
//! states no licence, the crate's own packaged `Cargo.toml` does.
//!
//! An archive counts only when its SHA-256 is the `checksum` the lockfile pins
//! for that crate (the bytes cargo verified and built from), and only its
//! `<name>-<version>/Cargo.toml` entry is read: a regular entry, named once,
//! of that crate and version, bounded. The archive is read beneath the
//! workspace with no symlink followed and no special file opened (`cairn_fs`),
//! bounded in size, entries and unpacked bytes, in memory: nothing is written
//! to disk. A crate without such an archive keeps no licence, and the gate
//! denies it ("no known licence"): never a guess.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use cairn_sbom::{Component, Ecosystem, Licence};

/// Where cargo keeps downloaded archives, beneath the workspace (the sandbox's
/// `HOME` is `/workspace/.home`, so its CARGO_HOME is `.home/.cargo`).
pub(crate) const CACHE_DIR: &str = ".home/.cargo/registry/cache";
/// The most registry directories looked at under [`CACHE_DIR`].
const MAX_INDEXES: u64 = 64;
/// The largest archive read (crates.io accepts 10 MiB unless raised).
pub(crate) const MAX_ARCHIVE_BYTES: u64 = 64 * 1024 * 1024;
/// The most bytes one archive may unpack to.
pub(crate) const MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;
/// The most entries one archive may have.
pub(crate) const MAX_ENTRIES: usize = 200_000;
/// The most refusals named one by one in the log (the rest are counted).
const MAX_NOTED: usize = 50;

/// The licences found, by (name, version, pinned checksum).
#[derive(Debug, Default, Clone)]
pub(crate) struct CrateLicences {
    found: BTreeMap<(String, String, String), Licence>,
}

impl CrateLicences {
    /// Gives each Cargo component with no licence the one read from the
    /// archive its own lockfile pins (same name, version and checksum);
    /// returns how many got one.
    pub(crate) fn apply(&self, components: &mut [Component]) -> usize {
        let mut given = 0;
        for c in components.iter_mut() {
            if c.ecosystem != Ecosystem::Cargo || c.licence != Licence::NotGiven {
                continue;
            }
            let Some(checksum) = &c.checksum else {
                continue;
            };
            if let Some(l) = self
                .found
                .get(&(c.name.clone(), c.version.clone(), checksum.clone()))
            {
                c.licence = l.clone();
                given += 1;
            }
        }
        given
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

/// Reads the licence of every registry crate among `components` (from a
/// lockfile that pins its checksum) from its archive under `workspace`'s
/// [`CACHE_DIR`]; `note` hears the summary and each crate left without one.
pub(crate) fn read(
    workspace: &Path,
    components: &[Component],
    note: &mut dyn FnMut(&str),
) -> CrateLicences {
    let wanted: BTreeSet<(String, String, String)> = components
        .iter()
        .filter(|c| c.ecosystem == Ecosystem::Cargo && c.licence == Licence::NotGiven)
        .filter_map(|c| Some((c.name.clone(), c.version.clone(), c.checksum.clone()?)))
        .collect();
    let mut out = CrateLicences::default();
    if wanted.is_empty() {
        return out;
    }
    let indexes = match index_dirs(workspace) {
        Ok(dirs) => dirs,
        Err(why) => {
            note(&format!(
                "crate licences: none of the {} registry crates has one: {why}",
                wanted.len()
            ));
            return out;
        }
    };
    let mut refused: Vec<String> = Vec::new();
    for (name, version, checksum) in wanted {
        match licence_of(workspace, &indexes, &name, &version, &checksum) {
            Ok(licence) => {
                out.found.insert((name, version, checksum), licence);
            }
            Err(why) => refused.push(format!("{name} {version}: {why}")),
        }
    }
    note(&format!(
        "crate licences: {} of {} registry crates from their archives in {CACHE_DIR} (each one's SHA-256 the checksum Cargo.lock pins){}",
        out.found.len(),
        out.found.len() + refused.len(),
        if refused.is_empty() {
            String::new()
        } else {
            format!("; {} without a licence:", refused.len())
        }
    ));
    for r in refused.iter().take(MAX_NOTED) {
        note(&format!("  {r}"));
    }
    if refused.len() > MAX_NOTED {
        note(&format!("  and {} more", refused.len() - MAX_NOTED));
    }
    out
}

/// The registry directories under [`CACHE_DIR`] (directories only; a symlink
/// or anything else there is not entered).
fn index_dirs(workspace: &Path) -> Result<Vec<String>, String> {
    let root = cairn_fs::Dir::open(workspace).map_err(|e| e.to_string())?;
    let cache = match root.dir_beneath(CACHE_DIR) {
        Ok(dir) => dir,
        Err(e) if e.is_not_found() => {
            return Err(format!("no crate archives in {CACHE_DIR}"));
        }
        Err(e) => return Err(format!("{CACHE_DIR} cannot be read: {}", fs_reason(&e))),
    };
    let entries = cache
        .entries(MAX_INDEXES + 1)
        .map_err(|e| format!("{CACHE_DIR} cannot be listed: {}", fs_reason(&e)))?;
    if entries.len() as u64 > MAX_INDEXES {
        return Err(format!(
            "{CACHE_DIR} has more than {MAX_INDEXES} registry directories"
        ));
    }
    let mut dirs: Vec<String> = entries
        .into_iter()
        .filter(|e| e.meta.kind == cairn_fs::Kind::Dir)
        .filter_map(|e| e.name.to_str().map(str::to_owned))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The licence of `name` `version` from the first archive under one of
/// `indexes` whose SHA-256 is `checksum`.
fn licence_of(
    workspace: &Path,
    indexes: &[String],
    name: &str,
    version: &str,
    checksum: &str,
) -> Result<Licence, String> {
    // Names and versions come from the lockfile: a path separator or `..`
    // never names an archive.
    let file = format!("{name}-{version}.crate");
    if file.contains('/') || file.starts_with('.') || name.contains("..") {
        return Err("its name or version cannot name an archive".to_owned());
    }
    let root = cairn_fs::Dir::open(workspace).map_err(|e| e.to_string())?;
    let mut why_not: Vec<String> = Vec::new();
    for index in indexes {
        let rel = format!("{CACHE_DIR}/{index}/{file}");
        let bytes = match root
            .file_beneath(&rel)
            .and_then(|f| f.read_bounded(MAX_ARCHIVE_BYTES))
        {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                why_not.push(format!("{rel}: {}", fs_reason(&e)));
                continue;
            }
        };
        let digest = cairn_evidence::sha256(&bytes);
        if digest.hex() != checksum {
            why_not.push(format!(
                "{rel}: its SHA-256 is {}, not the checksum Cargo.lock pins ({checksum})",
                digest.hex()
            ));
            continue;
        }
        return manifest_licence(&bytes, name, version).map_err(|why| format!("{rel}: {why}"));
    }
    if why_not.is_empty() {
        Err(format!("no archive {CACHE_DIR}/*/{file}"))
    } else {
        Err(why_not.join("; "))
    }
}

/// A refusal of `cairn_fs`, without the host's path.
fn fs_reason(e: &cairn_fs::FsError) -> String {
    match e {
        cairn_fs::FsError::Symlink { .. } => {
            "a symlink, which cairn does not follow in a workspace".to_owned()
        }
        cairn_fs::FsError::Special { kind, .. } => format!("a {kind}, not a regular file"),
        cairn_fs::FsError::TooLarge { size, max, .. } => {
            format!("{size} bytes, more than the limit of {max}")
        }
        cairn_fs::FsError::WrongKind { found, .. } => format!("{found}, not a regular file"),
        other => cairn_model::error_chain(other),
    }
}

/// A reader that fails once more than `left` bytes came through it.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(format!(
                "it unpacks to more than {MAX_UNPACKED_BYTES} bytes"
            ))
        })?;
        Ok(n)
    }
}

/// The licence the packaged `Cargo.toml` of a `.crate` archive (a gzip'd tar)
/// states: the one entry `<name>-<version>/Cargo.toml`, a regular file, read
/// in memory (see [`cairn_sbom::ecosystems::cargo::packaged_licence`]). Every
/// entry is looked at, so a second entry of that name (which would replace
/// the first when unpacked) is refused rather than missed.
pub(crate) fn manifest_licence(
    archive: &[u8],
    name: &str,
    version: &str,
) -> Result<Licence, String> {
    let wanted = format!("{name}-{version}/Cargo.toml");
    let unpacked = Bounded {
        inner: flate2::read::GzDecoder::new(archive),
        left: MAX_UNPACKED_BYTES,
    };
    let mut tar = tar::Archive::new(unpacked);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a .crate archive (a gzip'd tar): {e}"))?;
    let mut manifest: Option<Vec<u8>> = None;
    for (i, entry) in entries.enumerate() {
        if i >= MAX_ENTRIES {
            return Err(format!("the archive has more than {MAX_ENTRIES} entries"));
        }
        let mut entry = entry.map_err(|e| format!("the archive cannot be read: {e}"))?;
        if entry.path_bytes().as_ref() != wanted.as_bytes() {
            continue;
        }
        if manifest.is_some() {
            return Err(format!("the archive names {wanted} twice"));
        }
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            let what = if kind.is_symlink() {
                "a symlink".to_owned()
            } else if kind.is_hard_link() {
                "a hard link".to_owned()
            } else {
                format!("not a regular file ({kind:?})")
            };
            return Err(format!("its {wanted} is {what} in the archive: not read"));
        }
        let max = cairn_sbom::ecosystems::cargo::MAX_MANIFEST_BYTES as u64;
        let size = entry.size();
        if size > max {
            return Err(format!(
                "its {wanted} is {size} bytes, more than the limit of {max}: not read"
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("its {wanted} cannot be read: {e}"))?;
        if bytes.len() as u64 > max {
            return Err(format!("its {wanted} is more than {max} bytes: not read"));
        }
        manifest = Some(bytes);
    }
    let bytes = manifest.ok_or_else(|| format!("the archive has no {wanted}"))?;
    cairn_sbom::ecosystems::cargo::packaged_licence(&bytes, name, version)
        .map_err(|e| format!("its {wanted}: {}", cairn_model::error_chain(&e)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A `.crate` archive of `entries` (path, kind, bytes).
    pub(crate) fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (path, kind, bytes) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_mtime(0);
            if kind.is_symlink() {
                h.set_size(0);
                b.append_link(&mut h, path, std::str::from_utf8(bytes).unwrap())
                    .unwrap();
            } else {
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, path, *bytes).unwrap();
            }
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    const MANIFEST: &[u8] =
        b"[package]\nname = \"dep\"\nversion = \"0.1.0\"\nlicense = \"MIT OR Apache-2.0\"\n";

    #[test]
    fn only_the_crates_own_regular_manifest_once_and_bounded_is_read() {
        use tar::EntryType::{Regular, Symlink};
        let lib: &[u8] = b"pub fn f() {}\n";
        let huge = vec![b'#'; cairn_sbom::ecosystems::cargo::MAX_MANIFEST_BYTES + 1];
        let cases: Vec<(&str, Vec<u8>, Result<Licence, &str>)> = vec![
            (
                "good",
                archive(&[
                    ("dep-0.1.0/src/lib.rs", Regular, lib),
                    ("dep-0.1.0/Cargo.toml", Regular, MANIFEST),
                ]),
                Ok(Licence::Expression("MIT OR Apache-2.0".into())),
            ),
            (
                "symlinked",
                archive(&[("dep-0.1.0/Cargo.toml", Symlink, b"/etc/passwd")]),
                Err("is a symlink in the archive"),
            ),
            (
                "oversized",
                archive(&[("dep-0.1.0/Cargo.toml", Regular, &huge)]),
                Err("more than the limit of 262144"),
            ),
            (
                "twice",
                archive(&[
                    ("dep-0.1.0/Cargo.toml", Regular, MANIFEST),
                    ("dep-0.1.0/Cargo.toml", Regular, b"[package]\nname = \"dep\"\nversion = \"0.1.0\"\nlicense = \"GPL-3.0-only\"\n"),
                ]),
                Err("names dep-0.1.0/Cargo.toml twice"),
            ),
            (
                "another crate's",
                archive(&[("dep-0.1.0/Cargo.toml", Regular, b"[package]\nname = \"other\"\nversion = \"0.1.0\"\nlicense = \"MIT\"\n")]),
                Err("not of dep 0.1.0"),
            ),
            (
                "elsewhere",
                archive(&[("other-0.1.0/Cargo.toml", Regular, MANIFEST)]),
                Err("has no dep-0.1.0/Cargo.toml"),
            ),
            ("not gzip", b"not an archive".to_vec(), Err("cannot be read")),
        ];
        for (what, bytes, want) in cases {
            let got = manifest_licence(&bytes, "dep", "0.1.0");
            match (&got, &want) {
                (Ok(l), Ok(w)) => assert_eq!(l, w, "{what}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{what}: {e}"),
                _ => panic!("{what}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn an_archive_counts_only_with_the_pinned_checksum_and_never_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        let index = ws.join(CACHE_DIR).join("index.crates.io-1949cf8c6b5b557f");
        std::fs::create_dir_all(&index).unwrap();
        let good = archive(&[("dep-0.1.0/Cargo.toml", tar::EntryType::Regular, MANIFEST)]);
        std::fs::write(index.join("dep-0.1.0.crate"), &good).unwrap();
        let secret = tmp.path().join("elsewhere.crate");
        std::fs::write(&secret, &good).unwrap();
        std::os::unix::fs::symlink(&secret, index.join("linked-0.1.0.crate")).unwrap();
        let hex = cairn_evidence::sha256(&good).hex();
        let comp = |name: &str, checksum: &str| {
            let mut c = cairn_sbom::ecosystems::cargo::parse(
                "Cargo.lock",
                format!(
                    "version = 4\n\n[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{checksum}\"\n"
                )
                .as_bytes(),
            )
            .unwrap()
            .components;
            c.remove(0)
        };
        let mut components = vec![
            comp("dep", &hex),
            comp("linked", &hex),
            comp("dep", &"0".repeat(64)),
            comp("missing", &hex),
        ];
        let mut notes = Vec::new();
        let found = read(ws, &components, &mut |n| notes.push(n.to_owned()));
        let given = found.apply(&mut components);
        assert_eq!(given, 1, "{notes:#?}");
        assert_eq!(
            components[0].licence,
            Licence::Expression("MIT OR Apache-2.0".into())
        );
        for c in &components[1..] {
            assert_eq!(c.licence, Licence::NotGiven, "{}", c.name);
        }
        let text = notes.join("\n");
        assert!(text.contains("1 of 4 registry crates"), "{text}");
        assert!(
            text.contains("linked 0.1.0: ") && text.contains("a symlink"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "its SHA-256 is {hex}, not the checksum Cargo.lock pins"
            )),
            "{text}"
        );
        assert!(text.contains("missing 0.1.0: no archive"), "{text}");
    }
}

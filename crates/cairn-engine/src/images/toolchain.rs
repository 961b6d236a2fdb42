//! A Rust toolchain packed into a base (`cairn base create rust --toolchain
//! DIR`): the named components of a toolchain directory in rustup's (or
//! rust-installer's) layout, each one's files exactly as its
//! `lib/rustlib/manifest-<component>-<target>` lists them, copied into a
//! staging tree that the recipe puts under `/usr/local` of a Debian base.
//!
//! The directory is the administrator's, but read as untrusted: every path is
//! opened beneath it with no symlink in any component ([`cairn_fs`]), only
//! regular files and directories are taken (a symlink, FIFO, socket or device
//! is refused, naming it), paths in manifests must stay inside it, and sizes
//! and counts are bounded. Nothing is imported when anything is refused.
//!
//! The base's SBOM then names the components with their versions: the staging
//! tree keeps `lib/rustlib/multirust-channel-manifest.toml` (the versions
//! rustup recorded) and a `lib/rustlib/components` listing only what was
//! packed, which `cairn_sbom` reads.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use cairn_fs::{Dir, FsError, Kind, WalkLimits};
use cairn_model::RustRecipe;

use crate::EngineError;

/// Most bytes a packed toolchain may hold (8 GiB).
const MAX_BYTES: u64 = 8 << 30;
/// Most files a packed toolchain may hold.
const MAX_FILES: u64 = 200_000;
/// Largest metadata file read (a manifest, the components list).
const MAX_META: u64 = 4 << 20;
const RUSTLIB: &str = "lib/rustlib";
const CHANNEL_MANIFEST: &str = "lib/rustlib/multirust-channel-manifest.toml";

/// What was packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// `component-target` of each packed component (as `components` lists them).
    pub components: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

/// Copies the recipe's components of its toolchain directory into `out` (a
/// fresh directory), with the metadata the SBOM reads.
pub fn pack(recipe: &RustRecipe, out: &Path) -> Result<Packed, EngineError> {
    let dir_text = recipe.toolchain.clone();
    let fail = |why: String| EngineError::Toolchain {
        dir: dir_text.clone(),
        why,
    };
    let fs = |e: FsError| fail(describe(&e));
    let root = match Dir::open(Path::new(&recipe.toolchain)) {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Err(fail("it does not exist".into())),
        Err(e) => return Err(fs(e)),
    };
    let not_toolchain = |what: &str| {
        fail(format!(
            "it is not a Rust toolchain (rustup's layout, e.g. ~/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu): {what}"
        ))
    };
    let read_meta = |rel: &str| -> Result<Option<Vec<u8>>, EngineError> {
        match root.file_beneath(rel) {
            Ok(f) => f.read_bounded(MAX_META).map(Some).map_err(fs),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(fs(e)),
        }
    };
    let installed = read_meta(&format!("{RUSTLIB}/components"))?
        .ok_or_else(|| not_toolchain("it has no lib/rustlib/components"))?;
    let installed = String::from_utf8(installed)
        .map_err(|_| not_toolchain("lib/rustlib/components is not UTF-8"))?;
    let installed: Vec<&str> = installed.lines().map(str::trim).collect();
    let channel = read_meta(CHANNEL_MANIFEST)?.ok_or_else(|| {
        not_toolchain(
            "it has no lib/rustlib/multirust-channel-manifest.toml, where cairn reads the components' versions for the SBOM",
        )
    })?;
    // The targets a component may be built for: lib/rustlib/<target>/.
    let targets: Vec<String> = root
        .dir_beneath(RUSTLIB)
        .map_err(fs)?
        .entries(1024)
        .map_err(fs)?
        .into_iter()
        .filter(|e| e.meta.is_dir() && e.name != "etc")
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    let mut chosen = Vec::new();
    for want in &recipe.components {
        let found = installed.iter().find(|line| {
            **line == want.as_str()
                || targets
                    .iter()
                    .any(|t| line.strip_prefix(want.as_str()) == Some(&format!("-{t}")))
        });
        let Some(found) = found else {
            return Err(fail(format!(
                "the component `{want}` is not installed in it (lib/rustlib/components lists: {})",
                installed.join(", ")
            )));
        };
        chosen.push((*found).to_owned());
    }
    // Every packed component must have a version for the SBOM: fail closed.
    let list = chosen.join("\n");
    let versions = cairn_sbom::ecosystems::rust_toolchain::parse(
        CHANNEL_MANIFEST,
        &channel,
        Some(list.as_bytes()),
    )
    .map_err(|e| not_toolchain(&format!("{CHANNEL_MANIFEST}: {e}")))?;
    if versions.components.len() != chosen.len() {
        let why: Vec<String> = versions.notes.iter().map(|(_, n)| n.clone()).collect();
        return Err(not_toolchain(&format!(
            "{CHANNEL_MANIFEST} gives not every component a version ({})",
            why.join("; ")
        )));
    }

    let mut packed = Packed {
        components: chosen.clone(),
        files: 0,
        bytes: 0,
    };
    let mut copy = |rel: &Path| -> Result<(), EngineError> {
        let file = root.file_beneath(rel).map_err(fs)?;
        let meta = *file.meta();
        packed.files += 1;
        packed.bytes += meta.len;
        if packed.files > MAX_FILES || packed.bytes > MAX_BYTES {
            return Err(fail(format!(
                "it holds more than {MAX_FILES} files or {MAX_BYTES} bytes in the chosen components"
            )));
        }
        let dest = out.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(EngineError::io("create", parent))?;
        }
        let mut reader = file.into_std();
        let mut writer = std::fs::File::create(&dest).map_err(EngineError::io("create", &dest))?;
        std::io::copy(&mut reader, &mut writer).map_err(EngineError::io("copy to", &dest))?;
        // Only the executable bit is kept: no setuid, no group or world write.
        let mode = if meta.mode & 0o111 != 0 { 0o755 } else { 0o644 };
        writer
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(EngineError::io("chmod", &dest))?;
        Ok(())
    };
    for component in &chosen {
        let manifest_rel = format!("{RUSTLIB}/manifest-{component}");
        let manifest = read_meta(&manifest_rel)?.ok_or_else(|| {
            not_toolchain(&format!(
                "the component `{component}` has no {manifest_rel}"
            ))
        })?;
        copy(Path::new(&manifest_rel))?;
        let manifest = String::from_utf8(manifest)
            .map_err(|_| not_toolchain(&format!("{manifest_rel} is not UTF-8")))?;
        for (n, line) in manifest.lines().enumerate() {
            let bad_line = || {
                fail(format!(
                    "{manifest_rel}:{}: `{}` is not `file:PATH` or `dir:PATH` with a path inside the toolchain",
                    n + 1,
                    line.chars().take(200).collect::<String>()
                ))
            };
            let (kind, path) = line.split_once(':').ok_or_else(bad_line)?;
            let rel = Path::new(path);
            let inside = !path.is_empty()
                && rel.components().all(|c| matches!(c, Component::Normal(_)))
                && !path.chars().any(char::is_control);
            if !inside {
                return Err(bad_line());
            }
            match kind {
                "file" => copy(rel)?,
                "dir" => {
                    let sub = root.dir_beneath(rel).map_err(fs)?;
                    let entries = cairn_fs::walk(&sub, WalkLimits::default(), &[]).map_err(fs)?;
                    for entry in entries {
                        let child = rel.join(OsStr::from_bytes(&entry.rel));
                        match entry.meta.kind {
                            Kind::Dir => {}
                            Kind::File => copy(&child)?,
                            other => return Err(special(&fail, &child, other)),
                        }
                    }
                }
                _ => return Err(bad_line()),
            }
        }
    }
    // What the SBOM reads: the versions, and the components that are here.
    copy(Path::new(CHANNEL_MANIFEST))?;
    let list = out.join(RUSTLIB).join("components");
    let mut f = std::fs::File::create(&list).map_err(EngineError::io("create", &list))?;
    for c in &chosen {
        writeln!(f, "{c}").map_err(EngineError::io("write", &list))?;
    }
    Ok(packed)
}

fn special(fail: &dyn Fn(String) -> EngineError, path: &Path, kind: Kind) -> EngineError {
    fail(format!(
        "{} is a {}; a toolchain is packed from regular files and directories only",
        path.display(),
        kind.name()
    ))
}

/// An [`FsError`] said for a toolchain: a symlink or special file named as such.
fn describe(e: &FsError) -> String {
    let text = e.to_string();
    if text.contains("symlink") || text.contains("symbolic link") {
        format!(
            "{text} (a symlink inside the toolchain is never followed: it could lead out of it)"
        )
    } else {
        text
    }
}

//! Finding the known lockfiles and package databases in a source tree or an image
//! root filesystem, parsing each, and reporting per-file errors beside the components.

use crate::component::Component;
use crate::ecosystems::{self, Output};
use crate::error::ParseError;

/// The kinds of file cairn reads components from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    CargoLock,
    NpmLock,
    PoetryLock,
    UvLock,
    Requirements,
    GoMod,
    GoSum,
    GemfileLock,
    ComposerLock,
    PomXml,
    MavenDependencyList,
    DpkgStatus,
    ApkInstalled,
}

impl FileKind {
    /// Every kind, in declaration order.
    pub const ALL: [FileKind; 13] = [
        FileKind::CargoLock,
        FileKind::NpmLock,
        FileKind::PoetryLock,
        FileKind::UvLock,
        FileKind::Requirements,
        FileKind::GoMod,
        FileKind::GoSum,
        FileKind::GemfileLock,
        FileKind::ComposerLock,
        FileKind::PomXml,
        FileKind::MavenDependencyList,
        FileKind::DpkgStatus,
        FileKind::ApkInstalled,
    ];
}

/// A file that could not be parsed; the rest of the scan goes on.
#[derive(Debug)]
pub struct FileError {
    pub path: String,
    pub kind: FileKind,
    pub error: ParseError,
}

/// Something a parser deliberately left out (a local package, an unpinned requirement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

/// One parsed file.
#[derive(Debug)]
pub struct ParsedFile {
    pub path: String,
    pub kind: FileKind,
    pub components: usize,
}

/// Everything a scan found: components (sorted by purl, then file), the files parsed,
/// the files that failed, what was left out and why.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub components: Vec<Component>,
    pub files: Vec<ParsedFile>,
    pub errors: Vec<FileError>,
    pub notes: Vec<Note>,
}

/// Directories whose lockfiles are copies of a dependency's, not the tree's own.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    "vendor",
    ".git",
    "bower_components",
    "site-packages",
    "dist-packages",
    ".venv",
    "__pypackages__",
];

fn normalise(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            return p;
        }
    }
}

/// The kind of a file from its path (relative to the tree or image root), or `None`
/// for a file cairn does not read or one inside a vendored or installed-dependency
/// directory (`node_modules/`, `vendor/`, …), whose lockfiles would duplicate the
/// tree's own. OS databases are recognised only at their place under the root.
pub fn detect(path: &str) -> Option<FileKind> {
    let p = normalise(path);
    match p {
        "var/lib/dpkg/status" => return Some(FileKind::DpkgStatus),
        "lib/apk/db/installed" => return Some(FileKind::ApkInstalled),
        _ => {}
    }
    let (dir, file) = p.rsplit_once('/').unwrap_or(("", p));
    if dir.split('/').any(|seg| SKIPPED_DIRS.contains(&seg)) {
        return None;
    }
    Some(match file {
        "Cargo.lock" => FileKind::CargoLock,
        "package-lock.json" | "npm-shrinkwrap.json" => FileKind::NpmLock,
        "poetry.lock" => FileKind::PoetryLock,
        "uv.lock" => FileKind::UvLock,
        "go.mod" => FileKind::GoMod,
        "go.sum" => FileKind::GoSum,
        "Gemfile.lock" | "gems.locked" => FileKind::GemfileLock,
        "composer.lock" => FileKind::ComposerLock,
        "pom.xml" => FileKind::PomXml,
        "dependency-list.txt" => FileKind::MavenDependencyList,
        f if f.starts_with("requirements") && f.ends_with(".txt") => FileKind::Requirements,
        _ => return None,
    })
}

/// Parses one file of a known kind. `distro` is the purl namespace for OS packages
/// (`debian`, `ubuntu`, `alpine`).
pub fn parse_file(
    kind: FileKind,
    path: &str,
    bytes: &[u8],
    distro: &str,
) -> Result<Output, ParseError> {
    use ecosystems::*;
    match kind {
        FileKind::CargoLock => cargo::parse(path, bytes),
        FileKind::NpmLock => npm::parse(path, bytes),
        FileKind::PoetryLock => python::parse_poetry(path, bytes),
        FileKind::UvLock => python::parse_uv(path, bytes),
        FileKind::Requirements => python::parse_requirements(path, bytes),
        FileKind::GoMod => go::parse_mod(path, bytes),
        FileKind::GoSum => go::parse_sum(path, bytes),
        FileKind::GemfileLock => ruby::parse(path, bytes),
        FileKind::ComposerLock => composer::parse(path, bytes),
        FileKind::PomXml => maven::parse_pom(path, bytes),
        FileKind::MavenDependencyList => maven::parse_dependency_list(path, bytes),
        FileKind::DpkgStatus => dpkg::parse(path, bytes, distro),
        FileKind::ApkInstalled => apk::parse(path, bytes, distro),
    }
}

/// `ID=` from an os-release file, if it is a plain lowercase token.
fn os_release_id(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let id = text.lines().find_map(|l| l.strip_prefix("ID="))?;
    let id = id.trim().trim_matches('"');
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    ok.then(|| id.to_string())
}

/// Scans a tree: `paths` lists every file (relative to the root; order does not
/// matter), `read` returns a file's bytes (`None` if it cannot). Only the files
/// [`detect`] recognises are read, plus `etc/os-release` / `usr/lib/os-release` to
/// name the distribution. A `go.sum` next to a `go.mod` is checked but its modules
/// are not listed again (the `go.mod` requirements are the build list's roots).
pub fn scan_tree<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> ScanReport {
    let mut found: Vec<(&str, FileKind)> = Vec::new();
    let mut os_release = None;
    let mut all: Vec<&str> = paths.into_iter().collect();
    all.sort_unstable();
    all.dedup();
    for p in &all {
        match normalise(p) {
            "etc/os-release" => os_release = Some(*p),
            "usr/lib/os-release" if os_release.is_none() => os_release = Some(*p),
            _ => {}
        }
        if let Some(kind) = detect(p) {
            found.push((p, kind));
        }
    }
    let has_apk = found.iter().any(|(_, k)| *k == FileKind::ApkInstalled);
    let distro = os_release
        .and_then(read)
        .and_then(|b| os_release_id(&b))
        .unwrap_or_else(|| {
            if has_apk {
                "alpine".into()
            } else {
                "debian".into()
            }
        });
    let go_mod_dirs: std::collections::BTreeSet<&str> = found
        .iter()
        .filter(|(_, k)| *k == FileKind::GoMod)
        .map(|(p, _)| p.rsplit_once('/').map_or("", |(d, _)| d))
        .collect();

    let mut report = ScanReport::default();
    for (path, kind) in found {
        let Some(bytes) = read(path) else {
            report.errors.push(FileError {
                path: path.to_string(),
                kind,
                error: ParseError::Unreadable,
            });
            continue;
        };
        match parse_file(kind, path, &bytes, &distro) {
            Ok(out) => {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                let shadowed = kind == FileKind::GoSum && go_mod_dirs.contains(dir);
                for (line, message) in out.notes {
                    report.notes.push(Note {
                        path: path.to_string(),
                        line,
                        message,
                    });
                }
                if shadowed {
                    report.notes.push(Note {
                        path: path.to_string(),
                        line: None,
                        message: "checked; its modules are listed from the go.mod beside it".into(),
                    });
                    report.files.push(ParsedFile {
                        path: path.to_string(),
                        kind,
                        components: 0,
                    });
                    continue;
                }
                report.files.push(ParsedFile {
                    path: path.to_string(),
                    kind,
                    components: out.components.len(),
                });
                report.components.extend(out.components);
            }
            Err(error) => report.errors.push(FileError {
                path: path.to_string(),
                kind,
                error,
            }),
        }
    }
    report
        .components
        .sort_by(|a, b| (&a.purl, &a.source_file).cmp(&(&b.purl, &b.source_file)));
    report
}

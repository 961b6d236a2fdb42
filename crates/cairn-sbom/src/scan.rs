//! Finding the known lockfiles and package databases in a source tree or an image
//! root filesystem, parsing each, and reporting per-file errors beside the components.

use crate::component::Component;
use crate::ecosystems::{self, Output};
use crate::error::ParseError;
use cairn_model::sort::sort_large_by;

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
    /// An installed Python distribution's `*.dist-info/METADATA` (read only
    /// by [`scan_installed`]).
    PythonDistInfo,
    /// An installed npm package's `node_modules/<name>/package.json` (read
    /// only by [`scan_installed`]).
    NpmInstalled,
    /// An installed Rust toolchain's `lib/rustlib/multirust-channel-manifest.toml`
    /// (with the `components` file beside it).
    RustToolchain,
}

impl FileKind {
    /// Every kind, in declaration order.
    pub const ALL: [FileKind; 16] = [
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
        FileKind::PythonDistInfo,
        FileKind::NpmInstalled,
        FileKind::RustToolchain,
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
    if file == "multirust-channel-manifest.toml"
        && (dir == "lib/rustlib" || dir.ends_with("/lib/rustlib"))
    {
        return Some(FileKind::RustToolchain);
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

/// The kind of an installed package's metadata from its path: a
/// `<dist>.dist-info/METADATA` anywhere (site-packages, pip's `--target`
/// directory), or the `package.json` of a package directly in a `node_modules/`
/// (`node_modules/x/package.json`, `node_modules/@scope/x/package.json`, nested
/// `node_modules` too). What a dependency fetch installed, as opposed to what
/// the lockfiles declare.
pub fn detect_installed(path: &str) -> Option<FileKind> {
    let p = normalise(path);
    let mut rev = p.rsplit('/');
    let file = rev.next()?;
    let parent = rev.next()?;
    match file {
        "METADATA" if parent.ends_with(".dist-info") && parent.len() > ".dist-info".len() => {
            Some(FileKind::PythonDistInfo)
        }
        "package.json" => {
            let above = rev.next()?;
            let ok = (above == "node_modules" && !parent.starts_with(['@', '.']))
                || (above.starts_with('@') && rev.next() == Some("node_modules"));
            ok.then_some(FileKind::NpmInstalled)
        }
        _ => None,
    }
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
        FileKind::PythonDistInfo => python::parse_dist_info(path, bytes),
        FileKind::NpmInstalled => npm::parse_installed(path, bytes),
        FileKind::RustToolchain => rust_toolchain::parse(path, bytes, None),
    }
}

/// A field of an os-release file, if it is a plain token (lowercase letters,
/// digits, `.`, `_`, `-`; at most 64 bytes). `lowercase` also refuses upper case.
fn os_release_field(text: &str, key: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))?;
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    ok.then(|| value.to_string())
}

/// `ID=` and `VERSION_ID=` of an os-release file (the release only when `ID` is
/// read); each only if it is a plain token.
pub(crate) fn os_release(bytes: &[u8]) -> Option<(String, Option<String>)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let id = os_release_field(text, "ID")?;
    Some((id, os_release_field(text, "VERSION_ID")))
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
    scan(paths, read, false, false)
}

/// [`scan_tree`] of an image's root filesystem: a language manifest an
/// installed OS package owns is left to that package (see [`os_owned`]). Only
/// for a root filesystem: in a source tree or workspace, a committed
/// `var/lib/dpkg/` would otherwise hide the project's own manifests.
pub fn scan_rootfs<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> ScanReport {
    scan(paths, read, false, true)
}

/// [`scan_tree`], and also the metadata of installed packages
/// ([`detect_installed`]): what a dependency fetch put in a workspace.
pub fn scan_installed<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> ScanReport {
    scan(paths, read, true, false)
}

fn scan<'a>(
    paths: impl IntoIterator<Item = &'a str>,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
    installed: bool,
    rootfs: bool,
) -> ScanReport {
    let mut found: Vec<(&str, FileKind)> = Vec::new();
    let mut os_release_files = Vec::new();
    let mut all: Vec<&str> = paths.into_iter().collect();
    all.sort_unstable();
    all.dedup();
    for p in &all {
        // `etc/os-release` first; Debian's is a symlink to `../usr/lib/os-release`,
        // which `read` refuses, so the target is read in its own place next.
        if matches!(normalise(p), "etc/os-release" | "usr/lib/os-release") {
            os_release_files.push(*p);
        }
        let kind = detect(p).or_else(|| installed.then(|| detect_installed(p)).flatten());
        if let Some(kind) = kind {
            found.push((p, kind));
        }
    }
    let has_apk = found.iter().any(|(_, k)| *k == FileKind::ApkInstalled);
    let (distro, release) = os_release_files
        .iter()
        .find_map(|p| read(p).and_then(|b| os_release(&b)))
        .unwrap_or_else(|| {
            if has_apk {
                ("alpine".into(), None)
            } else {
                ("debian".into(), None)
            }
        });
    let go_mod_dirs: std::collections::BTreeSet<&str> = found
        .iter()
        .filter(|(_, k)| *k == FileKind::GoMod)
        .map(|(p, _)| p.rsplit_once('/').map_or("", |(d, _)| d))
        .collect();

    let listed: std::collections::BTreeSet<&str> = all.iter().copied().collect();
    let owned = if rootfs {
        os_owned(&all, &found, read, &distro)
    } else {
        Default::default()
    };
    let mut report = ScanReport::default();
    for (path, kind) in found {
        if let Some(package) = owned.get(normalise(path)) {
            report.notes.push(Note {
                path: path.to_string(),
                line: None,
                message: format!(
                    "not read: a file of the installed OS package {package} (its file list names it), whose component covers it"
                ),
            });
            continue;
        }
        let Some(bytes) = read(path) else {
            report.errors.push(FileError {
                path: path.to_string(),
                kind,
                error: ParseError::Unreadable,
            });
            continue;
        };
        let parsed = if kind == FileKind::RustToolchain {
            // Which components are installed is in the file beside it.
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let list = read(&format!("{dir}/components"));
            ecosystems::rust_toolchain::parse(path, &bytes, list.as_deref())
        } else if kind == FileKind::DpkgStatus {
            // Each package's purl is written below, with the release.
            ecosystems::dpkg::parse_unnamed(path, &bytes)
        } else {
            parse_file(kind, path, &bytes, &distro)
        };
        match parsed {
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
                let mut components = out.components;
                if kind == FileKind::DpkgStatus {
                    // dpkg's database states no licence: each package's DEP-5
                    // copyright file does, at its place under the same root.
                    let root = path.strip_suffix("var/lib/dpkg/status").unwrap_or("");
                    for c in &mut components {
                        let safe = c.name.bytes().all(|b| {
                            b.is_ascii_lowercase()
                                || b.is_ascii_digit()
                                || matches!(b, b'.' | b'+' | b'-')
                        });
                        let doc = format!("{root}usr/share/doc/{}/copyright", c.name);
                        if safe
                            && listed.contains(doc.as_str())
                            && let Some(bytes) = read(&doc)
                        {
                            c.licence = match std::str::from_utf8(&bytes) {
                                Ok(text) => crate::dep5::licence(text),
                                Err(_) => crate::licence::Licence::Unknown(
                                    "copyright file is not UTF-8".to_owned(),
                                ),
                            };
                        }
                    }
                }
                if matches!(kind, FileKind::DpkgStatus | FileKind::ApkInstalled) {
                    // The purl names the distribution release and the source package.
                    let purl_type = if kind == FileKind::DpkgStatus {
                        "deb"
                    } else {
                        "apk"
                    };
                    for c in &mut components {
                        c.purl = crate::purl::os_package(
                            purl_type,
                            &distro,
                            release.as_deref(),
                            &c.name,
                            &c.version,
                            c.arch.as_deref(),
                            c.source_package.as_ref().map(|s| s.name.as_str()),
                        );
                    }
                }
                if report.components.is_empty() {
                    // The first (often only) file's: taken as it is, not
                    // copied into a second allocation of the same size.
                    report.components = components;
                } else {
                    report.components.extend(components);
                }
            }
            Err(error) => report.errors.push(FileError {
                path: path.to_string(),
                kind,
                error,
            }),
        }
    }
    sort_large_by(&mut report.components, |a, b| {
        (&a.purl, &a.source_file).cmp(&(&b.purl, &b.source_file))
    });
    report
}

/// The language manifests among `found` that an installed OS package owns, by
/// their normalised path, with the package's name: the files dpkg's
/// `var/lib/dpkg/info/<package>.list` names for a package its status lists as
/// installed, and the `F:`/`R:` files of apk's installed database. Such a file
/// is the OS package's (e.g. the `go.mod` files of the Go toolchain's own source
/// and its vendored modules in Debian's golang-*-src): the package's component,
/// with the licence its copyright file states, covers it, as other scanners
/// leave such files to the OS package too. A file list of a package the
/// status does not list as installed is not believed.
fn os_owned(
    all: &[&str],
    found: &[(&str, FileKind)],
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
    distro: &str,
) -> std::collections::BTreeMap<String, String> {
    use std::collections::{BTreeMap, BTreeSet};
    let candidates: BTreeSet<&str> = found
        .iter()
        .filter(|(_, k)| !matches!(k, FileKind::DpkgStatus | FileKind::ApkInstalled))
        .map(|(p, _)| normalise(p))
        .collect();
    let mut owned = BTreeMap::new();
    if candidates.is_empty() {
        return owned;
    }
    let text_of = |name: &str| -> Option<String> {
        let p = all.iter().find(|p| normalise(p) == name)?;
        String::from_utf8(read(p)?).ok()
    };
    if let Some(status) = all
        .iter()
        .find(|p| normalise(p) == "var/lib/dpkg/status")
        .and_then(|p| read(p))
        && let Ok(out) = parse_file(FileKind::DpkgStatus, "var/lib/dpkg/status", &status, distro)
    {
        let installed: BTreeSet<&str> = out.components.iter().map(|c| c.name.as_str()).collect();
        for p in all {
            let Some(file) = normalise(p).strip_prefix("var/lib/dpkg/info/") else {
                continue;
            };
            let Some(package) = file.strip_suffix(".list") else {
                continue;
            };
            let name = package.split(':').next().unwrap_or(package);
            if file.contains('/') || !installed.contains(name) {
                continue;
            }
            let Some(list) = read(p).and_then(|b| String::from_utf8(b).ok()) else {
                continue;
            };
            for line in list.lines() {
                let f = normalise(line.trim());
                if candidates.contains(f) {
                    owned.insert(f.to_owned(), name.to_owned());
                }
            }
        }
    }
    if let Some(db) = text_of("lib/apk/db/installed") {
        let (mut package, mut dir) = (String::new(), String::new());
        for line in db.lines() {
            match line.split_once(':') {
                Some(("P", v)) => package = v.to_owned(),
                Some(("F", v)) => dir = v.to_owned(),
                Some(("R", v)) => {
                    let f = format!("{dir}/{v}");
                    let f = normalise(&f);
                    if candidates.contains(f) {
                        owned.insert(f.to_owned(), package.clone());
                    }
                }
                _ if line.is_empty() => {
                    package.clear();
                    dir.clear();
                }
                _ => {}
            }
        }
    }
    owned
}

#[cfg(test)]
mod tests {
    use super::{os_release, scan_rootfs, scan_tree};

    /// The Go toolchain's own go.mod files in Debian's golang-1.19-src are
    /// the package's, not the image's Go modules; a go.mod no installed
    /// package's file list names, or one a list of a package that is not
    /// installed names, is read.
    #[test]
    fn a_manifest_an_installed_os_package_owns_is_left_to_the_package() {
        let status = "Package: golang-1.19-src\nStatus: install ok installed\nVersion: 1.19.8-2\nArchitecture: all\n\n";
        let gomod = "module std\n\ngo 1.19\n\nrequire golang.org/x/net v0.0.0-20230214200805-d99f623d45a4\n";
        let app = "module example.com/app\n\ngo 1.19\n\nrequire github.com/google/go-cmp v0.5.9\n";
        let files: std::collections::BTreeMap<&str, &str> = [
            ("var/lib/dpkg/status", status),
            (
                "var/lib/dpkg/info/golang-1.19-src.list",
                "/.\n/usr/share/go-1.19/src\n/usr/share/go-1.19/src/go.mod\n",
            ),
            // Not installed: its list is not believed.
            ("var/lib/dpkg/info/ghost.list", "/app/go.mod\n"),
            ("usr/share/go-1.19/src/go.mod", gomod),
            ("app/go.mod", app),
        ]
        .into_iter()
        .collect();
        let read = |p: &str| files.get(p).map(|t| t.as_bytes().to_vec());
        // A source tree or workspace is not a root filesystem: a committed
        // `var/lib/dpkg/` hides none of its manifests.
        let tree = scan_tree(files.keys().copied(), &read);
        assert!(
            tree.components
                .iter()
                .any(|c| c.purl.starts_with("pkg:golang/golang.org/x/net@")),
            "{tree:?}"
        );
        let report = scan_rootfs(files.keys().copied(), &read);
        let golang: Vec<&str> = report
            .components
            .iter()
            .filter(|c| c.purl.starts_with("pkg:golang/"))
            .map(|c| c.purl.as_str())
            .collect();
        assert_eq!(
            golang,
            ["pkg:golang/github.com/google/go-cmp@v0.5.9"],
            "{report:?}"
        );
        assert!(
            report
                .components
                .iter()
                .any(|c| c.name == "golang-1.19-src"),
            "{report:?}"
        );
        let note = report
            .notes
            .iter()
            .find(|n| n.path == "usr/share/go-1.19/src/go.mod")
            .expect("a note");
        assert!(
            note.message.contains("OS package golang-1.19-src"),
            "{}",
            note.message
        );
    }

    /// apk's installed database names each package's files (`F:` directory,
    /// `R:` file): a go.mod it names is the package's.
    #[test]
    fn a_manifest_an_apk_package_owns_is_left_to_the_package() {
        let db = "P:go\nV:1.21.5-r0\nA:x86_64\nL:BSD-3-Clause\nF:usr/lib/go/src\nR:go.mod\n\n";
        let gomod = "module std\n\ngo 1.21\n\nrequire golang.org/x/net v0.0.0-20230214200805-d99f623d45a4\n";
        let files: std::collections::BTreeMap<&str, &str> = [
            ("lib/apk/db/installed", db),
            ("usr/lib/go/src/go.mod", gomod),
        ]
        .into_iter()
        .collect();
        let read = |p: &str| files.get(p).map(|t| t.as_bytes().to_vec());
        let report = scan_rootfs(files.keys().copied(), &read);
        assert!(
            !report
                .components
                .iter()
                .any(|c| c.purl.starts_with("pkg:golang/")),
            "{report:?}"
        );
    }

    #[test]
    fn os_release_names_the_distribution_and_its_release() {
        for (text, want) in [
            (
                "ID=debian\nVERSION_ID=\"12\"\n",
                Some(("debian", Some("12"))),
            ),
            (
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n",
                Some(("alpine", Some("3.20.3"))),
            ),
            (
                "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n",
                Some(("ubuntu", Some("22.04"))),
            ),
            // Debian testing/unstable: no VERSION_ID.
            (
                "ID=debian\nVERSION_CODENAME=trixie\n",
                Some(("debian", None)),
            ),
            // A release that is not a plain token is not believed.
            (
                "ID=debian\nVERSION_ID=\"12 ; rm\"\n",
                Some(("debian", None)),
            ),
            ("ID=Debian\n", None),
            ("NAME=x\n", None),
        ] {
            let got = os_release(text.as_bytes());
            let got = got.as_ref().map(|(i, r)| (i.as_str(), r.as_deref()));
            assert_eq!(got, want, "{text:?}");
        }
    }
}

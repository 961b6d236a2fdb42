//! What is inside an artifact: the bounded walk of a tree (a source tree, an
//! unpacked root filesystem), the components of the lockfiles and package
//! databases in it, and their matching against the stored advisories. `cairn
//! sbom`, `cairn scan` and `cairn base` use it, and the run inventories each
//! release candidate with it.
//!
//! The walk is bounded and never follows a symlink (a symlinked lockfile is
//! skipped, saying so) nor opens a FIFO, socket or device (see `cairn_fs`); files over
//! [`cairn_sbom::MAX_FILE_BYTES`] are skipped, and the walk stops after
//! [`MAX_ENTRIES`] entries or below [`MAX_DEPTH`] levels, saying so. Every file that
//! could not be read or parsed is kept as [`Skipped`], and every component that
//! could not be evaluated as [`NotEvaluated`]: never silently passed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cairn_model::error_chain;
use cairn_sbom::cyclonedx::{Subject, SubjectKind};
use cairn_sbom::{Ecosystem, FileKind, ParseError, ScanReport};
use cairn_store::Store;
use cairn_vuln::{Advisory, AdvisoryIndex, Package, normalize_name};

use crate::EngineError;

/// The most directory entries one walk looks at.
pub const MAX_ENTRIES: usize = 2_000_000;
/// The deepest directory one walk enters (the root is depth 0).
pub const MAX_DEPTH: usize = 128;

/// A file (or directory) that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// A tree's scan: the components, and everything that was skipped on the way.
#[derive(Debug)]
pub struct Collected {
    pub report: ScanReport,
    /// Directories and files the walk or a parser could not read, in path order.
    pub skipped: Vec<Skipped>,
    /// The tree's name (its directory's name).
    pub name: String,
}

impl Collected {
    /// No recognised file could be parsed, and something was skipped.
    pub fn nothing_read(&self) -> bool {
        self.report.files.is_empty() && !self.skipped.is_empty()
    }

    /// Several collections as one (the parts of one artifact), each part's paths
    /// under its prefix (`image/`, `source/`); components sorted by purl, then file.
    pub fn merged(name: String, parts: Vec<(&str, Collected)>) -> Collected {
        let mut report = ScanReport::default();
        let mut skipped = Vec::new();
        for (prefix, part) in parts {
            let at = |path: &str| format!("{prefix}{path}");
            for mut c in part.report.components {
                c.source_file = at(&c.source_file);
                report.components.push(c);
            }
            for mut f in part.report.files {
                f.path = at(&f.path);
                report.files.push(f);
            }
            for mut e in part.report.errors {
                e.path = at(&e.path);
                report.errors.push(e);
            }
            for mut n in part.report.notes {
                n.path = at(&n.path);
                report.notes.push(n);
            }
            for mut s in part.skipped {
                s.path = at(&s.path);
                skipped.push(s);
            }
        }
        report
            .components
            .sort_by(|a, b| (&a.purl, &a.source_file).cmp(&(&b.purl, &b.source_file)));
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Collected {
            report,
            skipped,
            name,
        }
    }

    /// What the document is about: a root filesystem (it has an OS package
    /// database) or an application's source tree.
    pub fn subject(&self) -> Subject {
        let is_rootfs = self
            .report
            .files
            .iter()
            .any(|f| matches!(f.kind, FileKind::DpkgStatus | FileKind::ApkInstalled));
        Subject {
            kind: if is_rootfs {
                SubjectKind::Container
            } else {
                SubjectKind::Application
            },
            name: self.name.clone(),
            version: None,
            purl: None,
        }
    }
}

/// Walks `path` and scans the files cairn knows. `Err` only when `path` itself
/// cannot be walked: [`EngineError::Io`] with `what: "read"` when the path is
/// missing, not a directory or file, or has no UTF-8 name (the caller's input).
pub fn collect(path: &Path) -> Result<Collected, EngineError> {
    Ok(collect_tree(Tree::walk(path)?))
}

/// Scans the files of an already walked tree (the caller may have left some out).
pub fn collect_tree(tree: Tree) -> Collected {
    let read_errors: RefCell<BTreeMap<String, String>> = RefCell::new(BTreeMap::new());
    let read = |rel: &str| match tree.read(rel, cairn_sbom::MAX_FILE_BYTES) {
        Ok(bytes) => Some(bytes),
        Err(reason) => {
            read_errors.borrow_mut().insert(rel.to_owned(), reason);
            None
        }
    };
    let report = cairn_sbom::scan_tree(tree.files.iter().map(String::as_str), &read);
    let read_errors = read_errors.into_inner();
    let mut skipped = tree.skipped;
    for e in &report.errors {
        let reason = match (&e.error, read_errors.get(&e.path)) {
            (ParseError::Unreadable, Some(why)) => why.clone(),
            (error, _) => error_chain(error),
        };
        skipped.push(Skipped {
            path: e.path.clone(),
            reason,
        });
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Collected {
        report,
        skipped,
        name: tree.name,
    }
}

/// The files of a tree, relative to its root with `/` separators.
#[derive(Debug)]
pub struct Tree {
    /// The root, held open: every file is read beneath it, never through a symlink.
    root: cairn_fs::Dir,
    /// Regular files and symlinks (refused when read), sorted.
    pub files: Vec<String>,
    /// Directories that could not be listed, and where the walk stopped.
    pub skipped: Vec<Skipped>,
    /// The root directory's name.
    pub name: String,
}

impl Tree {
    /// Lists the tree under `path` (a directory, or one file: then the tree is that
    /// file in its directory).
    pub fn walk(path: &Path) -> Result<Tree, EngineError> {
        Self::walk_except(path, &[])
    }

    /// [`Tree::walk`], leaving out the root's entries with these names (never
    /// entered or listed). `path` itself is the caller's (taken as given);
    /// nothing below it is followed.
    pub fn walk_except(path: &Path, left_out: &[&str]) -> Result<Tree, EngineError> {
        let meta = std::fs::metadata(path).map_err(EngineError::io("read", path))?;
        let canonical = std::fs::canonicalize(path).map_err(EngineError::io("resolve", path))?;
        if meta.is_file() {
            let parent = canonical
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            let file = canonical
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    EngineError::io("read", path)(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "its file name is not UTF-8",
                    ))
                })?
                .to_owned();
            let name = file.clone();
            return Ok(Tree {
                root: cairn_fs::Dir::open(&parent)?,
                files: vec![file],
                skipped: Vec::new(),
                name,
            });
        }
        if !meta.is_dir() {
            return Err(EngineError::io("read", path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "neither a directory nor a file",
            )));
        }
        let name = canonical
            .file_name()
            .map_or_else(|| "/".to_owned(), |n| n.to_string_lossy().into_owned());
        let mut tree = Tree {
            root: cairn_fs::Dir::open(&canonical)?,
            files: Vec::new(),
            skipped: Vec::new(),
            name,
        };
        let mut entries = 0usize;
        let mut stack: Vec<(String, usize)> = vec![(String::new(), 0)];
        'walk: while let Some((rel, depth)) = stack.pop() {
            let shown = if rel.is_empty() {
                ".".to_owned()
            } else {
                format!("{rel}/")
            };
            let room = (MAX_ENTRIES - entries) as u64 + 1;
            let list = match tree.root.dir_beneath(&rel).and_then(|d| d.entries(room)) {
                Ok(list) => list,
                Err(e) => {
                    tree.skip(shown, format!("cannot list the directory: {e}"));
                    continue;
                }
            };
            for entry in list {
                entries += 1;
                if entries > MAX_ENTRIES {
                    tree.skip(
                        ".".to_owned(),
                        format!(
                            "the walk stopped after {MAX_ENTRIES} entries; the rest was not read"
                        ),
                    );
                    break 'walk;
                }
                // A name that is not UTF-8 is no lockfile or package database.
                let Some(file_name) = entry.name.to_str().map(str::to_owned) else {
                    continue;
                };
                if rel.is_empty() && left_out.contains(&file_name.as_str()) {
                    continue;
                }
                let child = if rel.is_empty() {
                    file_name
                } else {
                    format!("{rel}/{file_name}")
                };
                match entry.meta.kind {
                    cairn_fs::Kind::Dir if depth + 1 > MAX_DEPTH => tree.skip(
                        format!("{child}/"),
                        format!("deeper than {MAX_DEPTH} levels"),
                    ),
                    cairn_fs::Kind::Dir => stack.push((child, depth + 1)),
                    // Symlinks are listed, so a symlinked lockfile is reported as
                    // skipped; reading one is refused.
                    cairn_fs::Kind::File | cairn_fs::Kind::Symlink => tree.files.push(child),
                    // Sockets, FIFOs and devices are never opened.
                    _ => {}
                }
            }
        }
        tree.files.sort_unstable();
        Ok(tree)
    }

    fn skip(&mut self, path: String, reason: String) {
        self.skipped.push(Skipped { path, reason });
    }

    /// A file's bytes, at most `limit` of them: a regular file reached without any
    /// symlink (a symlink is never followed, even inside the tree).
    pub fn read(&self, rel: &str, limit: usize) -> Result<Vec<u8>, String> {
        let file = self.root.file_beneath(rel).map_err(|e| match e {
            cairn_fs::FsError::Symlink { .. } => {
                "a symlink, which cairn does not follow in a tree it reads".to_owned()
            }
            cairn_fs::FsError::Special { kind, .. } => format!("a {kind}, not a regular file"),
            cairn_fs::FsError::WrongKind { .. } => "not a regular file".to_owned(),
            other => format!("cannot read it: {other}"),
        })?;
        file.read_bounded(limit as u64).map_err(|e| match e {
            cairn_fs::FsError::TooLarge { size, .. } => {
                format!("{size} bytes, more than the limit of {limit}")
            }
            other => format!("cannot read it: {}", error_chain(&other)),
        })
    }
}

/// Something that kept a component (or a file's components) from being evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEvaluated {
    pub subject: String,
    pub reason: String,
}

/// A collection's match against the stored advisories.
#[derive(Debug)]
pub struct Evaluation {
    /// Vulnerabilities, informational findings, matching issues and the package count.
    pub report: cairn_vuln::ScanReport,
    /// OS packages, unread files, advisories that do not parse and
    /// package × advisory pairs that could not be matched, in that order.
    pub not_evaluated: Vec<NotEvaluated>,
    /// The newest `modified` time of the stored records consulted (RFC 3339).
    pub newest_modified: Option<String>,
}

/// The components as OSV packages, each once. OS packages are not evaluated:
/// their advisories are per distribution release and source package, which cairn
/// does not match yet; nor are the components of files that were not read.
pub fn packages(collected: &Collected) -> (Vec<Package>, Vec<NotEvaluated>) {
    let mut issues = Vec::new();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in &collected.report.components {
        if matches!(c.ecosystem, Ecosystem::Debian | Ecosystem::Alpine) {
            issues.push(NotEvaluated {
                subject: c.purl.clone(),
                reason: "OS packages are not matched yet (advisories are per release and source package)"
                    .to_owned(),
            });
            continue;
        }
        let p = Package::new(c.ecosystem.osv_name(), &c.full_name(), &c.version);
        if seen.insert((p.ecosystem.clone(), p.name.clone(), p.version.clone())) {
            out.push(p);
        }
    }
    for e in &collected.skipped {
        issues.push(NotEvaluated {
            subject: e.path.clone(),
            reason: format!("not read, its components were not evaluated: {}", e.reason),
        });
    }
    (out, issues)
}

/// Matches the collection's components against the advisories the store holds
/// for them. A stored record that does not parse is reported, not skipped.
pub fn evaluate(store: &dyn Store, collected: &Collected) -> Result<Evaluation, EngineError> {
    let (packages, mut not_evaluated) = packages(collected);
    let keys: Vec<(String, String)> = packages
        .iter()
        .map(|p| (p.ecosystem.clone(), normalize_name(&p.ecosystem, &p.name)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut index = AdvisoryIndex::new();
    let mut newest_modified: Option<String> = None;
    for stored in store.advisories_for_packages(&keys)? {
        if newest_modified
            .as_ref()
            .is_none_or(|newest| stored.modified > *newest)
        {
            newest_modified = Some(stored.modified.clone());
        }
        match Advisory::parse(&stored.json) {
            Ok(advisory) => index.insert(advisory),
            Err(e) => not_evaluated.push(NotEvaluated {
                subject: format!("advisory {}", stored.id),
                reason: format!("the stored record does not parse: {}", error_chain(&e)),
            }),
        }
    }
    let report = index.scan(&packages);
    for i in &report.issues {
        not_evaluated.push(NotEvaluated {
            subject: format!(
                "{} {} {}",
                i.package.ecosystem, i.package.name, i.package.version
            ),
            reason: format!("advisory {}: {}", i.advisory_id, error_chain(&i.error)),
        });
    }
    Ok(Evaluation {
        report,
        not_evaluated,
        newest_modified,
    })
}

/// Each component's purl by (OSV ecosystem, name, version), as findings name them.
pub fn purls(collected: &Collected) -> BTreeMap<(String, String, String), String> {
    let mut out = BTreeMap::new();
    for c in &collected.report.components {
        out.entry((
            c.ecosystem.osv_name().to_owned(),
            c.full_name(),
            c.version.clone(),
        ))
        .or_insert_with(|| c.purl.clone());
    }
    out
}

/// The (OSV ecosystem, normalised name, version, purl) rows the SBOM index keeps.
pub fn index_rows(collected: &Collected) -> Vec<(String, String, String, String)> {
    collected
        .report
        .components
        .iter()
        .map(|c| {
            let eco = c.ecosystem.osv_name();
            (
                eco.to_owned(),
                normalize_name(eco, &c.full_name()),
                c.version.clone(),
                c.purl.clone(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CARGO_LOCK: &str = "version = 3\n\n[[package]]\nname = \"regex\"\nversion = \"1.5.4\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
    const DPKG_STATUS: &str =
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n";

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn a_left_out_top_level_directory_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Cargo.lock", CARGO_LOCK);
        write(dir.path(), ".home/.cargo/registry/x/Cargo.lock", CARGO_LOCK);
        write(dir.path(), "sub/.home/Cargo.lock", CARGO_LOCK);
        let all = Tree::walk(dir.path()).unwrap();
        assert_eq!(all.files.len(), 3, "{:?}", all.files);
        let tree = Tree::walk_except(dir.path(), &[".home"]).unwrap();
        // Only the root's `.home` is left out.
        assert_eq!(tree.files, vec!["Cargo.lock", "sub/.home/Cargo.lock"]);
        let collected = collect_tree(tree);
        assert_eq!(collected.report.files.len(), 2);
    }

    #[test]
    fn a_missing_path_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        match Tree::walk(&missing) {
            Err(EngineError::Io { what, path, .. }) => {
                assert_eq!(what, "read");
                assert_eq!(path, missing);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merged_parts_keep_their_prefixes_and_os_packages_are_not_evaluated() {
        let image = tempfile::tempdir().unwrap();
        write(image.path(), "var/lib/dpkg/status", DPKG_STATUS);
        let source = tempfile::tempdir().unwrap();
        write(source.path(), "Cargo.lock", CARGO_LOCK);
        write(source.path(), "broken/Cargo.lock", "[[package]\nname = ");
        let merged = Collected::merged(
            "app@sha256:x".to_owned(),
            vec![
                ("image/", collect(image.path()).unwrap()),
                ("source/", collect(source.path()).unwrap()),
            ],
        );
        let files: Vec<&str> = merged
            .report
            .components
            .iter()
            .map(|c| c.source_file.as_str())
            .collect();
        assert!(files.contains(&"image/var/lib/dpkg/status"), "{files:?}");
        assert!(files.contains(&"source/Cargo.lock"), "{files:?}");
        assert_eq!(merged.skipped.len(), 1, "{:?}", merged.skipped);
        assert_eq!(merged.skipped[0].path, "source/broken/Cargo.lock");
        assert!(!merged.nothing_read());
        assert_eq!(merged.subject().kind, SubjectKind::Container);

        let (packages, not_evaluated) = packages(&merged);
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "regex");
        let subjects: Vec<&str> = not_evaluated.iter().map(|n| n.subject.as_str()).collect();
        assert_eq!(
            subjects.len(),
            2,
            "the OS package and the unread file: {not_evaluated:?}"
        );
        assert!(subjects.contains(&"source/broken/Cargo.lock"));
        assert!(subjects.iter().any(|s| s.starts_with("pkg:deb/")));
        let rows = index_rows(&merged);
        assert!(
            rows.iter()
                .any(|r| r.0 == "crates.io" && r.1 == "regex" && r.2 == "1.5.4")
        );
    }
}

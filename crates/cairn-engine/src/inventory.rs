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
use cairn_sbom::{Component, Ecosystem, FileKind, ParseError, ScanReport};
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
    collect_with(tree, Scan::Tree)
}

/// [`collect`] of an image's root filesystem: a language manifest an installed
/// OS package owns is left to that package ([`cairn_sbom::scan_rootfs`]). Never
/// for a source tree or a workspace, whose committed files could claim that.
pub fn collect_rootfs(path: &Path) -> Result<Collected, EngineError> {
    Ok(collect_with(Tree::walk(path)?, Scan::Rootfs))
}

/// What kind of tree a scan reads.
#[derive(Clone, Copy)]
enum Scan {
    Tree,
    Installed,
    Rootfs,
}

/// [`collect_tree`], reading the installed packages' own metadata too
/// (`*.dist-info/METADATA`, `node_modules/*/package.json`): what a dependency
/// fetch put in a workspace (see [`cairn_sbom::scan_installed`]).
pub fn collect_installed(tree: Tree) -> Collected {
    collect_with(tree, Scan::Installed)
}

fn collect_with(tree: Tree, kind: Scan) -> Collected {
    let read_errors: RefCell<BTreeMap<String, String>> = RefCell::new(BTreeMap::new());
    let read = |rel: &str| match tree.read(rel, cairn_sbom::MAX_FILE_BYTES) {
        Ok(bytes) => Some(bytes),
        Err(reason) => {
            read_errors.borrow_mut().insert(rel.to_owned(), reason);
            None
        }
    };
    let files = tree.files.iter().map(String::as_str);
    let report = match kind {
        Scan::Tree => cairn_sbom::scan_tree(files, &read),
        Scan::Installed => cairn_sbom::scan_installed(files, &read),
        Scan::Rootfs => cairn_sbom::scan_rootfs(files, &read),
    };
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
        Self::walk_source(path, left_out, &[])
    }

    /// [`Tree::walk_except`], also leaving out the paths a workload's `[sbom]
    /// exclude` names (see [`cairn_model::config::sbom_excluded`]): never
    /// entered, and each one noted as skipped with the reason, so the log says
    /// what the inventory did not read.
    pub fn walk_source(
        path: &Path,
        left_out: &[&str],
        exclude: &[String],
    ) -> Result<Tree, EngineError> {
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
                if cairn_model::config::sbom_excluded(exclude, &child) {
                    let shown = match entry.meta.kind {
                        cairn_fs::Kind::Dir => format!("{child}/"),
                        _ => child,
                    };
                    tree.skip(
                        shown,
                        "left out by the workload's [sbom] exclude (not part of what is built)"
                            .to_owned(),
                    );
                    continue;
                }
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
    /// The packages matched (taken by [`Evaluation::take_purls`]).
    matched: Matched,
}

impl Evaluation {
    /// [`purls`] of the collection this evaluation matched, from the packages
    /// the match kept (nothing derived or sorted again), found by borrowed
    /// keys. Takes them: a second call gives none.
    pub fn take_purls(&mut self, collected: &Collected) -> Purls {
        Purls::new(std::mem::take(&mut self.matched), collected)
    }
}

/// Each component's OSV packages, index for index with the collection's
/// components: `None` for a component that is no OS package (matched as it
/// is), else [`os_packages`]'s answer. Computed once per collection and shared
/// by the package list, the release check and the purls.
#[derive(Debug)]
struct ComponentKeys(Vec<Option<Result<Vec<Package>, String>>>);

impl ComponentKeys {
    fn of(collected: &Collected) -> ComponentKeys {
        ComponentKeys(
            collected
                .report
                .components
                .iter()
                .map(|c| is_os(c).then(|| os_packages(c)))
                .collect(),
        )
    }

    /// The components with their keys. Panics when given another collection
    /// than the one the keys were computed from (a caller's mistake).
    fn with<'a>(
        &'a self,
        collected: &'a Collected,
    ) -> impl Iterator<Item = (&'a Component, &'a Option<Result<Vec<Package>, String>>)> {
        assert_eq!(
            self.0.len(),
            collected.report.components.len(),
            "the keys of another collection"
        );
        collected.report.components.iter().zip(&self.0)
    }
}

fn is_os(c: &Component) -> bool {
    matches!(c.ecosystem, Ecosystem::Debian | Ecosystem::Alpine)
}

/// The OSV packages an OS binary package's advisories are recorded under: its
/// *source* package (dpkg `Source:`, apk `o:`) at the source version, in the
/// ecosystem of the distribution release its purl names (`distro=debian-12` →
/// `Debian:12`). `Err` says why it cannot be matched: an unknown release, or a
/// version that is not valid under the distribution's ordering.
pub fn os_packages(c: &Component) -> Result<Vec<Package>, String> {
    let (scheme, prefix) = match c.ecosystem {
        Ecosystem::Debian => (cairn_vuln::Scheme::Debian, "pkg:deb/"),
        Ecosystem::Alpine => (cairn_vuln::Scheme::Alpine, "pkg:apk/"),
        _ => return Err("not an OS package".to_owned()),
    };
    let id = c
        .purl
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('/'))
        .map(|(ns, _)| ns)
        .ok_or_else(|| "its purl names no distribution".to_owned())?;
    let release = cairn_sbom::purl::qualifier(&c.purl, "distro");
    let release = release
        .as_deref()
        .map(|d| {
            d.strip_prefix(id)
                .and_then(|r| r.strip_prefix('-'))
                .ok_or_else(|| format!("its purl's distro {d:?} is not {id}-RELEASE"))
        })
        .transpose()?;
    let ecosystems = cairn_vuln::distro::ecosystems(id, release)?;
    let (name, version) = match &c.source_package {
        Some(s) => (s.name.as_str(), s.version.as_str()),
        None => (c.name.as_str(), c.version.as_str()),
    };
    if let Err(e) = cairn_vuln::Version::parse(scheme, version) {
        return Err(format!(
            "source package {name} version {version:?} is not a valid {} version: {}",
            scheme.name(),
            e.reason
        ));
    }
    Ok(ecosystems
        .iter()
        .map(|e| Package::new(e, name, version))
        .collect())
}

/// The components as OSV packages, each once: OS packages as their source
/// packages in their release's ecosystem ([`os_packages`]), the others as they
/// are. What cannot be matched is reported, never passed: OS packages of an
/// unknown release or with a malformed version, and the components of files that
/// were not read.
pub fn packages(collected: &Collected) -> (Vec<Package>, Vec<NotEvaluated>) {
    let (matched, issues) = packages_with(collected, &ComponentKeys::of(collected));
    (matched.packages, issues)
}

/// The packages a collection is matched under, each once in the order its
/// first component gives it, with that component's position and the package
/// positions in key order (so a key is found without a search tree).
#[derive(Debug, Default)]
struct Matched {
    packages: Vec<Package>,
    /// Index for index with `packages`: the position of the first component
    /// that gave it.
    owner: Vec<usize>,
    /// The positions of `packages` in (ecosystem, name, version) order.
    order: Vec<usize>,
}

fn packages_with(collected: &Collected, keys: &ComponentKeys) -> (Matched, Vec<NotEvaluated>) {
    let mut issues = Vec::new();
    // Every package every component gives, repeats included, then each kept
    // once: the first of its run when sorted by (key, position).
    let mut all = Vec::new();
    let mut owner = Vec::new();
    for (at, (c, key)) in keys.with(collected).enumerate() {
        match key {
            Some(Ok(ps)) => {
                all.extend(ps.iter().cloned());
                owner.resize(all.len(), at);
            }
            Some(Err(reason)) => issues.push(NotEvaluated {
                subject: c.purl.clone(),
                reason: format!("OS package not matched: {reason}"),
            }),
            None => {
                all.push(Package::new(
                    c.ecosystem.osv_name(),
                    &c.full_name(),
                    &c.version,
                ));
                owner.push(at);
            }
        }
    }
    // Sorted as (ecosystem, name, version, position) tuples, compared in
    // place: of equal keys the earliest position comes first.
    let mut order: Vec<(&str, &str, &str, usize)> = all
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (ecosystem, name, version) = package_key(p);
            (ecosystem, name, version, i)
        })
        .collect();
    order.sort_unstable();
    let mut first = vec![false; all.len()];
    let mut kept_order = Vec::with_capacity(order.len());
    for (j, &(ecosystem, name, version, i)) in order.iter().enumerate() {
        if j == 0 || {
            let (e, n, v, _) = order[j - 1];
            (e, n, v) != (ecosystem, name, version)
        } {
            first[i] = true;
            kept_order.push(i);
        }
    }
    // Each kept package's position once the repeats are gone.
    let mut position = vec![0; all.len()];
    let mut packages = Vec::with_capacity(kept_order.len());
    let mut owners = Vec::with_capacity(kept_order.len());
    for (i, p) in all.into_iter().enumerate() {
        if first[i] {
            position[i] = packages.len();
            packages.push(p);
            owners.push(owner[i]);
        }
    }
    for i in &mut kept_order {
        *i = position[*i];
    }
    for e in &collected.skipped {
        issues.push(NotEvaluated {
            subject: e.path.clone(),
            reason: format!("not read, its components were not evaluated: {}", e.reason),
        });
    }
    (
        Matched {
            packages,
            owner: owners,
            order: kept_order,
        },
        issues,
    )
}

/// A package's (ecosystem, name, version), borrowed.
fn package_key(p: &Package) -> (&str, &str, &str) {
    (p.ecosystem.as_str(), p.name.as_str(), p.version.as_str())
}

/// Each component's purl by the (OSV ecosystem, name, version) it is matched
/// under, as findings name them (an OS source package by the first of its
/// binary packages' purls): [`purls`]' answer, found by borrowed keys.
#[derive(Debug, Default)]
pub struct Purls {
    matched: Matched,
    /// Index for index with `matched.packages`.
    purls: Vec<String>,
}

impl Purls {
    fn new(matched: Matched, collected: &Collected) -> Purls {
        let purls = matched
            .owner
            .iter()
            .map(|&c| collected.report.components[c].purl.clone())
            .collect();
        Purls { matched, purls }
    }

    /// The purl of the component matched as `ecosystem` `name` `version`.
    pub fn get(&self, ecosystem: &str, name: &str, version: &str) -> Option<&String> {
        let packages = &self.matched.packages;
        let at = self
            .matched
            .order
            .binary_search_by(|&i| package_key(&packages[i]).cmp(&(ecosystem, name, version)))
            .ok()?;
        self.purls.get(self.matched.order[at])
    }

    /// How many keys have a purl.
    pub fn len(&self) -> usize {
        self.purls.len()
    }

    /// Whether no key has a purl.
    pub fn is_empty(&self) -> bool {
        self.purls.is_empty()
    }
}

/// What matching packages against the stored advisories gives.
pub(crate) struct StoredMatch {
    /// Findings, and the (package, advisory) pairs that could not be evaluated.
    pub report: cairn_vuln::ScanReport,
    /// Stored records (those read) that do not parse, by id.
    pub unparsed: Vec<(String, cairn_vuln::Error)>,
    /// The newest `modified` of the records indexed under the packages.
    pub newest_modified: Option<String>,
    /// The ecosystems any of those records names.
    pub ecosystems: BTreeSet<String>,
}

/// Matches `packages` against the stored advisories naming them: each index
/// row's compiled match form decides (pair by pair, without JSON) where it
/// says "not affected", and where it says "affected" with the finding the
/// record would give (its fixed versions, severity, urgency and the record's
/// head: [`cairn_vuln::compiled::Hit`]); only the records of the other pairs
/// (cannot tell, or kept without a compiled form) are read and matched by
/// [`cairn_vuln::matches`]'s code, so findings, fixed versions, severities and
/// what cannot be evaluated are those of the records. A compiled form that
/// cannot be read, or whose head names another advisory than its row, leaves
/// its pair not evaluated, saying why.
pub(crate) fn match_stored(
    store: &dyn Store,
    packages: &[Package],
) -> Result<StoredMatch, EngineError> {
    use cairn_vuln::compiled::{Decision, Installed, decide};
    // Each package's normalised name, computed once.
    let names: Vec<String> = packages
        .iter()
        .map(|p| normalize_name(&p.ecosystem, &p.name))
        .collect();
    // The package positions in key order give the keys, each once, and each
    // package's key: its rows are then found without a search.
    // Sorted as (ecosystem, name, position) tuples, compared in place.
    let mut by_key: Vec<(&str, &str, usize)> = packages
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(i, (p, n))| (p.ecosystem.as_str(), n.as_str(), i))
        .collect();
    by_key.sort_unstable();
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut key_of = vec![0; packages.len()];
    for &(ecosystem, name, i) in &by_key {
        if keys
            .last()
            .is_none_or(|(e, n)| (e.as_str(), n.as_str()) != (ecosystem, name))
        {
            keys.push((ecosystem.to_owned(), name.to_owned()));
        }
        key_of[i] = keys.len() - 1;
    }
    let mut rows = store.advisory_matchers(&keys)?;
    // The store gives them by (ecosystem, name, id); sorted here should one
    // not, for the pass below.
    let order = |a: &cairn_store::StoredMatcher, b: &cairn_store::StoredMatcher| {
        (&a.ecosystem, &a.name, &a.id).cmp(&(&b.ecosystem, &b.name, &b.id))
    };
    if !rows.is_sorted_by(|a, b| order(a, b).is_le()) {
        rows.sort_by(order);
    }
    let mut newest_modified: Option<&str> = None;
    let mut ecosystems = BTreeSet::new();
    for row in &rows {
        if newest_modified.is_none_or(|n| row.modified.as_str() > n) {
            newest_modified = Some(&row.modified);
        }
        if !ecosystems.contains(&row.ecosystem) {
            ecosystems.insert(row.ecosystem.clone());
        }
    }
    // Each key's rows, by one pass of both in key order (a row of a key not
    // asked for belongs to none).
    let mut spans = Vec::with_capacity(keys.len());
    let mut r = 0;
    for (e, n) in &keys {
        let k = (e.as_str(), n.as_str());
        while rows
            .get(r)
            .is_some_and(|row| (row.ecosystem.as_str(), row.name.as_str()) < k)
        {
            r += 1;
        }
        let start = r;
        while rows
            .get(r)
            .is_some_and(|row| (row.ecosystem.as_str(), row.name.as_str()) == k)
        {
            r += 1;
        }
        spans.push(start..r);
    }
    let mut needed: BTreeSet<&str> = BTreeSet::new();
    let mut corrupt: Vec<cairn_vuln::ScanIssue> = Vec::new();
    // The findings the compiled forms gave, by package position.
    let mut known: Vec<Vec<cairn_vuln::Finding>> = vec![Vec::new(); packages.len()];
    for (i, p) in packages.iter().enumerate() {
        let rows = &rows[spans[key_of[i]].clone()];
        if rows.is_empty() {
            continue;
        }
        let mut installed = Installed::new(&p.version);
        for row in rows {
            let Some(form) = &row.compiled else {
                needed.insert(&row.id);
                continue;
            };
            let decided = decide(form, &mut installed).and_then(|d| match &d {
                Decision::Affected(hit) => hit.check_id(&row.id).map(|()| d),
                _ => Ok(d),
            });
            match decided {
                Ok(Decision::No) => {}
                Ok(Decision::Maybe) => {
                    needed.insert(&row.id);
                }
                Ok(Decision::Affected(hit)) => {
                    // What reading the record would have told of it.
                    for e in hit.ecosystems() {
                        if !ecosystems.contains(*e) {
                            ecosystems.insert((*e).to_owned());
                        }
                    }
                    known[i].push(hit.finding(p));
                }
                Err(e) => corrupt.push(cairn_vuln::ScanIssue {
                    package: p.clone(),
                    advisory_id: row.id.clone(),
                    error: e.into(),
                }),
            }
        }
    }
    let mut index = AdvisoryIndex::new();
    let mut unparsed = Vec::new();
    let ids: Vec<String> = needed.into_iter().map(str::to_owned).collect();
    for stored in store.advisory_forms(&ids)? {
        match Advisory::parse(&stored.json) {
            Ok(advisory) => {
                for a in &advisory.affected {
                    if !ecosystems.contains(&a.ecosystem) {
                        ecosystems.insert(a.ecosystem.clone());
                    }
                }
                index.insert(advisory);
            }
            Err(e) => unparsed.push((stored.id, e)),
        }
    }
    let mut report = index.scan_with(packages, |i| std::mem::take(&mut known[i]));
    if !corrupt.is_empty() {
        // A pair whose compiled form is corrupt is not evaluated, even where
        // its record was read for another package.
        let gone: BTreeSet<(&str, &str, &str, &str)> = corrupt
            .iter()
            .map(|i| {
                (
                    i.advisory_id.as_str(),
                    i.package.ecosystem.as_str(),
                    i.package.name.as_str(),
                    i.package.version.as_str(),
                )
            })
            .collect();
        let kept = |f: &cairn_vuln::Finding| {
            !gone.contains(&(
                f.advisory_id.as_str(),
                f.ecosystem.as_str(),
                f.package.as_str(),
                f.installed_version.as_str(),
            ))
        };
        report.vulnerabilities.retain(kept);
        report.informational.retain(kept);
        report.issues.retain(|i| {
            !gone.contains(&(
                i.advisory_id.as_str(),
                i.package.ecosystem.as_str(),
                i.package.name.as_str(),
                i.package.version.as_str(),
            ))
        });
        report.issues.extend(corrupt);
    }
    Ok(StoredMatch {
        report,
        unparsed,
        newest_modified: newest_modified.map(str::to_owned),
        ecosystems,
    })
}

/// A distribution release none of whose source packages is named by any stored
/// advisory: its records were most likely never imported (a Debian 13 rootfs
/// against Debian 12 data), so "no findings" would be a silent pass. One entry
/// per release, naming how many source packages it covers.
fn releases_without_advisories(
    collected: &Collected,
    keys: &ComponentKeys,
    present: &BTreeSet<String>,
) -> Vec<NotEvaluated> {
    let mut releases: BTreeMap<Vec<&str>, BTreeSet<&str>> = BTreeMap::new();
    for (_, key) in keys.with(collected) {
        if let Some(Ok(ps)) = key {
            let ecosystems = ps.iter().map(|p| p.ecosystem.as_str()).collect();
            let names = releases.entry(ecosystems).or_default();
            names.extend(ps.iter().map(|p| p.name.as_str()));
        }
    }
    releases
        .into_iter()
        .filter(|(ecosystems, _)| !ecosystems.iter().any(|e| present.contains(*e)))
        .map(|(ecosystems, names)| NotEvaluated {
            subject: format!("OS packages of {}", ecosystems.join(" / ")),
            reason: format!(
                "no stored advisory names any of its {} source packages: were the \
                 distribution's records imported (`cairn vulns import`)?",
                names.len()
            ),
        })
        .collect()
}

/// Matches the collection's components against the advisories the store holds
/// for them. A stored record that does not parse is reported, not skipped.
pub fn evaluate(store: &dyn Store, collected: &Collected) -> Result<Evaluation, EngineError> {
    let keys = ComponentKeys::of(collected);
    let (matched, mut not_evaluated) = packages_with(collected, &keys);
    let StoredMatch {
        report,
        unparsed,
        newest_modified,
        ecosystems,
    } = match_stored(store, &matched.packages)?;
    for (id, e) in unparsed {
        not_evaluated.push(NotEvaluated {
            subject: format!("advisory {id}"),
            reason: format!("the stored record does not parse: {}", error_chain(&e)),
        });
    }
    not_evaluated.extend(releases_without_advisories(collected, &keys, &ecosystems));
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
        matched,
    })
}

/// The (OSV ecosystem, name, version) keys a component is matched under: an OS
/// package's source packages (none when it cannot be matched), any other
/// component as it is.
fn keys(c: &Component) -> Vec<(String, String, String)> {
    let key = is_os(c).then(|| os_packages(c));
    keys_with(c, &key)
}

/// [`keys`] from the component's already computed OS packages.
fn keys_with(
    c: &Component,
    key: &Option<Result<Vec<Package>, String>>,
) -> Vec<(String, String, String)> {
    match key {
        Some(Ok(ps)) => ps
            .iter()
            .map(|p| (p.ecosystem.clone(), p.name.clone(), p.version.clone()))
            .collect(),
        Some(Err(_)) => Vec::new(),
        None => vec![(
            c.ecosystem.osv_name().to_owned(),
            c.full_name(),
            c.version.clone(),
        )],
    }
}

/// Each component's purl by (OSV ecosystem, name, version), as findings name
/// them (an OS source package by the first of its binary packages' purls).
/// After [`evaluate`], [`Evaluation::take_purls`] gives the same, looked up
/// by borrowed keys, without deriving the OS packages again.
pub fn purls(collected: &Collected) -> BTreeMap<(String, String, String), String> {
    let keys = ComponentKeys::of(collected);
    let mut out = BTreeMap::new();
    for (c, key) in keys.with(collected) {
        for key in keys_with(c, key) {
            out.entry(key).or_insert_with(|| c.purl.clone());
        }
    }
    out
}

/// The (OSV ecosystem, normalised name, version, purl) rows the SBOM index keeps
/// (OS packages under their source packages, as they are matched).
pub fn index_rows(collected: &Collected) -> Vec<(String, String, String, String)> {
    collected
        .report
        .components
        .iter()
        .flat_map(|c| {
            keys(c).into_iter().map(|(eco, name, version)| {
                let name = normalize_name(&eco, &name);
                (eco, name, version, c.purl.clone())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "version = 3\n\n[[package]]\nname = \"shipped\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";

    /// The package list and purls as they were computed before positions:
    /// each (ecosystem, name, version) kept the first time a search set
    /// took it (the oracle the sorted positions are compared with).
    fn packages_by_search_set(collected: &Collected) -> Vec<Package> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for c in &collected.report.components {
            let ps = match is_os(c).then(|| os_packages(c)) {
                Some(Ok(ps)) => ps,
                Some(Err(_)) => continue,
                None => vec![Package::new(
                    c.ecosystem.osv_name(),
                    &c.full_name(),
                    &c.version,
                )],
            };
            for p in ps {
                if seen.insert((p.ecosystem.clone(), p.name.clone(), p.version.clone())) {
                    out.push(p);
                }
            }
        }
        out
    }

    #[test]
    fn packages_and_purls_by_position_are_those_of_a_search_set_on_real_data() {
        // A Debian 12 root filesystem with this machine's real dpkg database
        // (many binary packages of one source: repeats) when there is one,
        // and this workspace's real Cargo.lock twice (every crate repeated),
        // with a malformed OS package among them.
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
        let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap_or_default();
        write(
            "var/lib/dpkg/status",
            &format!(
                "{status}\nPackage: badbin\nStatus: install ok installed\nArchitecture: amd64\n\
                 Source: badsrc (1.0-1 junk)\nVersion: 1.0-1\n\n\
                 Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
                 Source: glibc (2.36-9)\nVersion: 2.36-9+b1\n\n\
                 Package: libc-bin\nStatus: install ok installed\nArchitecture: amd64\n\
                 Source: glibc (2.36-9)\nVersion: 2.36-9+b1\n"
            ),
        );
        let lock =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"))
                .unwrap();
        write("srv/a/Cargo.lock", &lock);
        write("srv/b/Cargo.lock", &lock);
        let collected = collect_rootfs(root).unwrap();
        let components = &collected.report.components;
        assert!(components.iter().any(is_os), "no OS package read");
        assert!(
            components
                .iter()
                .filter(|c| c.ecosystem == Ecosystem::Cargo)
                .count()
                > 100,
            "the lockfiles were not read"
        );

        let keys = ComponentKeys::of(&collected);
        let (matched, issues) = packages_with(&collected, &keys);
        let expected = packages_by_search_set(&collected);
        assert!(expected.len() < components.len(), "no repeats to drop");
        assert_eq!(matched.packages, expected);
        assert!(
            issues.iter().any(|i| i.reason.contains("badsrc")),
            "{issues:?}"
        );

        let map = purls(&collected);
        let index = Purls::new(matched, &collected);
        assert_eq!(index.len(), map.len());
        for ((ecosystem, name, version), purl) in &map {
            assert_eq!(index.get(ecosystem, name, version), Some(purl));
        }
        assert_eq!(
            index.get("Debian:12", "glibc", "2.36-9"),
            map.get(&(
                "Debian:12".to_owned(),
                "glibc".to_owned(),
                "2.36-9".to_owned()
            ))
        );
        assert_eq!(index.get("crates.io", "serde", "0.0.0-none"), None);
        assert_eq!(index.get("Debian:12", "badsrc", "1.0-1 junk"), None);
    }

    #[test]
    fn a_workloads_sbom_exclude_leaves_fixtures_out_and_says_so() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("Cargo.lock"), LOCK).unwrap();
        for dir in ["crates/a/tests/data", "fuzz", "examples/app"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let fixture = LOCK.replace("shipped", "fixture");
        std::fs::write(root.join("crates/a/tests/data/Cargo.lock"), &fixture).unwrap();
        std::fs::write(
            root.join("fuzz/Cargo.lock"),
            fixture.replace("fixture", "fuzzed"),
        )
        .unwrap();
        std::fs::write(
            root.join("examples/app/Cargo.lock"),
            fixture.replace("fixture", "example"),
        )
        .unwrap();
        let names = |c: &Collected| {
            let mut n: Vec<String> = c.report.components.iter().map(|c| c.name.clone()).collect();
            n.sort();
            n
        };

        let everything = collect_tree(Tree::walk_source(root, &[], &[]).unwrap());
        assert_eq!(
            names(&everything),
            ["example", "fixture", "fuzzed", "shipped"]
        );
        assert!(everything.skipped.is_empty());

        let exclude = ["crates/*/tests".to_owned(), "fuzz".to_owned()];
        let built = collect_tree(Tree::walk_source(root, &[], &exclude).unwrap());
        // What is not excluded is still read: the example stays.
        assert_eq!(names(&built), ["example", "shipped"]);
        let skipped: Vec<(&str, &str)> = built
            .skipped
            .iter()
            .map(|s| (s.path.as_str(), s.reason.as_str()))
            .collect();
        let reason = "left out by the workload's [sbom] exclude (not part of what is built)";
        assert_eq!(skipped, [("crates/a/tests/", reason), ("fuzz/", reason)]);
    }
}

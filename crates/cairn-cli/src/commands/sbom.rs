//! `cairn sbom PATH [--format cyclonedx|spdx] [--output FILE]`: the components of a
//! source tree or a root filesystem directory, as a CycloneDX 1.6 (default) or SPDX
//! 2.3 JSON document. Also the bounded tree walk `cairn scan` shares.
//!
//! The walk is bounded: symlinked directories are not followed, a symlinked file is
//! read only when it resolves inside the tree, files over
//! [`cairn_sbom::MAX_FILE_BYTES`] are skipped, and the walk stops after
//! [`MAX_ENTRIES`] entries or below [`MAX_DEPTH`] levels, saying so. Every file that
//! could not be read or parsed is listed on stderr as `skipped PATH: reason`; the
//! exit code is 1 only when nothing could be read.
//!
//! The document's UUID comes from the kernel's randomness (`/dev/urandom`), its
//! timestamp from the system clock.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_sbom::cyclonedx::{DocumentInput, Subject, SubjectKind};
use cairn_sbom::{FileKind, ParseError, ScanReport};

use crate::cli::Cli;
use crate::exit::Failure;

/// The most directory entries one walk looks at.
pub const MAX_ENTRIES: usize = 2_000_000;
/// The deepest directory one walk enters (the root is depth 0).
pub const MAX_DEPTH: usize = 128;
/// The base of SPDX `documentNamespace`s; the document's name and UUID follow it.
const SPDX_NAMESPACE: &str = "https://cairn.invalid/spdxdocs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

#[derive(Debug, clap::Args)]
pub struct SbomArgs {
    /// A source tree or a root filesystem directory (or one lockfile).
    pub path: PathBuf,
    /// The document format.
    #[arg(long, value_enum, default_value = "cyclonedx")]
    pub format: SbomFormat,
    /// Write the document to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also keep the document in the store and index its components for
    /// `cairn where`. The artifact's digest is the SHA-256 of PATH when PATH is a
    /// file, else of the document's bytes.
    #[arg(long)]
    pub record: bool,
    /// The artifact's name when recording (default: PATH's file or directory name).
    #[arg(long, value_name = "NAME", requires = "record")]
    pub subject: Option<String>,
}

pub fn sbom(cli: &Cli, args: &SbomArgs) -> Result<ExitCode, Failure> {
    let collected = collect(&args.path)?;
    print_problems(&collected);
    if collected.nothing_read() {
        return Err(Failure::user(anyhow!(
            "no file under {} could be read",
            args.path.display()
        )));
    }
    if collected.report.files.is_empty() {
        eprintln!(
            "cairn: no lockfile or package database found under {}; the document lists no components",
            args.path.display()
        );
    }
    // The kernel's CSPRNG: a serial number needs no more, and aws-lc's DRBG seeds
    // itself with ~30 ms of jitter entropy on first use in a process.
    let mut uuid = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut uuid))
        .context("no randomness for the UUID (/dev/urandom)")?;
    let timestamp = now_rfc3339();
    let input = DocumentInput {
        subject: collected.subject(),
        components: &collected.report.components,
        uuid,
        timestamp: &timestamp,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let mut doc = match args.format {
        SbomFormat::Cyclonedx => cairn_sbom::cyclonedx::to_json(&input),
        SbomFormat::Spdx => cairn_sbom::spdx_doc::to_json(&input, SPDX_NAMESPACE),
    }
    .context("cannot write the SBOM document")?;
    doc.push(b'\n');
    match &args.output {
        Some(file) => std::fs::write(file, &doc)
            .with_context(|| format!("cannot write {}", file.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&doc)
                .and_then(|()| out.flush())
                .context("cannot write the document to stdout")?;
        }
    }
    if args.record {
        record(cli, args, &collected, &doc)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps the document and its components in the store (`--record`).
fn record(cli: &Cli, args: &SbomArgs, collected: &Collected, doc: &[u8]) -> Result<(), Failure> {
    let (digested, of) = if std::fs::metadata(&args.path).is_ok_and(|m| m.is_file()) {
        let bytes = std::fs::read(&args.path)
            .with_context(|| format!("cannot read {}", args.path.display()))?;
        (bytes, format!("the file {}", args.path.display()))
    } else {
        (doc.to_vec(), "the SBOM document".to_owned())
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &digested);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let subject_digest = format!("sha256:{hex}");
    let subject_name = args
        .subject
        .clone()
        .unwrap_or_else(|| collected.name.clone());
    let components = collected
        .report
        .components
        .iter()
        .map(|c| {
            let eco = c.ecosystem.osv_name();
            (
                eco.to_owned(),
                cairn_vuln::matching::normalize_name(eco, &c.full_name()),
                c.version.clone(),
                c.purl.clone(),
            )
        })
        .collect();
    let created_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let store = super::open_store(&super::data_dir(cli)?)?;
    let id = store.add_sbom(&cairn_store::NewSbom {
        subject_name: subject_name.clone(),
        subject_digest: subject_digest.clone(),
        workload: None,
        environment: None,
        created_at_ms,
        format: match args.format {
            SbomFormat::Cyclonedx => "cyclonedx",
            SbomFormat::Spdx => "spdx",
        }
        .to_owned(),
        document: doc.to_vec(),
        components,
    })?;
    eprintln!(
        "cairn: recorded SBOM {id} of {subject_name} ({subject_digest}, the SHA-256 of {of}), {} components",
        collected.report.components.len()
    );
    // Match it against the stored advisories now, so its findings exist before the
    // next import.
    let packages: std::collections::BTreeSet<(String, String)> = collected
        .report
        .components
        .iter()
        .map(|c| {
            let eco = c.ecosystem.osv_name();
            (
                eco.to_owned(),
                cairn_vuln::matching::normalize_name(eco, &c.full_name()),
            )
        })
        .collect();
    let matched = super::vulns::rematch(
        &*store,
        cairn_store::MatchScope {
            packages: packages.into_iter().collect(),
            advisories: Vec::new(),
            sbom: Some(id),
        },
    )?;
    eprintln!(
        "cairn: matched SBOM {id} against the stored advisories: {} new findings, {} not evaluated",
        matched.outcome.opened.len(),
        matched.not_evaluated.len()
    );
    for f in &matched.outcome.opened {
        eprintln!(
            "  {} {} {} {}  [{}{}]",
            f.key.advisory_id,
            f.key.ecosystem,
            f.key.name,
            f.key.version,
            f.kind,
            f.severity
                .as_deref()
                .map_or_else(String::new, |s| format!(", {s}"))
        );
    }
    Ok(())
}

/// The RFC 3339 UTC time now, from the system clock.
pub fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    cairn_model::time::rfc3339_utc(ms)
}

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
/// cannot be walked (a missing path is the user's input: exit 1).
pub fn collect(path: &Path) -> Result<Collected, Failure> {
    let tree = Tree::walk(path)?;
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
    Ok(Collected {
        report,
        skipped,
        name: tree.name,
    })
}

/// Lists what was skipped (`skipped PATH: reason`) and what parsers left out on
/// purpose (`note: PATH:LINE: message`), on stderr.
pub fn print_problems(collected: &Collected) {
    let mut err = std::io::stderr().lock();
    for s in &collected.skipped {
        let _ = writeln!(err, "skipped {}: {}", s.path, s.reason);
    }
    for n in &collected.report.notes {
        let at = n.line.map_or_else(String::new, |l| format!(":{l}"));
        let _ = writeln!(err, "note: {}{at}: {}", n.path, n.message);
    }
}

pub use cairn_model::error_chain;

/// The files of a tree, relative to its root with `/` separators.
#[derive(Debug)]
pub struct Tree {
    /// The root, canonical (symlinks resolved), so "inside the tree" can be checked.
    root: PathBuf,
    /// Regular files and symlinks (resolved when read), sorted.
    pub files: Vec<String>,
    /// Directories that could not be listed, and where the walk stopped.
    pub skipped: Vec<Skipped>,
    /// The root directory's name.
    pub name: String,
}

impl Tree {
    /// Lists the tree under `path` (a directory, or one file: then the tree is that
    /// file in its directory).
    pub fn walk(path: &Path) -> Result<Tree, Failure> {
        let meta = std::fs::metadata(path).map_err(|e| {
            Failure::user(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
        })?;
        let canonical = std::fs::canonicalize(path)
            .with_context(|| format!("cannot resolve {}", path.display()))?;
        if meta.is_file() {
            let root = canonical
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            let file = canonical
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Failure::user(anyhow!("{} has no UTF-8 file name", path.display())))?
                .to_owned();
            let name = file.clone();
            return Ok(Tree {
                root,
                files: vec![file],
                skipped: Vec::new(),
                name,
            });
        }
        if !meta.is_dir() {
            return Err(Failure::user(anyhow!(
                "{} is neither a directory nor a file",
                path.display()
            )));
        }
        let name = canonical
            .file_name()
            .map_or_else(|| "/".to_owned(), |n| n.to_string_lossy().into_owned());
        let mut tree = Tree {
            root: canonical.clone(),
            files: Vec::new(),
            skipped: Vec::new(),
            name,
        };
        let mut entries = 0usize;
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(canonical, String::new(), 0)];
        'walk: while let Some((dir, rel, depth)) = stack.pop() {
            let shown = if rel.is_empty() {
                ".".to_owned()
            } else {
                format!("{rel}/")
            };
            let list = match std::fs::read_dir(&dir) {
                Ok(list) => list,
                Err(e) => {
                    tree.skip(shown, format!("cannot list the directory: {e}"));
                    continue;
                }
            };
            for entry in list {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        tree.skip(shown.clone(), format!("cannot list the directory: {e}"));
                        break;
                    }
                };
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
                let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let child = if rel.is_empty() {
                    file_name
                } else {
                    format!("{rel}/{file_name}")
                };
                let Ok(kind) = entry.file_type() else {
                    tree.skip(child, "cannot read its file type".to_owned());
                    continue;
                };
                if kind.is_dir() {
                    if depth + 1 > MAX_DEPTH {
                        tree.skip(
                            format!("{child}/"),
                            format!("deeper than {MAX_DEPTH} levels"),
                        );
                    } else {
                        stack.push((entry.path(), child, depth + 1));
                    }
                } else if kind.is_file() || kind.is_symlink() {
                    // Symlinks to directories are listed here but never walked:
                    // reading one fails as "not a regular file".
                    tree.files.push(child);
                }
                // Sockets, FIFOs and devices are never read.
            }
        }
        tree.files.sort_unstable();
        Ok(tree)
    }

    fn skip(&mut self, path: String, reason: String) {
        self.skipped.push(Skipped { path, reason });
    }

    /// A file's bytes, at most `limit` of them; a symlink only when it resolves to a
    /// regular file inside the tree.
    pub fn read(&self, rel: &str, limit: usize) -> Result<Vec<u8>, String> {
        let full = self.root.join(rel);
        let link = std::fs::symlink_metadata(&full).map_err(|e| format!("cannot read it: {e}"))?;
        let target = if link.file_type().is_symlink() {
            let target =
                std::fs::canonicalize(&full).map_err(|e| format!("a broken symlink: {e}"))?;
            if !target.starts_with(&self.root) {
                return Err("a symlink to outside the tree".to_owned());
            }
            target
        } else {
            full
        };
        let meta = std::fs::metadata(&target).map_err(|e| format!("cannot read it: {e}"))?;
        if !meta.is_file() {
            return Err("not a regular file".to_owned());
        }
        let too_large = |size: u64| format!("{size} bytes, more than the limit of {limit}");
        if meta.len() > limit as u64 {
            return Err(too_large(meta.len()));
        }
        let file = std::fs::File::open(&target).map_err(|e| format!("cannot open it: {e}"))?;
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read it: {e}"))?;
        if bytes.len() > limit {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(bytes)
    }
}

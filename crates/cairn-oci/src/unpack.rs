//! Safe unpacking of untrusted images: layers applied in order with OCI
//! whiteouts (image-spec 1.1 `layer.md`), each layer's blob verified before
//! use and its diff_id verified as it streams. Nothing is ever written outside
//! the target: `..` and absolute entry paths are refused, symlinks are never
//! followed while creating a path (an entry below a symlink is refused),
//! hardlinks must point at a regular file already inside the target, device
//! nodes and fifos are skipped and reported, setuid/setgid bits and group and
//! other write bits are stripped, and every input is bounded by [`UnpackLimits`].
//!
//! The target is owned by the unpacker while it runs (no one else writes
//! there), so checking each path component with `lstat` before use is sound.
//! Ownership from the tar headers is not applied: files belong to the caller.
//! After an error the target is partially written and must be discarded.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;

use crate::digest::Hasher;
use crate::{Digest, Image, Layout, OciError};

/// Bounds on what an unpack may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most tar entries over all layers.
    pub max_entries: u64,
    /// Longest entry path, in bytes.
    pub max_path_len: usize,
    /// Deepest entry path, in components.
    pub max_depth: usize,
    /// Most uncompressed bytes read over all layers (tar headers and file
    /// contents): stops decompression bombs.
    pub max_total_bytes: u64,
}

impl Default for UnpackLimits {
    /// 1,000,000 entries, 4096-byte paths, 128 levels, 16 GiB.
    fn default() -> Self {
        UnpackLimits {
            max_entries: 1_000_000,
            max_path_len: 4096,
            max_depth: 128,
            max_total_bytes: 16 << 30,
        }
    }
}

/// The kinds of special file an unpack neutralises (never creates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    /// A character device node.
    CharDevice,
    /// A block device node.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

/// A special file that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The layer it was in.
    pub layer: Digest,
    /// Its path in the image (lossy UTF-8).
    pub path: String,
    /// What it was.
    pub kind: SpecialKind,
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Layers applied.
    pub layers: usize,
    /// Tar entries read (including whiteouts and skipped ones).
    pub entries: u64,
    /// Uncompressed layer bytes read.
    pub bytes_read: u64,
    /// File content bytes written.
    pub bytes_written: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
    /// Device nodes and fifos that were not created.
    pub skipped: Vec<SkippedEntry>,
    /// Paths whose setuid/setgid bits were removed.
    pub setid_stripped: Vec<String>,
}

/// Unpacks `image`'s layers from `layout` into `target`, which must not exist
/// or be an empty directory. Each layer's blob is verified (digest and size)
/// before it is read for unpacking, and its uncompressed content against the
/// config's diff_id while it streams.
pub fn unpack(
    layout: &Layout,
    image: &Image,
    target: &Path,
    limits: UnpackLimits,
) -> Result<UnpackReport, OciError> {
    prepare_target(target)?;
    let mut unpacker = Unpacker {
        root: target.to_path_buf(),
        limits,
        report: UnpackReport::default(),
    };
    for (i, layer) in image.layers.iter().enumerate() {
        layout.verify_blob("layer", &layer.digest, Some(layer.size))?;
        let gzip = image.layer_is_gzip(i)?;
        let file = layout.open_blob(&layer.digest)?;
        unpacker.apply_layer(file, gzip, layer.digest, Some(layer.diff_id))?;
    }
    Ok(unpacker.report)
}

/// Unpacks one layer given as bytes (a tar, gzip-compressed or not) into
/// `target`, which must not exist or be an empty directory. The layer is
/// named by the digest of `bytes` in errors and the report. The entry point
/// for fuzzing the layer reader.
pub fn unpack_layer_bytes(
    bytes: &[u8],
    target: &Path,
    limits: UnpackLimits,
) -> Result<UnpackReport, OciError> {
    prepare_target(target)?;
    let mut unpacker = Unpacker {
        root: target.to_path_buf(),
        limits,
        report: UnpackReport::default(),
    };
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    unpacker.apply_layer(bytes, gzip, cairn_evidence::sha256(bytes), None)?;
    Ok(unpacker.report)
}

fn prepare_target(target: &Path) -> Result<(), OciError> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(target).map_err(OciError::io("list", target))?;
            if entries.next().is_some() {
                return Err(OciError::TargetNotEmpty {
                    path: target.to_path_buf(),
                });
            }
            Ok(())
        }
        Ok(_) => Err(OciError::TargetNotEmpty {
            path: target.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(target).map_err(OciError::io("create", target))
        }
        Err(source) => Err(OciError::Io {
            action: "stat",
            path: target.to_path_buf(),
            source,
        }),
    }
}

/// Counts and hashes the uncompressed stream, failing past the byte limit.
struct Meter<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
    limit: u64,
    exceeded: bool,
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("unpack byte limit exceeded"));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

struct Unpacker {
    root: PathBuf,
    limits: UnpackLimits,
    report: UnpackReport,
}

/// The paths an entry of the current layer named or created, for whiteouts
/// (which apply to lower layers only) and duplicate detection.
#[derive(Default)]
struct LayerState {
    explicit: HashSet<Vec<u8>>,
    touched: HashSet<Vec<u8>>,
}

impl Unpacker {
    fn apply_layer(
        &mut self,
        blob: impl Read,
        gzip: bool,
        layer: Digest,
        diff_id: Option<Digest>,
    ) -> Result<(), OciError> {
        let reader: Box<dyn Read + '_> = if gzip {
            Box::new(MultiGzDecoder::new(blob))
        } else {
            Box::new(blob)
        };
        let mut meter = Meter {
            inner: reader,
            hasher: Hasher::new(),
            count: 0,
            limit: self
                .limits
                .max_total_bytes
                .saturating_sub(self.report.bytes_read),
            exceeded: false,
        };
        let result = {
            let mut archive = tar::Archive::new(&mut meter);
            self.apply_entries(&mut archive, layer)
        };
        let limit_error = || OciError::LimitExceeded {
            layer,
            limit: "total uncompressed bytes",
            max: self.limits.max_total_bytes,
        };
        if meter.exceeded {
            return Err(limit_error());
        }
        result?;
        // The diff_id covers the whole stream, including the end-of-archive
        // padding the tar reader does not consume.
        if let Err(source) = io::copy(&mut meter, &mut io::sink()) {
            if meter.exceeded {
                return Err(limit_error());
            }
            return Err(OciError::Archive { layer, source });
        }
        self.report.bytes_read += meter.count;
        self.report.layers += 1;
        let actual = meter.hasher.finish();
        if let Some(expected) = diff_id
            && expected != actual
        {
            return Err(OciError::DiffIdMismatch {
                layer,
                expected,
                actual,
            });
        }
        Ok(())
    }

    fn apply_entries<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
        layer: Digest,
    ) -> Result<(), OciError> {
        let archive_error = |source| OciError::Archive { layer, source };
        let mut state = LayerState::default();
        for entry in archive.entries().map_err(archive_error)? {
            let mut entry = entry.map_err(archive_error)?;
            self.report.entries += 1;
            if self.report.entries > self.limits.max_entries {
                return Err(OciError::LimitExceeded {
                    layer,
                    limit: "entry count",
                    max: self.limits.max_entries,
                });
            }
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw)
                .chars()
                .take(256)
                .collect::<String>();
            let unsafe_entry = |reason| OciError::UnsafeEntry {
                layer,
                entry: shown.clone(),
                reason,
            };
            if raw.len() > self.limits.max_path_len {
                return Err(OciError::LimitExceeded {
                    layer,
                    limit: "path length",
                    max: self.limits.max_path_len as u64,
                });
            }
            let components = normalise(&raw).map_err(unsafe_entry)?;
            if components.len() > self.limits.max_depth {
                return Err(OciError::LimitExceeded {
                    layer,
                    limit: "path depth",
                    max: self.limits.max_depth as u64,
                });
            }
            let Some((name, parents)) = components.split_last() else {
                continue; // the root directory itself ("./")
            };
            let rel = components.join(&b'/');
            for i in 1..components.len() {
                state.touched.insert(components[..i].join(&b'/'));
            }

            if let Some(victim) = name.strip_prefix(b".wh.") {
                self.report.whiteouts += 1;
                let Some(dir) = self.existing_dir(parents).map_err(unsafe_entry)? else {
                    continue;
                };
                if victim == b".wh..opq" {
                    self.opaque(&dir, parents, &state)?;
                } else {
                    if victim.is_empty()
                        || victim == b"."
                        || victim == b".."
                        || victim.starts_with(b".wh.")
                    {
                        return Err(unsafe_entry("malformed whiteout"));
                    }
                    let mut victim_rel = parents.join(&b'/');
                    if !victim_rel.is_empty() {
                        victim_rel.push(b'/');
                    }
                    victim_rel.extend_from_slice(victim);
                    if !state.touched.contains(&victim_rel) {
                        remove_any(&dir.join(OsStr::from_bytes(victim)))?;
                    }
                }
                continue;
            }

            if !state.explicit.insert(rel.clone()) {
                return Err(unsafe_entry(
                    "a second entry for the same path in one layer",
                ));
            }
            state.touched.insert(rel.clone());
            let dir = self.make_dirs(parents).map_err(|e| match e {
                Step::Unsafe(reason) => unsafe_entry(reason),
                Step::Io(err) => err,
            })?;
            let dest = dir.join(OsStr::from_bytes(name));
            let header = entry.header();
            let entry_type = header.entry_type();
            let mode = header.mode().map_err(archive_error)? & 0o7777;
            let mode = if mode & 0o6000 != 0 {
                self.report.setid_stripped.push(shown.clone());
                mode & !0o6000
            } else {
                mode
            };
            // Nothing an image unpacks is writable by group or others: a base's
            // world-writable file must not become one that any local user (or the
            // sandbox's) can rewrite in the cache the release candidate runs from.
            let mode = mode & !0o022;
            let mtime = header.mtime().ok();
            match entry_type {
                tar::EntryType::Directory => {
                    let is_dir = fs::symlink_metadata(&dest)
                        .map(|m| m.is_dir())
                        .unwrap_or(false);
                    if !is_dir {
                        remove_any(&dest)?;
                        fs::create_dir(&dest).map_err(OciError::io("create", &dest))?;
                    }
                    set_mode(&dest, mode)?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    if self.report.bytes_written.saturating_add(size) > self.limits.max_total_bytes
                    {
                        return Err(OciError::LimitExceeded {
                            layer,
                            limit: "total uncompressed bytes",
                            max: self.limits.max_total_bytes,
                        });
                    }
                    remove_any(&dest)?;
                    // create_new (O_EXCL) never follows a symlink at `dest`.
                    let mut file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&dest)
                        .map_err(OciError::io("create", &dest))?;
                    let written = io::copy(&mut entry, &mut file).map_err(archive_error)?;
                    self.report.bytes_written += written;
                    if let Some(when) =
                        mtime.and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
                    {
                        file.set_modified(when)
                            .map_err(OciError::io("set mtime of", &dest))?;
                    }
                    drop(file);
                    set_mode(&dest, mode)?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| unsafe_entry("a symlink without a target"))?;
                    remove_any(&dest)?;
                    std::os::unix::fs::symlink(OsStr::from_bytes(&target), &dest)
                        .map_err(OciError::io("create symlink", &dest))?;
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| unsafe_entry("a hardlink without a target"))?;
                    let target = normalise(&target)
                        .map_err(|_| unsafe_entry("its hardlink target leaves the image"))?;
                    if target == components {
                        return Err(unsafe_entry("a hardlink to itself"));
                    }
                    let source = self.existing_file(&target).map_err(unsafe_entry)?;
                    remove_any(&dest)?;
                    fs::hard_link(&source, &dest)
                        .map_err(OciError::io("create hardlink", &dest))?;
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    let kind = match entry_type {
                        tar::EntryType::Char => SpecialKind::CharDevice,
                        tar::EntryType::Block => SpecialKind::BlockDevice,
                        _ => SpecialKind::Fifo,
                    };
                    self.report.skipped.push(SkippedEntry {
                        layer,
                        path: shown.clone(),
                        kind,
                    });
                }
                _ => return Err(unsafe_entry("an unsupported tar entry type")),
            }
        }
        Ok(())
    }

    /// Removes what lower layers put in `dir` (an opaque whiteout).
    fn opaque(&self, dir: &Path, parents: &[&[u8]], state: &LayerState) -> Result<(), OciError> {
        for child in fs::read_dir(dir).map_err(OciError::io("list", dir))? {
            let child = child.map_err(OciError::io("list", dir))?;
            let mut rel = parents.join(&b'/');
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(child.file_name().as_bytes());
            if !state.touched.contains(&rel) {
                remove_any(&child.path())?;
            }
        }
        Ok(())
    }

    /// The directory `components` names, creating missing ones (0755); a
    /// symlink or non-directory on the way is refused, never followed.
    fn make_dirs(&self, components: &[&[u8]]) -> Result<PathBuf, Step> {
        let mut path = self.root.clone();
        for component in components {
            path.push(OsStr::from_bytes(component));
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Step::Unsafe(
                        "a parent directory is a symlink; cairn never follows symlinks while unpacking",
                    ));
                }
                Ok(_) => return Err(Step::Unsafe("a parent directory is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&path)
                        .map_err(|e| Step::Io(OciError::io("create", &path)(e)))?;
                    set_mode(&path, 0o755).map_err(Step::Io)?;
                }
                Err(source) => {
                    return Err(Step::Io(OciError::Io {
                        action: "stat",
                        path,
                        source,
                    }));
                }
            }
        }
        Ok(path)
    }

    /// The directory `components` names if it exists as a real directory
    /// reached without symlinks; `None` if it does not exist.
    fn existing_dir(&self, components: &[&[u8]]) -> Result<Option<PathBuf>, &'static str> {
        let mut path = self.root.clone();
        for component in components {
            path.push(OsStr::from_bytes(component));
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(
                        "a parent directory is a symlink; cairn never follows symlinks while unpacking",
                    );
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(path))
    }

    /// The regular file `components` names, reached without symlinks.
    fn existing_file(&self, components: &[&[u8]]) -> Result<PathBuf, &'static str> {
        let Some((name, parents)) = components.split_last() else {
            return Err("a hardlink to the root directory");
        };
        let dir = self
            .existing_dir(parents)
            .map_err(|_| "its hardlink target is reached through a symlink")?
            .ok_or("its hardlink target does not exist in the image")?;
        let path = dir.join(OsStr::from_bytes(name));
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err("its hardlink target is not a regular file"),
            Err(_) => Err("its hardlink target does not exist in the image"),
        }
    }
}

enum Step {
    Unsafe(&'static str),
    Io(OciError),
}

/// Splits an entry path into components: `./` and empty components dropped,
/// absolute paths and `..` refused.
fn normalise(raw: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("an absolute path");
    }
    let mut out = Vec::new();
    for component in raw.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("a path with .. in it"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn remove_any(path: &Path) -> Result<(), OciError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(OciError::io("remove", path)),
        Ok(_) => fs::remove_file(path).map_err(OciError::io("remove", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(OciError::Io {
            action: "stat",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), OciError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(OciError::io("chmod", path))
}

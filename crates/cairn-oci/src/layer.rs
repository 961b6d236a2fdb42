//! Reproducible layers from a build output: a tar whose entries are sorted by
//! path bytes (parents included), owned by 0:0 with empty names, modes
//! normalised, every mtime the SOURCE_DATE_EPOCH, no xattrs, compressed with
//! a fixed gzip header. The same input gives a byte-identical layer.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};

use crate::digest::HashWriter;
use crate::{Digest, Layout, OciError};

/// A layer stored in a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// The digest of the compressed blob (`tar+gzip`), as in the manifest.
    pub digest: Digest,
    /// The digest of the uncompressed tar, as in the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// The compressed size in bytes.
    pub size: u64,
}

/// Most entries one layer may hold.
const MAX_ENTRIES: usize = 1_000_000;
/// Longest path (in bytes) inside a layer.
const MAX_PATH: usize = 4096;
/// Deepest directory nesting inside a layer.
const MAX_DEPTH: usize = 128;
/// gzip level: fixed, so output bytes depend only on input bytes.
const GZIP_LEVEL: u32 = 6;
/// gzip OS byte: 255 "unknown", whatever the host.
const GZIP_OS_UNKNOWN: u8 = 255;

enum Kind {
    Dir,
    /// A regular file at this path below the source root ("" for a single file).
    File {
        exec: bool,
        len: u64,
        rel: Vec<u8>,
    },
    Symlink(PathBuf),
}

struct Entry {
    path: Vec<u8>,
    kind: Kind,
}

/// What a layer is made from, opened beneath a root the caller chose: a
/// directory, or one regular file.
#[derive(Debug)]
pub enum LayerSource<'a> {
    /// The directory's contents.
    Dir(&'a cairn_fs::Dir),
    /// One regular file, opened beneath its directory.
    File(&'a cairn_fs::Dir, &'a Path),
}

/// Builds a reproducible layer from `src` and stores it in `layout`.
///
/// If `src` is a directory its contents appear under `path_in_image` (e.g.
/// `/app`); if it is a file, it appears at `path_in_image`. The parents of
/// `path_in_image` are included as directories. `src` itself is the caller's
/// path, taken as given; everything below it is read without following a
/// symlink (see `cairn_fs`): symlinks inside a directory are stored as
/// symlinks, and anything but regular files, directories and symlinks is an
/// [`OciError::UnsupportedFile`].
pub fn layer_from_dir(
    layout: &Layout,
    src: &Path,
    path_in_image: &str,
    mtime_epoch_secs: u64,
) -> Result<Layer, OciError> {
    let root_meta = fs::symlink_metadata(src).map_err(OciError::io("stat", src))?;
    if root_meta.is_dir() {
        let dir = cairn_fs::Dir::open(src)?;
        return layer_from(
            layout,
            LayerSource::Dir(&dir),
            path_in_image,
            mtime_epoch_secs,
        );
    }
    let parent = match src.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = src.file_name().ok_or_else(|| OciError::Invalid {
        what: format!("build output {}", src.display()),
        reason: "it names no file",
    })?;
    let dir = cairn_fs::Dir::open(parent)?;
    layer_from(
        layout,
        LayerSource::File(&dir, Path::new(name)),
        path_in_image,
        mtime_epoch_secs,
    )
}

/// [`layer_from_dir`] from a source already opened beneath an untrusted root
/// (a workspace): `LayerSource::File`'s path is resolved with no symlink and
/// must be a regular file.
pub fn layer_from(
    layout: &Layout,
    src: LayerSource<'_>,
    path_in_image: &str,
    mtime_epoch_secs: u64,
) -> Result<Layer, OciError> {
    let mut entries = Vec::new();
    let base = image_path(path_in_image)?;
    let mut prefix = Vec::new();
    if !base.is_empty() {
        for component in base.split(|b| *b == b'/') {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(component);
            entries.push(Entry {
                path: prefix.clone(),
                kind: Kind::Dir,
            });
        }
        // The last one is `path_in_image` itself: `src` decides what it is.
        entries.pop();
    }
    let (root, shown) = match src {
        LayerSource::Dir(dir) => {
            if !base.is_empty() {
                entries.push(Entry {
                    path: base.clone(),
                    kind: Kind::Dir,
                });
            }
            walk(dir, &base, &mut entries)?;
            (dir, dir.path().to_path_buf())
        }
        LayerSource::File(dir, rel) => {
            if base.is_empty() {
                return Err(OciError::Invalid {
                    what: format!(
                        "path in image {path_in_image:?} for file {}",
                        dir.path().join(rel).display()
                    ),
                    reason: "a single file needs a path below /",
                });
            }
            let file = dir.file_beneath(rel)?;
            let meta = *file.meta();
            entries.push(Entry {
                path: base.clone(),
                kind: Kind::File {
                    exec: meta.mode & 0o111 != 0,
                    len: meta.len,
                    rel: rel.as_os_str().as_bytes().to_vec(),
                },
            });
            (dir, dir.path().join(rel))
        }
    };
    entries.sort_by(|a, b| a.path.cmp(&b.path));

    let writer = layout.blob_writer()?;
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(writer, Compression::new(GZIP_LEVEL));
    let tar_out = HashWriter::new(BufWriter::with_capacity(1 << 20, gz));
    let mut tar = tar::Builder::new(tar_out);
    for entry in &entries {
        append(&mut tar, root, entry, mtime_epoch_secs)?;
    }
    let tar_out = tar
        .into_inner()
        .map_err(OciError::io("finish tar for", &shown))?;
    let diff_id = tar_out.hasher.finish();
    let gz = tar_out.inner.into_inner().map_err(|e| OciError::Io {
        action: "compress",
        path: shown.clone(),
        source: e.into_error(),
    })?;
    let writer = gz.finish().map_err(OciError::io("compress", &shown))?;
    let blob = writer.commit()?;
    Ok(Layer {
        digest: blob.digest,
        diff_id,
        size: blob.size,
    })
}

/// `/app/x/` → `app/x`; refuses `..`, empty components after trimming and
/// over-long paths.
fn image_path(path: &str) -> Result<Vec<u8>, OciError> {
    let bad = |reason| OciError::Invalid {
        what: format!("path in image {path:?}"),
        reason,
    };
    let mut out = Vec::new();
    for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if component == ".." {
            return Err(bad("it must not contain .."));
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(component.as_bytes());
    }
    if out.len() > MAX_PATH {
        return Err(bad("it is too long"));
    }
    Ok(out)
}

/// Every entry below `dir` (never through a symlink), under `prefix`.
fn walk(dir: &cairn_fs::Dir, prefix: &[u8], out: &mut Vec<Entry>) -> Result<(), OciError> {
    let limits = cairn_fs::WalkLimits {
        max_entries: MAX_ENTRIES as u64,
        max_depth: MAX_DEPTH,
        max_path_len: MAX_PATH,
    };
    for item in cairn_fs::walk(dir, limits, &[])? {
        let mut name = prefix.to_vec();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(&item.rel);
        if name.len() > MAX_PATH {
            return Err(OciError::InputTooLarge {
                what: format!(
                    "path length of {}",
                    dir.path().join(item.rel_path()).display()
                ),
                max: MAX_PATH as u64,
                unit: "bytes",
            });
        }
        let kind = match item.meta.kind {
            cairn_fs::Kind::Dir => Kind::Dir,
            cairn_fs::Kind::File => Kind::File {
                exec: item.meta.mode & 0o111 != 0,
                len: item.meta.len,
                rel: item.rel.clone(),
            },
            cairn_fs::Kind::Symlink => Kind::Symlink(dir.read_link_beneath(item.rel_path())?),
            other => {
                return Err(OciError::UnsupportedFile {
                    path: dir.path().join(item.rel_path()),
                    kind: other.name(),
                });
            }
        };
        out.push(Entry { path: name, kind });
    }
    Ok(())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &cairn_fs::Dir,
    entry: &Entry,
    mtime: u64,
) -> Result<(), OciError> {
    let mut header = tar::Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    let path = Path::new(std::ffi::OsStr::from_bytes(&entry.path));
    let fail = |source: io::Error| OciError::Io {
        action: "add to layer",
        path: path.to_path_buf(),
        source,
    };
    match &entry.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, path, io::empty())
                .map_err(fail)
        }
        Kind::File { exec, len, rel } => {
            let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
            let file = root.file_beneath(rel)?;
            if file.meta().len != *len {
                return Err(OciError::Io {
                    action: "add to layer",
                    path: root.path().join(rel),
                    source: io::Error::other("the file changed while the layer was made"),
                });
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if *exec { 0o755 } else { 0o644 });
            header.set_size(*len);
            // `take` guards against a file growing while it is read; a file
            // that shrinks makes the tar writer fail, which is an error.
            tar.append_data(&mut header, path, io::Read::take(file, *len))
                .map_err(fail)
        }
        Kind::Symlink(target) => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, path, target).map_err(fail)
        }
    }
}

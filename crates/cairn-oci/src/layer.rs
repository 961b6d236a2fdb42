//! Reproducible layers from a build output: a tar whose entries are sorted by
//! path bytes (parents included), owned by 0:0 with empty names, modes
//! normalised, every mtime the SOURCE_DATE_EPOCH, no xattrs, compressed with
//! a fixed gzip header. The same input gives a byte-identical layer.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
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
    File { exec: bool, source: PathBuf },
    Symlink(PathBuf),
}

struct Entry {
    path: Vec<u8>,
    kind: Kind,
}

/// Builds a reproducible layer from `src` and stores it in `layout`.
///
/// If `src` is a directory its contents appear under `path_in_image` (e.g.
/// `/app`); if it is a file or symlink, it appears at `path_in_image`. The
/// parents of `path_in_image` are included as directories. Only regular
/// files, directories and symlinks are accepted (symlinks are stored, never
/// followed); anything else is an [`OciError::UnsupportedFile`].
pub fn layer_from_dir(
    layout: &Layout,
    src: &Path,
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
    let root_meta = fs::symlink_metadata(src).map_err(OciError::io("stat", src))?;
    if root_meta.is_dir() {
        if !base.is_empty() {
            entries.push(Entry {
                path: base.clone(),
                kind: Kind::Dir,
            });
        }
        walk(src, &base, 1, &mut entries)?;
    } else {
        if base.is_empty() {
            return Err(OciError::Invalid {
                what: format!("path in image {path_in_image:?} for file {}", src.display()),
                reason: "a single file needs a path below /",
            });
        }
        entries.push(Entry {
            path: base.clone(),
            kind: kind_of(src, &root_meta)?,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));

    let writer = layout.blob_writer()?;
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(writer, Compression::new(GZIP_LEVEL));
    let tar_out = HashWriter::new(BufWriter::with_capacity(1 << 20, gz));
    let mut tar = tar::Builder::new(tar_out);
    for entry in &entries {
        append(&mut tar, entry, mtime_epoch_secs)?;
    }
    let tar_out = tar
        .into_inner()
        .map_err(OciError::io("finish tar for", src))?;
    let diff_id = tar_out.hasher.finish();
    let gz = tar_out.inner.into_inner().map_err(|e| OciError::Io {
        action: "compress",
        path: src.to_path_buf(),
        source: e.into_error(),
    })?;
    let writer = gz.finish().map_err(OciError::io("compress", src))?;
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

fn kind_of(path: &Path, meta: &fs::Metadata) -> Result<Kind, OciError> {
    let ft = meta.file_type();
    if ft.is_dir() {
        Ok(Kind::Dir)
    } else if ft.is_file() {
        Ok(Kind::File {
            exec: meta.permissions().mode() & 0o111 != 0,
            source: path.to_path_buf(),
        })
    } else if ft.is_symlink() {
        Ok(Kind::Symlink(
            fs::read_link(path).map_err(OciError::io("read link", path))?,
        ))
    } else {
        let kind = if ft.is_block_device() {
            "block device"
        } else if ft.is_char_device() {
            "character device"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else {
            "special file"
        };
        Err(OciError::UnsupportedFile {
            path: path.to_path_buf(),
            kind,
        })
    }
}

fn walk(dir: &Path, prefix: &[u8], depth: usize, out: &mut Vec<Entry>) -> Result<(), OciError> {
    if depth > MAX_DEPTH {
        return Err(OciError::InputTooLarge {
            what: format!("directory depth at {}", dir.display()),
            max: MAX_DEPTH as u64,
            unit: "levels",
        });
    }
    for item in fs::read_dir(dir).map_err(OciError::io("list", dir))? {
        let item = item.map_err(OciError::io("list", dir))?;
        let path = item.path();
        let meta = fs::symlink_metadata(&path).map_err(OciError::io("stat", &path))?;
        let mut name = prefix.to_vec();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(item.file_name().as_bytes());
        if name.len() > MAX_PATH {
            return Err(OciError::InputTooLarge {
                what: format!("path length of {}", path.display()),
                max: MAX_PATH as u64,
                unit: "bytes",
            });
        }
        if out.len() >= MAX_ENTRIES {
            return Err(OciError::InputTooLarge {
                what: format!("entry count under {}", dir.display()),
                max: MAX_ENTRIES as u64,
                unit: "entries",
            });
        }
        let kind = kind_of(&path, &meta)?;
        let is_dir = matches!(kind, Kind::Dir);
        out.push(Entry {
            path: name.clone(),
            kind,
        });
        if is_dir {
            walk(&path, &name, depth + 1, out)?;
        }
    }
    Ok(())
}

fn append<W: Write>(tar: &mut tar::Builder<W>, entry: &Entry, mtime: u64) -> Result<(), OciError> {
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
        Kind::File { exec, source } => {
            let file = File::open(source).map_err(OciError::io("open", source))?;
            let len = file.metadata().map_err(OciError::io("stat", source))?.len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if *exec { 0o755 } else { 0o644 });
            header.set_size(len);
            // `take` guards against a file growing while it is read; a file
            // that shrinks makes the tar writer fail, which is an error.
            tar.append_data(&mut header, path, io::Read::take(file, len))
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

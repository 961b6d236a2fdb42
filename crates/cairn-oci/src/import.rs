//! Bringing images in: a single-layer base image from a root filesystem (a
//! directory of host files, or a tarball such as `mmdebstrap --variant=minbase`
//! writes), and a copy of an image out of another OCI layout (e.g. one written
//! by `skopeo copy`), verifying every blob.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    ANNOTATION_CREATED, Arch, ConfigBuilder, ImageConfigurationBuilder, Os, RootFsBuilder,
};

use crate::digest::HashWriter;
use crate::image::{history_entry, write_image};
use crate::json::{INDEX_TYPES, MANIFEST_TYPES, parse_index};
use crate::layout::MAX_JSON_BYTES;
use crate::{Descriptor, Image, Layer, Layout, MediaType, OciError, layer_from_dir};

/// The largest uncompressed root filesystem tarball `import_rootfs` accepts (16 GiB).
const MAX_ROOTFS_BYTES: u64 = 16 << 30;
/// Most entries a root filesystem tarball may hold.
const MAX_ROOTFS_ENTRIES: u64 = 1_000_000;
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Makes a single-layer linux/amd64 base image from `source`: a directory
/// (its contents become `/`, made reproducible as by [`layer_from_dir`]) or a
/// tar file, plain or gzip (normalised: sorted, mtimes clamped to
/// `mtime_epoch_secs`, numeric owners; see [`layer_from_tarball`]; its entries
/// are checked like any layer's when unpacked). The config sets only `PATH`;
/// `created` is `mtime_epoch_secs`.
pub fn import_rootfs(
    layout: &Layout,
    source: &Path,
    mtime_epoch_secs: u64,
) -> Result<Image, OciError> {
    import_rootfs_clamped(layout, source, mtime_epoch_secs, Some(mtime_epoch_secs))
}

/// [`import_rootfs`] with a tarball's mtimes clamped to `clamp` (`None`: kept
/// as the tarball has them — a tarball of unknown provenance is already fixed
/// bytes, and its files' times may matter, e.g. to Python's bytecode caches).
/// A directory's mtimes are always `mtime_epoch_secs`.
pub fn import_rootfs_clamped(
    layout: &Layout,
    source: &Path,
    mtime_epoch_secs: u64,
    clamp: Option<u64>,
) -> Result<Image, OciError> {
    let meta = std::fs::metadata(source).map_err(OciError::io("stat", source))?;
    let layer = if meta.is_dir() {
        layer_from_dir(layout, source, "/", mtime_epoch_secs)?
    } else {
        layer_from_tarball(layout, source, clamp.unwrap_or(u64::MAX))?
    };
    let created =
        cairn_model::time::rfc3339_utc_secs(i64::try_from(mtime_epoch_secs).unwrap_or(i64::MAX));
    let spec_err = |what| move |source| OciError::Spec { what, source };
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![layer.diff_id.to_string()])
        .build()
        .map_err(spec_err("rootfs"))?;
    let runtime = ConfigBuilder::default()
        .env(vec![DEFAULT_PATH.to_string()])
        .build()
        .map_err(spec_err("runtime config"))?;
    let config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .rootfs(rootfs)
        .config(runtime)
        .history(vec![history_entry(&created, "cairn import-rootfs")?])
        .build()
        .map_err(spec_err("image config"))?;
    let layers = vec![Descriptor::new(
        MediaType::ImageLayerGzip,
        layer.size,
        crate::digest::to_oci(layer.digest)?,
    )];
    let mut annotations = HashMap::new();
    annotations.insert(ANNOTATION_CREATED.to_string(), created);
    write_image(layout, &config, layers, annotations)
}

/// Reads the tarball (gunzipping it into a temporary file if needed), checks it
/// is a well-formed tar within bounds, and stores it as a deterministic gzip
/// layer: entries sorted by path bytes (`./` and a leading `/` dropped), every
/// mtime clamped to `epoch`, owners numeric only (no user or group names), no
/// extended headers (xattrs, atime/ctime) kept, fixed gzip header. A hardlink
/// group's first path in that order holds the data. Two tarballs of the same
/// files, in another order, with other build times or owner names, give the
/// same layer.
fn layer_from_tarball(layout: &Layout, path: &Path, epoch: u64) -> Result<Layer, OciError> {
    let mut file = BufReader::new(File::open(path).map_err(OciError::io("open", path))?);
    let is_gzip = {
        let buf = io::BufRead::fill_buf(&mut file).map_err(OciError::io("read", path))?;
        buf.len() >= 2 && buf[..2] == [0x1f, 0x8b]
    };
    let too_large = || OciError::InputTooLarge {
        what: format!("uncompressed size of {}", path.display()),
        max: MAX_ROOTFS_BYTES,
        unit: "bytes",
    };
    // A gzip stream cannot seek: it is unpacked once into a temporary file
    // beside the layout's blobs, removed when this returns.
    let mut _temp = None;
    let mut tar_file = if is_gzip {
        let (temp_path, mut out) = crate::layout::create_temp(layout.root(), "rootfs")?;
        let guard = RemoveOnDrop(temp_path.clone());
        let copied = io::copy(
            &mut MultiGzDecoder::new(file).take(MAX_ROOTFS_BYTES + 1),
            &mut out,
        )
        .map_err(OciError::io("gunzip", path))?;
        if copied > MAX_ROOTFS_BYTES {
            return Err(too_large());
        }
        drop(out);
        let reopened = File::open(&temp_path).map_err(OciError::io("open", &temp_path))?;
        _temp = Some(guard);
        BufReader::new(reopened)
    } else {
        if std::fs::metadata(path)
            .map_err(OciError::io("stat", path))?
            .len()
            > MAX_ROOTFS_BYTES
        {
            return Err(too_large());
        }
        file
    };
    let malformed = |source: io::Error| OciError::Io {
        action: "read tar",
        path: path.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut tar_file);
        for entry in archive.entries_with_seek().map_err(malformed)? {
            let entry = entry.map_err(malformed)?;
            if entries.len() as u64 >= MAX_ROOTFS_ENTRIES {
                return Err(OciError::InputTooLarge {
                    what: format!("entry count of {}", path.display()),
                    max: MAX_ROOTFS_ENTRIES,
                    unit: "entries",
                });
            }
            if let Some(e) = TarEntry::read(&entry, path)? {
                entries.push(e);
            }
        }
    }
    // Stable: of two entries with one path, the later still wins on unpack.
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let leaders = hardlink_leaders(&entries);

    let writer = layout.blob_writer()?;
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(writer, Compression::new(6));
    let out = HashWriter::new(BufWriter::with_capacity(1 << 20, gz));
    let mut builder = tar::Builder::new(out);
    let file = tar_file.get_mut();
    for (i, e) in entries.iter().enumerate() {
        let fail = |source: io::Error| OciError::Io {
            action: "write layer entry",
            path: PathBuf::from(std::ffi::OsStr::from_bytes(&e.path)),
            source,
        };
        let name = Path::new(std::ffi::OsStr::from_bytes(&e.path));
        // In a hardlink group, the first path holds the data (with the
        // target's metadata) and every other member links to it.
        let (data, kind, link) = match leaders.get(&i) {
            Some(Role::Leader(target)) => (&entries[*target], tar::EntryType::Regular, None),
            Some(Role::Member(leader)) => (
                e,
                tar::EntryType::Link,
                Some(entries[*leader].path.as_slice()),
            ),
            None => (e, e.kind, e.link.as_deref()),
        };
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(data.mode & 0o7777);
        header.set_uid(data.uid);
        header.set_gid(data.gid);
        header.set_mtime(data.mtime.min(epoch));
        if let Some((major, minor)) = data.device {
            header.set_device_major(major).map_err(fail)?;
            header.set_device_minor(minor).map_err(fail)?;
        }
        if kind == tar::EntryType::Regular || kind == tar::EntryType::Continuous {
            header.set_size(data.size);
            file.seek(SeekFrom::Start(data.offset)).map_err(malformed)?;
            let mut body = (&mut *file).take(data.size);
            builder
                .append_data(&mut header, name, &mut body)
                .map_err(fail)?;
            if body.limit() != 0 {
                return Err(malformed(io::Error::other("an entry's data ends early")));
            }
        } else {
            header.set_size(0);
            match link {
                Some(target) => builder
                    .append_link(
                        &mut header,
                        name,
                        Path::new(std::ffi::OsStr::from_bytes(target)),
                    )
                    .map_err(fail)?,
                None => builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(fail)?,
            }
        }
    }
    let out = builder
        .into_inner()
        .map_err(OciError::io("finish tar for", path))?;
    if out.count > MAX_ROOTFS_BYTES.saturating_mul(2) {
        return Err(too_large());
    }
    let diff_id = out.hasher.finish();
    let gz = out.inner.into_inner().map_err(|e| OciError::Io {
        action: "compress",
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    let blob = gz
        .finish()
        .map_err(OciError::io("compress", path))?
        .commit()?;
    Ok(Layer {
        digest: blob.digest,
        diff_id,
        size: blob.size,
    })
}

/// One entry of a root filesystem tarball, as the layer keeps it.
struct TarEntry {
    /// Normalised: no `./`, no leading `/`, no trailing `/`, never `..`.
    path: Vec<u8>,
    kind: tar::EntryType,
    /// A symlink's target (as written) or a hardlink's (normalised).
    link: Option<Vec<u8>>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    size: u64,
    /// Where its data starts in the (plain) tar file.
    offset: u64,
    device: Option<(u32, u32)>,
}

impl TarEntry {
    /// `None` for what a layer does not keep (the root directory itself, pax
    /// global headers).
    fn read<R: Read>(entry: &tar::Entry<'_, R>, tarball: &Path) -> Result<Option<Self>, OciError> {
        let bad = |reason: &'static str| OciError::Invalid {
            what: format!(
                "entry {:?} of {}",
                String::from_utf8_lossy(&entry.path_bytes()),
                tarball.display()
            ),
            reason,
        };
        let header = entry.header();
        let kind = header.entry_type();
        // An empty owner or time field (some writers leave them blank) reads
        // as 0, as GNU tar reads it.
        let field = |r: io::Result<u64>| r.unwrap_or(0);
        match kind {
            tar::EntryType::XGlobalHeader => return Ok(None),
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::Directory
            | tar::EntryType::Symlink
            | tar::EntryType::Link
            | tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Fifo => {}
            _ => return Err(bad("it is of a type a root filesystem does not hold")),
        }
        let Some(path) = normalise(&entry.path_bytes()) else {
            return Err(bad("its path has `..` or is too long"));
        };
        if path.is_empty() {
            return Ok(None);
        }
        let link = match kind {
            tar::EntryType::Symlink => Some(
                entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("a symlink without a target"))?
                    .into_owned(),
            ),
            tar::EntryType::Link => Some(
                entry
                    .link_name_bytes()
                    .as_deref()
                    .and_then(normalise)
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| bad("a hardlink without a valid target"))?,
            ),
            _ => None,
        };
        let device = match kind {
            tar::EntryType::Char | tar::EntryType::Block => Some((
                header
                    .device_major()
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad("a device without numbers"))?,
                header
                    .device_minor()
                    .ok()
                    .flatten()
                    .ok_or_else(|| bad("a device without numbers"))?,
            )),
            _ => None,
        };
        let size = if matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
            entry.size()
        } else {
            0
        };
        Ok(Some(TarEntry {
            path,
            kind,
            link,
            mode: header.mode().map_err(|_| bad("its mode is malformed"))?,
            uid: field(header.uid()),
            gid: field(header.gid()),
            mtime: field(header.mtime()),
            size,
            offset: entry.raw_file_position(),
            device,
        }))
    }
}

/// `./usr//bin/` → `usr/bin`; `None` for `..` or a path over 4096 bytes.
fn normalise(path: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            part => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    (out.len() <= 4096).then_some(out)
}

enum Role {
    /// Holds the data of the group's regular file (its index).
    Leader(usize),
    /// Links to the leader (its index).
    Member(usize),
}

/// Hardlink groups whose first path (in sorted order) is not the file the
/// tarball stored: that path becomes the file, the rest link to it, so the
/// layer does not depend on which name the producer met first.
fn hardlink_leaders(entries: &[TarEntry]) -> HashMap<usize, Role> {
    let index: HashMap<&[u8], usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_slice(), i))
        .collect();
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.kind != tar::EntryType::Link {
            continue;
        }
        let Some(&target) = e.link.as_deref().and_then(|l| index.get(l)) else {
            continue;
        };
        if matches!(
            entries[target].kind,
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            groups.entry(target).or_default().push(i);
        }
    }
    let mut roles = HashMap::new();
    for (target, links) in groups {
        let leader = links
            .iter()
            .copied()
            .chain([target])
            .min()
            .unwrap_or(target);
        if leader == target {
            continue;
        }
        roles.insert(leader, Role::Leader(target));
        for member in links.into_iter().chain([target]) {
            if member != leader {
                roles.insert(member, Role::Member(leader));
            }
        }
    }
    roles
}

/// Removes a temporary file when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Copies one image out of the OCI layout at `src_dir` into `dest`, verifying
/// the digest (and size) of every blob as it is copied. `reference` names the
/// image in the source's `index.json`; without it the source must hold exactly
/// one. If the entry is an image index, its linux/amd64 image is taken. The
/// reference is not set in `dest` (call [`Layout::set_ref`]).
pub fn import_layout(
    dest: &Layout,
    src_dir: &Path,
    reference: Option<&str>,
) -> Result<Image, OciError> {
    let src = Layout::open(src_dir)?;
    let entry = match reference {
        Some(name) => src.resolve(name)?,
        None => {
            let index = src.index()?;
            match index.manifests().as_slice() {
                [one] => one.clone(),
                all => {
                    return Err(OciError::AmbiguousImage {
                        layout: src_dir.to_path_buf(),
                        count: all.len(),
                    });
                }
            }
        }
    };
    let mut digest = crate::digest::from_oci(entry.digest())?;
    let media_type = entry.media_type().to_string();
    if INDEX_TYPES.contains(&media_type.as_str()) {
        let index = parse_index(&src.read_blob_as("index", &digest, MAX_JSON_BYTES)?)?;
        let chosen = index
            .manifests()
            .iter()
            .find(|d| {
                MANIFEST_TYPES.contains(&d.media_type().to_string().as_str())
                    && d.platform()
                        .as_ref()
                        .is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64)
            })
            .ok_or(OciError::NoMatchingPlatform { index: digest })?;
        digest = crate::digest::from_oci(chosen.digest())?;
    } else if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(OciError::UnsupportedMediaType {
            what: format!("index.json entry {digest} in {}", src_dir.display()),
            media_type,
            hint: "an image manifest or image index",
        });
    }
    let image = src.image(&digest)?;
    let mut blobs = vec![(
        "config",
        image.config_digest,
        image.manifest.config().size(),
    )];
    blobs.extend(image.layers.iter().map(|l| ("layer", l.digest, l.size)));
    for (what, digest, size) in blobs {
        // Bounded by the declared size: a blob that is more is refused below.
        let reader = src.open_blob(&digest)?.take(size.saturating_add(1));
        let blob = dest.put_blob_expecting(reader, what, &digest)?;
        if blob.size != size {
            return Err(OciError::SizeMismatch {
                what,
                digest,
                expected: size,
                actual: blob.size,
            });
        }
    }
    // The manifest last, so a layout never names an image with missing blobs.
    let manifest = src.open_blob(&digest)?.take(MAX_JSON_BYTES);
    dest.put_blob_expecting(manifest, "manifest", &digest)?;
    dest.image(&digest)
}

//! An OCI image layout directory (image-spec 1.1 `image-layout.md`):
//! `oci-layout`, `index.json`, and content-addressed `blobs/sha256/<hex>`.
//! Blobs are written to a temporary file, hashed once while copying, fsync'd
//! and renamed into place; reads verify the digest. A large blob's writeback
//! is started as it is written ([`WRITEBACK_STEP`]), so the fsync that makes
//! it durable waits only for its last few MiB.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::ANNOTATION_REF_NAME;

use crate::digest::{HashReader, HashWriter};
use crate::json::{canonical, parse_index};
use crate::{Descriptor, Digest, ImageIndex, MediaType, OciError};

/// The largest manifest, config, index or `index.json` cairn reads (4 MiB).
pub const MAX_JSON_BYTES: u64 = 4 << 20;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const COPY_BUFFER: usize = 1 << 20;
/// A blob writer asks the kernel to start writing back each this many bytes
/// it handed to its file (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): a hint
/// that overlaps the disk's work with the writing, never a promise of
/// durability (the commit's fsync is that).
const WRITEBACK_STEP: u64 = 8 << 20;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An open OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// A blob stored in a layout: its digest and size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    /// The sha256 of the content.
    pub digest: Digest,
    /// The content's length.
    pub size: u64,
}

impl Blob {
    /// A descriptor of this blob with the given media type.
    pub fn descriptor(&self, media_type: MediaType) -> Result<Descriptor, OciError> {
        Ok(Descriptor::new(
            media_type,
            self.size,
            crate::digest::to_oci(self.digest)?,
        ))
    }
}

impl Layout {
    /// Opens the layout at `dir`, creating the directory, `oci-layout`,
    /// an empty `index.json` and `blobs/sha256/` where they are missing.
    pub fn open_or_create(dir: &Path) -> Result<Layout, OciError> {
        fs::create_dir_all(dir.join("blobs").join("sha256"))
            .map_err(OciError::io("create", dir.join("blobs/sha256")))?;
        if !dir.join("oci-layout").exists() {
            write_atomic(&dir.join("oci-layout"), OCI_LAYOUT)?;
        }
        if !dir.join("index.json").exists() {
            let index = ImageIndex::default();
            write_atomic(&dir.join("index.json"), &canonical("index.json", &index)?)?;
        }
        Layout::open(dir)
    }

    /// Opens an existing layout: `oci-layout` must say `imageLayoutVersion`
    /// 1.0.0 and `index.json` must parse.
    pub fn open(dir: &Path) -> Result<Layout, OciError> {
        let not = |reason| OciError::NotALayout {
            path: dir.to_path_buf(),
            reason,
        };
        let marker = dir.join("oci-layout");
        let bytes = read_bounded(dir, "oci-layout", 4096).map_err(|e| match e {
            OciError::Fs(e) if e.is_not_found() => not("it has no oci-layout file"),
            other => other,
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| OciError::Json {
                what: marker.display().to_string(),
                source,
            })?;
        if value.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(not("oci-layout does not say imageLayoutVersion 1.0.0"));
        }
        if !dir.join("index.json").is_file() {
            return Err(not("it has no index.json"));
        }
        let layout = Layout {
            root: dir.to_path_buf(),
        };
        layout.index()?;
        Ok(layout)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Whether the layout holds a blob under this digest (not verified).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores `bytes` as a blob.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Blob, OciError> {
        let mut writer = self.blob_writer()?;
        writer
            .write_all(bytes)
            .map_err(OciError::io("write", writer.temp_path()))?;
        writer.commit()
    }

    /// Stores the content of the file at `path` as a blob, streaming.
    pub fn put_blob_from_file(&self, path: &Path) -> Result<Blob, OciError> {
        let file = File::open(path).map_err(OciError::io("open", path))?;
        self.put_blob_from_reader(file)
    }

    /// Stores everything `reader` yields as a blob: hashed once while it is
    /// copied to a temporary file, which is fsync'd and renamed into place.
    pub fn put_blob_from_reader(&self, reader: impl Read) -> Result<Blob, OciError> {
        let writer = self.blob_writer()?;
        copy_into(reader, writer)?.commit()
    }

    /// Like [`Layout::put_blob_from_reader`], but refuses (and stores
    /// nothing) unless the content hashes to `expected`.
    pub(crate) fn put_blob_expecting(
        &self,
        reader: impl Read,
        what: &'static str,
        expected: &Digest,
    ) -> Result<Blob, OciError> {
        let writer = self.blob_writer()?;
        copy_into(reader, writer)?.commit_expecting(what, expected)
    }

    /// A writer for a new blob; nothing is stored until [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter, OciError> {
        let dir = self.root.join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(OciError::io("create", &dir))?;
        let (temp, file) = create_temp(&dir, "blob")?;
        Ok(BlobWriter {
            dir,
            temp: Some(temp),
            inner: Some(HashWriter::new(BufWriter::with_capacity(COPY_BUFFER, file))),
            writeback_from: 0,
        })
    }

    /// Opens a blob for streaming (the caller verifies what it reads).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, OciError> {
        // A layout may be handed in (`oci:DIR`): its blobs are opened beneath it,
        // never through a symlink, and only as regular files.
        let rel = format!("blobs/sha256/{}", digest.hex());
        let dir = cairn_fs::Dir::open(&self.root)?;
        match dir.file_beneath(&rel) {
            Ok(file) => Ok(file.into_std()),
            Err(e) if e.is_not_found() => Err(OciError::MissingBlob {
                digest: *digest,
                layout: self.root.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a blob of at most `max_bytes`, verifying that it hashes to `digest`.
    pub fn read_blob(&self, digest: &Digest, max_bytes: u64) -> Result<Vec<u8>, OciError> {
        self.read_blob_as("blob", digest, max_bytes)
    }

    pub(crate) fn read_blob_as(
        &self,
        what: &'static str,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(digest);
        let file = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(OciError::io("read", &path))?;
        if bytes.len() as u64 > max_bytes {
            return Err(OciError::TooLarge {
                what,
                digest: *digest,
                max: max_bytes,
            });
        }
        let actual = cairn_evidence::sha256(&bytes);
        if actual != *digest {
            return Err(OciError::DigestMismatch {
                what,
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Hashes a stored blob in full and checks digest and (if given) size.
    pub(crate) fn verify_blob(
        &self,
        what: &'static str,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<(), OciError> {
        let path = self.blob_path(digest);
        let mut reader = HashReader::new(self.open_blob(digest)?);
        io::copy(&mut reader, &mut io::sink()).map_err(OciError::io("read", &path))?;
        let actual = reader.hasher.finish();
        if actual != *digest {
            return Err(OciError::DigestMismatch {
                what,
                expected: *digest,
                actual,
            });
        }
        if let Some(expected) = size
            && expected != reader.count
        {
            return Err(OciError::SizeMismatch {
                what,
                digest: *digest,
                expected,
                actual: reader.count,
            });
        }
        Ok(())
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<ImageIndex, OciError> {
        parse_index(&read_bounded(&self.root, "index.json", MAX_JSON_BYTES)?)
    }

    /// Names `descriptor` (usually an image manifest) `name` in `index.json`
    /// through the `org.opencontainers.image.ref.name` annotation, replacing
    /// any entry of that name. The file is replaced atomically, under an
    /// advisory lock on the layout directory (concurrent `set_ref` calls from
    /// several processes do not lose each other's entries).
    pub fn set_ref(&self, name: &str, descriptor: &Descriptor) -> Result<(), OciError> {
        check_ref_name(name)?;
        crate::digest::from_oci(descriptor.digest())?;
        // Serialise read-modify-write of index.json between processes: an
        // advisory lock on the layout directory itself (no extra file in the
        // layout), released when `dir_lock` is dropped.
        let dir_lock = File::open(&self.root).map_err(OciError::io("open", &self.root))?;
        dir_lock.lock().map_err(OciError::io("lock", &self.root))?;
        let mut index = self.index()?;
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| ref_name(d) != Some(name))
            .cloned()
            .collect();
        let mut entry = descriptor.clone();
        let mut annotations = entry.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_REF_NAME.to_string(), name.to_string());
        entry.set_annotations(Some(annotations));
        manifests.push(entry);
        index.set_manifests(manifests);
        write_atomic(
            &self.root.join("index.json"),
            &canonical("index.json", &index)?,
        )
    }

    /// The descriptor named `name` in `index.json`.
    pub fn resolve(&self, name: &str) -> Result<Descriptor, OciError> {
        self.index()?
            .manifests()
            .iter()
            .find(|d| ref_name(d) == Some(name))
            .cloned()
            .ok_or_else(|| OciError::RefNotFound {
                name: name.to_string(),
                layout: self.root.clone(),
            })
    }

    /// Every named entry of `index.json`, in file order.
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>, OciError> {
        Ok(self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(|n| (n.to_string(), d.clone())))
            .collect())
    }
}

fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()
        .and_then(|a: &HashMap<String, String>| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

fn check_ref_name(name: &str) -> Result<(), OciError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@/+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OciError::InvalidRefName {
            name: name.to_string(),
        })
    }
}

/// A blob being written: hashes and counts as it goes, and starts the
/// writeback of what reached its file every [`WRITEBACK_STEP`] bytes.
pub struct BlobWriter {
    dir: PathBuf,
    temp: Option<PathBuf>,
    inner: Option<HashWriter<BufWriter<File>>>,
    /// Where the file's bytes not yet handed to the kernel's writeback begin.
    writeback_from: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("temp", &self.temp)
            .field("written", &self.written())
            .finish()
    }
}

impl BlobWriter {
    fn temp_path(&self) -> PathBuf {
        self.temp.clone().unwrap_or_default()
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.as_ref().map_or(0, |w| w.count)
    }

    /// Fsyncs the content and moves it to `blobs/sha256/<digest>`.
    pub fn commit(self) -> Result<Blob, OciError> {
        self.finish(None)
    }

    pub(crate) fn commit_expecting(
        self,
        what: &'static str,
        expected: &Digest,
    ) -> Result<Blob, OciError> {
        self.finish(Some((what, *expected)))
    }

    fn finish(mut self, expected: Option<(&'static str, Digest)>) -> Result<Blob, OciError> {
        let temp = self.temp_path();
        let Some(writer) = self.inner.take() else {
            return Err(OciError::Io {
                action: "commit",
                path: temp,
                source: io::Error::other("blob writer already finished"),
            });
        };
        let size = writer.count;
        let digest = writer.hasher.finish();
        let file = writer.inner.into_inner().map_err(|e| OciError::Io {
            action: "write",
            path: temp.clone(),
            source: e.into_error(),
        })?;
        if let Some((what, expected)) = expected
            && expected != digest
        {
            return Err(OciError::DigestMismatch {
                what,
                expected,
                actual: digest,
            });
        }
        file.sync_all().map_err(OciError::io("fsync", &temp))?;
        drop(file);
        let target = self.dir.join(digest.hex());
        if target.is_file() {
            // Content-addressed: the same bytes are already there.
            fs::remove_file(&temp).map_err(OciError::io("remove", &temp))?;
        } else {
            fs::rename(&temp, &target).map_err(OciError::io("rename", &temp))?;
            sync_dir(&self.dir)?;
        }
        self.temp = None;
        Ok(Blob { digest, size })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(w) = self.inner.as_mut() else {
            return Err(io::Error::other("blob writer already finished"));
        };
        let n = w.write(buf)?;
        // What reached the file (not what waits in the buffer).
        let in_file = w.count - w.inner.buffer().len() as u64;
        if in_file - self.writeback_from >= WRITEBACK_STEP {
            start_writeback(w.inner.get_ref(), self.writeback_from, in_file)?;
            self.writeback_from = in_file;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Best effort: an abandoned temporary file is garbage, not a blob.
            let _ = fs::remove_file(temp);
        }
    }
}

/// Starts the kernel writing back `file`'s bytes `from..to` (Linux
/// `sync_file_range(2)` with `SYNC_FILE_RANGE_WRITE`: it does not wait, and
/// promises nothing about durability; the commit's fsync does). A file system
/// that cannot do it (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`) is simply left to the
/// fsync; any other error (`EIO`, `ENOSPC`) is the write's.
fn start_writeback(file: &File, from: u64, to: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return Ok(());
    };
    // SAFETY: sync_file_range(2) on a file descriptor `file` owns and keeps
    // open for the call; it reads no memory of ours.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(()),
        _ => Err(e),
    }
}

fn copy_into(mut reader: impl Read, mut writer: BlobWriter) -> Result<BlobWriter, OciError> {
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(OciError::Io {
                    action: "read blob source for",
                    path: writer.temp_path(),
                    source,
                });
            }
        };
        writer
            .write_all(&buf[..n])
            .map_err(OciError::io("write", writer.temp_path()))?;
    }
    Ok(writer)
}

pub(crate) fn create_temp(dir: &Path, stem: &str) -> Result<(PathBuf, File), OciError> {
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{stem}.tmp-{}-{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(OciError::Io {
                    action: "create",
                    path,
                    source,
                });
            }
        }
    }
}

/// Replaces `path` with `bytes` atomically (temporary file, fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (temp, mut file) = create_temp(dir, "write")?;
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(OciError::io("write", &temp))
        .and_then(|()| fs::rename(&temp, path).map_err(OciError::io("rename", &temp)));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), OciError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OciError::io("fsync", dir))
}

/// Reads the small file `rel` beneath the layout `root` (no symlink followed,
/// regular files only), refusing more than `max` bytes.
pub(crate) fn read_bounded(root: &Path, rel: &str, max: u64) -> Result<Vec<u8>, OciError> {
    let dir = cairn_fs::Dir::open(root)?;
    match dir.file_beneath(rel)?.read_bounded(max) {
        Ok(bytes) => Ok(bytes),
        Err(cairn_fs::FsError::TooLarge { .. }) => Err(OciError::InputTooLarge {
            what: root.join(rel).display().to_string(),
            max,
            unit: "bytes",
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob of many writeback steps, written in odd-sized pieces (some
    /// larger than the copy buffer, which go straight to the file): the same
    /// bytes and digest as hashing them whole, its writeback started as it
    /// went, up to the last whole step.
    #[test]
    fn a_large_blob_starts_its_writeback_and_lands_byte_identical() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(dir.path()).expect("create");
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let data: Vec<u8> = (0..(3 * WRITEBACK_STEP + 12_345))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut writer = layout.blob_writer().expect("writer");
        let mut sizes = [7_u64, COPY_BUFFER as u64 * 3 + 1, 65_537, 1 << 20]
            .into_iter()
            .cycle();
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            let n = usize::try_from(sizes.next().expect("cycle"))
                .expect("usize")
                .min(rest.len());
            writer.write_all(&rest[..n]).expect("write");
            rest = &rest[n..];
        }
        println!(
            "writeback started up to byte {} of {}",
            writer.writeback_from,
            data.len()
        );
        assert!(writer.writeback_from >= 2 * WRITEBACK_STEP);
        assert!(writer.writeback_from <= data.len() as u64);
        let blob = writer.commit().expect("commit");
        assert_eq!(blob.digest, cairn_evidence::sha256(&data));
        assert_eq!(blob.size, data.len() as u64);
        assert_eq!(
            fs::read(layout.blob_path(&blob.digest)).expect("read"),
            data
        );
    }

    #[test]
    fn blobs_round_trip_and_tampering_is_caught() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(dir.path()).expect("create");
        let blob = layout.put_blob(b"hello").expect("put");
        assert_eq!(blob.digest, cairn_evidence::sha256(b"hello"));
        assert_eq!(blob.size, 5);
        assert!(layout.has_blob(&blob.digest));
        assert_eq!(layout.read_blob(&blob.digest, 5).expect("read"), b"hello");
        assert!(matches!(
            layout.read_blob(&blob.digest, 4),
            Err(OciError::TooLarge { .. })
        ));
        let again = layout
            .put_blob_from_reader(&b"hello"[..])
            .expect("put again");
        assert_eq!(again, blob);
        fs::write(layout.blob_path(&blob.digest), b"hellp").expect("tamper");
        match layout.read_blob(&blob.digest, 100) {
            Err(OciError::DigestMismatch {
                expected, actual, ..
            }) => {
                assert_eq!(expected, blob.digest);
                assert_eq!(actual, cairn_evidence::sha256(b"hellp"));
            }
            other => panic!("expected a digest mismatch, got {other:?}"),
        }
        let missing = cairn_evidence::sha256(b"nope");
        assert!(matches!(
            layout.read_blob(&missing, 10),
            Err(OciError::MissingBlob { .. })
        ));
        // No temporary files are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256"))
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn refs_are_set_replaced_and_resolved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(dir.path()).expect("create");
        let a = layout
            .put_blob(b"a")
            .expect("a")
            .descriptor(MediaType::ImageManifest)
            .expect("d");
        let b = layout
            .put_blob(b"b")
            .expect("b")
            .descriptor(MediaType::ImageManifest)
            .expect("d");
        layout.set_ref("app:1", &a).expect("set");
        layout.set_ref("app:2", &b).expect("set");
        layout.set_ref("app:1", &b).expect("replace");
        let refs = layout.refs().expect("refs");
        assert_eq!(refs.len(), 2);
        assert_eq!(
            layout.resolve("app:1").expect("resolve").digest(),
            b.digest()
        );
        assert!(matches!(
            layout.resolve("nope"),
            Err(OciError::RefNotFound { .. })
        ));
        assert!(layout.set_ref("", &a).is_err());
        assert!(layout.set_ref("../x", &a).is_err());
        let reopened = Layout::open(dir.path()).expect("reopen");
        assert_eq!(reopened.refs().expect("refs").len(), 2);
    }

    #[test]
    fn concurrent_set_ref_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::open_or_create(dir.path()).expect("create");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let layout = Layout::open(dir.path()).expect("open");
                std::thread::spawn(move || {
                    for j in 0..5 {
                        let blob = layout.put_blob(format!("{i}-{j}").as_bytes()).expect("put");
                        let d = blob.descriptor(MediaType::ImageManifest).expect("d");
                        layout.set_ref(&format!("t{i}-{j}"), &d).expect("set");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(layout.refs().expect("refs").len(), 40);
    }

    #[test]
    fn open_refuses_what_is_not_a_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            Layout::open(dir.path()),
            Err(OciError::NotALayout { .. })
        ));
        fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .expect("write");
        fs::write(
            dir.path().join("index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .expect("write");
        assert!(matches!(
            Layout::open(dir.path()),
            Err(OciError::NotALayout { .. })
        ));
        fs::write(dir.path().join("oci-layout"), OCI_LAYOUT).expect("write");
        Layout::open(dir.path()).expect("valid now");
    }
}

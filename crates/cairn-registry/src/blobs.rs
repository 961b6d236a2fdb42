//! Blobs (distribution-spec "Pushing blobs", "Pulling blobs", "Mounting a blob
//! from another repository"): existence checks, monolithic and chunked uploads,
//! cross-repository mounts, and pulls verified against their digest while streaming.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ureq::http;

use crate::client::{Body, Call, header};
use crate::error::Context;
use crate::manifest::{pull_scope, push_scope};
use crate::reference::{check_repository, encode_query};
use crate::{Digest, Error, Registry, Result, Sha256};

/// How a blob got to the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushedBlob {
    /// It was already in the repository: nothing sent.
    Existed,
    /// Mounted from another repository of the same registry: nothing sent.
    Mounted,
    /// Uploaded in one PUT.
    Uploaded,
    /// Uploaded in PATCH chunks then a closing PUT.
    UploadedInChunks,
}

enum UploadStart {
    Mounted,
    /// The session's URL, and the registry's `OCI-Chunk-Min-Length` (0 when
    /// it names none): every PATCH but the last is at least that long.
    Location(String, u64),
}

impl Registry {
    /// Whether `repository` holds the blob (`HEAD /v2/<repo>/blobs/<digest>`).
    pub fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let context = self.repo_context(repository, "check a blob exists")?;
        let resp = self.send(Call {
            method: http::Method::HEAD,
            url: format!("/v2/{repository}/blobs/{digest}"),
            context: context.clone(),
            scopes: vec![pull_scope(repository)],
            headers: Vec::new(),
            body: Body::Empty,
        })?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => self
                .expect(resp, &context, &[], "blob", "retry later")
                .map(|_| false),
        }
    }

    /// Pushes a blob unless the repository has it: one PUT up to the
    /// registry's chunk threshold, PATCH chunks above it.
    pub fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<PushedBlob> {
        self.push_blob_from(repository, digest, size, reader, None)
    }

    /// Like [`Registry::push_blob`], first trying to mount the blob from
    /// `mount_from` (another repository of this registry): 201 is a mount,
    /// 202 falls back to uploading.
    pub fn push_blob_from(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        mount_from: Option<&str>,
    ) -> Result<PushedBlob> {
        if self.blob_exists(repository, digest)? {
            return Ok(PushedBlob::Existed);
        }
        let location = match self.start_upload(repository, Some(digest), mount_from)? {
            UploadStart::Mounted => return Ok(PushedBlob::Mounted),
            UploadStart::Location(l, _) => l,
        };
        if size > self.chunk_threshold {
            self.upload_chunked(repository, digest, size, reader, location, self.chunk_size)?;
            Ok(PushedBlob::UploadedInChunks)
        } else {
            self.upload_monolithic(repository, digest, size, reader, location)?;
            Ok(PushedBlob::Uploaded)
        }
    }

    /// Mounts a blob from another repository; `Ok(false)` when the registry
    /// declined (the blob must then be uploaded).
    pub fn mount_blob(&self, repository: &str, digest: &Digest, from: &str) -> Result<bool> {
        Ok(matches!(
            self.start_upload(repository, Some(digest), Some(from))?,
            UploadStart::Mounted
        ))
    }

    /// Uploads a blob in one PUT (POST for a session, then `PUT ?digest=`).
    pub fn push_blob_monolithic(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<()> {
        let location = match self.start_upload(repository, Some(digest), None)? {
            UploadStart::Location(l, _) => l,
            UploadStart::Mounted => return Ok(()),
        };
        self.upload_monolithic(repository, digest, size, reader, location)
    }

    /// Uploads a blob in PATCH chunks of `chunk_size` (with `Content-Range`),
    /// then closes the session with `PUT ?digest=`.
    pub fn push_blob_chunked(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        chunk_size: u64,
    ) -> Result<()> {
        let location = match self.start_upload(repository, Some(digest), None)? {
            UploadStart::Location(l, _) => l,
            UploadStart::Mounted => return Ok(()),
        };
        self.upload_chunked(
            repository,
            digest,
            size,
            reader,
            location,
            chunk_size.max(1),
        )
    }

    fn start_upload(
        &self,
        repository: &str,
        digest: Option<&Digest>,
        mount_from: Option<&str>,
    ) -> Result<UploadStart> {
        let context = self.repo_context(
            repository,
            if mount_from.is_some() {
                "mount blob"
            } else {
                "start blob upload"
            },
        )?;
        let mut scopes = vec![push_scope(repository)];
        let mut url = format!("/v2/{repository}/blobs/uploads/");
        if let Some(from) = mount_from {
            let Some(digest) = digest else {
                return Err(Error::InvalidResponse {
                    context,
                    reason: "a mount names the blob it mounts".into(),
                });
            };
            check_repository(from)?;
            scopes.push(pull_scope(from));
            url.push_str(&format!(
                "?mount={}&from={}",
                encode_query(&digest.to_string()),
                encode_query(from)
            ));
        }
        let resp = self.send(Call {
            method: http::Method::POST,
            url,
            context: context.clone(),
            scopes,
            headers: Vec::new(),
            body: Body::Empty,
        })?;
        let resp = self.expect(
            resp,
            &context,
            &[201, 202],
            "the repository",
            "the registry refused to start an upload; check that pushing is allowed",
        )?;
        if resp.status().as_u16() == 201 {
            let Some(digest) = digest else {
                return Err(Error::InvalidResponse {
                    context,
                    reason: "201 Created for an upload that named no blob".into(),
                });
            };
            check_returned_digest(&resp, digest, &context)?;
            return Ok(UploadStart::Mounted);
        }
        let location = header(&resp, "location").ok_or_else(|| Error::InvalidResponse {
            context: context.clone(),
            reason: "202 without a Location header".into(),
        })?;
        let min_chunk = header(&resp, "oci-chunk-min-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(UploadStart::Location(
            self.absolute(location, &context)?,
            min_chunk,
        ))
    }

    fn upload_monolithic(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        location: String,
    ) -> Result<()> {
        let context = self.context(repository, "upload blob");
        let mut counted = Counted::new(reader);
        let resp = {
            let mut limited = (&mut counted).take(size);
            self.send(Call {
                method: http::Method::PUT,
                url: with_digest(&location, digest),
                context: context.clone(),
                scopes: vec![push_scope(repository)],
                headers: vec![("Content-Type", "application/octet-stream".into())],
                body: Body::Stream(&mut limited, size),
            })?
        };
        self.finish_upload(resp, &context, digest, size, counted.count)
    }

    fn upload_chunked(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        mut location: String,
        chunk_size: u64,
    ) -> Result<()> {
        let context = self.context(repository, "upload blob chunk");
        let mut counted = Counted::new(reader);
        let mut offset = 0u64;
        while offset < size {
            let n = chunk_size.min(size - offset);
            let before = counted.count;
            let resp = {
                let mut limited = (&mut counted).take(n);
                self.send(Call {
                    method: http::Method::PATCH,
                    url: location.clone(),
                    context: context.clone(),
                    scopes: vec![push_scope(repository)],
                    headers: vec![
                        ("Content-Type", "application/octet-stream".into()),
                        ("Content-Range", format!("{offset}-{}", offset + n - 1)),
                    ],
                    body: Body::Stream(&mut limited, n),
                })?
            };
            if counted.count - before != n {
                return Err(short_read(&context, size, counted.count));
            }
            location = self.chunk_accepted(resp, &context, offset, n)?;
            offset += n;
        }
        let context = self.context(repository, "complete blob upload");
        let resp = self.send(Call {
            method: http::Method::PUT,
            url: with_digest(&location, digest),
            context: context.clone(),
            scopes: vec![push_scope(repository)],
            headers: Vec::new(),
            body: Body::Empty,
        })?;
        self.finish_upload(resp, &context, digest, size, counted.count)
    }

    fn finish_upload(
        &self,
        resp: http::Response<ureq::Body>,
        context: &Context,
        digest: &Digest,
        size: u64,
        sent: u64,
    ) -> Result<()> {
        if sent != size {
            return Err(short_read(context, size, sent));
        }
        let resp = self.expect(
            resp,
            context,
            &[201],
            "the upload session",
            "the registry refused the blob; if it reports DIGEST_INVALID the local content is corrupt",
        )?;
        check_returned_digest(&resp, digest, context)
    }

    /// Streams a blob into `writer`, verifying its size and digest. On a
    /// mismatch the error comes after the bytes were written: the caller must
    /// discard them ([`Registry::pull_blob_to_path`] does).
    pub fn pull_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        writer: &mut dyn Write,
    ) -> Result<u64> {
        let mut reader = self.open_blob(repository, digest, size)?;
        let context = reader.context.clone();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(reader
                        .failure
                        .take()
                        .unwrap_or(Error::Io { context, source }));
                }
            };
            writer.write_all(&buf[..n]).map_err(|source| Error::Io {
                context: context.clone(),
                source,
            })?;
        }
        Ok(size)
    }

    /// Pulls a blob into a file: written next to `path`, synced, verified,
    /// then renamed into place; nothing is left behind on any error.
    pub fn pull_blob_to_path(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        path: &Path,
    ) -> Result<u64> {
        let context = self.context(repository, "write pulled blob");
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".partial-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let io = |source| Error::Io {
            context: context.clone(),
            source,
        };
        let result = (|| {
            let mut file = File::create(&tmp).map_err(io)?;
            let n = self.pull_blob(repository, digest, size, &mut file)?;
            file.sync_all().map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// A reader over a blob that fails (with `InvalidData`) at the end if the
    /// content does not have `size` bytes and the digest `digest`.
    pub fn open_blob(&self, repository: &str, digest: &Digest, size: u64) -> Result<BlobReader> {
        let context = self.repo_context(repository, "pull blob")?;
        let resp = self.send(Call {
            method: http::Method::GET,
            url: format!("/v2/{repository}/blobs/{digest}"),
            context: context.clone(),
            scopes: vec![pull_scope(repository)],
            headers: Vec::new(),
            body: Body::Empty,
        })?;
        let what = format!("blob {digest}");
        let resp = self.expect(resp, &context, &[200], &what, "retry later")?;
        if let Some(len) = header(&resp, "content-length").and_then(|v| v.parse::<u64>().ok())
            && len != size
        {
            return Err(Error::InvalidResponse {
                context,
                reason: format!("blob {digest} is {len} bytes, its descriptor says {size}"),
            });
        }
        Ok(BlobReader {
            inner: Box::new(resp.into_body().into_reader().take(size + 1)),
            hasher: Some(Sha256::new()),
            expected: *digest,
            size,
            context,
            failure: None,
        })
    }
}

/// A blob being downloaded; see [`Registry::open_blob`].
pub struct BlobReader {
    inner: Box<dyn Read + Send>,
    hasher: Option<Sha256>,
    expected: Digest,
    size: u64,
    context: Context,
    failure: Option<Error>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("expected", &self.expected)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let n = self.inner.read(buf)?;
        hasher.update(&buf[..n]);
        if hasher.len() > self.size {
            return Err(self.fail(Error::InvalidResponse {
                context: self.context.clone(),
                reason: format!(
                    "blob {} is longer than its {} bytes",
                    self.expected, self.size
                ),
            }));
        }
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let Some(hasher) = self.hasher.take() else {
            return Ok(0);
        };
        if hasher.len() != self.size {
            return Err(self.fail(Error::InvalidResponse {
                context: self.context.clone(),
                reason: format!(
                    "blob {} ended after {} of its {} bytes",
                    self.expected,
                    hasher.len(),
                    self.size
                ),
            }));
        }
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(self.fail(Error::DigestMismatch {
                context: self.context.clone(),
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            }));
        }
        Ok(0)
    }
}

impl BlobReader {
    /// The verification failure behind an `InvalidData` read error, if any.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    fn fail(&mut self, error: Error) -> io::Error {
        self.hasher = None;
        let e = io::Error::new(io::ErrorKind::InvalidData, error.to_string());
        self.failure = Some(error);
        e
    }
}

struct Counted<'a> {
    inner: &'a mut dyn Read,
    count: u64,
}

impl<'a> Counted<'a> {
    fn new(inner: &'a mut dyn Read) -> Self {
        Self { inner, count: 0 }
    }
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl Registry {
    /// Uploads a blob while `produce` writes it, in one pass: what `produce`
    /// writes is cut into chunks, and a second thread PATCHes each chunk
    /// while the next one fills (so the registry hashes and stores while the
    /// producer hashes, compresses and stores locally). The first chunk is
    /// [`RegistryOptions::first_stream_chunk`](crate::RegistryOptions) long
    /// (never below the registry's `OCI-Chunk-Min-Length`) and each next one
    /// twice the last, up to the chunk size ([`stream_chunk_sizes`]): the
    /// registry starts receiving early, then gets whole chunks. Memory is
    /// bounded by two chunks, the same two buffers used over and over.
    /// `produce` returns its result with the digest and size of what it wrote
    /// (it computed them while writing); the session is closed with that
    /// digest only after `produce` returned (so after it fsync'd its own
    /// copy), and the registry verifies the bytes against it. A failing
    /// producer or upload abandons the session: nothing is committed in the
    /// repository.
    pub fn push_blob_streaming<T, E: From<Error>>(
        &self,
        repository: &str,
        produce: impl FnOnce(&mut dyn Write) -> std::result::Result<(T, Digest, u64), E>,
    ) -> std::result::Result<T, E> {
        let UploadStart::Location(location, min_chunk) =
            self.start_upload(repository, None, None)?
        else {
            return Err(Error::InvalidResponse {
                context: self.context(repository, "start blob upload"),
                reason: "the registry mounted a blob it was not asked for".into(),
            }
            .into());
        };
        let chunk_size = self.chunk_size.max(1);
        let first = self.first_stream_chunk.max(min_chunk).clamp(1, chunk_size);
        let (produced, upload_failed, uploaded) = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(0);
            // Buffers the uploader is done with, for the sink to fill again.
            let (spare_tx, spare) = std::sync::mpsc::channel::<Vec<u8>>();
            let uploader =
                scope.spawn(move || self.upload_chunks(repository, location, rx, spare_tx));
            let mut sink = ChunkSink {
                tx: Some(tx),
                spare,
                chunk: Vec::new(),
                sizes: stream_chunk_sizes(first, chunk_size),
                target: 0,
                chunk_size,
                upload_failed: false,
            };
            let produced = produce(&mut sink);
            let produced = match produced {
                Ok(done) => sink.send_chunk().map(|()| done).map_err(|source| {
                    E::from(Error::Io {
                        context: self.context(repository, "upload blob chunk"),
                        source,
                    })
                }),
                Err(e) => Err(e),
            };
            // Closing the channel ends the uploader; the session is closed
            // below only if the producer succeeded.
            let upload_failed = sink.upload_failed;
            drop(sink);
            let uploaded = uploader.join().unwrap_or_else(|_| {
                Err(Error::InvalidResponse {
                    context: self.context(repository, "upload blob chunk"),
                    reason: "the upload thread panicked".into(),
                })
            });
            (produced, upload_failed, uploaded)
        });
        match (produced, uploaded) {
            // The upload's own error explains a producer that could no longer
            // hand it chunks.
            (Err(_), Err(upload)) if upload_failed => Err(upload.into()),
            (Err(produce), _) => Err(produce),
            (Ok(_), Err(upload)) => Err(upload.into()),
            (Ok((value, digest, size)), Ok((location, sent))) => {
                let context = self.context(repository, "complete blob upload");
                if sent != size {
                    // Checked before the session is closed: nothing is committed.
                    return Err(short_read(&context, size, sent).into());
                }
                let resp = self.send(Call {
                    method: http::Method::PUT,
                    url: with_digest(&location, &digest),
                    context: context.clone(),
                    scopes: vec![push_scope(repository)],
                    headers: Vec::new(),
                    body: Body::Empty,
                })?;
                self.finish_upload(resp, &context, &digest, size, sent)?;
                Ok(value)
            }
        }
    }

    /// The uploader of [`Registry::push_blob_streaming`]: PATCHes each chunk
    /// received, in order, and hands its buffer back to be filled again;
    /// returns the next location and the bytes sent.
    fn upload_chunks(
        &self,
        repository: &str,
        mut location: String,
        chunks: std::sync::mpsc::Receiver<Vec<u8>>,
        spare: std::sync::mpsc::Sender<Vec<u8>>,
    ) -> Result<(String, u64)> {
        let context = self.context(repository, "upload blob chunk");
        let mut offset = 0u64;
        for chunk in chunks {
            let n = chunk.len() as u64;
            if n == 0 {
                continue;
            }
            let resp = self.send(Call {
                method: http::Method::PATCH,
                url: location.clone(),
                context: context.clone(),
                scopes: vec![push_scope(repository)],
                headers: vec![
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Range", format!("{offset}-{}", offset + n - 1)),
                ],
                body: Body::Bytes(&chunk),
            })?;
            location = self.chunk_accepted(resp, &context, offset, n)?;
            offset += n;
            // The sink may have stopped (and dropped its end): then the
            // buffer is simply freed.
            let _ = spare.send(chunk);
        }
        Ok((location, offset))
    }

    /// Checks a PATCH's answer (202, the range it reports) and returns the
    /// location of the next request.
    fn chunk_accepted(
        &self,
        resp: http::Response<ureq::Body>,
        context: &Context,
        offset: u64,
        n: u64,
    ) -> Result<String> {
        let resp = self.expect(
            resp,
            context,
            &[202],
            "the upload session",
            "the registry refused a chunk; retry the push",
        )?;
        if let Some(range) = header(&resp, "range") {
            let end = range.rsplit('-').next().and_then(|e| e.parse::<u64>().ok());
            if end != Some(offset + n - 1) {
                return Err(Error::InvalidResponse {
                    context: context.clone(),
                    reason: format!(
                        "after bytes 0-{} the registry reports range `{}`",
                        offset + n - 1,
                        range.chars().take(60).collect::<String>()
                    ),
                });
            }
        }
        let next = header(&resp, "location").ok_or_else(|| Error::InvalidResponse {
            context: context.clone(),
            reason: "a chunk was accepted without a Location for the next".into(),
        })?;
        self.absolute(next, context)
    }
}

/// The sizes of a one-pass upload's chunks: `first`, then each twice the
/// last, up to `chunk_size`, then `chunk_size` on (the last chunk is whatever
/// is left).
pub(crate) fn stream_chunk_sizes(first: u64, chunk_size: u64) -> impl Iterator<Item = u64> {
    let chunk_size = chunk_size.max(1);
    std::iter::successors(Some(first.clamp(1, chunk_size)), move |&last| {
        Some(last.saturating_mul(2).min(chunk_size))
    })
}

/// The writer [`Registry::push_blob_streaming`] hands its producer: fills a
/// chunk (a buffer the uploader handed back, once there is one), then hands
/// it to the uploader (waiting while the uploader still sends the previous
/// one).
struct ChunkSink<I> {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    /// The sizes of the chunks to come.
    sizes: I,
    /// The size of the chunk being filled (0 before the first write).
    target: usize,
    chunk_size: u64,
    upload_failed: bool,
}

impl<I: Iterator<Item = u64>> ChunkSink<I> {
    fn send_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.target = 0;
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk));
        if !matches!(sent, Some(Ok(()))) {
            self.upload_failed = true;
            return Err(io::Error::other("the upload to the registry failed"));
        }
        Ok(())
    }
}

impl<I: Iterator<Item = u64>> Write for ChunkSink<I> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.target == 0 {
            let next = self.sizes.next().unwrap_or(self.chunk_size);
            self.target = usize::try_from(next).unwrap_or(usize::MAX);
            if self.chunk.capacity() == 0 {
                // A buffer the uploader is done with, or (for the first two
                // chunks) a new one, as large as any chunk will be.
                self.chunk = match self.spare.try_recv() {
                    Ok(mut spare) => {
                        spare.clear();
                        spare
                    }
                    Err(_) => Vec::new(),
                };
                let full = usize::try_from(self.chunk_size).unwrap_or(usize::MAX);
                self.chunk.reserve_exact(full.max(self.target));
            }
        }
        let n = buf.len().min(self.target - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == self.target {
            self.send_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!(
        "{location}{sep}digest={}",
        encode_query(&digest.to_string())
    )
}

fn short_read(context: &Context, size: u64, sent: u64) -> Error {
    Error::Io {
        context: context.clone(),
        source: io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the local content has {sent} bytes, its descriptor says {size}"),
        ),
    }
}

fn check_returned_digest(
    resp: &http::Response<ureq::Body>,
    digest: &Digest,
    context: &Context,
) -> Result<()> {
    match header(resp, "docker-content-digest") {
        Some(d) if d != digest.to_string() => Err(Error::DigestMismatch {
            context: context.clone(),
            expected: digest.to_string(),
            actual: d.chars().take(100).collect(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_chunks_double_from_the_first_up_to_the_chunk_size() {
        let sizes = |first, chunk| stream_chunk_sizes(first, chunk).take(7).collect::<Vec<_>>();
        assert_eq!(sizes(8, 64), [8, 16, 32, 64, 64, 64, 64]);
        assert_eq!(sizes(64, 64), [64; 7]);
        assert_eq!(sizes(100, 64), [64; 7]);
        assert_eq!(sizes(0, 64), [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(sizes(3, 10), [3, 6, 10, 10, 10, 10, 10]);
    }

    /// The sink cuts what it is written (in odd-sized pieces) into chunks of
    /// the ramp's sizes, in order, with every byte once, and fills the same
    /// two buffers over and over once the uploader hands them back.
    #[test]
    fn the_sink_cuts_the_ramp_and_reuses_two_buffers() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(0);
        let (spare_tx, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let uploader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for chunk in rx {
                seen.push((chunk.len(), chunk.as_ptr() as usize, chunk.clone()));
                let _ = spare_tx.send(chunk);
            }
            seen
        });
        let mut sink = ChunkSink {
            tx: Some(tx),
            spare,
            chunk: Vec::new(),
            sizes: stream_chunk_sizes(1000, 8000),
            target: 0,
            chunk_size: 8000,
            upload_failed: false,
        };
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 253) as u8).collect();
        for piece in data.chunks(777) {
            sink.write_all(piece).expect("write");
        }
        sink.send_chunk().expect("last chunk");
        drop(sink);
        let seen = uploader.join().expect("uploader");
        let lengths: Vec<usize> = seen.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(
            lengths,
            [1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 3000]
        );
        let joined: Vec<u8> = seen.iter().flat_map(|(_, _, c)| c.clone()).collect();
        assert_eq!(joined, data);
        let mut buffers: Vec<usize> = seen.iter().map(|(_, p, _)| *p).collect();
        buffers.sort_unstable();
        buffers.dedup();
        println!("{} chunks from {} buffers", seen.len(), buffers.len());
        assert!(buffers.len() <= 2, "{buffers:?}");
    }
}

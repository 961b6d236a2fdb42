//! The advisory feed: the organisation's `[advisories] sources` (a directory of
//! OSV JSON, an OSV zip, or an HTTPS URL to an OSV zip) fetched and imported
//! — by `cairn up` on the configured interval, by `cairn vulns sync` once.
//!
//! A source is imported only when it changed: a URL is fetched with the
//! validators of its last fetch (`If-None-Match`, `If-Modified-Since`; a `304`
//! is nothing to do), and any source whose content digest equals the last
//! import's is skipped. An import is an `advisory-import` entry in the audit log
//! (the source and the digest of what was read) before any record is stored;
//! only new or changed records re-match the stored SBOMs (`advisories.rs`), so
//! exposures of what is deployed appear as soon as the import ends.
//!
//! Bounds: a response body is at most [`FeedLimits::max_body_bytes`] (refused
//! from its `Content-Length`, and again while it streams), written to a private
//! file under `<data>/feed/` and read from there as a zip under
//! [`crate::advisories::zip_limits`] (entries, sizes, ratios, names: nothing is
//! extracted). No redirect is followed. A source that fails (unreachable, an
//! HTTP error, an oversized or malformed archive, a missing directory) is a
//! reason kept with that source in `<data>/feed/state.json` and reported; the
//! other sources are still imported.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_model::config::{AdvisoryFeed, FeedSource};
use cairn_model::error_chain;
use cairn_store::{MatchScope, Store};
use serde::{Deserialize, Serialize};

use crate::advisories::{Import, ImportCounts, Rematched, rematch};
use crate::audit::{AdvisoryImport, AuditLog, Change, LOCK_WAIT};
use crate::inventory::Tree;
use crate::{DataDir, EngineError};

/// How much one fetch may read, and how long it may wait.
#[derive(Debug, Clone, Copy)]
pub struct FeedLimits {
    /// The largest response body (and zip archive on disk).
    pub max_body_bytes: u64,
    /// How long the server may take to answer and to send each part of the body.
    pub timeout: Duration,
}

impl Default for FeedLimits {
    fn default() -> Self {
        FeedLimits {
            max_body_bytes: 1 << 30,
            timeout: Duration::from_secs(300),
        }
    }
}

/// The longest validator (`ETag`, `Last-Modified`) kept from a response.
const MAX_VALIDATOR: usize = 512;

/// What cairn remembers of one source between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// The `ETag` of the last fetch that was imported (or found unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` of that fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// `sha256:<hex>` of the content last imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When it was last polled, and last imported (ms since the epoch).
    #[serde(default)]
    pub checked_ms: i64,
    #[serde(default)]
    pub imported_ms: i64,
    /// Why the last poll failed; `None` after a poll that did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one source's poll did.
#[derive(Debug)]
pub enum Polled {
    /// Nothing to import: why (`304 Not Modified`, the same content as last time).
    Unchanged(String),
    /// Imported (digest of what was read, the audit log index of the import entry).
    Imported {
        digest: String,
        log_index: u64,
        counts: Box<ImportCounts>,
    },
}

/// One source's result: what it did, or why it failed.
#[derive(Debug)]
pub struct SourceReport {
    pub source: String,
    pub result: Result<Polled, String>,
}

/// A poll of every source, and the one re-match of what they changed.
#[derive(Debug)]
pub struct SyncReport {
    pub sources: Vec<SourceReport>,
    pub rematched: Rematched,
}

impl SyncReport {
    /// Sources that failed.
    pub fn failed(&self) -> usize {
        self.sources.iter().filter(|s| s.result.is_err()).count()
    }
}

/// The feed's directory in the data directory (0700).
fn feed_dir(data: &DataDir) -> Result<PathBuf, EngineError> {
    let dir = data.root().join("feed");
    std::fs::create_dir_all(&dir).map_err(EngineError::io("create", &dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(EngineError::io("protect", &dir))?;
    Ok(dir)
}

/// Removes downloads a crashed poll left behind (older than an hour, so a
/// concurrent poll's download in progress is kept).
fn sweep_downloads(data: &DataDir) {
    let dir = data.root().join("feed");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if stale && name.to_string_lossy().starts_with("download-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Every source's remembered state (`<data>/feed/state.json`).
pub fn load_state(data: &DataDir) -> Result<BTreeMap<String, SourceState>, EngineError> {
    let path = data.root().join("feed").join("state.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            EngineError::io("parse", &path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(EngineError::io("read", &path)(e)),
    }
}

fn save_state(data: &DataDir, state: &BTreeMap<String, SourceState>) -> Result<(), EngineError> {
    let dir = feed_dir(data)?;
    let path = dir.join("state.json");
    let tmp = dir.join(format!("state.json.tmp-{}", random_hex()?));
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| EngineError::io("write", &path)(std::io::Error::other(e)))?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::io("write", &path)(e));
    }
    Ok(())
}

fn random_hex() -> Result<String, EngineError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| EngineError::NoRandomness)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls every source of `feed` once, imports what changed, and re-matches
/// the stored SBOMs against the changed records. `actor` is who asked (`None`:
/// the server's own feed, or an organisation without identities). A source
/// that fails is reported with its reason and kept in the state; an error is
/// returned only when the store, the audit log or the state cannot be used.
pub fn sync(
    store: &dyn Store,
    data: &DataDir,
    feed: &AdvisoryFeed,
    actor: Option<&str>,
    limits: &FeedLimits,
    progress: &mut dyn FnMut(&str),
) -> Result<SyncReport, EngineError> {
    let mut state = load_state(data)?;
    sweep_downloads(data);
    let mut reports = Vec::new();
    let mut packages = std::collections::BTreeSet::new();
    let mut advisories = std::collections::BTreeSet::new();
    for source in &feed.sources {
        let key = source.as_str().to_owned();
        let mut s = state.get(&key).cloned().unwrap_or_default();
        s.checked_ms = crate::host::now_ms();
        let result = poll_one(store, data, source, &mut s, actor, limits, progress);
        match &result {
            Ok(Polled::Imported { digest, counts, .. }) => {
                s.digest = Some(digest.clone());
                s.imported_ms = s.checked_ms;
                s.error = None;
                packages.extend(counts.touched.iter().cloned());
                advisories.extend(counts.changed.iter().cloned());
                progress(&format!(
                    "{key}: {} records read: {} new, {} updated, {} unchanged, {} errors",
                    counts.files,
                    counts.new,
                    counts.updated,
                    counts.unchanged,
                    counts.errors.len()
                ));
            }
            Ok(Polled::Unchanged(why)) => {
                s.error = None;
                progress(&format!("{key}: {why}"));
            }
            Err(why) => {
                s.error = Some(why.clone());
                progress(&format!("{key}: failed: {why}"));
            }
        }
        state.insert(key.clone(), s);
        reports.push(SourceReport {
            source: key,
            result,
        });
    }
    // Sources no longer configured are forgotten.
    state.retain(|k, _| feed.sources.iter().any(|s| s.as_str() == k));
    save_state(data, &state)?;
    let rematched = rematch(
        store,
        MatchScope {
            packages: packages.into_iter().collect(),
            advisories: advisories.into_iter().collect(),
            sbom: None,
        },
    )?;
    Ok(SyncReport {
        sources: reports,
        rematched,
    })
}

/// One source. `Err` is the source's failure, as text; a store or audit-log
/// failure is also the source's (the next source may still succeed, and the
/// next poll retries).
fn poll_one(
    store: &dyn Store,
    data: &DataDir,
    source: &FeedSource,
    state: &mut SourceState,
    actor: Option<&str>,
    limits: &FeedLimits,
    progress: &mut dyn FnMut(&str),
) -> Result<Polled, String> {
    match source {
        FeedSource::Url(url) => {
            let dir = feed_dir(data).map_err(|e| error_chain(&e))?;
            let Some(fetched) = fetch(url, state, &dir, limits, progress)? else {
                return Ok(Polled::Unchanged("304 Not Modified".to_owned()));
            };
            let result = (|| {
                if state.digest.as_deref() == Some(fetched.digest.as_str()) {
                    return Ok(Polled::Unchanged(format!(
                        "the same content as the last import ({})",
                        fetched.digest
                    )));
                }
                check_zip(
                    std::fs::File::open(&fetched.path)
                        .map_err(|e| format!("cannot reopen the download: {e}"))?,
                    url,
                )?;
                let file = std::fs::File::open(&fetched.path)
                    .map_err(|e| format!("cannot reopen the download: {e}"))?;
                import(
                    store,
                    data,
                    url,
                    &fetched.digest,
                    actor,
                    progress,
                    |import, p| {
                        import.zip(
                            std::io::BufReader::new(file),
                            crate::advisories::zip_limits(),
                            url,
                            p,
                        )
                    },
                )
            })();
            let _ = std::fs::remove_file(&fetched.path);
            if result.is_ok() {
                state.etag = fetched.etag;
                state.last_modified = fetched.last_modified;
            }
            result
        }
        FeedSource::Zip(path) => {
            let path = Path::new(path);
            let mut file = open_regular(path)?;
            let size = file
                .metadata()
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .len();
            if size > limits.max_body_bytes {
                return Err(format!(
                    "{} is {size} bytes, over the limit of {} bytes",
                    path.display(),
                    limits.max_body_bytes
                ));
            }
            let digest = digest_reader(&mut file)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if state.digest.as_deref() == Some(digest.as_str()) {
                return Ok(Polled::Unchanged(format!(
                    "the same content as the last import ({digest})"
                )));
            }
            let shown = path.display().to_string();
            file.rewind()
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            check_zip(&mut file, &shown)?;
            file.rewind()
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            import(
                store,
                data,
                &shown,
                &digest,
                actor,
                progress,
                |import, p| {
                    import.zip(
                        std::io::BufReader::new(file),
                        crate::advisories::zip_limits(),
                        &shown,
                        p,
                    )
                },
            )
        }
        FeedSource::Dir(path) => {
            let path = Path::new(path);
            let tree = Tree::walk(path).map_err(|e| error_chain(&e))?;
            if !tree.skipped.is_empty() && tree.files.is_empty() {
                let s = &tree.skipped[0];
                return Err(format!("{}: {}", s.path, s.reason));
            }
            let digest = digest_tree(&tree);
            if state.digest.as_deref() == Some(digest.as_str()) {
                return Ok(Polled::Unchanged(format!(
                    "the same content as the last import ({digest})"
                )));
            }
            let shown = path.display().to_string();
            import(
                store,
                data,
                &shown,
                &digest,
                actor,
                progress,
                |import, p| import.tree(&tree, p),
            )
        }
    }
}

/// The audit entry, then the import `read` does; its counts.
fn import(
    store: &dyn Store,
    data: &DataDir,
    source: &str,
    digest: &str,
    actor: Option<&str>,
    progress: &mut dyn FnMut(&str),
    read: impl FnOnce(&mut Import<'_>, &mut dyn FnMut(usize, usize)) -> Result<(), EngineError>,
) -> Result<Polled, String> {
    let receipt = AuditLog::open_waiting(data, LOCK_WAIT)
        .and_then(|log| {
            log.record(&Change::AdvisoryImport(AdvisoryImport {
                source: format!("{source} ({digest})"),
                actor: actor.map(str::to_owned),
            }))
        })
        .map_err(|e| format!("the import could not be audit-logged: {}", error_chain(&e)))?;
    let mut import = Import::new(store);
    let mut tick = |done: usize, all: usize| {
        if done > 0 {
            progress(&format!("{source}: {done} of {all} entries read"));
        }
    };
    read(&mut import, &mut tick).map_err(|e| error_chain(&e))?;
    let counts = import.finish().map_err(|e| error_chain(&e))?;
    if counts.imported() == 0 {
        let first = counts.errors.iter().next().map_or_else(String::new, |e| {
            format!(" (first: {}: {})", e.path, e.reason)
        });
        return Err(format!(
            "no OSV record could be imported from {source}: {} entries, {} errors{first}",
            counts.files,
            counts.errors.len()
        ));
    }
    Ok(Polled::Imported {
        digest: digest.to_owned(),
        log_index: receipt.index,
        counts: Box::new(counts),
    })
}

/// Whether `file` opens as an OSV zip under the import's limits (its central
/// directory read, no entry yet): checked before the import is audit-logged,
/// so a body that is no archive is a failed source, not an import.
fn check_zip(file: impl Read + Seek, shown: &str) -> Result<(), String> {
    cairn_vuln::archive::OsvArchive::open(
        std::io::BufReader::new(file),
        crate::advisories::zip_limits(),
    )
    .map(drop)
    .map_err(|e| format!("{shown} is not a usable OSV zip: {}", error_chain(&e)))
}

/// A file the organisation named in org.toml: a regular file (not a FIFO or
/// device), opened without following a final symlink.
fn open_regular(path: &Path) -> Result<std::fs::File, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    Ok(file)
}

fn digest_reader(r: &mut impl Read) -> std::io::Result<String> {
    let mut ctx = cairn_evidence::Sha256Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx.finish().to_string())
}

/// A directory's content digest: every `*.json` file's name and bytes (a file
/// that cannot be read contributes its reason), in order.
fn digest_tree(tree: &Tree) -> String {
    let mut ctx = cairn_evidence::Sha256Hasher::new();
    for rel in tree.files.iter().filter(|f| f.ends_with(".json")) {
        let content = tree.read(rel, crate::advisories::record_limit());
        let inner = match &content {
            Ok(bytes) => cairn_evidence::sha256(bytes),
            Err(why) => cairn_evidence::sha256(why.as_bytes()),
        };
        ctx.update(&(rel.len() as u64).to_be_bytes());
        ctx.update(rel.as_bytes());
        ctx.update(&[u8::from(content.is_ok())]);
        ctx.update(inner.as_bytes());
    }
    ctx.finish().to_string()
}

/// A downloaded body on disk.
struct Fetched {
    path: PathBuf,
    digest: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// A validator header worth keeping: visible ASCII, bounded.
fn validator(value: Option<&str>) -> Option<String> {
    value
        .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR)
        .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .map(str::to_owned)
}

/// A conditional GET of `url`: `None` for `304 Not Modified`; otherwise the
/// body, bounded, in a private file under `dir`.
fn fetch(
    url: &str,
    state: &SourceState,
    dir: &Path,
    limits: &FeedLimits,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Fetched>, String> {
    if !cairn_model::config::is_feed_url(url) {
        return Err(format!("{url} is not an advisory feed URL"));
    }
    progress(&format!("fetching {url}"));
    let agent = cairn_registry::http::agent("cairn-advisory-feed", Some(limits.timeout));
    let mut request = agent.get(url);
    let conditional = state.etag.is_some() || state.last_modified.is_some();
    if let Some(etag) = &state.etag {
        request = request.header("If-None-Match", etag);
    }
    if let Some(lm) = &state.last_modified {
        request = request.header("If-Modified-Since", lm);
    }
    let response = request
        .call()
        .map_err(|e| format!("{url} could not be fetched: {e}"))?;
    let status = response.status();
    if status.as_u16() == 304 {
        if conditional {
            return Ok(None);
        }
        return Err(format!(
            "{url} answered 304 Not Modified to a request without validators"
        ));
    }
    if status.is_redirection() {
        return Err(format!(
            "{url} answered {status}: redirects are not followed; name the final URL in org.toml"
        ));
    }
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    let etag = validator(header("etag"));
    let last_modified = validator(header("last-modified"));
    if let Some(len) = header("content-length").and_then(|l| l.trim().parse::<u64>().ok())
        && len > limits.max_body_bytes
    {
        return Err(format!(
            "{url} is {len} bytes (Content-Length), over the limit of {} bytes",
            limits.max_body_bytes
        ));
    }
    let path = dir.join(format!(
        "download-{}.zip",
        random_hex().map_err(|e| error_chain(&e))?
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut body = response
            .into_body()
            .into_reader()
            .take(limits.max_body_bytes + 1);
        let mut ctx = cairn_evidence::Sha256Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total: u64 = 0;
        loop {
            let n = body
                .read(&mut buf)
                .map_err(|e| format!("{url}: the body could not be read: {e}"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limits.max_body_bytes {
                return Err(format!(
                    "{url} sent more than the limit of {} bytes",
                    limits.max_body_bytes
                ));
            }
            ctx.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        file.sync_all()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        progress(&format!("{url}: {total} bytes received"));
        Ok(ctx.finish().to_string())
    })();
    match result {
        Ok(digest) => Ok(Some(Fetched {
            path,
            digest,
            etag,
            last_modified,
        })),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// Serves one raw `answer` to each of the next `n` connections.
    fn serve(answers: Vec<Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/feed.zip", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ = stream.write_all(&answer);
            }
        });
        url
    }

    fn fetch_err(answer: &[u8], state: &SourceState) -> String {
        let url = serve(vec![answer.to_vec()]);
        let dir = tempfile::tempdir().unwrap();
        let limits = FeedLimits {
            max_body_bytes: 1000,
            timeout: Duration::from_secs(10),
        };
        let result = fetch(&url, state, dir.path(), &limits, &mut |_| {});
        let err = result.err().unwrap_or_else(|| panic!("fetched"));
        // Nothing is left behind in the feed directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        err
    }

    #[test]
    fn bodies_are_bounded_while_they_stream_and_redirects_are_refused() {
        // Chunked: no Content-Length to refuse up front; cut at the limit.
        let mut chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        for _ in 0..4 {
            chunked.extend_from_slice(b"190\r\n");
            chunked.extend_from_slice(&[b'x'; 400]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let e = fetch_err(&chunked, &SourceState::default());
        assert!(e.contains("sent more than the limit of 1000 bytes"), "{e}");

        let e = fetch_err(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\nConnection: close\r\n\r\n",
            &SourceState::default(),
        );
        assert!(
            e.contains("1001 bytes (Content-Length), over the limit"),
            "{e}"
        );

        let e = fetch_err(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/x.zip\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            &SourceState::default(),
        );
        assert!(e.contains("redirects are not followed"), "{e}");

        let e = fetch_err(
            b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n",
            &SourceState::default(),
        );
        assert!(e.contains("without validators"), "{e}");
    }

    #[test]
    fn validators_are_kept_only_when_printable_and_short() {
        assert_eq!(validator(Some("\"v1\"")).as_deref(), Some("\"v1\""));
        assert_eq!(validator(Some("a\u{7f}b")), None);
        assert_eq!(validator(Some("")), None);
        assert_eq!(validator(Some(&"x".repeat(MAX_VALIDATOR + 1))), None);
    }
}

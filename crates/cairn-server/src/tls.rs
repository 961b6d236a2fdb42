//! TLS for `cairn up` and `cairn serve` (`--tls-cert FILE --tls-key FILE`,
//! PEM): rustls on the aws-lc-rs provider, the same rustls the registry client
//! uses (no ring, no OpenSSL). The key file is held to the signing key's rule
//! (a regular file only its owner may read, owned by the user cairn runs as);
//! a missing, empty, malformed, expired or mismatched certificate or key is
//! refused at start with the file named, never served.
//!
//! The files are re-read on an interval (`--tls-reload-seconds`): a rotated
//! certificate is served without a restart, and files that no longer pass
//! are logged and the previous certificate kept.
//!
//! [`TlsListener`] accepts TCP connections on a task of its own and completes
//! each handshake on its own task, bounded in time and in number, so a client
//! that stalls its handshake holds up nobody else; finished connections are
//! handed to axum (graceful shutdown and all) through a channel.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::sync::RwLock;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The largest certificate chain or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;
/// How long a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// A loaded certificate and key, ready to serve.
pub type TlsConfig = Arc<Tls>;

/// Why the certificate or key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} is not a regular file")]
    NotAFile { what: &'static str, path: PathBuf },
    #[error("{what} {path} is larger than {MAX_PEM_BYTES} bytes")]
    TooLarge { what: &'static str, path: PathBuf },
    #[error(
        "TLS key {path} is readable or writable by other users (mode {mode:o}); it must be 0600 (chmod 600 it, and replace the key: it may have been read)"
    )]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error(
        "TLS key {path} is owned by uid {owner}, not by the user cairn runs as (uid {euid}); chown it"
    )]
    KeyNotOwned {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error(
        "certificate file {path} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`): {why}"
    )]
    NoCertificate { path: PathBuf, why: String },
    #[error(
        "TLS key {path} holds no PEM private key (PKCS#8 `PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`): {why}"
    )]
    NoKey { path: PathBuf, why: String },
    #[error("certificate {path} is not valid X.509: {why}")]
    BadCertificate { path: PathBuf, why: String },
    #[error("certificate {path} expired at {not_after} (now {now}); renew it")]
    Expired {
        path: PathBuf,
        not_after: String,
        now: String,
    },
    #[error("the certificate {cert} and the key {key} cannot be served together: {why}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
}

/// Reads `path` (following a symlink, as Kubernetes secret mounts are) as a
/// regular file of at most [`MAX_PEM_BYTES`]; with `private`, refuses one
/// that others may read or that another user owns. The checks are made on
/// the opened file, so what was checked is what is read; a FIFO is opened
/// without blocking and refused.
fn read_pem_file(what: &'static str, path: &Path, private: bool) -> Result<Vec<u8>, TlsError> {
    let read_err = |source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(TlsError::NotAFile {
            what,
            path: path.to_path_buf(),
        });
    }
    if private {
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TlsError::KeyExposed {
                path: path.to_path_buf(),
                mode,
            });
        }
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            return Err(TlsError::KeyNotOwned {
                path: path.to_path_buf(),
                owner: meta.uid(),
                euid,
            });
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The certificate chain and key at `cert` and `key`, checked as the module
/// says, as rustls serves them.
fn certified(cert: &Path, key: &Path, now_ms: i64) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = read_pem_file("certificate file", cert, false)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: cert.to_path_buf(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
            why: "the file has none".to_owned(),
        });
    }
    check_validity(cert, &chain[0], now_ms)?;
    let key_pem = read_pem_file("TLS key", key, true)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_path_buf(),
        why: e.to_string(),
    })?;
    drop(key_pem);
    let mismatch = |why: String| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        why,
    };
    let signing = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|e| mismatch(format!("the key cannot sign: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    // Unlike rustls's own constructor, a key whose public half cannot be
    // compared is refused too.
    certified.keys_match().map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            mismatch("the key is not the certificate's (their public keys differ)".to_owned())
        }
        other => mismatch(other.to_string()),
    })?;
    Ok(Arc::new(certified))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificate being served, re-read from its files by [`TlsListener`]
/// on an interval: a rotated certificate (cert-manager, a secret update) is
/// served without a restart; files that no longer pass are refused, logged,
/// and the previous certificate stays.
#[derive(Debug)]
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Reloading {
    /// Re-reads the files: `Ok(true)` when another certificate is now served.
    pub fn reload(&self, now_ms: i64) -> Result<bool, TlsError> {
        let fresh = certified(&self.cert, &self.key, now_ms)?;
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.cert == fresh.cert {
            return Ok(false);
        }
        *current = fresh;
        Ok(true)
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// What `--tls-cert`/`--tls-key` serve: rustls's configuration and the
/// certificate it resolves, which the listener re-reads.
#[derive(Debug)]
pub struct Tls {
    config: Arc<ServerConfig>,
    certs: Arc<Reloading>,
}

/// The server's TLS from a PEM certificate chain (leaf first) and its PEM
/// private key, checked as the module says. `now_ms` is the time the
/// certificate must be valid at.
pub fn load(cert: &Path, key: &Path, now_ms: i64) -> Result<TlsConfig, TlsError> {
    let current = certified(cert, key, now_ms)?;
    let certs = Arc::new(Reloading {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        current: RwLock::new(current),
    });
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            why: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    // axum serves HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(Tls {
        config: Arc::new(config),
        certs,
    }))
}

/// Refuses a leaf certificate that does not parse or is outside its validity.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>, now_ms: i64) -> Result<(), TlsError> {
    use x509_cert::der::Decode;
    let parsed =
        x509_cert::Certificate::from_der(leaf.as_ref()).map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
    let validity = parsed.tbs_certificate().validity();
    let secs = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    let now = now_ms / 1000;
    let fmt = cairn_model::time::rfc3339_utc_secs;
    let not_after = secs(validity.not_after);
    if now > not_after {
        return Err(TlsError::Expired {
            path: path.to_path_buf(),
            not_after: fmt(not_after),
            now: fmt(now),
        });
    }
    let not_before = secs(validity.not_before);
    if now < not_before {
        return Err(TlsError::BadCertificate {
            path: path.to_path_buf(),
            why: format!("it is not valid before {}", fmt(not_before)),
        });
    }
    Ok(())
}

/// A TCP listener whose connections are TLS, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
    reloader: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Serves `tls` on `listener`, re-reading the certificate and key every
    /// `reload` (call within a tokio runtime).
    pub fn new(
        listener: TcpListener,
        tls: TlsConfig,
        reload: Duration,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(tls.config.clone()),
            tx,
        ));
        let reloader = tokio::spawn(reload_loop(
            tls.certs.clone(),
            reload.max(Duration::from_secs(1)),
        ));
        Ok(TlsListener {
            local,
            ready,
            acceptor,
            reloader,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.reloader.abort();
    }
}

async fn reload_loop(certs: Arc<Reloading>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let reloading = certs.clone();
        match tokio::task::spawn_blocking(move || reloading.reload(now)).await {
            Ok(Ok(true)) => eprintln!(
                "cairn: TLS: serving the new certificate in {}",
                certs.cert.display()
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                eprintln!("cairn: TLS: keeps serving the previous certificate: {e}");
            }
            Err(e) => eprintln!("cairn: TLS: reloading failed: {e}"),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // As axum does for a plain listener: out of descriptors and
                // the like pass; wait a moment rather than spin.
                eprintln!("cairn: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, handed) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _permit = permit;
            // A failed or stalled handshake closes that connection only;
            // nothing about it is answered or logged per connection.
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                let _ = handed.send((tls, peer)).await;
            }
        });
        if ready.is_closed() {
            return;
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (it only does when the listener is
            // dropped): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

//! Test harness: a real Debian `docker-registry` (distribution 2.8) in a temp
//! dir on a free loopback port, killed on drop; a tiny image builder; an
//! in-memory `BlobStore`; and an ES256 token server for the Bearer flow.

#![allow(dead_code)]

pub(crate) mod token;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_registry::{
    BlobStore, BlobStoreError, Credentials, Descriptor, Digest, Registry, RegistryOptions, Scheme,
    media_types,
};

/// How the registry authenticates.
pub(crate) enum Auth {
    None,
    Htpasswd {
        user: String,
        password: String,
    },
    /// No auth, but HTTPS with a fresh self-signed certificate for 127.0.0.1.
    Tls,
    Token {
        realm: String,
        service: String,
        issuer: String,
        root_cert: PathBuf,
    },
}

pub(crate) struct RegistryServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl RegistryServer {
    pub(crate) fn start() -> Self {
        Self::start_with(Auth::None)
    }

    pub(crate) fn start_with(auth: Auth) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).expect("storage dir");
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Tls => {
                let key = dir.path().join("tls.key");
                let cert = dir.path().join("tls.crt");
                run(Command::new("openssl").args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    path_str(&key),
                    "-out",
                    path_str(&cert),
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                    "-addext",
                    "basicConstraints=critical,CA:FALSE",
                    "-days",
                    "2",
                ]));
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                )
            }
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", &user, &password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: cairn-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                root_cert,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                root_cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: cairn-test-upload-secret\n{auth_yaml}",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (Debian package docker-registry)");
        let mut server = Self { child, port, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer /v2/: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn options(&self, credentials: Credentials) -> RegistryOptions {
        let mut o = RegistryOptions::new(self.host(), credentials);
        o.scheme = Scheme::HttpLoopback;
        o
    }

    pub(crate) fn client(&self) -> Registry {
        Registry::with_options(self.options(Credentials::Anonymous)).expect("client")
    }

    /// The file holding a blob in the filesystem storage driver.
    pub(crate) fn blob_data_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Flips one byte of a stored blob (same size), as disk corruption or a
    /// malicious registry would.
    pub(crate) fn corrupt_blob(&self, digest: &Digest) {
        let path = self.blob_data_path(digest);
        let mut bytes = std::fs::read(&path).expect("stored blob");
        let i = bytes.len() / 2;
        bytes[i] ^= 0x01;
        std::fs::write(&path, bytes).expect("rewrite blob");
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Deterministic pseudo-random bytes.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tiny image: one gzip'd tar layer, a config, a manifest.
pub(crate) struct TestImage {
    pub blobs: HashMap<Digest, Vec<u8>>,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub config: Descriptor,
    pub layer: Descriptor,
}

impl TestImage {
    pub(crate) fn new(content: &str) -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, "hello.txt", content.as_bytes())
            .expect("tar entry");
        let tar = tar.into_inner().expect("tar");
        let diff_id = cairn_evidence::sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        let layer_bytes = gz.finish().expect("gzip");
        let layer = Descriptor::new(
            media_types::OCI_LAYER_GZIP,
            cairn_evidence::sha256(&layer_bytes),
            layer_bytes.len() as u64,
        );
        let config_bytes = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        }))
        .expect("config");
        let config = Descriptor::new(
            media_types::OCI_CONFIG,
            cairn_evidence::sha256(&config_bytes),
            config_bytes.len() as u64,
        );
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        }))
        .expect("manifest");
        let manifest_digest = cairn_evidence::sha256(&manifest);
        let mut blobs = HashMap::new();
        blobs.insert(layer.digest, layer_bytes);
        blobs.insert(config.digest, config_bytes);
        blobs.insert(manifest_digest, manifest.clone());
        Self {
            blobs,
            manifest,
            manifest_digest,
            config,
            layer,
        }
    }

    pub(crate) fn store(&self) -> MemStore {
        let store = MemStore::default();
        store.blobs.lock().expect("lock").extend(self.blobs.clone());
        store
    }

    pub(crate) fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            media_types::OCI_MANIFEST,
            self.manifest_digest,
            self.manifest.len() as u64,
        )
    }
}

/// A `BlobStore` in memory that verifies what it is given and keeps nothing
/// on failure, as the contract asks.
#[derive(Default)]
pub(crate) struct MemStore {
    pub blobs: Mutex<HashMap<Digest, Vec<u8>>>,
}

impl BlobStore for MemStore {
    fn has_blob(&self, digest: &Digest) -> Result<bool, BlobStoreError> {
        Ok(self
            .blobs
            .lock()
            .map_err(|e| e.to_string())?
            .contains_key(digest))
    }

    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64), BlobStoreError> {
        let bytes = self
            .blobs
            .lock()
            .map_err(|e| e.to_string())?
            .get(digest)
            .cloned()
            .ok_or_else(|| format!("blob {digest} not in store"))?;
        let len = bytes.len() as u64;
        Ok((Box::new(std::io::Cursor::new(bytes)), len))
    }

    fn put_blob(
        &self,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<(), BlobStoreError> {
        let mut bytes = Vec::new();
        reader.take(size + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != size || cairn_evidence::sha256(&bytes) != *digest {
            return Err(format!("blob {digest} does not match").into());
        }
        self.blobs
            .lock()
            .map_err(|e| e.to_string())?
            .insert(*digest, bytes);
        Ok(())
    }
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

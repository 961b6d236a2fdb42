//! Certificates for the HTTPS tests, made with the `openssl` command line
//! (Debian's `openssl`; no Rust dependency), and an HTTPS client that trusts
//! exactly one certificate (Python's `ssl`, verifying the chain and the name).
#![allow(clippy::unwrap_used, dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian package `openssl`) must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate for `localhost` and 127.0.0.1, valid for a
/// day, as `<dir>/<name>.crt` and its key `<dir>/<name>.key` (mode 0600).
pub(crate) fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
    );
    let key = dir.join(key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir.join(crt), key)
}

/// A self-signed certificate that expired on 2020-01-02, and its key.
pub(crate) fn expired_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "old.key",
            "-out",
            "old.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "old.key",
            "-in",
            "old.csr",
            "-out",
            "old.crt",
            "-notext",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
        ],
    );
    let key = dir.join("old.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir.join("old.crt"), key)
}

/// `METHOD url` over HTTPS trusting only `ca` (the chain and the host name
/// verified), with `body` as JSON when given: `(status, body)`; status 0 with
/// the error when the connection or handshake failed.
pub(crate) fn https(method: &str, url: &str, ca: &Path, body: Option<&[u8]>) -> (u16, String) {
    const CLIENT: &str = r#"
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=sys.argv[3])
data = sys.stdin.buffer.read() if sys.argv[4] == "1" else None
req = urllib.request.Request(sys.argv[2], data=data, method=sys.argv[1],
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        status, text = r.status, r.read()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read()
except Exception as e:
    status, text = 0, repr(e).encode()
sys.stdout.write(str(status) + "\n")
sys.stdout.buffer.write(text)
"#;
    let mut child = Command::new("python3")
        .args(["-c", CLIENT, method, url])
        .arg(ca)
        .arg(if body.is_some() { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        if let Some(b) = body {
            stdin.write_all(b).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, rest) = text.split_once('\n').unwrap_or((&text, ""));
    (
        status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the HTTPS client failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
        rest.to_owned(),
    )
}

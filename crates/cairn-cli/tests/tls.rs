//! `cairn up --tls-cert FILE --tls-key FILE` serves HTTPS (rustls on
//! aws-lc-rs) that a client trusting the certificate verifies; plain HTTP on
//! the same port gets no answer; a stalled handshake holds up no one. A bad
//! certificate or key is refused at start, exit 1, with the file and the
//! reason named: a key others may read, a key another user owns, a file that
//! is not PEM, a key that is not the certificate's, an expired certificate,
//! a FIFO, half a pair.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::server::Up;
use common::tls::{certificate, expired_certificate, https};
use common::{Fixture, Run};

#[test]
fn up_serves_https_with_the_given_certificate_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "server");
    let data = dir.path().join(".cairn");
    let up = Up::start(
        &data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(up.url.starts_with("https://127.0.0.1:"), "{}", up.url);
    let (status, body) = https("GET", &format!("{}/healthz", up.url), &cert, None);
    assert_eq!(status, 200, "{body}");
    println!("GET {}/healthz over TLS → {status} {}", up.url, body.trim());

    // A client trusting another certificate refuses the server's.
    let (other, _) = certificate(dir.path(), "other");
    let (status, err) = https("GET", &format!("{}/healthz", up.url), &other, None);
    assert_eq!(status, 0, "{err}");
    assert!(err.contains("CERTIFICATE_VERIFY_FAILED"), "{err}");
    println!("a client trusting another certificate: {}", err.trim());

    // A connection that never completes its handshake holds up no one: while
    // it stalls, another client is served.
    let port = up.url.rsplit(':').next().unwrap();
    let _stalled = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let t = Instant::now();
    let (status, _) = https("GET", &format!("{}/healthz", up.url), &cert, None);
    assert_eq!(status, 200);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request\ntry:\n print(urllib.request.urlopen(sys.argv[1], timeout=5).status)\nexcept Exception as e:\n print('refused', type(e).__name__)",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(plain.starts_with("refused"), "{plain}");
    println!("plain HTTP to the TLS port: {}", plain.trim());
}

#[test]
fn a_rotated_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let (old_cert, old_key) = certificate(&served, "tls");
    let data = dir.path().join(".cairn");
    let mut up = Up::start(
        &data,
        &[
            "--tls-cert",
            old_cert.to_str().unwrap(),
            "--tls-key",
            old_key.to_str().unwrap(),
            "--tls-reload-seconds",
            "1",
        ],
    );
    let url = format!("{}/healthz", up.url);
    assert_eq!(https("GET", &url, &old_cert, None).0, 200);
    // The keeper of trust for the old certificate, before the files change.
    let trusted_old = dir.path().join("old.crt");
    std::fs::copy(&old_cert, &trusted_old).unwrap();

    // Rotation as a secret update does it: new files renamed into place.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let (new_cert, new_key) = certificate(&fresh, "tls");
    std::fs::rename(&new_key, &old_key).unwrap();
    std::fs::rename(&new_cert, &old_cert).unwrap();
    up.wait_for("serving the new certificate", Duration::from_secs(20));
    let (status, _) = https("GET", &url, &old_cert, None);
    assert_eq!(status, 200, "the rotated certificate is served");
    let (status, err) = https("GET", &url, &trusted_old, None);
    assert_eq!(status, 0, "the old one is not: {err}");
    println!(
        "rotated: a client trusting the new certificate is served, one trusting the old is refused"
    );

    // A broken rotation (a key others may read) is refused and logged; the
    // certificate in service stays.
    std::fs::set_permissions(&old_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let line = up.wait_for(
        "keeps serving the previous certificate",
        Duration::from_secs(20),
    );
    println!("{line}");
    assert!(line.contains("mode 644"), "{line}");
    assert_eq!(https("GET", &url, &old_cert, None).0, 200);
}

fn up_with(f: &Fixture, cert: &std::path::Path, key: &std::path::Path) -> Run {
    f.run(&[
        "up",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
}

fn refused(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, 1, "{r:?}");
    for n in needles {
        assert!(r.stderr.contains(n), "{n:?} not in {r:?}");
    }
    assert!(!r.stdout.contains("serving"), "{r:?}");
    println!("refused: {}", r.stderr.trim());
}

#[test]
fn a_bad_certificate_or_key_is_refused_at_start_with_the_file_named() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "server");
    let (_, other_key) = certificate(dir.path(), "other");
    let key_text = std::fs::read_to_string(&key).unwrap();

    // A key others may read.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(
        &up_with(&f, &cert, &key),
        &[key.to_str().unwrap(), "mode 644", "0600"],
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A key another user owns (the tests run as root; `nobody` owns it).
    let foreign = dir.path().join("foreign.key");
    std::fs::write(&foreign, &key_text).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), None).unwrap();
    refused(&up_with(&f, &cert, &foreign), &["owned by uid 65534"]);

    // Not PEM: the certificate, then the key.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    refused(
        &up_with(&f, &junk, &key),
        &[junk.to_str().unwrap(), "no PEM certificate"],
    );
    refused(
        &up_with(&f, &cert, &junk),
        &[junk.to_str().unwrap(), "no PEM private key"],
    );
    // The certificate given as the key: no private key in it.
    let cert_as_key = dir.path().join("cert-as-key.pem");
    std::fs::copy(&cert, &cert_as_key).unwrap();
    std::fs::set_permissions(&cert_as_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    refused(&up_with(&f, &cert, &cert_as_key), &["no PEM private key"]);

    // Another certificate's key.
    refused(
        &up_with(&f, &cert, &other_key),
        &["cannot be served together", "not the certificate's"],
    );

    // An expired certificate.
    let (old, old_key) = expired_certificate(dir.path());
    refused(
        &up_with(&f, &old, &old_key),
        &["expired at 2020-01-02T00:00:00Z"],
    );

    // A FIFO as the key: refused without blocking on it.
    let fifo = dir.path().join("fifo.key");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
    refused(&up_with(&f, &cert, &fifo), &["is not a regular file"]);

    // A missing file; half a pair.
    refused(
        &up_with(&f, &cert, &dir.path().join("missing.key")),
        &["cannot read TLS key", "missing.key"],
    );
    let r = f.run(&["up", "--tls-cert", cert.to_str().unwrap()]);
    assert_eq!(r.code, 1, "half a pair is the user's input: {r:?}");
    assert!(r.stderr.contains("--tls-key"), "{r:?}");
    println!(
        "half a pair: {}",
        r.stderr.lines().next().unwrap_or_default()
    );
    // Nothing was created: the refusal came before the data directory.
    assert!(!f.data.join("cairn.db").exists());
}

#[test]
fn serve_serves_https_as_up_does() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "server");
    let data = dir.path().join(".cairn");
    let up = Up::process(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "5",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
        "serving on ",
    );
    assert!(up.url.starts_with("https://127.0.0.1:"), "{}", up.url);
    let (status, body) = https("GET", &format!("{}/healthz", up.url), &cert, None);
    assert_eq!(status, 200, "{body}");
    println!(
        "cairn serve: GET {}/healthz over TLS → {status} {}",
        up.url,
        body.trim()
    );
}

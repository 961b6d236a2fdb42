//! The `local` deploy target with the real sandbox: an image (the hello-web example,
//! compiled statically here, on a tiny base) runs detached on a host loopback port,
//! a new deployment replaces it, one that does not come up leaves the previous one
//! running, and undeploy stops it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use cairn_engine::DataDir;
use cairn_engine::deploy::local::{current, deploy, undeploy};
use cairn_engine::images::Images;
use cairn_oci::{Image, ImageSpec};

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// hello-web, statically linked, in `dir`.
fn build_app(dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-web");
    let out = dir.join("hello-web");
    let status = Command::new("cc")
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(src.join("main.c"))
        .arg(src.join("routes.c"))
        .status()
        .unwrap();
    assert!(status.success());
    out
}

fn image(images: &Images, base: &Image, app: &Path, entrypoint: &str, label: &str) -> Image {
    let layer = cairn_oci::layer_from_dir(images.layout(), app, "/app/hello-web", 0).unwrap();
    let spec = ImageSpec {
        entrypoint: Some(vec![entrypoint.to_owned()]),
        exposed_port: Some(8080),
        labels: BTreeMap::from([("test".to_owned(), label.to_owned())]),
        base_name: "tiny".to_owned(),
        ..ImageSpec::default()
    };
    cairn_oci::assemble(images.layout(), base, &[layer], &spec).unwrap()
}

#[test]
fn local_deployments_replace_each_other_and_a_failed_one_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::at(tmp.path().join("data"));
    let images = Images::open(&data).unwrap();
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "nobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    )
    .unwrap();
    let base = cairn_oci::import_rootfs(images.layout(), &rootfs, 0).unwrap();
    let app = build_app(tmp.path());
    let first = image(&images, &base, &app, "/app/hello-web", "one");
    let second = image(&images, &base, &app, "/app/hello-web", "two");
    let broken = image(&images, &base, &app, "/app/not-there", "broken");
    assert_ne!(first.manifest_digest, second.manifest_digest);
    let port = free_port();

    let token = |n: u8| format!("{n:02x}").repeat(16);
    let d = deploy(
        &data,
        &images,
        "web",
        "staging",
        &first,
        port,
        &token(1),
        None,
    )
    .unwrap();
    assert_eq!(d.token(), Some(token(1)));
    assert!(d.serves(), "its own sandbox holds the port");
    assert!(d.is_running());
    assert_eq!(d.url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(get(port, "/").as_deref(), Some("hello from cairn\n"));
    let now = current(&data, "web", "staging").unwrap().unwrap();
    assert_eq!(now.digest, first.manifest_digest.to_string());

    // A new deployment replaces the previous one.
    let d2 = deploy(
        &data,
        &images,
        "web",
        "staging",
        &second,
        port,
        &token(2),
        None,
    )
    .unwrap();
    assert!(d2.is_running());
    assert!(!d.is_running(), "the previous deployment is stopped");
    assert_eq!(get(port, "/healthz").as_deref(), Some("ok\n"));
    assert_eq!(
        current(&data, "web", "staging").unwrap().unwrap().digest,
        second.manifest_digest.to_string()
    );

    // One that does not come up changes nothing: the previous one runs again.
    let err = deploy(
        &data,
        &images,
        "web",
        "staging",
        &broken,
        port,
        &token(3),
        None,
    )
    .unwrap_err();
    let text = err.error.to_string();
    assert!(text.contains("exited before answering"), "{text}");
    assert!(text.contains("runs again"), "{text}");
    assert_eq!(err.previous_restored, Some(true));
    let after = current(&data, "web", "staging").unwrap().unwrap();
    assert_eq!(after.digest, second.manifest_digest.to_string());
    assert!(after.serves());
    assert_eq!(
        after.token(),
        Some(token(2)),
        "it runs again under its own token"
    );
    assert_eq!(get(port, "/").as_deref(), Some("hello from cairn\n"));

    // Bad names are refused before anything happens.
    assert!(
        deploy(
            &data,
            &images,
            "../x",
            "staging",
            &first,
            port,
            &token(4),
            None
        )
        .is_err()
    );

    assert!(undeploy(&data, "web", "staging").unwrap());
    assert!(!after.is_running());
    assert!(get(port, "/").is_none(), "nothing answers after undeploy");
    assert!(current(&data, "web", "staging").unwrap().is_none());
    assert!(!undeploy(&data, "web", "staging").unwrap());
}

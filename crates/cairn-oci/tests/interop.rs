//! What cairn writes, read by the real tools: skopeo and umoci (Debian
//! packages; `scripts/install-deps` installs them). A missing tool fails the
//! test, it never skips it.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use cairn_oci::{
    Image, ImageSpec, Layout, UnpackLimits, assemble, import_layout, import_rootfs, layer_from_dir,
    unpack,
};
use common::*;

const EPOCH: u64 = 1_700_000_000;

fn app_image(root: &Path) -> (Layout, Image) {
    let layout = Layout::open_or_create(&root.join("layout")).expect("layout");
    let rootfs = root.join("rootfs");
    make_rootfs(&rootfs, "interop");
    let base = import_rootfs(&layout, &rootfs, EPOCH).expect("base");
    let app = root.join("app");
    make_app(&app);
    let layer = layer_from_dir(&layout, &app, "/srv/app", EPOCH).expect("layer");
    let spec = ImageSpec {
        entrypoint: Some(vec!["/srv/app/server".into()]),
        env: vec!["APP=1".into()],
        exposed_port: Some(8080),
        labels: BTreeMap::from([("org.example.app".into(), "hello".into())]),
        created_epoch: EPOCH,
        revision: Some("abc123".into()),
        base_name: "cairn.local/base:test".into(),
        ..ImageSpec::default()
    };
    let image = assemble(&layout, &base, &[layer], &spec).expect("assemble");
    layout
        .set_ref("app", &image.descriptor().expect("descriptor"))
        .expect("ref");
    (layout, image)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn skopeo_inspects_an_assembled_image() {
    let skopeo = require_tool("skopeo");
    let tmp = tempfile::tempdir().expect("tmp");
    let (layout, image) = app_image(tmp.path());
    let reference = format!("oci:{}:app", layout.root().display());
    let json = run(Command::new(&skopeo).args(["inspect", &reference]));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["Digest"], image.manifest_digest.to_string());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    let layers: Vec<String> = v["Layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l.as_str().expect("str").to_string())
        .collect();
    let ours: Vec<String> = image.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(layers, ours);
    assert_eq!(v["Labels"]["org.example.app"], "hello");
    let raw = run(Command::new(&skopeo).args(["inspect", "--raw", &reference]));
    assert_eq!(
        raw.as_bytes(),
        layout
            .read_blob(&image.manifest_digest, 1 << 20)
            .expect("manifest")
    );
    let config = run(Command::new(&skopeo).args(["inspect", "--config", &reference]));
    let config: serde_json::Value = serde_json::from_str(&config).expect("config");
    assert_eq!(config["config"]["Entrypoint"][0], "/srv/app/server");
    assert!(config["config"]["ExposedPorts"]["8080/tcp"].is_object());
}

#[test]
fn skopeo_copy_then_import_layout_round_trips() {
    let skopeo = require_tool("skopeo");
    let tmp = tempfile::tempdir().expect("tmp");
    let (layout, image) = app_image(tmp.path());
    let other = tmp.path().join("other");
    run(Command::new(&skopeo).args([
        "copy",
        "--quiet",
        &format!("oci:{}:app", layout.root().display()),
        &format!("oci:{}:copied", other.display()),
    ]));
    let dest = Layout::open_or_create(&tmp.path().join("dest")).expect("dest");
    let back = import_layout(&dest, &other, Some("copied")).expect("import");
    assert_eq!(
        back.manifest_digest, image.manifest_digest,
        "skopeo keeps the manifest byte for byte"
    );
    assert_eq!(back.layers, image.layers);
    assert_eq!(back.config, image.config);
}

#[test]
fn umoci_unpacks_an_assembled_image() {
    let umoci = require_tool("umoci");
    let tmp = tempfile::tempdir().expect("tmp");
    let (layout, _) = app_image(tmp.path());
    let bundle = tmp.path().join("bundle");
    run(Command::new(&umoci).args([
        "unpack",
        "--image",
        &format!("{}:app", layout.root().display()),
        bundle.to_str().expect("utf8"),
    ]));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("srv/app/hello.txt")).expect("hello"),
        b"hello from cairn\n"
    );
    assert_eq!(
        fs::read(rootfs.join("srv/app/server")).expect("server"),
        b"#!/bin/sh\necho serving\n"
    );
    assert!(
        fs::read_to_string(rootfs.join("etc/os-release"))
            .expect("os")
            .contains("interop")
    );
    let runtime: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).expect("config.json"))
            .expect("json");
    assert_eq!(runtime["process"]["args"][0], "/srv/app/server");
    assert!(
        runtime["process"]["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e == "APP=1")
    );
}

#[test]
fn an_image_written_by_umoci_is_imported_and_unpacked() {
    let umoci = require_tool("umoci");
    let tmp = tempfile::tempdir().expect("tmp");
    let foreign = tmp.path().join("umoci-layout");
    let image_ref = format!("{}:made-by-umoci", foreign.display());
    run(Command::new(&umoci).args(["init", "--layout", foreign.to_str().expect("utf8")]));
    run(Command::new(&umoci).args(["new", "--image", &image_ref]));
    let bundle = tmp.path().join("bundle");
    run(Command::new(&umoci).args([
        "unpack",
        "--image",
        &image_ref,
        bundle.to_str().expect("utf8"),
    ]));
    fs::create_dir_all(bundle.join("rootfs/opt/app")).expect("mkdir");
    fs::write(
        bundle.join("rootfs/opt/app/data.txt"),
        b"written through umoci\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("app/data.txt", bundle.join("rootfs/opt/link")).expect("link");
    run(Command::new(&umoci).args([
        "repack",
        "--image",
        &image_ref,
        bundle.to_str().expect("utf8"),
    ]));

    let dest = Layout::open_or_create(&tmp.path().join("dest")).expect("dest");
    let image = import_layout(&dest, &foreign, Some("made-by-umoci")).expect("import");
    assert_eq!(image.layers.len(), 1);
    let target = tmp.path().join("rootfs");
    unpack(&dest, &image, &target, UnpackLimits::default()).expect("unpack");
    assert_eq!(
        fs::read(target.join("opt/app/data.txt")).expect("data"),
        b"written through umoci\n"
    );
    assert_eq!(
        fs::read_link(target.join("opt/link")).expect("link"),
        Path::new("app/data.txt")
    );
}

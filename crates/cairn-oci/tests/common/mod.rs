//! Shared test support: build directory trees, raw (possibly hostile) tar
//! layers, and images made of them.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cairn_oci::{Image, Layout};

/// A small root filesystem made of host-like files.
pub(crate) fn make_rootfs(dir: &Path, flavour: &str) {
    fs::create_dir_all(dir.join("etc")).expect("etc");
    fs::create_dir_all(dir.join("usr/bin")).expect("usr/bin");
    fs::write(
        dir.join("etc/os-release"),
        format!("ID=cairn-test\nFLAVOUR={flavour}\n"),
    )
    .expect("os-release");
    fs::write(dir.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").expect("tool");
    fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o700))
        .expect("chmod");
    std::os::unix::fs::symlink("usr/bin", dir.join("bin")).expect("bin link");
}

/// A small app build output.
pub(crate) fn make_app(dir: &Path) {
    fs::create_dir_all(dir.join("static")).expect("static");
    fs::write(dir.join("hello.txt"), b"hello from cairn\n").expect("hello");
    fs::write(dir.join("server"), b"#!/bin/sh\necho serving\n").expect("server");
    fs::set_permissions(dir.join("server"), fs::Permissions::from_mode(0o751)).expect("chmod");
    fs::write(dir.join("static/index.html"), b"<h1>hi</h1>\n").expect("index");
    fs::set_permissions(
        dir.join("static/index.html"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
}

/// One raw tar entry, written byte for byte (no path checks), so tests can
/// build hostile layers.
pub(crate) struct Raw<'a> {
    pub path: &'a [u8],
    pub kind: tar::EntryType,
    pub link: Option<&'a [u8]>,
    pub mode: u32,
    pub data: &'a [u8],
}

pub(crate) fn file<'a>(path: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        path: path.as_bytes(),
        kind: tar::EntryType::Regular,
        link: None,
        mode: 0o644,
        data,
    }
}

pub(crate) fn dir(path: &str) -> Raw<'_> {
    Raw {
        path: path.as_bytes(),
        kind: tar::EntryType::Directory,
        link: None,
        mode: 0o755,
        data: b"",
    }
}

pub(crate) fn symlink<'a>(path: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        path: path.as_bytes(),
        kind: tar::EntryType::Symlink,
        link: Some(target.as_bytes()),
        mode: 0o777,
        data: b"",
    }
}

pub(crate) fn hardlink<'a>(path: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        path: path.as_bytes(),
        kind: tar::EntryType::Link,
        link: Some(target.as_bytes()),
        mode: 0o644,
        data: b"",
    }
}

pub(crate) fn special(path: &str, kind: tar::EntryType) -> Raw<'_> {
    Raw {
        path: path.as_bytes(),
        kind,
        link: None,
        mode: 0o666,
        data: b"",
    }
}

/// A tar of `entries`, headers written raw.
pub(crate) fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        {
            let old = header.as_old_mut();
            assert!(entry.path.len() < 100, "raw_tar: short paths only");
            old.name[..entry.path.len()].copy_from_slice(entry.path);
            if let Some(link) = entry.link {
                old.linkname[..link.len()].copy_from_slice(link);
            }
        }
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_size(entry.data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, entry.data).expect("append");
    }
    builder.into_inner().expect("finish")
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Stores `tars` as gzip layers with a minimal config and manifest (OCI media
/// types, or Docker schema2 ones) and returns the image.
pub(crate) fn image_from_tars(layout: &Layout, tars: &[Vec<u8>], docker: bool) -> Image {
    let (manifest_type, config_type, layer_type) = if docker {
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    } else {
        (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    };
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in tars {
        let blob = layout.put_blob(&gzip(tar)).expect("layer");
        layers.push(serde_json::json!({"mediaType": layer_type, "digest": blob.digest.to_string(), "size": blob.size}));
        diff_ids.push(cairn_evidence::sha256(tar).to_string());
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": tars.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).expect("config");
    let config_blob = layout.put_blob(&config).expect("config blob");
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config_blob.digest.to_string(), "size": config_blob.size},
        "layers": layers,
    });
    let manifest_blob = layout
        .put_blob(&serde_json::to_vec(&manifest).expect("manifest"))
        .expect("manifest blob");
    layout.image(&manifest_blob.digest).expect("image")
}

/// Fails (never skips) when an external tool is missing.
pub(crate) fn require_tool(name: &str) -> std::path::PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{name} is not installed at {}; run scripts/install-deps (it installs skopeo and umoci)",
        path.display()
    );
    path
}

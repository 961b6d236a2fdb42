//! Safe unpacking: every hostile layer here is built byte by byte by the test.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cairn_oci::{Digest, Layout, OciError, SpecialKind, UnpackLimits, unpack, unpack_layer_bytes};
use common::*;

fn refused(bytes: &[u8], target: &Path) -> OciError {
    match unpack_layer_bytes(bytes, target, UnpackLimits::default()) {
        Ok(report) => panic!("hostile layer was accepted: {report:?}"),
        Err(e) => e,
    }
}

fn assert_unsafe(err: &OciError, entry: &str, layer: &Digest) {
    match err {
        OciError::UnsafeEntry {
            layer: l, entry: e, ..
        } => {
            assert_eq!(e, entry);
            assert_eq!(l, layer);
            let text = err.to_string();
            assert!(
                text.contains(entry) && text.contains(&layer.to_string()),
                "{text}"
            );
        }
        other => panic!("expected UnsafeEntry for {entry}, got {other:?}"),
    }
}

#[test]
fn dotdot_and_absolute_paths_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    for bad in [
        "../escape.txt",
        "a/../../escape.txt",
        "/escape.txt",
        "./../escape.txt",
    ] {
        let tar = raw_tar(&[dir("a"), file(bad, b"x")]);
        let target = tmp.path().join("t").join(bad.replace('/', "_"));
        let err = refused(&tar, &target);
        assert_unsafe(&err, bad, &cairn_evidence::sha256(&tar));
    }
    assert!(!tmp.path().join("escape.txt").exists());
    assert!(!tmp.path().join("t/escape.txt").exists());
    assert!(!Path::new("/escape.txt").exists());
}

#[test]
fn a_symlink_is_never_followed_while_creating_a_path() {
    let tmp = tempfile::tempdir().expect("tmp");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("outside");
    let canary = format!("cairn-escape-{}", std::process::id());
    for target in ["/", "../../..", "../outside"] {
        // Same layer: the link, then an entry through it.
        let path = format!("a/tmp/{canary}");
        let tar = raw_tar(&[symlink("a", target), file(&path, b"pwned")]);
        let dest = tmp
            .path()
            .join(format!("same-{}", target.replace('/', "_")));
        let err = refused(&tar, &dest);
        assert_unsafe(&err, &path, &cairn_evidence::sha256(&tar));
        let through_outside = format!("a/{canary}");
        let tar = raw_tar(&[symlink("a", target), file(&through_outside, b"pwned")]);
        let err = refused(
            &tar,
            &tmp.path()
                .join(format!("same2-{}", target.replace('/', "_"))),
        );
        assert!(matches!(err, OciError::UnsafeEntry { .. }));
    }
    assert!(!Path::new("/tmp").join(&canary).exists());
    assert_eq!(fs::read_dir(&outside).expect("list").count(), 0);

    // Across layers: layer 1 plants the link, layer 2 writes through it.
    let layout_dir = tempfile::tempdir().expect("layout");
    let layout = Layout::open_or_create(layout_dir.path()).expect("layout");
    let l1 = raw_tar(&[symlink("a", "/")]);
    let l2 = raw_tar(&[file(&format!("a/tmp/{canary}"), b"pwned")]);
    let image = image_from_tars(&layout, &[l1, l2], false);
    let err = unpack(
        &layout,
        &image,
        &tmp.path().join("layers"),
        UnpackLimits::default(),
    )
    .expect_err("write through a lower layer's symlink");
    assert_unsafe(&err, &format!("a/tmp/{canary}"), &image.layers[1].digest);
    assert!(!Path::new("/tmp").join(&canary).exists());
}

#[test]
fn hardlinks_must_stay_inside() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, entries) in [
        vec![hardlink("passwd", "../../../../etc/passwd")],
        vec![hardlink("passwd", "/etc/passwd")],
        vec![symlink("etc", "/etc"), hardlink("passwd", "etc/passwd")],
        vec![dir("d"), hardlink("d2", "d")],
        vec![hardlink("missing", "nothing-here")],
    ]
    .into_iter()
    .enumerate()
    {
        let tar = raw_tar(&entries);
        let err = refused(&tar, &tmp.path().join(format!("h{i}")));
        let last = std::str::from_utf8(entries.last().expect("entry").path).expect("utf8");
        assert_unsafe(&err, last, &cairn_evidence::sha256(&tar));
    }
    // A legitimate hardlink shares the inode.
    let tar = raw_tar(&[file("a", b"same"), hardlink("b", "a")]);
    let target = tmp.path().join("ok");
    unpack_layer_bytes(&tar, &target, UnpackLimits::default()).expect("good hardlink");
    let (a, b) = (
        fs::metadata(target.join("a")).expect("a"),
        fs::metadata(target.join("b")).expect("b"),
    );
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn group_and_world_write_bits_of_a_base_are_stripped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut open_file = file("srv/open/config", b"safe=1\n");
    open_file.mode = 0o666;
    let mut open_dir = dir("srv/open");
    open_dir.mode = 0o777;
    let mut sticky = dir("tmp");
    sticky.mode = 0o1777;
    let mut group = file("etc/group-writable", b"x");
    group.mode = 0o664;
    let tar = raw_tar(&[dir("srv"), open_dir, open_file, sticky, dir("etc"), group]);
    let target = tmp.path().join("t");
    unpack_layer_bytes(&tar, &target, UnpackLimits::default()).expect("unpack");
    for (path, mode) in [
        ("srv/open/config", 0o644),
        ("srv/open", 0o755),
        ("tmp", 0o1755),
        ("etc/group-writable", 0o644),
    ] {
        let got = fs::symlink_metadata(target.join(path))
            .expect(path)
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(got, mode, "{path}: {got:o}");
    }
}

#[test]
fn devices_and_fifos_are_skipped_and_reported_setid_is_stripped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut suid = file("usr/bin/su", b"#!/bin/sh\n");
    suid.mode = 0o4755;
    let mut sgid_dir = dir("var/mail");
    sgid_dir.mode = 0o2775;
    let tar = raw_tar(&[
        dir("dev"),
        special("dev/null", tar::EntryType::Char),
        special("dev/sda", tar::EntryType::Block),
        special("run/pipe", tar::EntryType::Fifo),
        suid,
        sgid_dir,
    ]);
    let target = tmp.path().join("t");
    let report = unpack_layer_bytes(&gzip(&tar), &target, UnpackLimits::default()).expect("unpack");
    let kinds: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("dev/null", SpecialKind::CharDevice),
            ("dev/sda", SpecialKind::BlockDevice),
            ("run/pipe", SpecialKind::Fifo)
        ]
    );
    for p in ["dev/null", "dev/sda", "run/pipe"] {
        assert!(
            fs::symlink_metadata(target.join(p)).is_err(),
            "{p} must not be created"
        );
    }
    assert_eq!(
        fs::metadata(target.join("usr/bin/su"))
            .expect("su")
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(
        fs::metadata(target.join("var/mail"))
            .expect("mail")
            .permissions()
            .mode()
            & 0o7777,
        0o755,
        "setgid and g+w stripped"
    );
    assert_eq!(report.setid_stripped, ["usr/bin/su", "var/mail"]);
}

#[test]
fn duplicate_entries_in_one_layer_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let tar = raw_tar(&[file("etc/passwd", b"root"), file("./etc/passwd", b"evil")]);
    let err = refused(&tar, &tmp.path().join("t"));
    assert_unsafe(&err, "./etc/passwd", &cairn_evidence::sha256(&tar));
}

#[test]
fn limits_stop_bombs_and_floods() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A gzip bomb: 256 MiB of zeros in one file compress to a few hundred KiB.
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").expect("path");
    header.set_size(256 << 20);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append(&header, std::io::repeat(0).take_bytes(256 << 20))
        .expect("append");
    let bomb = builder.into_inner().expect("tar").finish().expect("gzip");
    assert!(bomb.len() < 2 << 20, "bomb is {} bytes", bomb.len());
    let limits = UnpackLimits {
        max_total_bytes: 8 << 20,
        ..UnpackLimits::default()
    };
    match unpack_layer_bytes(&bomb, &tmp.path().join("bomb"), limits) {
        Err(OciError::LimitExceeded { limit, max, .. }) => {
            assert_eq!(limit, "total uncompressed bytes");
            assert_eq!(max, 8 << 20);
        }
        other => panic!("bomb not stopped: {other:?}"),
    }
    let written = fs::metadata(tmp.path().join("bomb/zeros"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written <= 8 << 20);

    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let many: Vec<_> = names.iter().map(|n| file(n, b"x")).collect();
    let limits = UnpackLimits {
        max_entries: 10,
        ..UnpackLimits::default()
    };
    let err =
        unpack_layer_bytes(&raw_tar(&many), &tmp.path().join("many"), limits).expect_err("flood");
    assert!(
        matches!(
            err,
            OciError::LimitExceeded {
                limit: "entry count",
                ..
            }
        ),
        "{err:?}"
    );

    let limits = UnpackLimits {
        max_path_len: 16,
        ..UnpackLimits::default()
    };
    let err = unpack_layer_bytes(
        &raw_tar(&[file("a/very/long/path/name", b"x")]),
        &tmp.path().join("long"),
        limits,
    )
    .expect_err("long");
    assert!(
        matches!(
            err,
            OciError::LimitExceeded {
                limit: "path length",
                ..
            }
        ),
        "{err:?}"
    );

    let limits = UnpackLimits {
        max_depth: 3,
        ..UnpackLimits::default()
    };
    let err = unpack_layer_bytes(
        &raw_tar(&[file("a/b/c/d", b"x")]),
        &tmp.path().join("deep"),
        limits,
    )
    .expect_err("deep");
    assert!(
        matches!(
            err,
            OciError::LimitExceeded {
                limit: "path depth",
                ..
            }
        ),
        "{err:?}"
    );
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}
impl<R: std::io::Read> TakeBytes for R {}

#[test]
fn a_tampered_blob_is_refused_before_use() {
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::open_or_create(&tmp.path().join("layout")).expect("layout");
    let image = image_from_tars(&layout, &[raw_tar(&[file("etc/motd", b"genuine")])], false);
    let blob = layout.blob_path(&image.layers[0].digest);
    let evil = gzip(&raw_tar(&[file("etc/motd", b"EVIL!!!")]));
    fs::write(&blob, evil).expect("tamper");
    let target = tmp.path().join("t");
    match unpack(&layout, &image, &target, UnpackLimits::default()) {
        Err(OciError::DigestMismatch { expected, .. }) => {
            assert_eq!(expected, image.layers[0].digest);
        }
        other => panic!("tampered layer accepted: {other:?}"),
    }
    assert_eq!(
        fs::read_dir(&target).expect("list").count(),
        0,
        "nothing may be written"
    );
}

#[test]
fn a_wrong_diff_id_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::open_or_create(&tmp.path().join("layout")).expect("layout");
    let real = raw_tar(&[file("a", b"1")]);
    let good = image_from_tars(&layout, std::slice::from_ref(&real), false);
    // Same layer blob, but a config whose diff_id is of another tar.
    let mut config: serde_json::Value = serde_json::from_slice(
        &layout
            .read_blob(&good.config_digest, 1 << 20)
            .expect("config"),
    )
    .expect("json");
    let other = cairn_evidence::sha256(b"other");
    config["rootfs"]["diff_ids"][0] = other.to_string().into();
    let config_blob = layout
        .put_blob(&serde_json::to_vec(&config).expect("json"))
        .expect("put");
    let mut manifest: serde_json::Value = serde_json::from_slice(
        &layout
            .read_blob(&good.manifest_digest, 1 << 20)
            .expect("manifest"),
    )
    .expect("json");
    manifest["config"]["digest"] = config_blob.digest.to_string().into();
    manifest["config"]["size"] = config_blob.size.into();
    let m = layout
        .put_blob(&serde_json::to_vec(&manifest).expect("json"))
        .expect("put");
    let bad = layout.image(&m.digest).expect("image");
    match unpack(
        &layout,
        &bad,
        &tmp.path().join("t"),
        UnpackLimits::default(),
    ) {
        Err(OciError::DiffIdMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, other);
            assert_eq!(actual, cairn_evidence::sha256(&real));
        }
        other => panic!("wrong diff_id accepted: {other:?}"),
    }
}

#[test]
fn whiteouts_remove_lower_layer_content() {
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::open_or_create(&tmp.path().join("layout")).expect("layout");
    let l1 = raw_tar(&[
        dir("d"),
        file("d/a", b"a"),
        file("d/b", b"b"),
        file("f", b"f"),
        dir("e"),
        file("e/old", b"old"),
        dir("g"),
        file("g/x", b"x"),
        symlink("link", "/etc"),
    ]);
    let l2 = raw_tar(&[
        file("d/.wh.a", b""),
        file(".wh.f", b""),
        dir("e"),
        file("e/.wh..wh..opq", b""),
        file("e/new", b"new"),
        file(".wh.g", b""),
        file("link", b"now a file"),
        file(".wh.never-existed", b""),
    ]);
    let image = image_from_tars(&layout, &[l1, l2], false);
    let target = tmp.path().join("t");
    let report = unpack(&layout, &image, &target, UnpackLimits::default()).expect("unpack");
    assert_eq!(report.layers, 2);
    assert_eq!(report.whiteouts, 5);
    assert!(!target.join("d/a").exists());
    assert_eq!(fs::read(target.join("d/b")).expect("b"), b"b");
    assert!(!target.join("f").exists());
    assert!(!target.join("e/old").exists());
    assert_eq!(fs::read(target.join("e/new")).expect("new"), b"new");
    assert!(!target.join("g").exists());
    assert!(
        fs::symlink_metadata(target.join("link"))
            .expect("link")
            .is_file()
    );
    assert!(!target.join(".wh.f").exists() && !target.join("e/.wh..wh..opq").exists());
}

#[test]
fn the_target_must_be_empty() {
    let tmp = tempfile::tempdir().expect("tmp");
    fs::write(tmp.path().join("x"), b"x").expect("x");
    let err = unpack_layer_bytes(
        &raw_tar(&[file("a", b"1")]),
        tmp.path(),
        UnpackLimits::default(),
    )
    .expect_err("non-empty target");
    assert!(matches!(err, OciError::TargetNotEmpty { .. }));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, bytes) in [
        &b"\x1f\x8bnot gzip at all"[..],
        &[0xffu8; 1024][..],
        b"short",
    ]
    .into_iter()
    .enumerate()
    {
        let result = unpack_layer_bytes(
            bytes,
            &tmp.path().join(format!("g{i}")),
            UnpackLimits::default(),
        );
        assert!(result.is_err(), "garbage {i} accepted: {result:?}");
    }
}

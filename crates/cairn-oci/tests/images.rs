//! Layers, assembly, rebase and imports, checked on real bytes.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use cairn_oci::{
    Digest, Image, ImageSpec, Layout, MediaType, OciError, UnpackLimits, assemble, import_layout,
    import_rootfs, layer_from_dir, rebase, unpack,
};
use common::*;

const EPOCH: u64 = 1_700_000_000;

fn tar_entries(
    layout: &Layout,
    digest: &Digest,
) -> Vec<(String, tar::EntryType, u32, u64, u64, u64, u64)> {
    let blob = layout.read_blob(digest, 1 << 30).expect("layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            let h = e.header();
            (
                String::from_utf8(e.path_bytes().into_owned()).expect("utf8"),
                h.entry_type(),
                h.mode().expect("mode"),
                h.uid().expect("uid"),
                h.gid().expect("gid"),
                h.mtime().expect("mtime"),
                h.size().expect("size"),
            )
        })
        .collect()
}

#[test]
fn layers_are_reproducible_and_normalised() {
    let tmp = tempfile::tempdir().expect("tmp");
    let app = tmp.path().join("app");
    make_app(&app);
    let a = Layout::open_or_create(&tmp.path().join("a")).expect("a");
    let b = Layout::open_or_create(&tmp.path().join("b")).expect("b");
    let la = layer_from_dir(&a, &app, "/srv/app", EPOCH).expect("layer a");
    // Touch the source in ways that must not matter: mtimes and order of creation.
    fs::write(app.join("hello.txt"), b"hello from cairn\n").expect("rewrite");
    let lb = layer_from_dir(&b, &app, "/srv/app/", EPOCH).expect("layer b");
    assert_eq!(la, lb, "same input, same layer");
    assert_eq!(
        fs::read(a.blob_path(&la.digest)).expect("a"),
        fs::read(b.blob_path(&lb.digest)).expect("b")
    );
    let gz = fs::read(a.blob_path(&la.digest)).expect("blob");
    assert_eq!(
        &gz[..4],
        &[0x1f, 0x8b, 8, 0],
        "gzip magic, deflate, no flags"
    );
    assert_eq!(&gz[4..8], &[0, 0, 0, 0], "gzip mtime 0");
    assert_eq!(gz[9], 255, "gzip OS byte fixed");

    let entries = tar_entries(&a, &la.digest);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "srv",
            "srv/app",
            "srv/app/hello.txt",
            "srv/app/server",
            "srv/app/static",
            "srv/app/static/index.html"
        ]
    );
    for (name, kind, mode, uid, gid, mtime, _) in &entries {
        assert_eq!((*uid, *gid, *mtime), (0, 0, EPOCH), "{name}");
        let want = match name.as_str() {
            "srv/app/server" => 0o755,
            _ if kind.is_dir() => 0o755,
            _ => 0o644,
        };
        assert_eq!(*mode, want, "{name}");
    }
    // Uncompressed digest is the diff_id.
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .expect("gunzip");
    assert_eq!(cairn_evidence::sha256(&tar), la.diff_id);

    // Long names (GNU long-name entries) and long symlink targets survive.
    let deep = tmp.path().join("deep");
    let long_dir = deep.join("d".repeat(90)).join("e".repeat(90));
    fs::create_dir_all(&long_dir).expect("long dir");
    fs::write(long_dir.join("f".repeat(120)), b"deep").expect("long file");
    let long_target = format!("{}/{}", "d".repeat(90), "e".repeat(90));
    std::os::unix::fs::symlink(&long_target, deep.join("link")).expect("long link");
    let long = layer_from_dir(&a, &deep, "/", EPOCH).expect("long layer");
    let blob = a.read_blob(&long.digest, 1 << 20).expect("blob");
    let target = tmp.path().join("deep-out");
    cairn_oci::unpack_layer_bytes(&blob, &target, UnpackLimits::default()).expect("unpack long");
    let rel = format!("{long_target}/{}", "f".repeat(120));
    assert_eq!(
        fs::read(target.join(&rel)).expect("long file back"),
        b"deep"
    );
    assert_eq!(
        fs::read_link(target.join("link")).expect("link back"),
        Path::new(&long_target)
    );

    // A single file goes exactly where it is told.
    let single = layer_from_dir(&a, &app.join("server"), "/usr/local/bin/server", EPOCH)
        .expect("file layer");
    let names: Vec<String> = tar_entries(&a, &single.digest)
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        names,
        ["usr", "usr/local", "usr/local/bin", "usr/local/bin/server"]
    );
}

#[test]
fn special_files_in_a_build_output_are_an_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::open_or_create(&tmp.path().join("l")).expect("layout");
    let out = tmp.path().join("out");
    make_app(&out);
    let _socket = std::os::unix::net::UnixListener::bind(out.join("app.sock")).expect("socket");
    match layer_from_dir(&layout, &out, "/app", EPOCH) {
        Err(OciError::UnsupportedFile { path, kind }) => {
            assert_eq!(path, out.join("app.sock"));
            assert_eq!(kind, "socket");
        }
        other => panic!("socket accepted: {other:?}"),
    }
    fs::remove_file(out.join("app.sock")).expect("rm");
    let status = std::process::Command::new("mkfifo")
        .arg(out.join("pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let err = layer_from_dir(&layout, &out, "/app", EPOCH).expect_err("fifo");
    assert!(
        err.to_string().contains("pipe") && err.to_string().contains("fifo"),
        "{err}"
    );
}

fn spec() -> ImageSpec {
    ImageSpec {
        entrypoint: Some(vec!["/srv/app/server".into()]),
        cmd: Some(vec!["--port".into(), "8080".into()]),
        env: vec!["PATH=/srv/app:/usr/bin:/bin".into(), "APP_MODE=prod".into()],
        user: Some("65534".into()),
        working_dir: Some("/srv/app".into()),
        exposed_port: Some(8080),
        labels: BTreeMap::from([("org.example.team".into(), "payments".into())]),
        created_epoch: EPOCH,
        revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
        base_name: "cairn.local/base/test:1".into(),
    }
}

/// A base from host-like files and an app on it, in a fresh layout.
fn build(root: &Path, flavour: &str) -> (Layout, Image, Image) {
    let layout = Layout::open_or_create(&root.join("layout")).expect("layout");
    let rootfs = root.join(format!("rootfs-{flavour}"));
    if !rootfs.exists() {
        make_rootfs(&rootfs, flavour);
    }
    let base = import_rootfs(&layout, &rootfs, EPOCH).expect("base");
    let app = root.join("app");
    if !app.exists() {
        make_app(&app);
    }
    let layer = layer_from_dir(&layout, &app, "/srv/app", EPOCH).expect("layer");
    let image = assemble(&layout, &base, &[layer], &spec()).expect("assemble");
    (layout, base, image)
}

#[test]
fn assembly_is_reproducible_and_says_what_it_is() {
    let one = tempfile::tempdir().expect("one");
    let two = tempfile::tempdir().expect("two");
    let (l1, base, image) = build(one.path(), "bookworm");
    let (_, _, again) = build(two.path(), "bookworm");
    assert_eq!(
        image.manifest_digest, again.manifest_digest,
        "same inputs, same image"
    );
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.layers[0], base.layers[0]);

    let annotations = image.manifest.annotations().clone().expect("annotations");
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        base.manifest_digest.to_string()
    );
    assert_eq!(
        annotations["org.opencontainers.image.base.name"],
        "cairn.local/base/test:1"
    );
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        spec().revision.expect("rev")
    );
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(image.manifest.media_type(), &Some(MediaType::ImageManifest));

    let rc = image.config.config().clone().expect("runtime config");
    assert_eq!(rc.entrypoint(), &Some(vec!["/srv/app/server".to_string()]));
    assert_eq!(
        rc.cmd(),
        &Some(vec!["--port".to_string(), "8080".to_string()])
    );
    assert_eq!(
        rc.env(),
        &Some(vec![
            "PATH=/srv/app:/usr/bin:/bin".to_string(),
            "APP_MODE=prod".to_string()
        ]),
        "PATH from the spec replaces the base's"
    );
    assert_eq!(rc.user(), &Some("65534".to_string()));
    assert_eq!(rc.working_dir(), &Some("/srv/app".to_string()));
    assert_eq!(rc.exposed_ports(), &Some(vec!["8080/tcp".to_string()]));
    assert_eq!(
        rc.labels().as_ref().expect("labels")["org.example.team"],
        "payments"
    );
    assert_eq!(
        image.config.created(),
        &Some("2023-11-14T22:13:20Z".to_string())
    );
    assert_eq!(image.config.history().as_ref().expect("history").len(), 2);
    let diff_ids: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
    assert_eq!(image.config.rootfs().diff_ids(), &diff_ids);

    // The manifest blob is the deterministic JSON: keys sorted, no spaces.
    let bytes = l1
        .read_blob(&image.manifest_digest, 1 << 20)
        .expect("manifest");
    let text = String::from_utf8(bytes).expect("utf8");
    assert!(
        text.starts_with(r#"{"annotations":{"org.opencontainers.image.base.digest":"#),
        "{text}"
    );
    assert!(!text.contains(' '));

    // Unpacked, it holds the base and the app.
    let target = one.path().join("rootfs");
    unpack(&l1, &image, &target, UnpackLimits::default()).expect("unpack");
    assert_eq!(
        fs::read(target.join("srv/app/hello.txt")).expect("hello"),
        b"hello from cairn\n"
    );
    assert!(
        fs::read_to_string(target.join("etc/os-release"))
            .expect("os")
            .contains("bookworm")
    );
    assert_eq!(
        fs::read_link(target.join("bin")).expect("bin"),
        Path::new("usr/bin")
    );
}

#[test]
fn rebase_swaps_the_base_and_keeps_the_app() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (layout, old_base, image) = build(tmp.path(), "bookworm");
    let new_base = import_rootfs(
        &layout,
        &{
            let dir = tmp.path().join("rootfs-trixie");
            make_rootfs(&dir, "trixie");
            fs::write(dir.join("etc/fixed"), b"CVE fixed\n").expect("fixed");
            dir
        },
        EPOCH,
    )
    .expect("new base");
    assert_ne!(new_base.layers[0], old_base.layers[0]);

    let rebased = rebase(
        &layout,
        &image,
        &old_base,
        &new_base,
        "cairn.local/base/test:2",
    )
    .expect("rebase");
    assert_eq!(rebased.layers, [new_base.layers[0], image.layers[1]]);
    let diff_ids: Vec<String> = rebased
        .layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    assert_eq!(rebased.config.rootfs().diff_ids(), &diff_ids);
    assert_eq!(
        rebased.config.config(),
        image.config.config(),
        "app config kept"
    );
    let history = rebased.config.history().clone().expect("history");
    assert_eq!(history[0], new_base.config.history().clone().expect("h")[0]);
    assert_eq!(history[1], image.config.history().clone().expect("h")[1]);
    let annotations = rebased.manifest.annotations().clone().expect("annotations");
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        new_base.manifest_digest.to_string()
    );
    assert_eq!(
        annotations["org.opencontainers.image.base.name"],
        "cairn.local/base/test:2"
    );
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        spec().revision.expect("rev")
    );

    let target = tmp.path().join("rebased");
    unpack(&layout, &rebased, &target, UnpackLimits::default()).expect("unpack");
    assert_eq!(
        fs::read(target.join("etc/fixed")).expect("fixed"),
        b"CVE fixed\n"
    );
    assert_eq!(
        fs::read(target.join("srv/app/hello.txt")).expect("hello"),
        b"hello from cairn\n"
    );

    // Claiming the wrong old base is refused, naming both.
    match rebase(&layout, &rebased, &old_base, &new_base, "x") {
        Err(e @ OciError::NotBuiltOnBase { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&rebased.manifest_digest.to_string()));
            assert!(text.contains(&old_base.manifest_digest.to_string()));
        }
        other => panic!("wrong base accepted: {other:?}"),
    }
    // Rebasing back gives the original image, byte for byte.
    let back = rebase(
        &layout,
        &rebased,
        &new_base,
        &old_base,
        "cairn.local/base/test:1",
    )
    .expect("back");
    assert_eq!(back.manifest_digest, image.manifest_digest);
}

#[test]
fn tampered_manifest_or_config_names_both_digests() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (layout, _, image) = build(tmp.path(), "bookworm");
    let config_path = layout.blob_path(&image.config_digest);
    let mut config = fs::read(&config_path).expect("config");
    let last = config.len() - 2;
    config[last] ^= 0x01;
    fs::write(&config_path, &config).expect("tamper");
    match layout.image(&image.manifest_digest) {
        Err(e @ OciError::DigestMismatch { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&image.config_digest.to_string()), "{text}");
            assert!(
                text.contains(&cairn_evidence::sha256(&config).to_string()),
                "{text}"
            );
        }
        other => panic!("tampered config accepted: {other:?}"),
    }
    fs::write(layout.blob_path(&image.manifest_digest), b"{}").expect("tamper manifest");
    assert!(matches!(
        layout.image(&image.manifest_digest),
        Err(OciError::DigestMismatch {
            what: "manifest",
            ..
        })
    ));
}

#[test]
fn docker_schema2_images_are_read_and_assembled_as_oci() {
    let tmp = tempfile::tempdir().expect("tmp");
    let layout = Layout::open_or_create(tmp.path()).expect("layout");
    let base = image_from_tars(
        &layout,
        &[raw_tar(&[dir("etc"), file("etc/hostname", b"docker\n")])],
        true,
    );
    assert_eq!(
        base.manifest
            .media_type()
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    let app = tmp.path().join("app");
    make_app(&app);
    let layer = layer_from_dir(&layout, &app, "/app", EPOCH).expect("layer");
    let image = assemble(&layout, &base, &[layer], &spec()).expect("assemble");
    for l in image.manifest.layers() {
        assert_eq!(l.media_type(), &MediaType::ImageLayerGzip);
    }
    assert_eq!(
        image.manifest.config().media_type(),
        &MediaType::ImageConfig
    );
}

#[test]
fn rootfs_tarballs_import_deterministically() {
    let tmp = tempfile::tempdir().expect("tmp");
    let tar = raw_tar(&[
        dir("etc"),
        file("etc/debian_version", b"12.8\n"),
        symlink("bin", "usr/bin"),
    ]);
    fs::write(tmp.path().join("rootfs.tar"), &tar).expect("tar");
    fs::write(tmp.path().join("rootfs.tar.gz"), gzip(&tar)).expect("tgz");
    let a = Layout::open_or_create(&tmp.path().join("a")).expect("a");
    let b = Layout::open_or_create(&tmp.path().join("b")).expect("b");
    let plain = import_rootfs(&a, &tmp.path().join("rootfs.tar"), EPOCH).expect("plain");
    let gz = import_rootfs(&b, &tmp.path().join("rootfs.tar.gz"), EPOCH).expect("gz");
    assert_eq!(plain.manifest_digest, gz.manifest_digest);
    assert_eq!(plain.config.architecture().to_string(), "amd64");
    assert_eq!(plain.config.os().to_string(), "linux");
    let target = tmp.path().join("t");
    unpack(&a, &plain, &target, UnpackLimits::default()).expect("unpack");
    assert_eq!(
        fs::read(target.join("etc/debian_version")).expect("v"),
        b"12.8\n"
    );

    fs::write(
        tmp.path().join("junk.tar"),
        b"this is not a tar archive, not at all, no",
    )
    .expect("junk");
    let mut junk = vec![0x55u8; 2048];
    junk[..5].copy_from_slice(b"junk!");
    fs::write(tmp.path().join("junk2.tar"), &junk).expect("junk");
    assert!(import_rootfs(&a, &tmp.path().join("junk2.tar"), EPOCH).is_err());
}

/// A rootfs tarball as a producer might write it: `order` of (path, kind,
/// data), the given mtime, owner names, a `./` prefix or not.
fn producer_tar(order: &[(&str, char, &str)], mtime: u64, owner: &str, dot: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, data) in order {
        let name = if dot {
            format!("./{path}")
        } else {
            (*path).to_owned()
        };
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(42);
        h.set_username(owner).expect("user");
        h.set_groupname(owner).expect("group");
        match kind {
            'd' => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                builder
                    .append_data(&mut h, &name, std::io::empty())
                    .expect("dir");
            }
            'f' => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o4755);
                h.set_size(data.len() as u64);
                builder
                    .append_data(&mut h, &name, data.as_bytes())
                    .expect("file");
            }
            'h' => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o4755);
                h.set_size(0);
                builder.append_link(&mut h, &name, data).expect("hardlink");
            }
            _ => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                builder.append_link(&mut h, &name, data).expect("symlink");
            }
        }
    }
    builder.into_inner().expect("tar")
}

#[test]
fn rootfs_tarballs_are_normalised_order_times_owner_names_and_hardlinks() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The same files: one producer met `usr/bin/perl` first, the other
    // `usr/bin/perl5.36`; build times and owner names differ.
    let a = producer_tar(
        &[
            ("usr", 'd', ""),
            ("usr/bin", 'd', ""),
            ("usr/bin/perl", 'f', "#!perl"),
            ("usr/bin/perl5.36", 'h', "usr/bin/perl"),
            ("bin", 's', "usr/bin"),
        ],
        EPOCH + 86_400,
        "root",
        true,
    );
    let b = producer_tar(
        &[
            ("bin", 's', "usr/bin"),
            ("usr", 'd', ""),
            ("usr/bin", 'd', ""),
            ("usr/bin/perl5.36", 'f', "#!perl"),
            ("usr/bin/perl", 'h', "usr/bin/perl5.36"),
        ],
        EPOCH + 2 * 86_400,
        "",
        false,
    );
    fs::write(tmp.path().join("a.tar"), &a).expect("a");
    fs::write(tmp.path().join("b.tar.gz"), gzip(&b)).expect("b");
    let la = Layout::open_or_create(&tmp.path().join("la")).expect("la");
    let lb = Layout::open_or_create(&tmp.path().join("lb")).expect("lb");
    let ia = import_rootfs(&la, &tmp.path().join("a.tar"), EPOCH).expect("a");
    let ib = import_rootfs(&lb, &tmp.path().join("b.tar.gz"), EPOCH).expect("b");
    assert_eq!(ia.manifest_digest, ib.manifest_digest);
    let entries = tar_entries(&la, &ia.layers[0].digest);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        ["bin", "usr", "usr/bin", "usr/bin/perl", "usr/bin/perl5.36"]
    );
    for e in &entries {
        assert_eq!(e.5, EPOCH, "{}: mtime clamped to the epoch", e.0);
        assert_eq!((e.3, e.4), (0, 42), "{}: numeric owners kept", e.0);
    }
    assert_eq!(
        entries[3].1,
        tar::EntryType::Regular,
        "first name holds the data"
    );
    assert_eq!(
        entries[3].2, 0o4755,
        "modes are the producer's (unpack strips setuid)"
    );
    assert_eq!(entries[4].1, tar::EntryType::Link);
    // An older mtime stays; a path with `..` is refused at import.
    let old = producer_tar(&[("etc", 'd', "")], EPOCH - 5, "root", true);
    fs::write(tmp.path().join("old.tar"), &old).expect("old");
    let io = import_rootfs(&la, &tmp.path().join("old.tar"), EPOCH).expect("old");
    assert_eq!(tar_entries(&la, &io.layers[0].digest)[0].5, EPOCH - 5);
    // Unclamped (a tarball of unknown provenance): times kept, still sorted.
    let kept = cairn_oci::import_rootfs_clamped(&lb, &tmp.path().join("b.tar.gz"), EPOCH, None)
        .expect("kept");
    let entries = tar_entries(&lb, &kept.layers[0].digest);
    assert!(
        entries.iter().all(|e| e.5 == EPOCH + 2 * 86_400),
        "{entries:?}"
    );
    let dotdot = raw_tar(&[file("etc/../../x", b"x")]);
    fs::write(tmp.path().join("dotdot.tar"), &dotdot).expect("dotdot");
    let err = import_rootfs(&la, &tmp.path().join("dotdot.tar"), EPOCH).unwrap_err();
    assert!(err.to_string().contains(".."), "{err}");
}

#[test]
fn import_layout_picks_linux_amd64_from_an_index_and_verifies_blobs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = Layout::open_or_create(&tmp.path().join("src")).expect("src");
    let amd = image_from_tars(&src, &[raw_tar(&[file("arch", b"amd64")])], false);
    let arm = image_from_tars(&src, &[raw_tar(&[file("arch", b"arm64")])], false);
    let entry = |image: &Image, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest_digest.to_string(), "size": image.manifest_size,
            "platform": {"architecture": arch, "os": "linux"}
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&arm, "arm64"), entry(&amd, "amd64")]
    });
    let index_blob = src
        .put_blob(&serde_json::to_vec(&index).expect("json"))
        .expect("index");
    src.set_ref(
        "multi",
        &index_blob.descriptor(MediaType::ImageIndex).expect("d"),
    )
    .expect("ref");

    let dest = Layout::open_or_create(&tmp.path().join("dest")).expect("dest");
    let got = import_layout(&dest, src.root(), Some("multi")).expect("import");
    assert_eq!(got.manifest_digest, amd.manifest_digest);
    assert!(dest.has_blob(&amd.layers[0].digest) && !dest.has_blob(&arm.layers[0].digest));
    // Only one entry in index.json: no reference needed.
    let got = import_layout(&dest, src.root(), None).expect("single");
    assert_eq!(got.manifest_digest, amd.manifest_digest);

    // A tampered layer in the source is refused and not stored.
    let evil = Layout::open_or_create(&tmp.path().join("evil")).expect("evil");
    let image = image_from_tars(&evil, &[raw_tar(&[file("a", b"genuine")])], false);
    evil.set_ref("app", &image.descriptor().expect("d"))
        .expect("ref");
    fs::write(evil.blob_path(&image.layers[0].digest), b"tampered").expect("tamper");
    let fresh = Layout::open_or_create(&tmp.path().join("fresh")).expect("fresh");
    match import_layout(&fresh, evil.root(), Some("app")) {
        Err(OciError::DigestMismatch { what, expected, .. }) => {
            assert_eq!(what, "layer");
            assert_eq!(expected, image.layers[0].digest);
        }
        other => panic!("tampered layer imported: {other:?}"),
    }
    assert!(!fresh.has_blob(&image.manifest_digest) && !fresh.has_blob(&image.layers[0].digest));
    assert!(matches!(
        import_layout(&fresh, evil.root(), Some("nope")),
        Err(OciError::RefNotFound { .. })
    ));
}

/// The bytes of a layer are pinned: the fixed rootfs of `cairn_testkit` gives the
/// same layer and image digests here as through the binary (`cairn-cli`'s
/// `pinned_fixture_base_has_the_pinned_digests`). A change of gzip backend or
/// level, tar writer or config makes this fail instead of moving every digest.
#[test]
fn pinned_fixture_has_the_pinned_layer_and_image_digests() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("rootfs");
    cairn_testkit::pinned_rootfs(&root);
    let layout = Layout::open_or_create(&tmp.path().join("oci")).expect("layout");
    let image = import_rootfs(&layout, &root, 0).expect("import");
    println!(
        "layer {} image {}",
        image.layers[0].digest, image.manifest_digest
    );
    assert_eq!(
        image.layers[0].digest.to_string(),
        cairn_testkit::PINNED_LAYER_DIGEST
    );
    assert_eq!(
        image.manifest_digest.to_string(),
        cairn_testkit::PINNED_IMAGE_DIGEST
    );
}

#![allow(clippy::unwrap_used)]
//! The attacks on a path from an untrusted tree, each through openat2 and through
//! the component-by-component fallback.

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use super::*;

/// A tree with a secret outside it.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    secret: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    let secret_dir = tmp.path().join("keys");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(root.join("a/b/out.txt"), "built").unwrap();
    let secret = secret_dir.join("signing.key");
    std::fs::write(&secret, "SECRET KEY").unwrap();
    Fixture {
        _tmp: tmp,
        root,
        secret,
    }
}

/// Opens `rel` beneath the fixture's root both ways.
fn both(root: &Path, rel: &str) -> [Result<Node, FsError>; 2] {
    let dir = Dir::open(root).unwrap();
    [
        dir.open_as(Path::new(rel), Resolve::Beneath, true),
        dir.open_as(Path::new(rel), Resolve::Beneath, false),
    ]
}

fn read(node: Node) -> Vec<u8> {
    match node {
        Node::File(f) => f.read_bounded(1 << 20).unwrap(),
        Node::Dir(_) => panic!("a directory"),
    }
}

#[test]
fn a_plain_path_opens_both_ways() {
    let f = fixture();
    for got in both(&f.root, "a/b/out.txt") {
        assert_eq!(read(got.unwrap()), b"built");
    }
    for got in both(&f.root, "./a//b/") {
        assert!(matches!(got.unwrap(), Node::Dir(_)));
    }
    for got in both(&f.root, "") {
        assert!(matches!(got.unwrap(), Node::Dir(_)));
    }
}

#[test]
fn a_symlink_at_any_component_is_refused_and_named() {
    let f = fixture();
    let keys = f.secret.parent().unwrap();
    // The first component, a middle one, the last one (to a file, to a directory),
    // absolute and relative targets, and one that stays inside the tree.
    symlink(keys, f.root.join("sub")).unwrap();
    symlink(keys, f.root.join("a/mid")).unwrap();
    symlink(&f.secret, f.root.join("a/b/key")).unwrap();
    symlink("../../../keys", f.root.join("a/b/rel")).unwrap();
    symlink("b", f.root.join("a/inside")).unwrap();
    for (rel, at) in [
        ("sub/signing.key", "sub"),
        ("sub", "sub"),
        ("a/mid/signing.key", "a/mid"),
        ("a/b/key", "a/b/key"),
        ("a/b/rel/signing.key", "a/b/rel"),
        ("a/inside/out.txt", "a/inside"),
    ] {
        for got in both(&f.root, rel) {
            match got {
                Err(FsError::Symlink { at: found, path }) => {
                    assert_eq!(found, Path::new(at), "{rel}");
                    assert_eq!(path, f.root.join(rel));
                }
                other => panic!("{rel}: {other:?}"),
            }
        }
    }
    let text = both(&f.root, "sub/signing.key")[0]
        .as_ref()
        .unwrap_err()
        .to_string();
    assert!(text.contains("`sub` is a symlink"), "{text}");
}

#[test]
fn dot_dot_and_absolute_paths_are_refused() {
    let f = fixture();
    for rel in [
        "../keys/signing.key",
        "a/../../keys",
        "/etc/passwd",
        "a/b/..",
    ] {
        for got in both(&f.root, rel) {
            assert!(
                matches!(got, Err(FsError::NotBeneath { .. })),
                "{rel}: {got:?}"
            );
        }
    }
}

#[test]
fn a_fifo_a_socket_and_a_device_are_refused_at_once() {
    let f = fixture();
    let fifo = CString::new(f.root.join("a/pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let _socket = std::os::unix::net::UnixListener::bind(f.root.join("a/sock")).unwrap();
    // A device node of its own when root can make one; /dev/zero through a
    // symlink in any case.
    let zero = CString::new(f.root.join("a/zero").as_os_str().as_bytes()).unwrap();
    // SAFETY: mknod(2) with a C string; it fails harmlessly when not root.
    let made =
        unsafe { libc::mknod(zero.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 5)) } == 0;
    symlink("/dev", f.root.join("d")).unwrap();
    let started = Instant::now();
    for (rel, kind) in [
        ("a/pipe", "fifo"),
        ("a/sock", "socket"),
        ("a/zero", "character device"),
    ] {
        if rel == "a/zero" && !made {
            continue;
        }
        for got in both(&f.root, rel) {
            match got {
                Err(FsError::Special { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{rel}: {other:?}"),
            }
        }
    }
    for got in both(&f.root, "d/zero") {
        assert!(matches!(got, Err(FsError::Symlink { .. })), "{got:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "it blocked");
    // The walk lists them, never opens them.
    let entries = walk(&Dir::open(&f.root).unwrap(), WalkLimits::default(), &[]).unwrap();
    let kinds: Vec<(String, Kind)> = entries
        .iter()
        .map(|e| (String::from_utf8_lossy(&e.rel).into_owned(), e.meta.kind))
        .collect();
    assert!(kinds.contains(&("a/pipe".into(), Kind::Fifo)), "{kinds:?}");
    assert!(
        kinds.contains(&("a/sock".into(), Kind::Socket)),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("d".into(), Kind::Symlink)), "{kinds:?}");
}

#[test]
fn an_oversized_file_is_refused() {
    let f = fixture();
    let big = std::fs::File::create(f.root.join("big")).unwrap();
    big.set_len(10 << 20).unwrap();
    let dir = Dir::open(&f.root).unwrap();
    match dir.file_beneath("big").unwrap().read_bounded(1 << 20) {
        Err(FsError::TooLarge { size, max, .. }) => {
            assert_eq!((size, max), (10 << 20, 1 << 20));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        dir.file_beneath("a/b/out.txt")
            .unwrap()
            .read_bounded(5)
            .unwrap(),
        b"built"
    );
}

#[test]
fn in_root_resolution_keeps_symlinks_inside() {
    let f = fixture();
    std::fs::create_dir_all(f.root.join("etc")).unwrap();
    std::fs::write(f.root.join("etc/passwd.real"), "nobody:x:65534").unwrap();
    symlink("/etc/passwd.real", f.root.join("etc/passwd")).unwrap();
    // Climbs out of the root on the host, where /etc/hostname exists.
    symlink("../../../../../../etc/hostname", f.root.join("etc/escape")).unwrap();
    let dir = Dir::open(&f.root).unwrap();
    assert_eq!(
        read(dir.open_in_root("/etc/passwd").unwrap()),
        b"nobody:x:65534"
    );
    // An escape lands inside the root, where there is no such file.
    assert!(std::path::Path::new("/etc/hostname").exists());
    assert!(dir.open_in_root("etc/escape").unwrap_err().is_not_found());
    // Without openat2 there is no in-root resolution: symlinks are refused.
    assert!(matches!(
        dir.open_as(Path::new("/etc/passwd"), Resolve::InRoot, false),
        Err(FsError::Symlink { .. })
    ));
    assert_eq!(
        read(
            dir.open_as(Path::new("/etc/passwd.real"), Resolve::InRoot, false)
                .unwrap()
        ),
        b"nobody:x:65534"
    );
}

#[test]
fn a_walk_is_sorted_bounded_and_never_enters_a_symlink() {
    let f = fixture();
    symlink(f.secret.parent().unwrap(), f.root.join("a/keys")).unwrap();
    std::fs::create_dir(f.root.join(".home")).unwrap();
    std::fs::write(f.root.join(".home/x"), "").unwrap();
    let dir = Dir::open(&f.root).unwrap();
    let all: Vec<String> = walk(&dir, WalkLimits::default(), &[".home"])
        .unwrap()
        .iter()
        .map(|e| String::from_utf8_lossy(&e.rel).into_owned())
        .collect();
    assert_eq!(all, ["a", "a/b", "a/b/out.txt", "a/keys"]);
    let few = WalkLimits {
        max_entries: 2,
        ..WalkLimits::default()
    };
    assert!(matches!(walk(&dir, few, &[]), Err(FsError::Limit { .. })));
    let shallow = WalkLimits {
        max_depth: 2,
        ..WalkLimits::default()
    };
    assert!(matches!(
        walk(&dir, shallow, &[]),
        Err(FsError::Limit { .. })
    ));
}

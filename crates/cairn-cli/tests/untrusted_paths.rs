//! Host-side code never follows a symlink or opens a special file from a
//! workspace or an image (issue 12, items 1, 2 and 8), end to end with the real
//! binary, real git and real bubblewrap: a build that points its declared output
//! through a symlink at cairn's signing key, at `/dev`, or makes it a FIFO is
//! refused at once with the path and the reason, and the key's bytes appear
//! nowhere; a base's world-writable file is not writable in the rootfs cache.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Fixture, Run};

/// A workload whose build runs `build` and declares `output`; with `image`, on
/// the catalog's `tiny` base.
fn workload(build: &str, output: &str, image: bool) -> Fixture {
    let f = Fixture::new();
    let mut toml = format!(
        "[workload]\nname = \"attack\"\nchain = \"default\"\nenvironments = [\"staging\"]\n\n\
         [build]\ncommand = {build:?}\noutput = {output:?}\n\n[test]\nunit = \"true\"\n"
    );
    if image {
        toml.push_str("\n[image]\nbase = \"tiny\"\nport = 8080\n");
        f.ok(&["base", "create", "tiny", "--name", "tiny"]);
    }
    f.write("cairn.toml", &toml).commit("the attack");
    f
}

/// Every file under `dir` (not following symlinks), gzip blobs decompressed.
fn all_bytes(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            all_bytes(&path, out);
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                if flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut plain)
                    .is_ok()
                {
                    out.push((path.clone(), plain));
                }
            }
            out.push((path, bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The run failed (exit 1) at the build, and its log and `explain` say `why`.
fn refused(f: &Fixture, r: &Run, why: &[&str]) -> String {
    assert_eq!(r.code, 1, "{r:?}");
    let logs = f.run(&["logs", "last"]);
    let explain = f.run(&["explain", "last"]);
    let text = format!(
        "{}{}{}{}",
        r.stderr, logs.stdout, explain.stdout, explain.stderr
    );
    for fragment in why {
        assert!(text.contains(fragment), "no {fragment:?} in:\n{text}");
    }
    if let Some(line) = format!("{}{}", r.stdout, r.stderr)
        .lines()
        .find(|l| l.contains("failed"))
    {
        eprintln!("{line}");
    }
    logs.stdout
}

#[test]
fn a_symlink_in_the_output_path_never_leaks_the_signing_key() {
    let f = workload("true", "sub/signing.key", true);
    let keys = f.data.join("keys");
    let build = format!("ln -s {} sub", keys.display());
    let text = std::fs::read_to_string(f.repo.join("cairn.toml"))
        .unwrap()
        .replace("command = \"true\"", &format!("command = {build:?}"));
    f.write("cairn.toml", &text).commit("link the keys");
    let r = f.run(&["run"]);
    let logs = refused(
        &f,
        &r,
        &[
            "the declared output `sub/signing.key` is refused",
            "`sub` is a symlink",
            "never follows a symlink",
        ],
    );
    assert!(logs.contains("sub/signing.key"), "names the path: {logs}");

    // The key exists, and its bytes are nowhere cairn keeps what a run made:
    // not in the run log, the store, or any image blob (layers decompressed).
    let pem = std::fs::read_to_string(keys.join("signing.key")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() > 40, "{pem}");
    let needle = &body.as_bytes()[..40];
    assert!(!contains(logs.as_bytes(), needle), "the key is in the log");
    let mut files = Vec::new();
    all_bytes(&f.data, &mut files);
    for (path, bytes) in &files {
        if path.starts_with(&keys) {
            continue;
        }
        assert!(!contains(bytes, needle), "the key is in {}", path.display());
        assert!(
            !contains(bytes, b"BEGIN PRIVATE KEY"),
            "a private key is in {}",
            path.display()
        );
    }
    let images = f.json(&["image", "list"]);
    assert_eq!(images.as_array().unwrap().len(), 0, "no image: {images}");
}

#[test]
fn a_symlink_as_the_output_or_to_dev_is_refused_at_once() {
    for (build, output, why) in [
        // The output itself a symlink (to a host directory).
        ("ln -s /etc sub", "sub", "`sub` is a symlink"),
        // d -> /dev, output d/zero: refused, never read.
        ("ln -s /dev d", "d/zero", "`d` is a symlink"),
        // An absolute symlink deeper down.
        (
            "mkdir -p out/bin && ln -s /etc/shadow out/bin/app",
            "out/bin/app",
            "`out/bin/app` is a symlink",
        ),
    ] {
        let f = workload(build, output, false);
        let started = Instant::now();
        let r = f.run(&["run"]);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{output} took {:?}",
            started.elapsed()
        );
        refused(
            &f,
            &r,
            &[&format!("the declared output `{output}` is refused"), why],
        );
    }
}

#[test]
fn a_fifo_or_socket_as_or_in_the_output_is_refused_at_once() {
    for (build, output, why) in [
        (
            "mkfifo out",
            "out",
            "is a fifo, not a regular file or a directory",
        ),
        (
            "mkdir out && echo hi > out/a && mkfifo out/pipe",
            "out",
            "out/pipe is a fifo",
        ),
        (
            "python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.bind(\"sock\")'",
            "sock",
            "is a socket",
        ),
    ] {
        let f = workload(build, output, false);
        let started = Instant::now();
        let r = f.run(&["run"]);
        // Refused at once: no read that waits for a writer that never comes.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{output} took {:?}",
            started.elapsed()
        );
        refused(
            &f,
            &r,
            &[&format!("the declared output `{output}` is refused"), why],
        );
    }
}

/// A base image tarball with a world-writable file and directory.
fn world_writable_base(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("srv/open")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(root.join("srv/open/config"), "safe=1\n").unwrap();
    std::fs::set_permissions(
        root.join("srv/open/config"),
        PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    std::fs::set_permissions(root.join("srv/open"), PermissionsExt::from_mode(0o777)).unwrap();
    // A static program that tries to rewrite the world-writable file.
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let c = dir.join("rewrite.c");
    std::fs::write(
        &c,
        "#include <fcntl.h>\n#include <stdio.h>\n#include <string.h>\n#include <errno.h>\n#include <unistd.h>\n\
         int main(void) { int fd = open(\"/srv/open/config\", O_WRONLY | O_APPEND);\n\
         if (fd < 0) { printf(\"refused: %s\\n\", strerror(errno)); return 1; }\n\
         if (write(fd, \"evil\\n\", 5) != 5) { printf(\"refused: %s\\n\", strerror(errno)); return 1; }\n\
         printf(\"rewritten\\n\"); return 0; }\n",
    )
    .unwrap();
    let status = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(root.join("bin/rewrite"))
        .arg(&c)
        .status()
        .unwrap();
    assert!(status.success(), "gcc -static");
    let tar = dir.join("base.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    tar
}

#[test]
fn a_world_writable_file_of_a_base_is_not_writable_in_the_rootfs_cache() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let tar = world_writable_base(tmp.path());
    let r = f.run(&["base", "import", tar.to_str().unwrap(), "--name", "open"]);
    assert_eq!(r.code, 0, "{r:?}");
    let base = f.json(&["base", "list"]);
    let digest = base[0]["digest"].as_str().unwrap().to_owned();
    let cache = cairn_engine::DataDir::at(&f.data)
        .rootfs_cache()
        .join(digest.trim_start_matches("sha256:"));
    let config = cache.join("srv/open/config");
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&config), 0o644, "o+w stripped");
    assert_eq!(mode(&cache.join("srv/open")), 0o755, "o+w stripped");
    // The cache is root's: the image's `/` is for root and the sandbox's group.
    assert_eq!(mode(&cache), 0o750);
    assert_eq!(mode(cache.parent().unwrap()), 0o710);

    // The sandbox's user cannot rewrite it (nor list the cache).
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!("echo evil >> {}", config.display()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "uid 65534 wrote into the cache");
    eprintln!(
        "uid 65534 on the host: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "safe=1\n");

    // Nor can the image itself, run in the sandbox as uid 65534 from the cache.
    let spec = cairn_sandbox::ImageSandboxSpec::new(&cache, vec!["/bin/rewrite".into()]);
    let mut said = Vec::new();
    let outcome = cairn_sandbox::run_image(&spec, &mut |_, line| said.push(line.to_vec())).unwrap();
    let said = String::from_utf8_lossy(&said.concat()).into_owned();
    eprintln!("uid 65534 in the sandbox: {}", said.trim());
    assert!(said.contains("refused:"), "{said} ({outcome:?})");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "safe=1\n");

    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ls"])
        .arg(cache.parent().unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the cache can be listed");
}

#[test]
fn a_committed_cairn_toml_symlink_is_not_followed_on_the_host() {
    let f = Fixture::new();
    // The run needs a key; a symlinked cairn.toml points at it.
    f.ok(&["key", "create"]);
    let key = f.data.join("keys/signing.key");
    assert!(key.is_file());
    std::os::unix::fs::symlink(&key, f.repo.join("cairn.toml")).unwrap();
    f.commit("cairn.toml is a link");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("`cairn.toml` is a symlink"), "{r:?}");
    assert!(!r.stderr.contains("PRIVATE KEY"), "{r:?}");
}

#[test]
fn a_handed_in_layout_whose_blob_is_a_fifo_or_a_symlink_is_refused_at_once() {
    let f = Fixture::new();
    f.ok(&["key", "create"]);
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0::/:/x\n").unwrap();
    let dir = tmp.path().join("layout");
    let layout = cairn_oci::Layout::open_or_create(&dir).unwrap();
    let image = cairn_oci::import_rootfs(&layout, &rootfs, 0).unwrap();
    layout
        .set_ref("base", &image.descriptor().unwrap())
        .unwrap();
    let layer = layout.blob_path(&image.layers[0].digest);
    let key = f.data.join("keys/signing.key");
    for (what, plant, why) in [
        ("fifo", None, "is a fifo"),
        ("symlink", Some(key.as_path()), "is a symlink"),
    ] {
        std::fs::remove_file(&layer).unwrap();
        match plant {
            None => assert!(
                Command::new("mkfifo")
                    .arg(&layer)
                    .status()
                    .unwrap()
                    .success()
            ),
            Some(target) => std::os::unix::fs::symlink(target, &layer).unwrap(),
        }
        let started = Instant::now();
        let source = format!("oci:{}:base", dir.display());
        let r = f.run(&["base", "import", &source, "--name", "handed-in"]);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} blocked"
        );
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert!(r.stderr.contains(why), "{what}: {r:?}");
        assert!(!r.stderr.contains("PRIVATE KEY"), "{r:?}");
        eprintln!("{what}: {}", r.stderr.trim());
    }
    let bases = f.json(&["base", "list"]);
    assert_eq!(bases.as_array().unwrap().len(), 0, "{bases}");
}

#[test]
fn symlinks_inside_an_output_directory_are_stored_as_symlinks_never_followed() {
    let f = workload("true", "out", true);
    let keys = f.data.join("keys");
    let build = format!(
        "mkdir out && echo hi > out/index.html && ln -s {k} out/keys && ln -s {k}/signing.key out/key.pem",
        k = keys.display()
    );
    let text = std::fs::read_to_string(f.repo.join("cairn.toml"))
        .unwrap()
        .replace("command = \"true\"", &format!("command = {build:?}"));
    f.write("cairn.toml", &text)
        .commit("links inside the output");
    f.run(&["run"]);
    let logs = f.ok(&["logs", "last"]).stdout;
    assert!(logs.contains("declared output `out` is present"), "{logs}");
    assert!(logs.contains("release-candidate image"), "{logs}");
    let pem = std::fs::read_to_string(keys.join("signing.key")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let needle = &body.as_bytes()[..40];
    let mut files = Vec::new();
    all_bytes(&f.data, &mut files);
    let mut layer_has_link = false;
    for (path, bytes) in &files {
        if path.starts_with(&keys) {
            continue;
        }
        assert!(!contains(bytes, needle), "the key is in {}", path.display());
        layer_has_link |= contains(bytes, b"app/key.pem");
    }
    assert!(layer_has_link, "the symlink itself is in the layer");
}

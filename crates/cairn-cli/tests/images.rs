//! Images end to end with the real binary: the catalog, the release candidate built
//! on it and tested in the sandbox, reproducibility, Docker Hub refused, the real
//! image tools (skopeo, umoci, podman) reading what cairn wrote, a real registry
//! (push with evidence, pull back, verify), and rebase.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::registry::TestRegistry;
use common::{Fixture, Run};
use serde_json::Value;

/// The hello-web example with the `tiny` base in its catalog.
fn hello_web() -> Fixture {
    let f = Fixture::example("hello-web");
    f.ok(&["base", "create", "tiny", "--name", "tiny"]);
    f
}

fn image_digest(f: &Fixture) -> String {
    let list = f.json(&["image", "list"]);
    list[0]["digest"].as_str().unwrap().to_owned()
}

fn commit12(f: &Fixture) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(&f.repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim()[..12].to_owned()
}

fn tool(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run scripts/install-deps"
    );
}

#[test]
fn the_rc_image_passes_its_acceptance_tests_and_the_same_commit_gives_the_same_digest() {
    let a = hello_web();
    let r = a.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let logs = a.ok(&["logs", "last"]).stdout;
    assert!(logs.contains("ok: http GET / → 200"), "{logs}");
    assert!(logs.contains("ok: acceptance_root_greets"), "{logs}");
    assert!(logs.contains("passed its acceptance tests"), "{logs}");
    let digest = image_digest(&a);

    // The acceptance result and the provenance are about the RC's digest.
    let evidence = a.json(&["evidence", "last"]);
    let subjects: Vec<(String, String)> = evidence
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["stage"].as_str().unwrap_or_default().to_owned(),
                e["subject"]["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    for stage in ["build", "acceptance-tests"] {
        assert!(
            subjects.iter().any(|(s, d)| s == stage && *d == digest),
            "{stage} evidence is not about {digest}: {subjects:?}"
        );
    }

    // The same commit, in a fresh clone with a fresh data directory (and a fresh
    // catalog): the same digest.
    let b = Fixture::new();
    common::git(&b.repo, &["pull", "-q", a.repo.to_str().unwrap(), "main"]);
    assert_eq!(commit12(&a), commit12(&b));
    b.ok(&["base", "create", "tiny", "--name", "tiny"]);
    assert_eq!(b.run(&["run"]).code, 0);
    assert_eq!(image_digest(&b), digest, "the build is not reproducible");
}

#[test]
fn docker_hub_and_unknown_bases_are_refused_before_any_run() {
    let f = hello_web();
    for (base, fragment) in [
        ("nginx:latest", "rule no-docker-hub"),
        ("docker.io/library/alpine", "rule no-docker-hub"),
        ("no-such-base", "is not in the organisation's catalog"),
    ] {
        let text = std::fs::read_to_string(f.repo.join("cairn.toml"))
            .unwrap()
            .replace("base = \"tiny\"", &format!("base = \"{base}\""));
        f.write("cairn.toml", &text).commit("base");
        let r = f.run(&["run"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(fragment), "{base}: {r:?}");
        assert!(r.stderr.contains("cairn.toml"), "names the file: {r:?}");
        git_checkout_base(&f);
    }
    let runs = f.json(&["runs"]);
    assert_eq!(
        runs.as_array().unwrap().len(),
        0,
        "no run was created: {runs}"
    );

    // The same rule for imports, before anything is read.
    for source in [
        "nginx:latest",
        "docker.io/library/alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = f.run(&["base", "import", source, "--name", "x"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("rule no-docker-hub"), "{r:?}");
    }
    // A registry off the allow-list, and an unpinned reference.
    let r = f.run(&["base", "import", "registry.example.org/base/debian@sha256:0000000000000000000000000000000000000000000000000000000000000000", "--name", "x"]);
    assert!(
        r.stderr.contains("not on the organisation's allow-list"),
        "{r:?}"
    );
}

fn git_checkout_base(f: &Fixture) {
    let text = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    let fixed: String = text
        .lines()
        .map(|l| {
            if l.starts_with("base = ") {
                "base = \"tiny\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    f.write("cairn.toml", &format!("{fixed}\n"))
        .commit("restore base");
}

#[test]
fn a_broken_rc_fails_with_a_reason_explain_shows() {
    let f = hello_web();
    let main = std::fs::read_to_string(f.repo.join("main.c")).unwrap();
    // The app starts and exits without ever listening.
    let broken = main.replacen(
        "int main(void) {",
        "int main(void) {\n    fprintf(stderr, \"hello-web: refusing to listen\\n\");\n    return 3;",
        1,
    );
    f.write("main.c", &broken).commit("break the server");
    let r = f.run(&["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    let explain = f.run(&["explain", "last"]);
    let text = format!("{}{}", explain.stdout, explain.stderr);
    assert!(text.contains("acceptance-tests"), "{text}");
    assert!(
        text.contains("the release candidate exited before listening on port 8080"),
        "{text}"
    );
    assert!(
        text.contains("refusing to listen"),
        "the RC's own output is shown: {text}"
    );
}

#[test]
fn skopeo_umoci_and_podman_read_and_run_the_image() {
    for t in ["/usr/bin/skopeo", "/usr/bin/umoci", "/usr/bin/podman"] {
        tool(t);
    }
    let f = hello_web();
    assert_eq!(f.run(&["run"]).code, 0);
    let digest = image_digest(&f);
    let layout = f.data.join("oci");
    let reference = format!("oci:{}:hello-web:{}", layout.display(), commit12(&f));

    let out = Command::new("skopeo")
        .args(["inspect", &reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(
        inspect["Layers"].as_array().unwrap().len(),
        2,
        "base + app: {inspect}"
    );

    let copy = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:copied", copy.path().display());
    let out = Command::new("skopeo")
        .args(["copy", &reference, &dest])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("skopeo")
        .args(["inspect", &dest])
        .output()
        .unwrap();
    let copied: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        copied["Digest"],
        digest.as_str(),
        "skopeo copy keeps the digest"
    );

    let bundle = tempfile::tempdir().unwrap();
    let target = bundle.path().join("b");
    let umoci_ref = format!("{}:hello-web:{}", layout.display(), commit12(&f));
    let out = Command::new("umoci")
        .args(["unpack", "--image", &umoci_ref])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = target.join("rootfs/app/hello-web");
    assert!(app.is_file(), "umoci unpacked the app");
    assert!(target.join("rootfs/etc/passwd").is_file(), "and the base");

    // podman runs it (see DESIGN.md's podman notes: cgroup v1 here). podman names
    // the image after the layout's path, which must be lowercase.
    let store = tempfile::Builder::new()
        .prefix("cairn-podman")
        .tempdir()
        .unwrap();
    let lower =
        std::path::PathBuf::from(format!("/tmp/cairn-podman-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&lower);
    let reference_lower = format!("oci:{}:hello-web", lower.display());
    let out = Command::new("skopeo")
        .args(["copy", &reference, &reference_lower])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = reference_lower;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let podman = format!(
        "podman --root {root}/root --runroot {root}/run --cgroup-manager=cgroupfs --events-backend=none",
        root = store.path().display()
    );
    let script = format!(
        "umount /sys/fs/cgroup/unified 2>/dev/null; \
         {podman} run -d --name hw --network host -e PORT={port} -e HOST=127.0.0.1 \
           --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 {reference} >/dev/null || exit 1; \
         for i in $(seq 1 100); do \
           if out=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end=\"\")' http://127.0.0.1:{port}/ 2>/dev/null); then \
             echo \"answer: $out\"; break; fi; sleep 0.1; done; \
         {podman} rm -f -t 0 hw >/dev/null 2>&1; true"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&lower);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("answer: hello from cairn"),
        "podman ran the image and it answered: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn org(registries: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<String> = registries.iter().map(|r| format!("\"{r}\"")).collect();
    std::fs::write(
        dir.path().join("org.toml"),
        format!("[registries]\nallow = [{}]\n", list.join(", ")),
    )
    .unwrap();
    dir
}

fn with_org(f: &Fixture, org: &Path, args: &[&str]) -> Run {
    Run::from(
        f.cairn(args)
            .env("CAIRN_PLATFORM_DIR", org)
            .output()
            .unwrap(),
    )
}

#[test]
fn push_to_a_real_registry_with_evidence_then_pull_and_verify() {
    let registry = TestRegistry::start();
    let org = org(&[registry.host()]);
    let f = hello_web();
    assert_eq!(f.run(&["run"]).code, 0);
    let digest = image_digest(&f);
    let target = format!("{}/apps/hello-web:v1", registry.host());
    let r = with_org(
        &f,
        org.path(),
        &[
            "--json",
            "image",
            "push",
            &format!("hello-web:{}", commit12(&f)),
            &target,
            "--plain-http",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let pushed: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(pushed["digest"], digest.as_str());
    assert_eq!(
        pushed["evidence_attached"], 5,
        "provenance, unit-test and acceptance results, SBOM and scan: {pushed}"
    );

    // skopeo reads what cairn pushed.
    tool("/usr/bin/skopeo");
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());

    // A fresh data directory pulls it back with its evidence, which verifies
    // against cairn's key and audit log.
    let g = Fixture::new();
    let export = tempfile::tempdir().unwrap();
    let pinned = format!("{}/apps/hello-web@{digest}", registry.host());
    let r = with_org(
        &g,
        org.path(),
        &[
            "--json",
            "image",
            "pull",
            &pinned,
            "--export",
            export.path().to_str().unwrap(),
            "--plain-http",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let pulled: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(pulled["digest"], digest.as_str());
    assert_eq!(pulled["evidence"], 5);
    let key = f.data.join("signing.pub");
    std::fs::write(
        &key,
        f.ok(&["--json", "key", "show"])
            .stdout
            .parse::<Value>()
            .unwrap()["public_key"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let manifest = export.path().join("manifest.json");
    for i in 1..=5 {
        let bundle = export.path().join(format!("evidence-{i}.sigstore.json"));
        let r = f.run(&[
            "verify",
            "--bundle",
            bundle.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            manifest.to_str().unwrap(),
        ]);
        assert_eq!(
            r.code, 0,
            "bundle {i} verifies for the pulled manifest: {r:?}"
        );
    }

    // Pulls are pinned: a tag alone is refused.
    let r = with_org(&g, org.path(), &["image", "pull", &target, "--plain-http"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not pinned by digest"), "{r:?}");
}

#[test]
fn rebase_moves_the_app_layer_onto_a_newer_base() {
    let f = hello_web();
    assert_eq!(f.run(&["run"]).code, 0);
    let digest = image_digest(&f);
    // A newer `tiny`: the same files and one more.
    let newer = tempfile::tempdir().unwrap();
    let root = newer.path();
    for (p, t) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/os-release", "NAME=\"cairn tiny\"\nVERSION_ID=2\n"),
    ] {
        std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        std::fs::write(root.join(p), t).unwrap();
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    f.ok(&["base", "import", root.to_str().unwrap(), "--name", "tiny"]);
    let history = f.json(&["base", "show", "tiny"]);
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    let new_base = history[0]["digest"].as_str().unwrap().to_owned();

    let r = f.json(&["rebase", &digest, "--onto", "tiny"]);
    let rebased = r["digest"].as_str().unwrap().to_owned();
    assert_ne!(rebased, digest);
    assert_eq!(r["rebased_from"], digest.as_str());
    assert_eq!(r["new_base"]["digest"], new_base.as_str());
    let list = f.json(&["image", "list"]);
    assert_eq!(list[0]["digest"], rebased.as_str());
    assert_eq!(list[0]["base_digest"], new_base.as_str());

    // The rebased image keeps the app layer: skopeo sees the same top layer.
    tool("/usr/bin/skopeo");
    let layers = |reference: &str| -> Vec<Value> {
        let layout = f.data.join("oci");
        let out = Command::new("skopeo")
            .args(["inspect", &format!("oci:{}:{reference}", layout.display())])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["Layers"].as_array().cloned().unwrap_or_default()
    };
    let c12 = commit12(&f);
    let (before, after) = (
        layers(&format!("hello-web:{c12}")),
        layers(&format!("hello-web:{c12}-on-tiny")),
    );
    assert_eq!(before.len(), 2);
    assert_eq!(after.len(), 2);
    assert_eq!(before[1], after[1], "the app layer is unchanged");
    assert_ne!(before[0], after[0], "the base layer is the new one");
}

/// The packages a signed SBOM bundle lists (its purls), the bundle verified
/// with cairn's key.
fn signed_sbom_purls(f: &Fixture, digest: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    f.ok(&["evidence", digest, "--export", dir.path().to_str().unwrap()]);
    let mut purls = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let bundle = cairn_evidence::Bundle::from_json(&bytes).unwrap();
        bundle
            .envelope
            .verify(&f.signing_key())
            .expect("cairn signed it");
        let statement: Value = serde_json::from_slice(&bundle.envelope.payload).unwrap();
        if statement["predicateType"] != "https://cyclonedx.org/bom" {
            continue;
        }
        for c in statement["predicate"]["components"].as_array().unwrap() {
            purls.push(c["purl"].as_str().unwrap_or_default().to_owned());
        }
    }
    purls
}

/// A toolchain build image from Debian's packages, made twice: the recipe
/// (suite, variant, include list, SOURCE_DATE_EPOCH) is kept with the catalog
/// entry, the package is in its signed SBOM and its package list, and the same
/// recipe against the same archive gives the same digest (issue 13 item 7,
/// issue 14 item 1).
#[test]
fn a_debian_toolchain_base_is_made_reproducibly_from_its_recorded_recipe() {
    tool("/usr/bin/mmdebstrap");
    let f = Fixture::new();
    let create = || {
        f.run(&[
            "--json",
            "base",
            "create",
            "debian",
            "--name",
            "build",
            "--include",
            "make",
        ])
    };
    let r = create();
    assert_eq!(r.code, 0, "{r:?}");
    let first: Value = serde_json::from_str(&r.stdout).unwrap();
    let packages = first["packages"].as_u64().unwrap();
    assert!(packages >= 80, "a minbase has ~90 dpkg packages: {first}");
    // Its release is known (Debian 12), so its packages are matched by source
    // package; with no Debian records imported yet, that is said, not passed.
    assert!(
        r.stderr.contains("not evaluated against advisories: 1 (first: OS packages of Debian:12: no stored advisory names any of its"),
        "{r:?}"
    );
    // The recipe is structured data with the entry.
    let recipe = &first["recipe"];
    assert_eq!(recipe["kind"], "debian", "{first}");
    assert_eq!(recipe["suite"], "bookworm");
    assert_eq!(recipe["variant"], "minbase");
    assert_eq!(recipe["include"], serde_json::json!(["make"]));
    let epoch = recipe["source_date_epoch"].as_u64().unwrap();
    assert!(epoch > 1_600_000_000, "the suite's Release date: {recipe}");
    let list: Vec<&str> = first["package_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(list.iter().any(|p| p.starts_with("make=")), "{list:?}");
    assert!(list.iter().any(|p| p.starts_with("libc6=")), "{list:?}");
    let digest = first["digest"].as_str().unwrap().to_owned();
    let shown = f.json(&["base", "show", "build"]);
    assert_eq!(shown[0]["recipe"], *recipe);
    assert_eq!(shown[0]["package_list"], first["package_list"]);
    assert!(
        shown[0]["source"]
            .as_str()
            .unwrap()
            .contains("mmdebstrap --variant=minbase --include=make bookworm"),
        "{shown}"
    );
    // Its SBOM is signed evidence about its digest, in the audit log, and
    // names the toolchain package.
    let purls = signed_sbom_purls(&f, &digest);
    assert!(
        purls.iter().any(|p| p.starts_with("pkg:deb/debian/make@")),
        "{purls:?}"
    );

    // The same recipe again: the same digest, the same packages.
    let r = f.run(&[
        "base",
        "create",
        "debian",
        "--name",
        "build",
        "--include",
        "make",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    println!("{}", r.stdout);
    assert!(r.stdout.contains(&digest), "the same digest again: {r:?}");
    assert!(
        r.stdout.contains("the base was made again identically"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "packages: the same {} as the previous entry",
            list.len()
        )),
        "{r:?}"
    );
    let history = f.json(&["base", "show", "build"]);
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[0]["digest"], history[1]["digest"]);

    // A package name that could be an option, or a suite that is not one, is
    // refused before anything runs.
    for bad in [
        "--include=make,--hook-dir=/tmp",
        "--suite=bookworm;true",
        "--variant=custom",
    ] {
        let args = ["base", "create", "debian", "--name", "bad", bad];
        let r = f.run(&args);
        assert_eq!(r.code, 1, "{bad:?}: {r:?}");
        assert!(r.stderr.contains("not a"), "{bad:?}: {r:?}");
    }
    // A package Debian does not have: mmdebstrap fails, and the name is said.
    let r = f.run(&[
        "base",
        "create",
        "debian",
        "--name",
        "bad",
        "--include=make,nosuchpkg-xyz",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("apt knows no package nosuchpkg-xyz"),
        "{r:?}"
    );
    assert_eq!(f.json(&["base", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_base_needs_its_publishers_signature_when_the_organisation_asks() {
    use cairn_evidence::sbom::CycloneDxBom;
    use cairn_evidence::{Algorithm, Bundle, Digest, SigningKey, Statement, Subject};

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=published\n").unwrap();
    let rootfs = root.to_str().unwrap();

    // The digest the publisher signs (a root filesystem imports reproducibly).
    let probe = Fixture::new();
    let imported = probe.json(&["base", "import", rootfs, "--name", "published"]);
    let digest = imported["digest"].as_str().unwrap().to_owned();

    let sign = |key: &SigningKey, path: &str| {
        let subject = Subject::sha256(
            "published",
            Digest::from_hex(digest.trim_start_matches("sha256:")).unwrap(),
        );
        let statement = Statement::new(
            vec![subject],
            CycloneDxBom(serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6"})),
        )
        .unwrap();
        let bundle = Bundle::sign_statement(&statement, key).unwrap();
        let file = tmp.path().join(path);
        std::fs::write(&file, bundle.to_json().unwrap()).unwrap();
        file
    };
    let publisher = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    let stranger = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let public = tmp.path().join("publisher.pub");
    std::fs::write(&public, publisher.verifying_key().to_pem()).unwrap();
    let good = sign(&publisher, "good.sigstore.json");
    let bad = sign(&stranger, "bad.sigstore.json");
    let platform = tmp.path().join("platform");
    std::fs::create_dir_all(&platform).unwrap();
    std::fs::write(
        platform.join("org.toml"),
        format!("[base]\nsigners = [\"{}\"]\n", public.display()),
    )
    .unwrap();

    let f = Fixture::new();
    let import = |extra: &[&str]| {
        let mut args = vec!["base", "import", rootfs, "--name", "published"];
        args.extend_from_slice(extra);
        with_org(&f, &platform, &args)
    };
    let r = import(&[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("rule base-signature"), "{r:?}");
    let r = import(&["--signature", bad.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no signature over"), "{r:?}");
    assert_eq!(
        f.json(&["base", "list"]),
        serde_json::json!([]),
        "nothing was named"
    );
    let r = import(&["--signature", good.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("the publisher's signature verifies"),
        "{r:?}"
    );
    assert_eq!(f.json(&["base", "list"])[0]["digest"], digest.as_str());
}

/// The binary writes the same bytes as `cairn-oci`'s own test of the same fixed
/// rootfs (`pinned_fixture_has_the_pinned_layer_and_image_digests`): the gzip
/// backend the binary links is the one the crate's tests pin.
#[test]
fn pinned_fixture_base_has_the_pinned_digests() {
    let f = Fixture::new();
    let root = f.data.with_file_name("pinned-rootfs");
    cairn_testkit::pinned_rootfs(&root);
    let out = f.json(&["base", "import", root.to_str().unwrap(), "--name", "pinned"]);
    assert_eq!(
        out["digest"].as_str().unwrap(),
        cairn_testkit::PINNED_IMAGE_DIGEST,
        "{out}"
    );
    let hex = &cairn_testkit::PINNED_IMAGE_DIGEST["sha256:".len()..];
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(f.data.join("oci/blobs/sha256").join(hex)).unwrap())
            .unwrap();
    assert_eq!(
        manifest["layers"][0]["digest"].as_str().unwrap(),
        cairn_testkit::PINNED_LAYER_DIGEST,
        "{manifest}"
    );
}

/// The pinned fixture as the catalog base `pinned`, in a fresh fixture.
fn pinned_base() -> Fixture {
    let f = Fixture::new();
    let root = f.data.with_file_name("pinned-rootfs");
    cairn_testkit::pinned_rootfs(&root);
    f.ok(&["base", "import", root.to_str().unwrap(), "--name", "pinned"]);
    f
}

/// Issue 15: a digest prefix below 12 hex digits failed with "no image"; it now
/// says the rule. A long enough prefix finds the image.
#[test]
fn a_short_digest_prefix_is_refused_with_the_rule() {
    let f = pinned_base();
    let hex = &cairn_testkit::PINNED_IMAGE_DIGEST["sha256:".len()..];
    for short in [&hex[..8], &format!("sha256:{}", &hex[..11])] {
        let r = f.run(&["rebase", short, "--onto", "pinned"]);
        println!("{}", r.stderr.trim());
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr
                .contains("a digest prefix needs at least 12 hex digits"),
            "{r:?}"
        );
    }
    // Twelve digits find the base image (which rebase then refuses for its own
    // reason: it was imported, not built).
    let r = f.run(&["rebase", &hex[..12], "--onto", "pinned"]);
    assert!(r.stderr.contains("cairn did not build it"), "{r:?}");
    assert!(!r.stderr.contains("digest prefix"), "{r:?}");
}

/// Issue 15: `evidence --export` named every bundle that was not provenance
/// `NN-test-result.sigstore.json`; each is now named by its predicate.
#[test]
fn exported_evidence_is_named_by_its_predicate() {
    let f = pinned_base();
    let dir = f.data.with_file_name("exported");
    let list = f.json(&[
        "evidence",
        cairn_testkit::PINNED_IMAGE_DIGEST,
        "--export",
        dir.to_str().unwrap(),
    ]);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    println!("{names:?}");
    assert!(!names.is_empty(), "{list}");
    assert!(
        names.iter().any(|n| n.ends_with("-sbom.sigstore.json")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("test-result")),
        "{names:?}"
    );
    assert_eq!(names.len(), list.as_array().unwrap().len());
}

fn touch_old(path: &Path) {
    let s = Command::new("touch")
        .args(["-h", "-d", "30 days ago"])
        .arg(path)
        .status()
        .unwrap();
    assert!(s.success());
}

/// Issue 15: workspaces and unpacked root filesystems (root's under
/// /var/lib/cairn) were never pruned. `cairn gc` removes what is not in use and
/// unused for N days; never a running run's workspace, no rootfs while a run is
/// running, and a symlink planted there is removed as a link, not followed.
#[test]
fn gc_prunes_unused_workspaces_and_root_filesystems_but_never_one_in_use() {
    let f = pinned_base();
    let paths = f.json(&["gc"]);
    let ws = Path::new(paths["workspaces"].as_str().unwrap()).to_owned();
    let cache = Path::new(paths["rootfs_cache"].as_str().unwrap()).to_owned();
    let hex = &cairn_testkit::PINNED_IMAGE_DIGEST["sha256:".len()..];
    assert!(cache.join(hex).is_dir(), "base import unpacked it");

    // A running run (no owner: recovery leaves it running) and its workspace, a
    // leftover workspace, and a symlink to something outside.
    f.tamper(
        "INSERT INTO workloads (name, repo, created_at_ms, updated_at_ms) VALUES ('w', '/x', 0, 0)",
        &[],
    );
    f.tamper(
        "INSERT INTO runs (workload, commit_id, status, created_at_ms) VALUES ('w', 'abc', 'running', 0)",
        &[],
    );
    let running = f.json(&["runs"])[0]["id"].as_i64().unwrap().to_string();
    let outside = f.data.with_file_name("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), "mine").unwrap();
    std::fs::create_dir_all(ws.join(&running).join("src")).unwrap();
    std::fs::create_dir_all(ws.join("999999").join("src")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("999998")).unwrap();
    for p in [ws.join(&running), ws.join("999999"), ws.join("999998")] {
        touch_old(&p);
    }

    let r = f.json(&["gc", "--older-than-days", "0"]);
    println!("{r}");
    assert!(!ws.join("999999").exists());
    assert!(std::fs::symlink_metadata(ws.join("999998")).is_err());
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "mine"
    );
    assert!(
        ws.join(&running).is_dir(),
        "a running run's workspace stays"
    );
    assert!(cache.join(hex).is_dir(), "no rootfs goes while a run runs");

    // The run ends: its workspace and the unused rootfs go, unless recent.
    f.tamper(
        "UPDATE runs SET status = 'failed' WHERE id = ?",
        &[&running],
    );
    let r = f.json(&["gc"]);
    assert!(!ws.join(&running).exists(), "{r}");
    assert!(cache.join(hex).is_dir(), "used within 7 days: {r}");
    let r = f.ok(&["gc", "--older-than-days", "0"]);
    println!("{}", r.stdout);
    assert!(!cache.join(hex).exists(), "{r:?}");
    assert!(r.stdout.contains("1 removed, 0 in use kept"), "{r:?}");
}

/// Issue 15: root's workspaces and root filesystems always went to
/// /var/lib/cairn, whose owner was never checked. `CAIRN_SANDBOX_DIR` chooses the
/// place; one another user owns (or that anyone else may write) is refused before
/// anything is unpacked there, naming the path and the problem. (Run as root,
/// as CI does: only root's sandbox files live outside the data directory.)
#[test]
fn the_sandbox_dir_is_configurable_and_must_be_root_owned() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new();
    let root = f.data.with_file_name("pinned-rootfs");
    cairn_testkit::pinned_rootfs(&root);
    let import = |sandbox: &Path| {
        Run::from(
            f.cairn(&["base", "import", root.to_str().unwrap(), "--name", "pinned"])
                .env("CAIRN_SANDBOX_DIR", sandbox)
                .output()
                .unwrap(),
        )
    };

    let foreign = f.data.with_file_name("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    let r = import(&foreign);
    println!("{}", r.stderr);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "the sandbox directory {} cannot be used: it is owned by uid 65534, not root",
            foreign.display()
        )),
        "{r:?}"
    );
    assert!(!foreign.join("rootfs").join("x").exists());

    let chosen = f.data.with_file_name("sandbox");
    let r = import(&chosen);
    assert_eq!(r.code, 0, "{r:?}");
    let hex = &cairn_testkit::PINNED_IMAGE_DIGEST["sha256:".len()..];
    let cache = std::fs::read_dir(chosen.join("rootfs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    assert!(cache.join(hex).is_dir(), "unpacked under CAIRN_SANDBOX_DIR");
    let meta = std::fs::metadata(&chosen).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o711));
}

/// `cairn image push` as a user with container tools would: credentials from
/// the `config.json` `skopeo login` wrote (Docker's place and
/// `$REGISTRY_AUTH_FILE`), from a credential helper, and a failing helper
/// named with its own words; without credentials the registry refuses.
#[test]
fn a_push_authenticates_from_the_auth_file_skopeo_login_wrote_and_a_failing_helper_is_named() {
    let registry = TestRegistry::start_htpasswd("alice", "wonderland-pw");
    let host = registry.host();
    let org = org(std::slice::from_ref(&host));
    let f = hello_web();
    assert_eq!(f.run(&["run"]).code, 0);
    let source = format!("hello-web:{}", commit12(&f));
    let target = format!("{host}/apps/hello-web:v1");
    let tmp = tempfile::tempdir().unwrap();
    let push = |env: &[(&str, &std::path::Path)], path_prefix: Option<&Path>| {
        let mut cmd = f.cairn(&["image", "push", &source, &target, "--plain-http"]);
        cmd.env("CAIRN_PLATFORM_DIR", org.path())
            .env("HOME", tmp.path())
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("CAIRN_REGISTRY_USERNAME")
            .env_remove("CAIRN_REGISTRY_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(dir) = path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", dir.display()));
        }
        Run::from(cmd.output().unwrap())
    };

    // Nothing configured: the registry refuses.
    let r = push(&[], None);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("refused (HTTP 401"), "{r:?}");

    // skopeo login writes Docker's config.json; cairn reads it.
    tool("/usr/bin/skopeo");
    let docker = tmp.path().join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    let config = docker.join("config.json");
    let out = Command::new("skopeo")
        .args(["login", "--tls-verify=false", "--authfile"])
        .arg(&config)
        .args(["-u", "alice", "-p", "wonderland-pw", &host])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "skopeo wrote: {}",
        std::fs::read_to_string(&config).unwrap()
    );
    let r = push(&[], None);
    assert_eq!(r.code, 0, "~/.docker/config.json: {r:?}");
    assert!(!r.stdout.contains("wonderland") && !r.stderr.contains("wonderland"));

    // The same file as $REGISTRY_AUTH_FILE (HOME has none now).
    let elsewhere = tmp.path().join("auth.json");
    std::fs::rename(&config, &elsewhere).unwrap();
    assert_ne!(push(&[], None).code, 0);
    let r = push(&[("REGISTRY_AUTH_FILE", &elsewhere)], None);
    assert_eq!(r.code, 0, "$REGISTRY_AUTH_FILE: {r:?}");

    // A credential helper: docker-credential-<name> get, the host on stdin.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = |name: &str, script: &str| {
        let p = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    };
    helper(
        "cairntest",
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread host\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"wonderland-pw\"}' \"$host\"\n",
    );
    helper(
        "broken",
        "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
    );
    let helpers = tmp.path().join("helpers");
    std::fs::create_dir_all(&helpers).unwrap();
    std::fs::write(
        helpers.join("config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"cairntest"}}}}"#),
    )
    .unwrap();
    let r = push(&[("DOCKER_CONFIG", &helpers)], Some(&bin));
    assert_eq!(r.code, 0, "credHelpers: {r:?}");
    std::fs::write(helpers.join("config.json"), r#"{"credsStore":"broken"}"#).unwrap();
    let r = push(&[("DOCKER_CONFIG", &helpers)], Some(&bin));
    println!("{r:?}");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "the credential helper docker-credential-broken failed for {host}: it exited with exit status: 1: credentials not found in native keychain"
        )),
        "{r:?}"
    );
}

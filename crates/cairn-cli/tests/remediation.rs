//! The closed loop's remediation, end to end with the real binary: `cairn base
//! refresh` makes a new version of a catalog base (its recipe run again, or a
//! newer source) through the catalog's gate, keeping the old one known.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fixture, Run, debian_fixture};
use serde_json::Value;

fn catalog_entries(f: &Fixture, name: &str) -> Vec<Value> {
    f.json(&["base", "show", name]).as_array().unwrap().clone()
}

/// A base imported from a root filesystem: refreshed by reading it again —
/// unchanged while it is the same, a new admitted version (replacing the old,
/// which stays in the history) once its packages moved on, or from a given
/// newer source; refusals say why and change nothing.
#[test]
fn base_refresh_runs_the_recipe_again_or_imports_a_newer_source_through_the_gate() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("deb");
    debian_fixture(&root, "1:1.2.13.dfsg-1");
    f.ok(&["base", "import", root.to_str().unwrap(), "--name", "deb"]);
    let first = catalog_entries(&f, "deb")[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    // Nothing moved: the same version, nothing recorded.
    let r = f.ok(&["base", "refresh", "deb"]);
    println!("{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is unchanged"), "{r:?}");
    assert_eq!(catalog_entries(&f, "deb").len(), 1);

    // The archive moved on: the recipe (the recorded root filesystem) gives a
    // new version, admitted and signed; the old one stays in the history.
    debian_fixture(&root, "1:1.2.13.dfsg-1+deb12u1");
    let r = f.run(&["--json", "base", "refresh", "deb"]);
    assert_eq!(r.code, 0, "{r:?}");
    println!("{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["replaces"], first.as_str(), "{v}");
    assert!(v["log_index"].as_u64().is_some(), "{v}");
    let entries = catalog_entries(&f, "deb");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["digest"], v["digest"]);
    assert_eq!(entries[1]["digest"], first.as_str());

    // A newer source named with --from.
    let newer = tmp.path().join("deb-newer");
    debian_fixture(&newer, "1:1.2.13.dfsg-1+deb12u2");
    let r = f.ok(&["base", "refresh", "deb", "--from", newer.to_str().unwrap()]);
    assert!(r.stdout.contains("it replaces"), "{r:?}");
    assert_eq!(catalog_entries(&f, "deb").len(), 3);

    // A base the catalog does not know.
    let r = f.run(&["base", "refresh", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not in the catalog"), "{r:?}");

    // A recipe that cannot run: the recorded source is gone.
    let gone = tmp.path().join("gone");
    debian_fixture(&gone, "1:1.2.13.dfsg-1");
    f.ok(&["base", "import", gone.to_str().unwrap(), "--name", "gone"]);
    std::fs::remove_dir_all(&gone).unwrap();
    let r = f.run(&["base", "refresh", "gone"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("cannot refresh base `gone`") && r.stderr.contains("no longer exists"),
        "{r:?}"
    );
    assert_eq!(catalog_entries(&f, "gone").len(), 1);

    // A new version the catalog's gate refuses (a critical finding over the
    // organisation's threshold): refused, the name keeps its version.
    let advisories = tmp.path().join("advisories");
    std::fs::create_dir_all(&advisories).unwrap();
    std::fs::write(
        advisories.join("DSA-9999-1.json"),
        common::zlib_advisory("DSA-9999-1", None).to_string(),
    )
    .unwrap();
    f.ok(&["vulns", "import", advisories.to_str().unwrap()]);
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        "[base]\nmax_severity = \"high\"\n",
    )
    .unwrap();
    let worse = tmp.path().join("deb-worse");
    debian_fixture(&worse, "1:1.2.13.dfsg-1+deb12u3");
    let r = Run::from(
        f.cairn(&["base", "refresh", "deb", "--from", worse.to_str().unwrap()])
            .env("CAIRN_PLATFORM_DIR", platform.path())
            .output()
            .unwrap(),
    );
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused: DSA-9999-1 (critical)"), "{r:?}");
    assert_eq!(catalog_entries(&f, "deb").len(), 3);
}

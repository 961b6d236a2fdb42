//! Issue 12 item 7: the base catalog, runs and advisory imports went through no
//! identity (`env -u CAIRN_TOKEN cairn base import ./evilroot --name tiny`
//! silently replaced the catalog's `tiny`). Once an organisation has
//! identities, each is refused without a token and for a role that does not
//! grant it; a platform-admin's catalog change is an audit-log entry first, and
//! a replaced base stays in the name's history.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Fixture, Run};
use serde_json::Value;

fn as_(f: &Fixture, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = f.cairn(args);
    match token {
        Some(t) => cmd.env("CAIRN_TOKEN", t),
        None => cmd.env_remove("CAIRN_TOKEN"),
    };
    Run::from(cmd.output().unwrap())
}

fn token_of(run: &Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.starts_with("cairn_"))
        .unwrap_or_else(|| panic!("a token line: {run:?}"))
        .to_owned()
}

fn rootfs(dir: &std::path::Path, version: &str) {
    for (p, t) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/sbin/nologin\n".to_owned(),
        ),
        (
            "etc/os-release",
            format!("NAME=\"evil\"\nVERSION_ID={version}\n"),
        ),
    ] {
        std::fs::create_dir_all(dir.join(p).parent().unwrap()).unwrap();
        std::fs::write(dir.join(p), t).unwrap();
    }
}

fn log_size(f: &Fixture) -> u64 {
    f.json(&["log", "checkpoint"])["size"].as_u64().unwrap()
}

fn log_entry(f: &Fixture, index: u64) -> Value {
    let shown = f.json(&["log", "show", &index.to_string()]);
    serde_json::from_str(shown["entry_text"].as_str().unwrap()).unwrap()
}

#[test]
fn the_catalog_runs_and_imports_go_through_the_roles_model_once_there_are_identities() {
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"true\"\n",
    )
    .commit("app");
    let roots = tempfile::tempdir().unwrap();
    let (first, evil) = (roots.path().join("first"), roots.path().join("evilroot"));
    rootfs(&first, "1");
    rootfs(&evil, "666");

    // A fresh install has nobody to ask: the first base goes in, logged without an actor.
    let r = as_(
        &f,
        None,
        &[
            "--json",
            "base",
            "import",
            first.to_str().unwrap(),
            "--name",
            "tiny",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let imported: Value = serde_json::from_str(&r.stdout).unwrap();
    let entry = log_entry(&f, imported["log_index"].as_u64().unwrap());
    assert_eq!(entry["kind"], "catalog-change", "{entry}");
    assert_eq!(entry["spec"]["actor"], Value::Null, "{entry}");
    let good = imported["digest"].as_str().unwrap().to_owned();

    let admin = token_of(&as_(&f, None, &["identity", "add", "admin"]));
    let dev = token_of(&as_(&f, Some(&admin), &["identity", "add", "dev"]));
    let granted = as_(
        &f,
        Some(&admin),
        &["role", "grant", "dev", "developer", "--workload", "app"],
    );
    assert_eq!(granted.code, 0, "{granted:?}");
    let size = log_size(&f);

    // The attack: no token.
    let evil_arg = evil.to_str().unwrap();
    let r = as_(&f, None, &["base", "import", evil_arg, "--name", "tiny"]);
    println!("no token: exit {} {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("CAIRN_TOKEN"), "{r:?}");
    // A developer's token: not a platform-admin.
    let r = as_(
        &f,
        Some(&dev),
        &["base", "import", evil_arg, "--name", "tiny"],
    );
    println!("developer: exit {} {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("dev may not change-catalog"), "{r:?}");
    assert!(r.stderr.contains("platform-admin"), "{r:?}");
    // Neither changed the catalog or the log.
    let history = f.json(&["base", "show", "tiny"]);
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["digest"], good.as_str());
    assert_eq!(log_size(&f), size);

    // Runs and advisory imports too.
    let r = as_(&f, None, &["run"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("CAIRN_TOKEN"), "{r:?}");
    let osv = roots.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("A-1.json"),
        r#"{"id":"A-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}"#,
    )
    .unwrap();
    let osv = osv.to_str().unwrap();
    for token in [None, Some(dev.as_str())] {
        let r = as_(&f, token, &["vulns", "import", osv]);
        println!(
            "vulns import as {}: exit {} {}",
            if token.is_some() { "dev" } else { "nobody" },
            r.code,
            r.stderr.trim()
        );
        assert_eq!(r.code, 1, "{r:?}");
    }
    // The developer may run its own workload.
    let r = as_(&f, Some(&dev), &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let size = log_size(&f);

    // A platform-admin may replace the base: logged first, naming what it replaces.
    let r = as_(
        &f,
        Some(&admin),
        &["--json", "base", "import", evil_arg, "--name", "tiny"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let replaced: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(replaced["replaces"], good.as_str(), "{replaced}");
    let index = replaced["log_index"].as_u64().unwrap();
    assert!(index >= size, "the entry is new");
    let entry = log_entry(&f, index);
    println!("logged: {entry}");
    assert_eq!(entry["kind"], "catalog-change");
    assert_eq!(entry["spec"]["name"], "tiny");
    assert_eq!(entry["spec"]["actor"], "admin");
    assert_eq!(entry["spec"]["replaces"], good.as_str());
    assert_eq!(entry["spec"]["digest"], replaced["digest"]);
    // The name keeps its history.
    let history = f.json(&["base", "show", "tiny"]);
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
    assert_eq!(history[1]["digest"], good.as_str());
    let before = log_size(&f);
    let r = as_(&f, Some(&admin), &["vulns", "import", osv]);
    assert_eq!(r.code, 0, "{r:?}");
    let entry = log_entry(&f, before);
    println!("logged: {entry}");
    assert_eq!(entry["kind"], "advisory-import", "{entry}");
    assert_eq!(entry["spec"]["actor"], "admin", "{entry}");
}

//! The advisory feed (`[advisories] sources` in org.toml), polled once by
//! `cairn vulns sync` as `cairn up` polls it on its interval, against a real
//! HTTP server this test starts (`common::osv_feed`): the first poll imports;
//! the second sends the validators it was given and gets `304`, importing
//! nothing and writing no audit entry; a changed zip imports only the changed
//! record and re-matches only it; sources that fail (404, a body that is no
//! zip, a `Content-Length` over the limit, a missing directory) each have a
//! clear reason, kept in `<data>/feed/state.json`, while the others import.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::Fixture;
use common::osv_feed::{OsvServer, Route, npm_record, zip_of};
use serde_json::Value;

const LOCK: &str = r#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": { "name": "app", "version": "1.0.0", "license": "MIT",
          "dependencies": { "left-pad": "1.3.0", "minimist": "1.2.0" } },
    "node_modules/left-pad": { "version": "1.3.0", "license": "MIT" },
    "node_modules/minimist": { "version": "1.2.0", "license": "MIT" }
  }
}
"#;

fn log_size(f: &Fixture) -> u64 {
    let r = f.run(&["--json", "log", "checkpoint"]);
    if r.code != 0 {
        return 0; // no log yet
    }
    serde_json::from_str::<Value>(&r.stdout).unwrap()["size"]
        .as_u64()
        .unwrap()
}

fn log_entry(f: &Fixture, index: u64) -> Value {
    let shown = f.json(&["log", "show", &index.to_string()]);
    serde_json::from_str(shown["entry_text"].as_str().unwrap()).unwrap()
}

/// The audit log's `advisory-import` entries.
fn imports(f: &Fixture) -> Vec<Value> {
    (0..log_size(f))
        .map(|i| log_entry(f, i))
        .filter(|e| e["kind"] == "advisory-import")
        .collect()
}

fn sync(f: &Fixture, platform: &std::path::Path) -> (i32, Value) {
    let out = f
        .cairn(&["--json", "vulns", "sync"])
        .env("CAIRN_PLATFORM_DIR", platform)
        .output()
        .unwrap();
    let r = common::Run::from(out);
    println!("{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    (r.code, v)
}

fn source<'a>(v: &'a Value, suffix: &str) -> &'a Value {
    v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("{suffix} in {v}"))
}

fn new_findings(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["rematch"]["new_findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["advisory"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_feed_imports_what_changed_gets_304_when_nothing_did_and_isolates_failing_sources() {
    let f = Fixture::new();
    f.write("package-lock.json", LOCK).commit("lockfile");
    f.ok(&["sbom", ".", "--record", "--subject", "app"]);
    let tmp = tempfile::tempdir().unwrap();
    let server = OsvServer::start();
    let a = npm_record(
        "GHSA-feed-0000-000a",
        "2026-12-01T00:00:00Z",
        "left-pad",
        "1.3.1",
    );
    // B does not affect minimist 1.2.0 yet (fixed in 1.0.0).
    let b = npm_record(
        "GHSA-feed-0000-000b",
        "2026-12-01T00:00:00Z",
        "minimist",
        "1.0.0",
    );
    server.zip(
        "/osv/npm.zip",
        zip_of(tmp.path(), &[("a.json", &a), ("b.json", &b)]),
    );
    server.set("/missing.zip", Route::Status(404));
    server.set("/bad.zip", Route::Body(b"this is no zip archive".to_vec()));
    server.set("/huge.zip", Route::Announce(5 << 30));
    let platform = tmp.path().join("platform");
    std::fs::create_dir_all(&platform).unwrap();
    let url = &server.url;
    std::fs::write(
        platform.join("org.toml"),
        format!(
            "[advisories]\nsources = [\"{url}/osv/npm.zip\", \"{url}/missing.zip\", \"{url}/bad.zip\", \"{url}/huge.zip\", \"{}\"]\ninterval_minutes = 60\n",
            tmp.path().join("no-such-dir").display()
        ),
    )
    .unwrap();

    // First poll: the zip imports and opens A's finding; every bad source has
    // its reason, and the exit code says some failed.
    let (code, v) = sync(&f, &platform);
    println!("{v:#}");
    assert_eq!(code, 1);
    let npm = source(&v, "/osv/npm.zip");
    assert_eq!(npm["outcome"], "imported", "{npm}");
    assert_eq!(
        (npm["new"].as_u64(), npm["unchanged"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(new_findings(&v), ["GHSA-feed-0000-000a"]);
    for (suffix, says) in [
        ("/missing.zip", "answered 404"),
        ("/bad.zip", "zip"),
        ("/huge.zip", "over the limit"),
        ("no-such-dir", "no-such-dir"),
    ] {
        let s = source(&v, suffix);
        assert_eq!(s["outcome"], "failed", "{s}");
        assert!(s["reason"].as_str().unwrap().contains(says), "{s}");
    }
    let first = server.take_seen();
    let npm_req = first.iter().find(|s| s.path == "/osv/npm.zip").unwrap();
    assert_eq!(
        (npm_req.if_none_match.as_deref(), npm_req.status),
        (None, 200)
    );
    // One audit entry, for the one import, naming the source and its digest.
    let logged = imports(&f);
    assert_eq!(logged.len(), 1, "{logged:?}");
    let entry = &logged[0];
    let logged = entry["spec"]["source"].as_str().unwrap();
    assert!(
        logged.starts_with(&format!("{url}/osv/npm.zip (sha256:")),
        "{entry}"
    );
    // The failures are kept with their reasons.
    let state: Value =
        serde_json::from_slice(&std::fs::read(f.data.join("feed/state.json")).unwrap()).unwrap();
    assert!(
        state[format!("{url}/missing.zip")]["error"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{state:#}"
    );
    assert_eq!(state[format!("{url}/osv/npm.zip")]["etag"], "\"v1\"");

    // Second poll: the validators go back, the server says 304, nothing is
    // imported or logged.
    let (_, v) = sync(&f, &platform);
    let npm = source(&v, "/osv/npm.zip");
    assert_eq!(npm["outcome"], "unchanged", "{npm}");
    assert!(npm["reason"].as_str().unwrap().contains("304"), "{npm}");
    assert_eq!(new_findings(&v), Vec::<String>::new());
    let second = server.take_seen();
    let npm_req = second.iter().find(|s| s.path == "/osv/npm.zip").unwrap();
    println!("second request: {npm_req:?}");
    assert_eq!(npm_req.if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(
        npm_req.if_modified_since.as_deref(),
        Some("Sun, 06 Dec 2026 01:00:00 GMT")
    );
    assert_eq!(npm_req.status, 304);
    assert_eq!(imports(&f).len(), 1, "a 304 is no import");

    // A changed zip: A as it was, B newer and now affecting minimist 1.2.0.
    // Only B is stored again, and only B's finding opens.
    let b2 = npm_record(
        "GHSA-feed-0000-000b",
        "2026-12-02T00:00:00Z",
        "minimist",
        "1.2.6",
    );
    server.zip(
        "/osv/npm.zip",
        zip_of(tmp.path(), &[("a.json", &a), ("b.json", &b2)]),
    );
    let (_, v) = sync(&f, &platform);
    let npm = source(&v, "/osv/npm.zip");
    println!("changed: {npm}");
    assert_eq!(npm["outcome"], "imported", "{npm}");
    assert_eq!(
        (
            npm["new"].as_u64(),
            npm["updated"].as_u64(),
            npm["unchanged"].as_u64()
        ),
        (Some(0), Some(1), Some(1))
    );
    assert_eq!(npm["changed"], serde_json::json!(["GHSA-feed-0000-000b"]));
    assert_eq!(
        v["rematch"]["advisories"], 1,
        "only the changed record re-matches"
    );
    assert_eq!(new_findings(&v), ["GHSA-feed-0000-000b"]);
    assert_eq!(imports(&f).len(), 2);
}

/// A zip file and a directory of records on disk are sources too: imported
/// once, then skipped while their content is the same.
#[test]
fn zip_files_and_directories_on_disk_are_sources_and_skipped_while_unchanged() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.json"),
        npm_record(
            "GHSA-feed-0000-00d1",
            "2026-12-01T00:00:00Z",
            "left-pad",
            "1.3.1",
        ),
    )
    .unwrap();
    let zip = tmp.path().join("npm.zip");
    std::fs::write(
        &zip,
        zip_of(
            tmp.path(),
            &[(
                "z.json",
                &npm_record(
                    "GHSA-feed-0000-00z1",
                    "2026-12-01T00:00:00Z",
                    "minimist",
                    "1.2.6",
                ),
            )],
        ),
    )
    .unwrap();
    let platform = tmp.path().join("platform");
    std::fs::create_dir_all(&platform).unwrap();
    std::fs::write(
        platform.join("org.toml"),
        format!(
            "[advisories]\nsources = [\"{}\", \"{}\"]\n",
            dir.display(),
            zip.display()
        ),
    )
    .unwrap();
    let (code, v) = sync(&f, &platform);
    assert_eq!(code, 0, "{v}");
    assert_eq!(source(&v, "records")["new"], 1, "{v}");
    assert_eq!(source(&v, "npm.zip")["new"], 1, "{v}");
    let (_, v) = sync(&f, &platform);
    for s in ["records", "npm.zip"] {
        assert_eq!(source(&v, s)["outcome"], "unchanged", "{v}");
    }
    std::fs::write(
        dir.join("a.json"),
        npm_record(
            "GHSA-feed-0000-00d1",
            "2026-12-03T00:00:00Z",
            "left-pad",
            "1.3.2",
        ),
    )
    .unwrap();
    let (_, v) = sync(&f, &platform);
    println!("{v:#}");
    assert_eq!(source(&v, "records")["updated"], 1, "{v}");
    assert_eq!(source(&v, "npm.zip")["outcome"], "unchanged", "{v}");

    // No sources configured: a clear refusal.
    std::fs::write(platform.join("org.toml"), "").unwrap();
    let r = common::Run::from(
        f.cairn(&["vulns", "sync"])
            .env("CAIRN_PLATFORM_DIR", &platform)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("names no advisory sources"), "{r:?}");
}

/// `cairn bench exposures`, small: the batch opens findings on the synthetic
/// SBOMs and exposures on what is deployed, and a changed record re-matches.
#[test]
fn the_exposures_bench_runs_small() {
    let f = Fixture::new();
    let v = f.json(&[
        "bench",
        "exposures",
        "--sboms",
        "60",
        "--workloads",
        "6",
        "--npm",
        "20",
        "--debian",
        "30",
        "--advisories",
        "10",
    ]);
    println!("{v:#}");
    assert_eq!(v["sboms"], 60);
    assert!(
        v["first_batch"]["new_findings"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(v["first_batch"]["exposures"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        v["delta_batch"]["components_rematched"].as_f64().unwrap() > 0.0,
        "{v}"
    );
}

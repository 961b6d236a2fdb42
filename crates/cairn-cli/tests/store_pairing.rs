//! The store and the audit log are a pair (issue 20, items 3 and 4), end to end
//! with the real binary: a deleted or emptied `cairn.db` beside a non-empty log
//! is refused with the recovery path (never a silent fresh start, not even by
//! `cairn up`); a log ahead of the store is explained entry by entry, a log
//! behind it refused; `cairn recover` brings back what the log holds and says
//! what it cannot; `cairn backup` / `cairn restore` bring everything back,
//! verified, and refuse another installation, a newer cairn, a damaged backup
//! and a live directory; a really full file system (a tmpfs) is named by every
//! command, reads keep working, and after space is freed everything verifies.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Fixture, Run, as_, token};
use serde_json::Value;

fn ok_as(f: &Fixture, token: &str, args: &[&str]) -> Run {
    let r = as_(f, token, args);
    assert_eq!(r.code, 0, "cairn {args:?}: {r:?}");
    r
}

/// Every identity's name, as `token`'s holder lists them.
fn names(f: &Fixture, token: &str) -> Vec<String> {
    let r = as_(f, token, &["--json", "identity", "list"]);
    assert_eq!(r.code, 0, "{r:?}");
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn remove_db(data: &Path) {
    for name in ["cairn.db", "cairn.db-wal", "cairn.db-shm"] {
        let _ = std::fs::remove_file(data.join(name));
    }
}

fn refused_with_recovery_path(r: &Run, state: &str) {
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("is {state}")), "{state}: {r:?}");
    assert!(r.stderr.contains("cairn.db"), "{r:?}");
    assert!(r.stderr.contains("/log"), "names the log: {r:?}");
    assert!(r.stderr.contains("cairn recover"), "{r:?}");
    assert!(r.stderr.contains("cairn restore"), "{r:?}");
}

/// The log's size as `cairn log verify` reports it (it must be intact).
fn log_verified(f: &Fixture) -> u64 {
    let v = f.json(&["log", "verify"]);
    assert_eq!(v["intact"], true, "{v}");
    v["size"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

#[test]
fn a_deleted_or_emptied_store_beside_the_log_is_refused_and_recover_rebuilds_from_the_log() {
    let f = Fixture::new();
    // The bootstrap admin as `cairn up` makes it: its token in server/admin.token.
    let admin = {
        let mut up = common::server::Up::start(&f.data, &[]);
        let admin = up.admin_token();
        up.stop(Duration::from_secs(20));
        admin
    };
    let admin_file = std::fs::read(f.data.join("server/admin.token")).unwrap();
    let rita = token(&f, Some(&admin), "rita@example.org");
    let r = as_(
        &f,
        &admin,
        &[
            "role",
            "grant",
            "rita@example.org",
            "release-manager",
            "--workload",
            "app",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let late = token(&f, Some(&admin), "late@example.org");
    let r = as_(&f, &admin, &["identity", "revoke", "late@example.org"]);
    assert_eq!(r.code, 0, "{r:?}");
    let before = names(&f, &admin);
    let entries = log_verified(&f);
    assert!(entries >= 5, "{entries}");

    // Deleted: refused, and nothing is created in its place.
    remove_db(&f.data);
    for args in [&["runs"][..], &["audit"], &["identity", "list"]] {
        refused_with_recovery_path(&f.run(args), "missing");
    }
    assert!(
        !f.data.join("cairn.db").exists(),
        "a refused open creates nothing"
    );
    // Not even `cairn up`, which would bootstrap a new admin over the old log.
    let up = Run::from(
        f.cairn(&["up", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap(),
    );
    refused_with_recovery_path(&up, "missing");
    assert_eq!(
        std::fs::read(f.data.join("server/admin.token")).unwrap(),
        admin_file,
        "admin.token is not rewritten: {up:?}"
    );

    // Emptied (a zero-byte file): refused the same way.
    std::fs::write(f.data.join("cairn.db"), b"").unwrap();
    refused_with_recovery_path(&f.run(&["runs"]), "empty");
    println!("refused: {}", f.run(&["runs"]).stderr.trim());

    // Recover: identities and roles come back from the log; tokens nobody
    // holds are said to be lost, and really do not work.
    let rec = f.ok_as(&admin, &["recover"]);
    println!("{}", rec.stdout);
    assert!(
        rec.stdout.contains("identities: 3 (1 revoked again)"),
        "{rec:?}"
    );
    assert!(
        rec.stdout.contains("tokens that work again: admin"),
        "{rec:?}"
    );
    assert!(rec.stdout.contains("tokens LOST"), "{rec:?}");
    assert!(rec.stdout.contains("lost for good"), "{rec:?}");
    assert!(
        rec.stdout.contains("runs, their stages and logs"),
        "{rec:?}"
    );
    assert_eq!(names(&f, &admin), before);
    let list: Value =
        serde_json::from_str(&as_(&f, &admin, &["--json", "identity", "list"]).stdout).unwrap();
    let late_row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "late@example.org")
        .unwrap();
    assert!(
        !late_row["revoked_at"].is_null() || late_row["revoked"] == true,
        "{list}"
    );
    let r = as_(&f, &rita, &["identity", "whoami"]);
    assert_eq!(r.code, 1, "a lost token stays lost: {r:?}");
    let _ = late;
    let roles = as_(&f, &admin, &["--json", "role", "list"]);
    assert!(
        roles.stdout.contains("release-manager") && roles.stdout.contains("rita@example.org"),
        "{roles:?}"
    );
    // The pair agrees again: the log verifies, commands open without notes.
    assert_eq!(log_verified(&f), entries);
    let runs = f.ok(&["runs"]);
    assert!(!runs.stderr.contains("effect in the store"), "{runs:?}");
    let audit = as_(&f, &admin, &["audit"]);
    assert_eq!(audit.code, 0, "{audit:?}");
}

#[test]
fn a_log_ahead_of_the_store_is_explained_and_a_log_behind_it_is_refused() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let admin = token(&f, None, "admin@example.org");
    // Free-form entries go to the scratch log, never the audit log.
    f.ok_as(
        &admin,
        &["log", "--scratch", "append", "an operator's note"],
    );
    assert!(!f.ok(&["runs"]).stderr.contains("effect in the store"));
    let early = tmp.path().join("early");
    f.ok_as(&admin, &["backup", early.to_str().unwrap()]);
    let _late = token(&f, Some(&admin), "late@example.org");

    // The store goes back to before `late` was added; the log keeps its entry.
    remove_db(&f.data);
    std::fs::copy(early.join("cairn.db"), f.data.join("cairn.db")).unwrap();
    let r = as_(&f, &admin, &["identity", "list"]);
    assert_eq!(r.code, 0, "{r:?}");
    println!("{}", r.stderr);
    assert!(r.stderr.contains("effect in the store"), "{r:?}");
    assert!(
        r.stderr
            .contains("access-change identity-add late@example.org")
            && r.stderr
                .contains("no identity `late@example.org` in the store"),
        "{r:?}"
    );
    // Not ignored: said again by the next command, until recovered.
    assert!(f.ok(&["runs"]).stderr.contains("late@example.org"));
    let rec = f.ok_as(&admin, &["recover"]);
    assert!(rec.stdout.contains("identities: 1"), "{rec:?}");
    assert!(names(&f, &admin).contains(&"late@example.org".to_owned()));
    assert!(!f.ok(&["runs"]).stderr.contains("late@example.org"));

    // The log goes back to before `late`: the store has seen more than it holds.
    std::fs::remove_dir_all(f.data.join("log")).unwrap();
    copy_dir_all(&early.join("log"), &f.data.join("log"));
    let r = as_(&f, &admin, &["identity", "list"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("truncated or replaced"), "{r:?}");
    assert!(r.stderr.contains("cairn restore"), "{r:?}");
    // recover cannot make a shorter log longer: refused too.
    assert_eq!(as_(&f, &admin, &["recover"]).code, 2);
}

#[test]
fn no_new_first_admin_over_a_log_that_records_identities() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    f.ok(&["runs"]);
    let empty = tmp.path().join("empty");
    f.ok(&["backup", empty.to_str().unwrap()]);
    token(&f, None, "admin@example.org");
    // The store from before the first identity, beside the log that has it.
    remove_db(&f.data);
    std::fs::copy(empty.join("cairn.db"), f.data.join("cairn.db")).unwrap();
    let r = f.run(&["identity", "add", "mallory@example.org"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("will not make a new first admin")
            && r.stderr.contains("identity-add admin@example.org")
            && r.stderr.contains("cairn recover"),
        "{r:?}"
    );
    let up = Run::from(
        f.cairn(&["up", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap(),
    );
    assert_eq!(up.code, 2, "{up:?}");
    assert!(
        up.stderr.contains("will not make a new first admin"),
        "{up:?}"
    );
    assert!(!f.data.join("server/admin.token").exists(), "{up:?}");
}

#[test]
fn backup_wipe_restore_brings_back_runs_deployments_and_identities_verified() {
    let f = Fixture::example("hello-web");
    let tmp = tempfile::tempdir().unwrap();
    f.ok(&["base", "create", "tiny", "--name", "tiny"]);
    let admin = {
        let mut up = common::server::Up::start(&f.data, &[]);
        let admin = up.admin_token();
        up.stop(Duration::from_secs(20));
        admin
    };
    let rita = token(&f, Some(&admin), "rita@example.org");
    let r = as_(
        &f,
        &admin,
        &[
            "role",
            "grant",
            "rita@example.org",
            "release-manager",
            "--workload",
            "hello-web",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    f.ok_as(&admin, &["run"]);
    let digest = f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let before_promotion = tmp.path().join("b0");
    f.ok_as(&admin, &["backup", before_promotion.to_str().unwrap()]);
    let r = as_(
        &f,
        &rita,
        &["promote", "hello-web", &digest, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let runs = f.json(&["runs"]);
    let status = ok_as(&f, &admin, &["status"]).stdout;
    assert!(status.contains(&digest[..19]), "{status}");
    let identities = names(&f, &admin);
    let entries = log_verified(&f);

    let backup = tmp.path().join("b1");
    let b = f.ok_as(&admin, &["backup", backup.to_str().unwrap()]);
    println!("{}", b.stdout);
    assert!(
        b.stdout.contains(&format!("the log's {entries} entries")),
        "{b:?}"
    );

    // Into a directory that is not empty: refused.
    let r = as_(&f, &admin, &["backup", backup.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");

    // A live directory: a running `cairn up` holds it.
    {
        let _up = common::server::Up::start(&f.data, &[]);
        let r = as_(
            &f,
            &admin,
            &["restore", backup.to_str().unwrap(), "--force"],
        );
        println!("{}", r.stderr);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("running `cairn up`"), "{r:?}");
    }
    // Not empty, without --force: refused, naming where --force would move it.
    let r = as_(&f, &admin, &["restore", backup.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--force"), "{r:?}");

    // Wipe, restore: everything back and verified. (The staging sandbox runs
    // on; its restored record lets the fixture stop it.)
    std::fs::remove_dir_all(&f.data).unwrap();
    let r = f.ok(&["restore", backup.to_str().unwrap()]);
    println!("{}", r.stdout);
    assert!(r.stdout.contains("log verified"), "{r:?}");
    assert_eq!(f.json(&["runs"]), runs);
    assert_eq!(names(&f, &admin), identities);
    assert!(
        ok_as(&f, &admin, &["status"])
            .stdout
            .contains(&digest[..19])
    );
    assert_eq!(log_verified(&f), entries);
    let r = as_(&f, &rita, &["identity", "whoami"]);
    assert_eq!(r.code, 0, "tokens work again after a restore: {r:?}");
    assert!(ok_as(&f, &admin, &["audit"]).stdout.contains(&digest[..19]));

    // Recover (no backup used): the deployment and its change record come back
    // from the log and changes.jsonl, the admin's token from admin.token; the
    // runs cannot, and it says so.
    remove_db(&f.data);
    refused_with_recovery_path(&f.run(&["runs"]), "missing");
    let rec = f.ok_as(&admin, &["recover"]);
    println!("{}", rec.stdout);
    assert!(rec.stdout.contains("deployments: 1"), "{rec:?}");
    assert!(
        rec.stdout.contains("runs, their stages and logs"),
        "{rec:?}"
    );
    assert!(
        ok_as(&f, &admin, &["status"])
            .stdout
            .contains(&digest[..19])
    );
    let audit = ok_as(&f, &admin, &["--json", "audit"]).stdout;
    assert!(audit.contains(&digest), "{audit}");
    assert_eq!(log_verified(&f), entries);
    assert_eq!(names(&f, &admin), identities);
    // Back to the whole state for what follows.
    std::fs::remove_dir_all(&f.data).unwrap();
    f.ok(&["restore", backup.to_str().unwrap()]);

    // A damaged backup: one flipped byte in the log is found before anything is written.
    let damaged = tmp.path().join("damaged");
    copy_dir_all(&backup, &damaged);
    let cp = damaged.join("log/checkpoint");
    let mut bytes = std::fs::read(&cp).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&cp, bytes).unwrap();
    let empty = tmp.path().join("empty");
    let r = Run::from(
        f.cairn(&["restore", damaged.to_str().unwrap()])
            .env("CAIRN_HOME", &empty)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("damaged: log/checkpoint"), "{r:?}");
    assert!(!empty.exists(), "nothing written: {r:?}");

    // A newer cairn's backup.
    let newer = tmp.path().join("newer");
    copy_dir_all(&backup, &newer);
    let manifest = newer.join("cairn-backup.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["cairnVersion"] = "99.0.0".into();
    std::fs::write(&manifest, m.to_string()).unwrap();
    let r = Run::from(
        f.cairn(&["restore", newer.to_str().unwrap()])
            .env("CAIRN_HOME", &empty)
            .output()
            .unwrap(),
    );
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("newer than this cairn"), "{r:?}");

    // Another installation's backup over this one: refused even with --force.
    let other = Fixture::new();
    let someone = token(&other, None, "someone@example.org");
    let other_backup = tmp.path().join("other");
    other.ok_as(&someone, &["backup", other_backup.to_str().unwrap()]);
    let r = as_(
        &f,
        &admin,
        &["restore", other_backup.to_str().unwrap(), "--force"],
    );
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("another installation") || r.stderr.contains("belongs to installation"),
        "{r:?}"
    );
    assert_eq!(names(&f, &admin), identities, "nothing changed");

    // A promotion that logged its decision and stopped before storing anything
    // of it: the store from before it beside the log after it, and the change
    // sink without its line. Every command lists the entry until recovered;
    // recover records it as interrupted, and the audit shows it.
    remove_db(&f.data);
    std::fs::copy(before_promotion.join("cairn.db"), f.data.join("cairn.db")).unwrap();
    let sink = f.data.join("changes.jsonl");
    let kept: Vec<String> = std::fs::read_to_string(&sink)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(r#""kind":"deploy""#))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&sink, kept.concat()).unwrap();
    for _ in 0..2 {
        let r = f.ok(&["runs"]);
        println!("{}", r.stderr);
        assert!(
            r.stderr.contains("deploy hello-web → staging")
                && r.stderr.contains("no change record"),
            "{r:?}"
        );
    }
    let rec = f.ok_as(&admin, &["recover"]);
    println!("{}", rec.stdout);
    assert!(rec.stdout.contains("recorded as interrupted"), "{rec:?}");
    let audit = ok_as(&f, &admin, &["--json", "audit"]).stdout;
    assert!(
        audit.contains("interrupted: the change was logged"),
        "{audit}"
    );
    assert!(!f.ok(&["runs"]).stderr.contains("no change record"));
    assert_eq!(log_verified(&f), entries);
}

fn copy_dir_all(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    common::copy_dir(src, dst);
}

// ---- a really full disk --------------------------------------------------------------

/// A small tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Writes a filler file until the file system has no byte left.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_is_named_by_every_command_reads_work_and_everything_verifies_after() {
    let f = Fixture::new();
    let fs = Tmpfs::mount(&f.data, "3m");
    let admin = token(&f, None, "admin@example.org");
    token(&f, Some(&admin), "dev@example.org");
    let osv = tempfile::tempdir().unwrap();
    for i in 0..300 {
        std::fs::write(
            osv.path().join(format!("GHSA-{i:04}.json")),
            format!(
                r#"{{"id":"GHSA-{i:04}","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"crates.io","name":"pkg{i}"}},"ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}},{{"fixed":"1.0.{i}"}}]}}]}}],"details":"{}"}}"#,
                "x".repeat(2000)
            ),
        )
        .unwrap();
    }
    let entries = log_verified(&f);
    let filler = fs.fill();

    // Reads work (the store opens read-only) and say why writes will not.
    for args in [
        &["identity", "list"][..],
        &["runs"],
        &["audit"],
        &["status"],
    ] {
        let r = as_(&f, &admin, args);
        println!("cairn {args:?}: exit {} {}", r.code, r.stderr.trim());
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        assert!(r.stderr.contains("disk full at"), "{args:?}: {r:?}");
        assert!(!r.stderr.contains("4874"), "{r:?}");
    }
    assert_eq!(log_verified(&f), entries);
    // Writes are refused naming the full disk: the log's append, the store's.
    let r = as_(&f, &admin, &["identity", "add", "eve@example.org"]);
    println!("identity add: exit {} {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("disk full at"), "{r:?}");
    let r = as_(
        &f,
        &admin,
        &["vulns", "import", osv.path().to_str().unwrap()],
    );
    println!("vulns import: exit {} {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("disk full at"), "{r:?}");
    // At 0 bytes free its audit-log entry cannot be appended: nothing is stored
    // (a half-way import is the next test's).
    assert!(r.stderr.contains("cannot append to the audit log"), "{r:?}");

    // Space back: everything works, verifies, and nothing is left unexplained.
    std::fs::remove_file(filler).unwrap();
    let r = as_(&f, &admin, &["identity", "add", "eve@example.org"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("effect in the store"), "{r:?}");
    assert!(names(&f, &admin).contains(&"eve@example.org".to_owned()));
    let imported = f.ok_as(&admin, &["vulns", "import", osv.path().to_str().unwrap()]);
    assert!(!imported.stderr.contains("disk full"), "{imported:?}");
    // eve, and the import's `advisory-import` entry.
    assert_eq!(log_verified(&f), entries + 2);
    // A failed transaction's WAL did not keep the disk: the store is no bigger
    // than its data (the WAL is truncated at most to its limit).
    let wal = std::fs::metadata(f.data.join("cairn.db-wal")).map_or(0, |m| m.len());
    assert!(wal <= 4 << 20, "{wal}");
    drop(fs);
    std::thread::sleep(Duration::from_millis(10));
}

fn osv_records(dir: &Path, n: usize) {
    for i in 0..n {
        std::fs::write(
            dir.join(format!("GHSA-{i:04}.json")),
            format!(
                r#"{{"id":"GHSA-{i:04}","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"crates.io","name":"pkg{i}"}},"ranges":[{{"type":"SEMVER","events":[{{"introduced":"0"}},{{"fixed":"1.0.{i}"}}]}}]}}],"details":"{}"}}"#,
                "x".repeat(2000)
            ),
        )
        .unwrap();
    }
}

/// An import that fills the disk half-way says how far it got; the store's
/// committed pages then wait in a WAL the full disk cannot checkpoint, and reads
/// still work (through a connection that keeps the WAL's index in memory);
/// with space back the import completes and everything verifies.
#[test]
fn a_partial_import_on_a_full_disk_says_how_far_it_got_and_reads_go_on() {
    let f = Fixture::new();
    let fs = Tmpfs::mount(&f.data, "12m");
    let admin = token(&f, None, "admin@example.org");
    let ballast = f.data.join("ballast");
    std::fs::write(&ballast, vec![0u8; 9 << 20]).unwrap();
    let osv = tempfile::tempdir().unwrap();
    osv_records(osv.path(), 700);
    let entries = log_verified(&f);

    let r = as_(
        &f,
        &admin,
        &["vulns", "import", osv.path().to_str().unwrap()],
    );
    println!("vulns import: exit {} {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("disk full at"), "{r:?}");
    let stored: usize = r
        .stderr
        .split("stopped after storing ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("says how far it got: {r:?}"));
    assert!(stored > 0 && stored < 700, "{stored}: {r:?}");
    let filler = fs.fill();
    for args in [&["identity", "list"][..], &["runs"], &["audit"]] {
        let r = as_(&f, &admin, args);
        println!("cairn {args:?}: exit {} {}", r.code, r.stderr.trim());
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        assert!(r.stderr.contains("disk full at"), "{args:?}: {r:?}");
    }
    // The import's `advisory-import` entry went in before any record.
    assert_eq!(log_verified(&f), entries + 1);

    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(ballast).unwrap();
    let r = as_(
        &f,
        &admin,
        &["--json", "vulns", "import", osv.path().to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("disk full"), "{r:?}");
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    println!("second import: {report}");
    assert_eq!(log_verified(&f), entries + 2);
    let r = as_(&f, &admin, &["identity", "add", "eve@example.org"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("effect in the store"), "{r:?}");
}

//! Attacks on the `cairn` binary from issue 12, end to end: a repository whose
//! config names programs for git to run, a reader that closes the pipe, a
//! lockfile with terminal control bytes. Real git, real bubblewrap.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Stdio;

use common::{Fixture, Run, git};

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Issue 12 item 4: `git archive` ran the repository's filter drivers on the
/// host and applied export-ignore / export-subst. The run's workspace must be
/// the commit's bytes exactly, and no program named by the repository's config
/// may run.
#[test]
fn a_run_gets_the_committed_bytes_and_runs_no_filter_of_the_repository() {
    let f = Fixture::new();
    let marker = f.repo.parent().unwrap().join("FILTER-RAN");
    let files: &[(&str, &str)] = &[
        (
            ".gitattributes",
            "ignored.txt export-ignore\nsubst.txt export-subst\nfiltered.txt filter=x\ncrlf.txt text eol=crlf\n",
        ),
        ("ignored.txt", "export-ignore would drop me\n"),
        ("subst.txt", "commit $Format:%H$\n"),
        ("filtered.txt", "smudge would rewrite me\n"),
        ("crlf.txt", "one\ntwo\n"),
    ];
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    let unit = format!("sha256sum {} && readlink link", names.join(" "));
    f.write(
        "cairn.toml",
        &format!(
            "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = {unit:?}\n"
        ),
    );
    for (name, text) in files {
        f.write(name, text);
    }
    std::os::unix::fs::symlink("ignored.txt", f.repo.join("link")).unwrap();
    f.commit("attributes");
    // The attack: programs in the repository's own config.
    let evil = format!("sh -c 'echo ran >> {}'; cat", marker.display());
    for (key, value) in [
        ("filter.x.smudge", evil.as_str()),
        ("filter.x.process", evil.as_str()),
        ("filter.x.required", "true"),
        ("core.fsmonitor", evil.as_str()),
        ("log.showSignature", "true"),
        ("gpg.program", evil.as_str()),
    ] {
        git(&f.repo, &["config", key, value]);
    }

    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let logs = f.run(&["logs", "last"]);
    for (name, text) in files {
        let line = format!("{}  {name}", sha256_hex(text.as_bytes()));
        assert!(
            logs.stdout.contains(&line),
            "{name} is not as committed:\n{}",
            logs.stdout
        );
        println!("as committed: {line}");
    }
    assert!(
        logs.stdout.contains("\nignored.txt\n"),
        "the symlink: {}",
        logs.stdout
    );
    assert!(
        !marker.exists(),
        "a program from the repository's config ran on the host"
    );
}

/// Issue 12 item 10: writing to a closed pipe panicked (exit 101). Every
/// command's output goes through one writer that ends quietly.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        "[workload]\nname = \"app\"\n[build]\ncommand = \"true\"\n[test]\nunit = \"seq 1 30000\"\n",
    )
    .commit("x");
    f.ok(&["run"]);
    for args in [
        &["runs"][..],
        &["logs", "1"],
        &["audit"],
        &["log", "show"],
        &["explain", "1"],
        &["--json", "runs"],
        &["key", "show"],
    ] {
        // A pipe whose reader is gone before cairn writes: every write is EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = f
            .cairn(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let r = Run::from(out);
        println!("cairn {args:?} | (closed): exit {}", r.code);
        assert_eq!(r.code, 0, "cairn {args:?}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "cairn {args:?}: {r:?}");
    }
    // A full disk is not a closed pipe: the output is lost, so cairn says so (exit 2).
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let r = Run::from(f.cairn(&["runs"]).stdout(full).output().unwrap());
    println!(
        "cairn runs > /dev/full: exit {} {}",
        r.code,
        r.stderr.trim()
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("cannot write the output"), "{r:?}");
    // As the issue ran it: a shell pipeline into `head`, with more output
    // than the pipe holds, so cairn is still writing when head exits.
    for pipeline in ["logs 1 | head -1", "runs | head -1", "audit | head -3"] {
        let script = format!(
            "set -o pipefail; \"$CAIRN\" {pipeline} >/dev/null; echo \"exit ${{PIPESTATUS[0]}}\""
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .env("CAIRN", env!("CARGO_BIN_EXE_cairn"))
            .env("CAIRN_HOME", &f.data)
            .env_remove("CAIRN_TOKEN")
            .current_dir(&f.repo)
            .output()
            .unwrap();
        let r = Run::from(out);
        println!("cairn {pipeline}: {}", r.stdout.trim());
        assert_eq!(r.stdout.trim(), "exit 0", "cairn {pipeline}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "cairn {pipeline}: {r:?}");
    }
}

/// Issue 12: raw control bytes from a lockfile reached the terminal in
/// diagnostics. Everything the CLI prints escapes them.
#[test]
fn control_bytes_from_a_lockfile_never_reach_the_terminal() {
    let f = Fixture::new();
    // A lockfile under a directory whose name retitles the terminal and clears
    // it: its path is in a note on stderr.
    let evil = "x\u{1b}]0;owned\u{7}\u{1b}[2J";
    f.write(
        &format!("{evil}/Cargo.lock"),
        "version = 3\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n",
    );
    let r = f.run(&["sbom", "."]);
    println!("stderr: {}", r.stderr);
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stderr.contains('\u{7}'),
        "{r:?}"
    );
    assert!(!r.stdout.contains('\u{1b}'), "{r:?}");
    assert!(
        r.stderr
            .contains("x\\u001b]0;owned\\u0007\\u001b[2J/Cargo.lock"),
        "the path is shown escaped: {r:?}"
    );
}

/// Issue 12: `cairn log verify` checked only each tile's newest width, while
/// the server serves every older partial tile too. A changed old partial tile
/// or bundle is now named.
#[test]
fn log_verify_checks_every_old_partial_tile() {
    let f = Fixture::new();
    for entry in ["first", "second", "third"] {
        f.ok(&["log", "--scratch", "append", entry]);
    }
    assert_eq!(f.run(&["log", "--scratch", "verify"]).code, 0);
    for (file, at) in [("tile/entries/000.p/1", 3), ("tile/0/000.p/2", 40)] {
        let path = f.data.join("scratch/log").join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let r = f.run(&["log", "--scratch", "verify"]);
        println!("{file} changed: exit {}\n{}", r.code, r.stdout.trim());
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stdout.contains("log DAMAGED"), "{r:?}");
        assert!(r.stdout.contains(file), "{r:?}");
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
    }
    assert_eq!(f.run(&["log", "--scratch", "verify"]).code, 0);
}

/// Issue 15: `cairn log append` wrote arbitrary bytes into the audit log, the
/// log `cairn recover` rebuilds the store from, where a forged entry sat beside
/// cairn's own records. It now writes only the scratch log (own key, own origin);
/// aimed at the audit log it is refused and the audit log does not change.
#[test]
fn log_append_never_writes_the_audit_log() {
    let f = Fixture::new();
    // The audit log exists (a key creation is recorded in it).
    f.ok(&["key", "create"]);
    let before = f.json(&["log", "show"]);
    let forged = r#"{"kind":"access-change","action":"identity-add","name":"mallory@example.org","roles":["platform-admin"]}"#;
    let r = f.run(&["log", "append", forged]);
    println!("{}", r.stderr.trim());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--scratch append"), "{r:?}");
    assert_eq!(f.json(&["log", "show"])["size"], before["size"]);

    let s = f.json(&["log", "--scratch", "append", forged]);
    assert_eq!(s["indices"], serde_json::json!([0]));
    let shown = f.json(&["log", "--scratch", "show", "0"]);
    assert_eq!(shown["entry_text"], forged);
    let scratch = f.json(&["log", "--scratch", "show"]);
    assert_eq!(scratch["origin"], "cairn.local/scratch-log");
    assert_ne!(scratch["verifier"], before["verifier"], "its own key");
    let after = f.json(&["log", "show"]);
    assert_eq!(after["size"], before["size"]);
    assert_eq!(after["root"], before["root"]);
}

/// `cairn bench sandbox --once` (what scripts/perf-guard counts the
/// system calls of) runs one real sandboxed no-op step and times it.
#[test]
fn one_sandboxed_noop_step_is_timed_for_the_perf_guard() {
    let f = Fixture::new();
    let v = f.json(&["bench", "sandbox", "--once"]);
    println!("{v}");
    assert!(v["cairn_sandbox_ms"].as_f64().unwrap() > 0.0, "{v}");
}

//! Issue 19: `cairn run` starts the next stage's sandbox while the current
//! stage runs and holds it before its command. Run as a user runs it (the
//! built-in chain, real git, real bubblewrap): when the unit tests fail, the
//! build held ahead never runs and nothing of it is left.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::Fixture;

#[test]
fn a_failed_stage_never_runs_the_build_started_ahead() {
    let f = Fixture::new();
    let nonce = format!("{}-{}", std::process::id(), cairn_testkit_nonce());
    let build = format!("touch /workspace/build-ran-{nonce}");
    let unit = "touch /workspace/tests-ran; sleep 1; echo 'test one ... FAILED'; exit 3";
    f.write(
        "cairn.toml",
        &format!(
            "[workload]\nname = \"app\"\n[build]\ncommand = {build:?}\n[test]\nunit = {unit:?}\n"
        ),
    )
    .commit("app");
    // While the unit tests run, the build's sandbox is there, held: its init,
    // below a reaper of this cairn's, waits (named `cairn-held`), and no process
    // has the build's command line yet.
    let mut child = f
        .cairn(&["run", "--keep-workspace"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut held_seen = false;
    while child.try_wait().unwrap().is_none() {
        held_seen |= held_below(child.id());
        assert!(
            with_cmdline(&format!("build-ran-{nonce}")).is_empty(),
            "the build started while the unit tests ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = common::Run::from(child.wait_with_output().unwrap());
    println!("{}\n{}", r.stdout, r.stderr);
    assert!(
        held_seen,
        "the build's sandbox was never held during the unit tests"
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("stage `unit-tests` failed: exit code 3"),
        "{r:?}"
    );
    let unit_log = f.run(&["logs", "last", "unit-tests"]).stdout;
    println!("unit-tests log:\n{unit_log}");
    assert!(
        unit_log.contains("started ahead during the previous stage"),
        "{unit_log}"
    );
    let build_log = f.run(&["logs", "last", "build"]);
    println!("build log: {build_log:?}");
    assert!(!build_log.stdout.contains("$ touch"), "{build_log:?}");

    let id = f.json(&["runs"])[0]["id"].as_i64().unwrap();
    let workspace = cairn_engine::DataDir::at(&f.data)
        .workspaces()
        .join(id.to_string());
    assert!(
        workspace.join("tests-ran").exists(),
        "{}",
        workspace.display()
    );
    assert!(
        !workspace.join(format!("build-ran-{nonce}")).exists(),
        "the build held ahead ran"
    );
    // No process of the held build is left (its command line names the nonce).
    let left = with_cmdline(&format!("build-ran-{nonce}"));
    assert!(
        left.is_empty(),
        "processes of the held build are left: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&workspace);
}

/// Whether a sandbox's init named `cairn-held` runs below a reaper of `cairn`.
fn held_below(cairn: u32) -> bool {
    // `/proc/PID/stat`: `pid (comm) state ppid …`.
    let stat = |pid: &str| -> Option<(String, String)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(") ")?;
        let comm = head.split_once(" (")?.1.to_owned();
        let ppid = rest.split(' ').nth(1)?.to_owned();
        Some((comm, ppid))
    };
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let Some((comm, reaper)) = stat(&entry.file_name().to_string_lossy()) else {
            return false;
        };
        comm == "cairn-held" && stat(&reaper).is_some_and(|(_, parent)| parent == cairn.to_string())
    })
}

/// Pids of the processes whose command line contains `text`.
fn with_cmdline(text: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(text))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn cairn_testkit_nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

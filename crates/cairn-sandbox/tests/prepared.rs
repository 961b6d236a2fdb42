//! A step's sandbox prepared ahead and held before its command (on its release
//! descriptor): released, it behaves exactly as a direct run; dropped, nothing of it
//! runs or remains. The real sandbox (cairn's runtime), as root (cgroups).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_sandbox::{Exit, Limits, PreparedSandbox, SandboxError, Stream, list_cgroups, prepare};
use common::{Ran, pids_in_namespace, run_ok, sh, workspace};

fn release(prepared: PreparedSandbox) -> Result<Ran, SandboxError> {
    let start = Instant::now();
    let (mut stdout, mut stderr, mut stdout_at) = (Vec::new(), Vec::new(), Vec::new());
    let outcome = prepared.release(&mut |stream, line| match stream {
        Stream::Stdout => {
            stdout.push(line.to_vec());
            stdout_at.push(start.elapsed());
        }
        Stream::Stderr => stderr.push(line.to_vec()),
    })?;
    Ok(Ran {
        outcome,
        stdout,
        stderr,
        stdout_at,
        elapsed: start.elapsed(),
    })
}

/// The cgroup holding `pid` (a prepared sandbox's reaper), by name and directories.
fn cgroup_of(pid: u32) -> Option<(String, Vec<std::path::PathBuf>)> {
    list_cgroups()
        .unwrap()
        .into_iter()
        .find(|c| c.pids.contains(&pid))
        .map(|c| (c.name, c.dirs))
}

/// The processes of the cgroup of `reaper` (a prepared sandbox's) once it is set up
/// and held: one of them, the sandbox's init, is named `cairn-held`.
fn once_held(reaper: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = list_cgroups()
            .unwrap()
            .into_iter()
            .find(|c| c.pids.contains(&reaper))
            .map(|c| c.pids)
            .unwrap_or_default();
        if pids.iter().any(|pid| comm(*pid) == "cairn-held") {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "the prepared sandbox of reaper {reaper} is not held: {:?}",
            pids.iter().map(|pid| comm(*pid)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// What a step sees of itself, everything the sandbox promises: its user, its
/// descriptors (no release descriptor left), environment, hostname, limits, mounts
/// and network, then an exit code.
const PROBE: &str = "id -u; ls /proc/self/fd | tr '\\n' ' '; echo; env | sort | tr '\\n' ' '; echo; \
    hostname; cat /proc/self/oom_score_adj; ulimit -n; ulimit -c; \
    cat /proc/self/uid_map | tr -s ' '; ls /etc | tr '\\n' ' '; echo; \
    touch /usr/x 2>&1 | sed 's/.*: //'; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' \\n'; echo; \
    echo to-stderr >&2; echo ok > /workspace/written; exit 3";

#[test]
fn a_released_prepared_step_behaves_exactly_as_a_direct_one() {
    let direct_ws = workspace();
    let prepared_ws = workspace();
    let direct = run_ok(&sh(direct_ws.path(), PROBE));
    let prepared = prepare(&sh(prepared_ws.path(), PROBE)).unwrap();
    // Set up, blocked: nothing of the command has run.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!prepared_ws.path().join("written").exists());
    let released = release(prepared).unwrap();
    println!(
        "direct: {:?} {:?}\nreleased: {:?} {:?}",
        direct.outcome.exit,
        direct.out(),
        released.outcome.exit,
        released.out()
    );
    assert_eq!(released.outcome.exit, Exit::Code(3));
    assert_eq!(released.outcome.exit, direct.outcome.exit);
    assert_eq!(released.out(), direct.out());
    assert_eq!(released.err(), direct.err());
    assert_eq!(released.err(), "to-stderr");
    assert!(
        released.out().contains("\n0 1 2 3 \n"),
        "{}",
        released.out()
    );
    assert!(released.out().ends_with("\nlo"), "{}", released.out());
    assert_eq!(
        std::fs::read_to_string(prepared_ws.path().join("written")).unwrap(),
        "ok\n"
    );
    // The cgroup's limits hold as in a direct run.
    assert_eq!(
        released.outcome.usage.peak_tasks.is_some(),
        direct.outcome.usage.peak_tasks.is_some()
    );
}

#[test]
fn a_released_prepared_step_keeps_its_limits() {
    let ws = workspace();
    let mut hog = sh(
        ws.path(),
        "head -c 400000000 /dev/zero | tail -c 300000000 >/dev/null",
    );
    hog.limits = Limits {
        memory_bytes: 64 << 20,
        wall_clock: Duration::from_secs(10),
        ..Limits::default()
    };
    let ran = release(prepare(&hog).unwrap()).unwrap();
    println!("memory hog, prepared then released: {:?}", ran.outcome);
    assert_eq!(ran.outcome.exit, Exit::OutOfMemory, "{ran:?}");
    assert!(ran.outcome.usage.peak_memory_bytes.unwrap() <= 64 << 20);

    let mut bomb = sh(ws.path(), "for i in $(seq 40); do sleep 2 & done; wait");
    bomb.limits.max_processes = 10;
    let ran = release(prepare(&bomb).unwrap()).unwrap();
    println!("fork loop, prepared then released: {:?}", ran.outcome);
    assert!(ran.outcome.usage.process_limit_hit, "{ran:?}");
    assert!(ran.outcome.usage.peak_tasks.unwrap() <= 10 + 2);
}

#[test]
fn a_prepared_steps_time_limit_counts_from_its_release() {
    let ws = workspace();
    let mut spec = sh(ws.path(), "echo started; sleep 0.5; echo done");
    spec.limits.wall_clock = Duration::from_secs(1);
    let prepared = prepare(&spec).unwrap();
    // Held longer than its limit: that time is not the step's.
    std::thread::sleep(Duration::from_millis(1500));
    let ran = release(prepared).unwrap();
    println!("held 1.5 s, limit 1 s: {:?}", ran.outcome);
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    assert_eq!(ran.out(), "started\ndone");
    assert!(ran.outcome.duration < Duration::from_secs(1), "{ran:?}");

    let mut slow = sh(
        ws.path(),
        "readlink /proc/self/ns/pid > /workspace/ns; echo started; exec sleep 60",
    );
    slow.limits.wall_clock = Duration::from_secs(1);
    let prepared = prepare(&slow).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let ran = release(prepared).unwrap();
    println!(
        "held 1.5 s, then sleep 60 with limit 1 s: {:?}",
        ran.outcome
    );
    assert_eq!(ran.outcome.exit, Exit::TimedOut);
    assert_eq!(ran.out(), "started");
    assert!(
        ran.elapsed >= Duration::from_millis(950) && ran.elapsed < Duration::from_secs(3),
        "{:?}",
        ran.elapsed
    );
    let ns = std::fs::read_to_string(ws.path().join("ns")).unwrap();
    assert!(pids_in_namespace(&ns).is_empty());
}

#[test]
fn a_discarded_prepared_step_runs_nothing_and_leaves_nothing() {
    let ws = workspace();
    let spec = sh(ws.path(), "touch /workspace/ran");
    let prepared = prepare(&spec).unwrap();
    let reaper = prepared.pid().unwrap();
    // Set up and held: the reaper and the sandbox's init, nothing of the sandbox's
    // own (not even a shell) and no trace of the command.
    let pids = once_held(reaper);
    let (name, dirs) = cgroup_of(reaper).expect("the prepared sandbox's cgroup");
    let names: Vec<String> = pids.iter().map(|pid| comm(*pid)).collect();
    assert_eq!(names.len(), 2, "{name}: {names:?}");
    assert!(names.contains(&"cairn-reaper".to_owned()), "{names:?}");
    for pid in &pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            cmdline.starts_with(b"cairn-sandbox\0"),
            "{pid}: {}",
            String::from_utf8_lossy(&cmdline)
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(prepared);
    println!("discarded {name}: its processes {pids:?}");
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} of {name} is left"
        );
    }
    for dir in &dirs {
        assert!(!dir.exists(), "cgroup {} is left", dir.display());
    }
    assert!(!list_cgroups().unwrap().iter().any(|c| c.name == name));
    // Nothing was released: the command never ran.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!ws.path().join("ran").exists(), "the discarded command ran");
}

/// Dropped at once, while the sandbox is still starting: the same.
#[test]
fn a_prepared_step_discarded_at_once_leaves_nothing() {
    for _ in 0..5 {
        let ws = workspace();
        let prepared = prepare(&sh(ws.path(), "touch /workspace/ran")).unwrap();
        let reaper = prepared.pid().unwrap();
        drop(prepared);
        assert!(!Path::new(&format!("/proc/{reaper}")).exists());
        assert!(cgroup_of(reaper).is_none());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!ws.path().join("ran").exists(), "the discarded command ran");
    }
}

/// A sandbox whose set-up fails while it is held reports that failure at its
/// release, as a direct run does.
#[test]
fn a_failed_set_up_is_reported_at_release() {
    let ws = workspace();
    let mut spec = sh(ws.path(), "true");
    spec.read_only_binds
        .push(("/nonexistent-tool".into(), "/opt/tool".into()));
    let direct = common::try_run(&spec).unwrap_err().to_string();
    let released = release(prepare(&spec).unwrap()).unwrap_err().to_string();
    println!("direct: {direct}\nreleased: {released}");
    assert_eq!(released, direct);
    assert!(released.contains("nonexistent-tool"), "{released}");
}

/// cairn dying while a sandbox is held (its end of the release pipe closed by the
/// kernel) does not release it: the command never runs, and the sandbox goes with
/// cairn. The "cairn" here is this test binary run again as a child that prepares a
/// sandbox and is then killed with SIGKILL.
#[test]
fn cairn_dying_never_releases_a_prepared_step() {
    const CHILD: &str = "CAIRN_TEST_PREPARED_CHILD";
    if let Ok(ws) = std::env::var(CHILD) {
        let prepared = prepare(&sh(Path::new(&ws), "touch /workspace/ran")).unwrap();
        println!("reaper {}", prepared.pid().unwrap());
        std::thread::sleep(Duration::from_secs(60));
        drop(prepared);
        return;
    }
    let ws = workspace();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cairn_dying_never_releases_a_prepared_step",
            "--nocapture",
        ])
        .env(CHILD, ws.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let reaper: u32 = loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "the child ended before preparing"
        );
        if let Some(pid) = line.trim().strip_prefix("reaper ") {
            break pid.parse().unwrap();
        }
    };
    let pids = once_held(reaper);
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("cairn killed; its prepared sandbox's processes {pids:?}");
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived cairn"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !ws.path().join("ran").exists(),
        "cairn's death released the command"
    );
    // Its empty cgroup is swept by the next cairn process (its owner is gone).
    let _ = cairn_sandbox::sweep_cgroups();
}

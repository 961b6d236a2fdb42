//! The real sandbox (cairn's runtime; bubblewrap for detached sandboxes): every escape
//! attempt is refused, every limit holds, and each check has a positive control showing
//! the test could see a leak.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_sandbox::{Exit, Limits, SANDBOX_UID, SandboxError, SandboxSpec, prepare_workspace};
use common::{namespace_of, pids_in_namespace, run_ok, sh, try_run, workspace};

/// A host listener on 127.0.0.1 and whether a connection reached it.
fn accepted_within(listener: &TcpListener, wait: Duration) -> bool {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok(_) => return true,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return false,
        }
    }
}

#[test]
fn network_is_unreachable_unless_allowed() {
    let ws = workspace();
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let host_ip = common::host_address();
    let script = format!(
        "cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' '; \
         for ip in 127.0.0.1 {host_ip}; do \
         if bash -c \"exec 3<>/dev/tcp/$ip/{port}\" 2>/dev/null; \
         then echo CONNECTED; else echo REFUSED; fi; done"
    );

    let closed = run_ok(&sh(ws.path(), &script));
    assert!(closed.outcome.exit.success(), "{closed:?}");
    assert_eq!(
        closed.out(),
        "lo\nREFUSED\nREFUSED",
        "only loopback, and no way out"
    );
    assert!(!accepted_within(&listener, Duration::from_millis(200)));

    // Positive control: with network allowed the same probe reaches the listener
    // through the host's own address (not through its loopback: see below).
    let mut open = sh(ws.path(), &script);
    open.network = true;
    let open = run_ok(&open);
    assert!(open.out().ends_with("REFUSED\nCONNECTED"), "{open:?}");
    assert!(accepted_within(&listener, Duration::from_secs(2)));
}

/// A dependency fetch (issue 12, item 11): the step gets egress through a user-mode
/// network, but the host's loopback services and the cloud metadata address stay out
/// of reach, whatever address the step tries; and nothing in the step can lift that.
#[test]
fn fetch_network_reaches_out_but_not_host_loopback_or_metadata() {
    let ws = workspace();
    // A service only the host itself may use, and one its network neighbours may.
    let private = TcpListener::bind("127.0.0.1:0").unwrap();
    let private_port = private.local_addr().unwrap().port();
    let public = TcpListener::bind("0.0.0.0:0").unwrap();
    let public_port = public.local_addr().unwrap().port();
    let host_ip = common::host_address();
    // A host service on an abstract unix socket (bound to the network namespace).
    let abstract_name = format!("cairn-test-{}", std::process::id());
    let abstract_listener = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).unwrap();
        std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
    };
    let unix_name = abstract_name.as_str();
    let script = format!(
        r#"probe() {{
             start=$(date +%s%N)
             if out=$(timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>&1); then r=CONNECTED
             else r="REFUSED (${{out##*: }})"; fi
             echo "$1:$2 $r in $(( ($(date +%s%N) - start) / 1000000 )) ms"
           }}
           cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | sort | tr '\n' ' '; echo
           grep nameserver /etc/resolv.conf
           probe 127.0.0.1 {private_port}
           probe 10.0.2.2 {private_port}
           probe {host_ip} {private_port}
           probe 169.254.169.254 80
           probe 169.254.170.2 80
           probe 100.100.100.200 80
           probe {host_ip} {public_port}
           /usr/sbin/ip route del prohibit 169.254.0.0/16 2>&1 | tail -n 1
           probe 169.254.169.254 80
           python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(b"\0{unix_name}"); print("ABSTRACT CONNECTED")' 2>&1 | tail -n 1"#
    );
    let mut spec = sh(ws.path(), &script);
    spec.argv[0] = "/bin/bash".into();
    spec.network = true;
    let ran = run_ok(&spec);
    println!("{}\n{}", ran.out(), ran.err());
    assert!(ran.outcome.exit.success(), "{ran:?}");
    let lines: Vec<String> = ran.out().lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "lo tap0 ", "loopback and slirp4netns's tap only");
    assert_eq!(lines[1], "nameserver 10.0.2.3", "DNS through slirp4netns");
    let verdict = |line: &str| -> (String, u64) {
        let (head, ms) = line.rsplit_once(" in ").unwrap();
        (head.to_owned(), ms.trim_end_matches(" ms").parse().unwrap())
    };
    // The host's loopback service: not through the step's own loopback, not through
    // slirp4netns's gateway, not through the host's own address.
    for line in &lines[2..5] {
        let (head, _) = verdict(line);
        assert!(head.contains("REFUSED"), "{line}");
    }
    // Metadata addresses fail at once (a prohibit route), not after a timeout.
    for line in &lines[5..8] {
        let (head, ms) = verdict(line);
        assert!(head.ends_with("REFUSED (Permission denied)"), "{line}");
        assert!(ms < 1000, "{line}");
    }
    // Egress: the host's public listener, through the host's own address.
    assert!(
        lines[8].contains("CONNECTED") && !lines[8].contains("REFUSED"),
        "{lines:?}"
    );
    assert!(accepted_within(&public, Duration::from_secs(2)));
    assert!(!accepted_within(&private, Duration::from_millis(200)));
    // The step cannot remove the block: the namespace is not its to change.
    assert!(lines[9].contains("Operation not permitted"), "{lines:?}");
    assert!(lines[10].ends_with(" ms") && lines[10].contains("REFUSED (Permission denied)"));
    // Nor the host's abstract unix sockets.
    assert!(lines[11].contains("ConnectionRefusedError"), "{lines:?}");
    abstract_listener.set_nonblocking(true).unwrap();
    assert!(abstract_listener.accept().is_err());
}

#[test]
fn data_dir_and_host_home_are_invisible() {
    // A stand-in for `.cairn/`, readable by anyone on the host: only the mount
    // namespace keeps it out of reach.
    let host = tempfile::tempdir().unwrap();
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = host.path().join(".cairn");
    fs::create_dir(&data_dir).unwrap();
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let secret = data_dir.join("signing.key");
    fs::write(&secret, "TOPSECRET-KEY\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();

    let ws = workspace();
    fs::write(ws.path().join("control"), "TOPSECRET-KEY\n").unwrap();
    let script = format!(
        "cat {secret} 2>/dev/null; ls {dir} 2>/dev/null && echo DATA-DIR-VISIBLE; \
         test -e /root && echo ROOT-VISIBLE; ls /root 2>/dev/null; \
         cat /workspace/control; echo TOP; ls -A /",
        secret = secret.display(),
        dir = data_dir.display(),
    );
    let ran = run_ok(&sh(ws.path(), &script));
    assert!(ran.outcome.exit.success(), "{ran:?}");
    let out = ran.out();
    // The control file proves the command reads files and prints them.
    assert_eq!(out.matches("TOPSECRET-KEY").count(), 1, "{out}");
    assert!(out.starts_with("TOPSECRET-KEY\nTOP\n"), "{out}");
    assert!(!out.contains("VISIBLE"), "{out}");
    let top: Vec<&str> = out.split_once("TOP\n").unwrap().1.lines().collect();
    let allowed = [
        "bin",
        "dev",
        "etc",
        "home",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "proc",
        "sbin",
        "tmp",
        "usr",
        "workspace",
    ];
    assert!(top.iter().all(|name| allowed.contains(name)), "{top:?}");
    assert!(
        top.contains(&"workspace") && top.contains(&"usr"),
        "{top:?}"
    );
}

#[test]
fn writes_outside_the_workspace_fail() {
    // World-writable on the host, so only the sandbox stops the write.
    let outside = tempfile::tempdir().unwrap();
    fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let ws = workspace();
    let targets = [
        outside.path().join("escaped"),
        PathBuf::from("/usr/escaped"),
        PathBuf::from("/usr/local/escaped"),
        PathBuf::from("/etc/escaped"),
        PathBuf::from("/etc/passwd"),
        PathBuf::from("/escaped"),
        PathBuf::from("/root/escaped"),
    ];
    let mut script = String::new();
    for target in &targets {
        let t = target.display();
        script.push_str(&format!(
            "if echo x >> {t} 2>/dev/null; then echo WROTE {t}; else echo REFUSED {t}; fi; "
        ));
    }
    script.push_str("echo inside > /workspace/out && echo WROTE-WORKSPACE");
    let ran = run_ok(&sh(ws.path(), &script));
    let out = ran.out();
    assert!(ran.outcome.exit.success(), "{ran:?}");
    assert!(!out.contains("WROTE /"), "{out}");
    assert_eq!(out.matches("REFUSED").count(), targets.len(), "{out}");
    assert!(!outside.path().join("escaped").exists());
    assert!(!PathBuf::from("/usr/escaped").exists());
    assert!(!PathBuf::from("/etc/escaped").exists());

    // Positive control: the workspace write lands on the host, as the sandbox user.
    assert!(out.ends_with("WROTE-WORKSPACE"), "{out}");
    let written = ws.path().join("out");
    assert_eq!(fs::read_to_string(&written).unwrap(), "inside\n");
    assert_eq!(fs::metadata(&written).unwrap().uid(), SANDBOX_UID);
}

#[test]
fn the_sandbox_user_is_not_host_root() {
    // A toolchain mount holding a root-only file: mounted, yet unreadable, because the
    // sandbox runs as an unprivileged host user.
    let tools = tempfile::tempdir().unwrap();
    fs::set_permissions(tools.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(tools.path().join("root-only"), "ROOT-ONLY\n").unwrap();
    fs::set_permissions(
        tools.path().join("root-only"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::write(tools.path().join("public"), "PUBLIC\n").unwrap();
    fs::set_permissions(
        tools.path().join("public"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let ws = workspace();
    let mut spec = sh(
        ws.path(),
        "cat /opt/tools/root-only 2>&1; cat /opt/tools/public; \
         grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status",
    );
    spec.read_only_binds
        .push((tools.path().to_owned(), PathBuf::from("/opt/tools")));
    let ran = run_ok(&spec);
    let out = ran.out();
    assert!(out.contains("Permission denied"), "{out}");
    assert!(!out.contains("ROOT-ONLY"), "{out}");
    assert!(out.contains("PUBLIC"), "positive control: {out}");
    for cap in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(
            out.contains(&format!("{cap}:\t0000000000000000")),
            "{cap}: {out}"
        );
    }
}

/// No user namespace can be made inside (the one way to regain capabilities),
/// its limit cannot be raised, nothing can be mounted, and nothing of the root's
/// assembly (the host's root moved aside, the new one's mount point) is left.
#[test]
fn nested_user_namespaces_and_mounts_are_refused() {
    // Positive control: the host makes user namespaces.
    assert!(
        std::process::Command::new("unshare")
            .args(["-U", "true"])
            .status()
            .unwrap()
            .success()
    );
    let ws = workspace();
    let script = "unshare -U true 2>&1 || echo userns-refused; \
                  unshare -r true 2>&1 || echo root-map-refused; \
                  echo limit=$(cat /proc/sys/user/max_user_namespaces); \
                  (echo 9 > /proc/sys/user/max_user_namespaces) 2>/dev/null || echo limit-fixed; \
                  mount -t tmpfs none /tmp 2>/dev/null || echo mount-refused; \
                  umount /workspace 2>/dev/null || echo umount-refused; \
                  ls -d /oldroot /newroot 2>/dev/null || echo no-assembly-left";
    let ran = run_ok(&sh(ws.path(), script));
    let out = ran.out();
    println!("{out}");
    for expected in [
        "userns-refused",
        "root-map-refused",
        "limit=0",
        "limit-fixed",
        "mount-refused",
        "umount-refused",
        "no-assembly-left",
    ] {
        assert!(out.lines().any(|l| l == expected), "{expected}: {out}");
    }
}

/// What the host mounts while a sandbox runs does not reach into it: the
/// sandbox's mounts propagate nothing from the host's.
#[test]
fn host_mounts_made_during_a_run_stay_outside() {
    if !cairn_sandbox_runs_as_root() {
        return; // mounting on the host needs root
    }
    let tools = tempfile::tempdir().unwrap();
    fs::set_permissions(tools.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let sub = tools.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    // A shared mount, as on most hosts (systemd makes `/` shared): its new
    // mounts propagate to every copy that is not private.
    let host = |args: &[&std::ffi::OsStr]| {
        let status = std::process::Command::new(args[0])
            .args(&args[1..])
            .status();
        assert!(status.unwrap().success(), "{args:?}");
    };
    let tools_path = tools.path().as_os_str();
    host(&["mount".as_ref(), "--bind".as_ref(), tools_path, tools_path]);
    host(&["mount".as_ref(), "--make-shared".as_ref(), tools_path]);
    let ws = workspace();
    let mut spec = sh(
        ws.path(),
        "echo started; sleep 1; ls -A /opt/tools/sub; echo listed",
    );
    spec.read_only_binds
        .push((tools.path().to_owned(), PathBuf::from("/opt/tools")));
    let mounted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut ran_lines = Vec::new();
    let outcome = {
        let mounted = mounted.clone();
        let sub = sub.clone();
        cairn_sandbox::run(&spec, &mut |_, line| {
            let line = String::from_utf8_lossy(line).into_owned();
            if line == "started" {
                let mount = std::process::Command::new("mount")
                    .args(["-t", "tmpfs", "planted", &sub.to_string_lossy()])
                    .status()
                    .unwrap();
                assert!(mount.success());
                fs::write(sub.join("planted-file"), "x").unwrap();
                mounted.store(true, Ordering::SeqCst);
            }
            ran_lines.push(line);
        })
    };
    if mounted.load(Ordering::SeqCst) {
        let _ = std::process::Command::new("umount").arg(&sub).status();
    }
    let _ = std::process::Command::new("umount")
        .arg(tools.path())
        .status();
    let outcome = outcome.unwrap();
    println!("{ran_lines:?}");
    assert_eq!(outcome.exit, Exit::Code(0), "{ran_lines:?}");
    assert!(mounted.load(Ordering::SeqCst), "the host mount was made");
    assert_eq!(
        ran_lines,
        ["started", "listed"],
        "the host's mount showed inside"
    );
}

#[test]
fn inherited_descriptors_do_not_leak() {
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("secret");
    fs::write(&secret, "FD-SECRET\n").unwrap();
    let path = std::ffi::CString::new(secret.to_str().unwrap()).unwrap();
    // Deliberately without O_CLOEXEC, like a descriptor cairn inherited.
    // SAFETY: open(2) with a valid C string; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    // Also an inherited directory descriptor: `openat(fd, "..")` would walk the host.
    let dir = std::ffi::CString::new("/").unwrap();
    // SAFETY: as above.
    let dir_fd = unsafe { libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    assert!(dir_fd > 2);

    let ws = workspace();
    let ran = run_ok(&sh(
        ws.path(),
        &format!(
            "cat /proc/self/fd/{fd} 2>/dev/null; ls /proc/self/fd/{dir_fd}/root 2>/dev/null; \
             ls /proc/self/fd | tr '\\n' ' '"
        ),
    ));
    // SAFETY: closing the fds opened above.
    unsafe {
        libc::close(fd);
        libc::close(dir_fd);
    }
    let out = ran.out();
    assert!(!out.contains("FD-SECRET"), "{out}");
    // stdin, stdout, stderr, and the descriptor `ls` opened to list the directory.
    assert_eq!(out.trim(), "0 1 2 3", "{out}");
}

#[test]
fn fork_bomb_is_bounded() {
    let ws = workspace();
    let limit = 24;
    let mut spec = sh(
        ws.path(),
        // The sleeper starts first, then the bomb in the background: once the
        // bomb fills the table nothing forks, and the main shell only waits
        // (dash exits when one of its own forks fails, which would end the
        // sandbox at once and the sampler would see nothing). Each bomb process
        // that forked stays alive (`sleep 3`) so the host-side sampler sees the
        // full table even on a loaded machine.
        "readlink /proc/self/ns/pid > /workspace/ns; sleep 2 & s=$!; f() { f | f & sleep 3; }; f & wait $s",
    );
    spec.limits.max_processes = limit;
    spec.limits.wall_clock = Duration::from_secs(4);

    // Count, from the host, the processes in the sandbox's pid namespace while it runs.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, peak, ns_file) = (stop.clone(), peak.clone(), ws.path().join("ns"));
        std::thread::spawn(move || {
            let mut ns = None;
            while !stop.load(Ordering::Relaxed) {
                if ns.is_none() {
                    ns = fs::read_to_string(&ns_file)
                        .ok()
                        .filter(|s| s.ends_with('\n'));
                }
                if let Some(ns) = &ns {
                    peak.fetch_max(pids_in_namespace(ns).len(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let ran = run_ok(&spec);
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    assert!(ran.elapsed < Duration::from_secs(8), "{:?}", ran.elapsed);
    let usage = ran.outcome.usage;
    assert!(
        usage.process_limit_hit,
        "the bomb must have pressed the limit: {usage:?}"
    );
    let peak_tasks = usage.peak_tasks.unwrap();
    assert!(
        peak_tasks <= u64::from(limit) + 2,
        "cgroup peak {peak_tasks}"
    );
    let seen = peak.load(Ordering::Relaxed);
    // The pid namespace holds the sandbox's init besides the command's processes.
    assert!(seen > 4, "the sampler saw the bomb: {seen}");
    assert!(seen <= limit as usize + 1, "host saw {seen} processes");
    assert!(pids_in_namespace(&namespace_of(ws.path())).is_empty());
    // The host can still fork.
    assert!(
        std::process::Command::new("true")
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn timeout_kills_the_whole_sandbox() {
    let ws = workspace();
    let mut spec = sh(
        ws.path(),
        "readlink /proc/self/ns/pid > /workspace/ns; sleep 60 & echo started; exec sleep 60",
    );
    spec.limits.wall_clock = Duration::from_secs(1);
    let ran = run_ok(&spec);
    assert_eq!(ran.outcome.exit, Exit::TimedOut);
    assert!(!ran.outcome.exit.success());
    assert_eq!(ran.out(), "started");
    assert!(
        ran.elapsed >= Duration::from_millis(950) && ran.elapsed < Duration::from_secs(3),
        "{:?}",
        ran.elapsed
    );
    assert!(pids_in_namespace(&namespace_of(ws.path())).is_empty());
}

#[test]
fn background_processes_end_with_the_command() {
    let ws = workspace();
    let ran = run_ok(&sh(
        ws.path(),
        "readlink /proc/self/ns/pid > /workspace/ns; (sleep 60 &); sleep 60 & echo done",
    ));
    assert_eq!(ran.outcome.exit, Exit::Code(0));
    assert_eq!(ran.out(), "done");
    assert!(ran.elapsed < Duration::from_secs(5), "{:?}", ran.elapsed);
    assert!(pids_in_namespace(&namespace_of(ws.path())).is_empty());
}

#[test]
fn memory_limit_stops_a_hog() {
    let ws = workspace();
    let limits = Limits {
        memory_bytes: 64 << 20,
        wall_clock: Duration::from_secs(10),
        ..Limits::default()
    };
    // `tail -c N` from a pipe keeps the last N bytes in memory.
    let mut hog = sh(
        ws.path(),
        "head -c 400000000 /dev/zero | tail -c 300000000 >/dev/null",
    );
    hog.limits = limits;
    let ran = run_ok(&hog);
    assert_eq!(ran.outcome.exit, Exit::OutOfMemory, "{ran:?}");
    assert!(!ran.outcome.exit.success());
    assert!(ran.outcome.usage.peak_memory_bytes.unwrap() <= 64 << 20);

    // tmpfs pages are memory too: /tmp is capped.
    let mut fill = sh(ws.path(), "head -c 200000000 /dev/zero > /tmp/fill");
    fill.limits = limits;
    let ran = run_ok(&fill);
    assert!(!ran.outcome.exit.success(), "{ran:?}");

    // Positive control: the same pipeline within the limit works.
    let mut small = sh(
        ws.path(),
        "head -c 20000000 /dev/zero | tail -c 10000000 | wc -c",
    );
    small.limits = limits;
    let ran = run_ok(&small);
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    assert_eq!(ran.out().trim(), "10000000");

    // The OOM killer picks sandbox processes first, never cairn's reaper.
    let ran = run_ok(&sh(ws.path(), "cat /proc/self/oom_score_adj"));
    assert_eq!(ran.out(), "1000");
}

/// The reaper is a copy of cairn's memory running as the sandbox user, and the
/// sandbox's init runs in that same memory: neither may ever be dumpable (their
/// `/proc` entries, `mem` among them, stay root's, so no process of the sandbox user
/// can read or trace them), and the init keeps no capability and no signal
/// handler. The command (exec'd, memory of its own) is dumpable.
#[test]
fn the_reaper_and_the_init_are_neither_dumpable_nor_privileged() {
    use std::os::unix::fs::MetadataExt;
    let ws = workspace();
    let spec = sh(ws.path(), "sleep 3");
    let runner = std::thread::spawn(move || run_ok(&spec));
    let me = std::process::id();
    let children = |parent: u32| -> Vec<u32> {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    let after = &stat[stat.rfind(')').unwrap_or(0) + 1..];
                    after.split_whitespace().nth(1) == Some(&parent.to_string())
                })
            })
            .collect()
    };
    // The reaper is our child, the init its child, the command the init's.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (reaper, init, command) = loop {
        let found = children(me).into_iter().find_map(|reaper| {
            let init = children(reaper).into_iter().next()?;
            let command = children(init).into_iter().find(|c| {
                fs::read_to_string(format!("/proc/{c}/cmdline")).is_ok_and(|c| c.contains("sleep"))
            })?;
            Some((reaper, init, command))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no reaper with an init running the command"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let status_of = |pid: u32| fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |status: &str, name: &str| -> String {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].trim().to_owned()
    };
    let (reaper_status, init_status) = (status_of(reaper), status_of(init));
    println!("reaper {reaper}: Uid {}", field(&reaper_status, "Uid:"));
    println!("init {init}:\n{init_status}");
    if cairn_sandbox_runs_as_root() {
        for status in [&reaper_status, &init_status] {
            let uids = field(status, "Uid:");
            assert!(
                uids.split_whitespace()
                    .all(|u| u == SANDBOX_UID.to_string()),
                "{uids}"
            );
        }
        // Not dumpable: the kernel keeps their /proc entries root's.
        for pid in [reaper, init] {
            let mem = fs::metadata(format!("/proc/{pid}/mem")).unwrap();
            assert_eq!(mem.uid(), 0, "{pid} is dumpable");
        }
        // Positive control: the command (exec'd, the sandbox user's) is dumpable.
        let command_mem = fs::metadata(format!("/proc/{command}/mem")).unwrap();
        assert_eq!(command_mem.uid(), SANDBOX_UID);
    }
    // The init holds no capability, in any set, and can gain none.
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(&init_status, set), "0000000000000000", "{set}");
    }
    assert_eq!(field(&init_status, "NoNewPrivs:"), "1");
    let score = |pid: u32| fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    println!(
        "oom_score_adj: reaper {}, init {}",
        score(reaper).trim(),
        score(init).trim()
    );
    assert_eq!(score(init).trim(), "1000");
    assert_eq!(score(command).trim(), "1000");
    // One memory, one score (the kernel keeps them equal): the OOM killer that
    // picks the reaper kills the init with it, and so the whole sandbox.
    assert_eq!(score(reaper), score(init));
    // The init handles and ignores no signal: none sent from inside the sandbox
    // reaches it (the kernel drops them for a namespace's init), and the command
    // starts with every disposition at its default.
    assert_eq!(field(&init_status, "SigIgn:"), "0000000000000000");
    assert_eq!(field(&init_status, "SigCgt:"), "0000000000000000");
    let ran = runner.join().unwrap();
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
}

/// The sandbox dies with its reaper (and so with cairn, whose death kills the
/// reaper): the init's parent-death signal survives its change of ids.
#[test]
fn killing_the_reaper_ends_the_sandbox_at_once() {
    let ws = workspace();
    let spec = sh(ws.path(), "sleep 30");
    let runner = std::thread::spawn(move || cairn_sandbox::run(&spec, &mut |_, _| {}));
    let me = std::process::id().to_string();
    let parent_of = |pid: &str| -> Option<String> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(
            stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .to_owned(),
        )
    };
    let pids = || -> Vec<String> {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|p| p.parse::<u32>().is_ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (reaper, init, sleeper) = loop {
        let found = pids().into_iter().find_map(|reaper| {
            (parent_of(&reaper)? == me).then_some(())?;
            let init = pids()
                .into_iter()
                .find(|p| parent_of(p).as_deref() == Some(&reaper))?;
            let sleeper = pids().into_iter().find(|p| {
                parent_of(p).as_deref() == Some(&init)
                    && fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.contains("sleep"))
            })?;
            Some((reaper, init, sleeper))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "the sandbox never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid: i32 = reaper.parse().unwrap();
    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // Well before the supervision's own patience (5 s) would kill what is left.
    let deadline = Instant::now() + Duration::from_secs(2);
    let alive = |pid: &str| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s[s.rfind(')').unwrap_or(0) + 1..]
                .trim_start()
                .starts_with('Z')
        })
    };
    while (alive(&init) || alive(&sleeper)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(&init), "the init outlived its reaper");
    assert!(!alive(&sleeper), "the command outlived its reaper");
    let _ = runner.join().unwrap();
}

/// The sandbox's init runs in a copy of cairn's memory: from inside, it shows a
/// name and nothing else (not cairn's command line, environment, memory, maps or
/// descriptors), and it cannot be killed from inside.
#[test]
fn the_init_shows_nothing_of_cairn_to_the_sandbox() {
    let ws = workspace();
    let probe = |what: &str, command: &str| {
        format!("{command} >/dev/null 2>&1 && echo {what}-readable || echo {what}-denied; ")
    };
    let script = [
        "echo \"cmdline=$(tr '\\0' ' ' < /proc/1/cmdline)\"; ".to_owned(),
        "echo \"comm=$(cat /proc/1/comm)\"; ".to_owned(),
        probe("environ", "cat /proc/1/environ"),
        probe("mem", "head -c 1 /proc/1/mem"),
        probe("maps", "cat /proc/1/maps"),
        probe("fd", "ls /proc/1/fd"),
        probe("root", "ls /proc/1/root/"),
        // Positive control: the command's own.
        probe("self-environ", "cat /proc/self/environ"),
        "kill -KILL 1; kill -TERM 1; echo still-here".to_owned(),
    ]
    .concat();
    let ran = run_ok(&sh(ws.path(), &script));
    let out = ran.out();
    println!("{out}");
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    let cmdline = out
        .lines()
        .find_map(|l| l.strip_prefix("cmdline="))
        .unwrap_or("");
    assert_eq!(cmdline.trim_end(), "cairn-sandbox", "{out}");
    assert!(out.contains("comm=init\n"), "{out}");
    for denied in ["environ", "mem", "maps", "fd", "root"] {
        assert!(out.contains(&format!("{denied}-denied")), "{denied}: {out}");
    }
    assert!(out.contains("self-environ-readable"), "{out}");
    assert!(out.ends_with("still-here"), "{out}");
}

/// The sandbox's `/dev` is bubblewrap's minimal one and works: the six device
/// nodes, the standard links, an empty `shm`, and a private devpts that hands out
/// terminals; `/proc` is fresh and its outward-reaching parts read-only.
#[test]
fn dev_and_proc_are_minimal_and_work() {
    let ws = workspace();
    let script = "ls -A /dev | tr '\\n' ' '; echo; \
                  echo discarded > /dev/null && echo null-ok; \
                  head -c 16 /dev/urandom | wc -c; \
                  python3 -c 'import os; m, s = os.openpty(); print(\"pty\", os.ttyname(s))'; \
                  readlink /dev/stdout /dev/fd; \
                  echo 1 > /proc/sys/kernel/printk 2>/dev/null || echo sys-read-only; \
                  echo h > /proc/sysrq-trigger 2>/dev/null || echo sysrq-read-only; \
                  grep -c . /proc/self/mountinfo";
    let ran = run_ok(&sh(ws.path(), script));
    let out = ran.out();
    println!("{out}");
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap_or("").trim_end(),
        "core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
    for expected in [
        "null-ok",
        "16",
        "pty /dev/pts/0",
        "/proc/self/fd/1",
        "/proc/self/fd",
        "sys-read-only",
        "sysrq-read-only",
    ] {
        assert!(out.lines().any(|l| l == expected), "{expected}: {out}");
    }
}

fn cairn_sandbox_runs_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn concurrent_runs_stay_apart() {
    let workers: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let ws = workspace();
                let ran = run_ok(&sh(
                    ws.path(),
                    &format!("echo {i} > /workspace/id; ls /workspace; cat /workspace/id"),
                ));
                (i, ran.outcome.exit, ran.out())
            })
        })
        .collect();
    for worker in workers {
        let (i, exit, out) = worker.join().unwrap();
        assert_eq!(exit, Exit::Code(0));
        assert_eq!(out, format!("id\n{i}"));
    }
}

#[test]
fn a_panicking_consumer_still_ends_the_sandbox() {
    let ws = workspace();
    let spec = sh(
        ws.path(),
        "readlink /proc/self/ns/pid > /workspace/ns; echo ready; exec sleep 60",
    );
    let start = Instant::now();
    let unwound = std::panic::catch_unwind(|| {
        let _ = cairn_sandbox::run(&spec, &mut |_, _| panic!("consumer failed"));
    });
    assert!(unwound.is_err());
    assert!(start.elapsed() < Duration::from_secs(5));
    let ns = namespace_of(ws.path());
    let until = Instant::now() + Duration::from_secs(2);
    while !pids_in_namespace(&ns).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(pids_in_namespace(&ns).is_empty());
    // Our child (the reaper) is reaped too, although `run` never got to its end:
    // no process of ours is left, not even a zombie.
    let me = std::process::id();
    let children = || -> Vec<String> {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                let after = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
                after.split_whitespace().nth(1) == Some(me.to_string().as_str())
            })
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(2);
    while !children().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(children(), Vec::<String>::new());
}

#[test]
fn output_is_delivered_line_by_line() {
    let ws = workspace();
    let blob = 10 << 20;
    let ran = run_ok(&sh(
        ws.path(),
        &format!(
            "printf 'one\\ntwo\\r\\n\\n\\001\\002\\377\\000x\\n'; echo oops >&2; \
             head -c {blob} /dev/zero | tr '\\000' a"
        ),
    ));
    assert!(ran.outcome.exit.success(), "{:?}", ran.outcome);
    let max = Limits::default().max_line_bytes;
    let mut expected: Vec<Vec<u8>> = vec![
        b"one".to_vec(),
        b"two".to_vec(),
        b"".to_vec(),
        vec![1, 2, 0xff, 0, b'x'],
    ];
    expected.extend(std::iter::repeat_n(vec![b'a'; max], blob / max));
    assert_eq!(ran.stdout.len(), expected.len());
    assert!(ran.stdout == expected, "stdout lines differ");
    assert_eq!(ran.stderr, vec![b"oops".to_vec()]);
}

#[test]
fn lines_arrive_while_the_command_runs() {
    let ws = workspace();
    let ran = run_ok(&sh(ws.path(), "echo first; sleep 1; echo second"));
    assert_eq!(ran.out(), "first\nsecond");
    let (first, second) = (ran.stdout_at[0], ran.stdout_at[1]);
    assert!(second >= Duration::from_millis(900), "{second:?}");
    assert!(
        second - first >= Duration::from_millis(800),
        "{first:?} {second:?}"
    );
}

#[test]
fn exit_codes_are_exits_not_errors() {
    let ws = workspace();
    let cases: &[(&str, Exit)] = &[
        ("true", Exit::Code(0)),
        ("exit 3", Exit::Code(3)),
        ("no-such-command-anywhere", Exit::Code(127)),
        ("kill -9 $$", Exit::Code(137)),
    ];
    for (script, expected) in cases {
        let ran = run_ok(&sh(ws.path(), script));
        assert_eq!(ran.outcome.exit, *expected, "{script}: {ran:?}");
        assert_eq!(ran.outcome.exit.success(), *expected == Exit::Code(0));
    }
    let mut missing = sh(ws.path(), "");
    missing.argv = vec!["/no/such/program".into()];
    let ran = run_ok(&missing);
    assert_eq!(ran.outcome.exit, Exit::Code(127));
    // Said on stderr, naming the program.
    assert!(
        ran.err()
            .contains("execvp /no/such/program: No such file or directory"),
        "{ran:?}"
    );
    missing.argv = vec!["/etc".into()];
    assert_eq!(run_ok(&missing).outcome.exit, Exit::Code(126));

    // As execvp: a bare name is looked up in the command's PATH, a name with a slash
    // is not, and a file without `#!` is run by /bin/sh.
    fs::write(
        ws.path().join("plain-script"),
        "echo from-the-script \"$1\"\n",
    )
    .unwrap();
    fs::set_permissions(
        ws.path().join("plain-script"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut script = sh(ws.path(), "");
    script.argv = vec!["./plain-script".into(), "with arg".into()];
    let ran = run_ok(&script);
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    assert_eq!(ran.out(), "from-the-script with arg");
    script.argv = vec!["plain-script".into()];
    assert_eq!(run_ok(&script).outcome.exit, Exit::Code(127));
    script.env.retain(|(name, _)| name != "PATH");
    script
        .env
        .push(("PATH".into(), "/nowhere:/workspace".into()));
    assert_eq!(run_ok(&script).out(), "from-the-script ");
}

#[test]
fn invalid_specs_and_broken_setups_are_errors() {
    let ws = workspace();
    let invalid = |change: &dyn Fn(&mut SandboxSpec)| {
        let mut spec = sh(ws.path(), "true");
        change(&mut spec);
        try_run(&spec).unwrap_err()
    };
    let relative = invalid(&|s| {
        s.read_only_binds
            .push((PathBuf::from("opt/tools"), PathBuf::from("/opt/tools")));
    });
    assert!(matches!(
        relative,
        SandboxError::InvalidSpec {
            field: "read_only_binds",
            ..
        }
    ));
    let escaping = invalid(&|s| {
        s.read_only_binds
            .push((PathBuf::from("/usr"), PathBuf::from("/opt/../etc")));
    });
    assert!(
        matches!(escaping, SandboxError::InvalidSpec { .. }),
        "{escaping}"
    );
    assert!(matches!(
        invalid(&|s| s.argv.clear()),
        SandboxError::InvalidSpec { field: "argv", .. }
    ));
    assert!(matches!(
        invalid(&|s| s.env.push(("A=B".into(), "x".into()))),
        SandboxError::InvalidSpec { field: "env", .. }
    ));
    assert!(matches!(
        invalid(&|s| s.limits.max_line_bytes = 0),
        SandboxError::InvalidSpec { .. }
    ));
    assert!(matches!(
        invalid(&|s| s.workspace = ws.path().join("missing")),
        SandboxError::Workspace { .. }
    ));

    // The sandbox's set-up itself refuses: a mount source that does not exist.
    let setup = invalid(&|s| {
        s.read_only_binds.push((
            PathBuf::from("/no/such/toolchain"),
            PathBuf::from("/opt/tc"),
        ));
    });
    match setup {
        SandboxError::Setup { message, .. } => {
            assert!(message.contains("/no/such/toolchain"), "{message}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
}

#[test]
fn prepare_workspace_does_not_follow_symlinks() {
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("host-file");
    fs::write(&target, "host\n").unwrap();
    let ws = tempfile::tempdir().unwrap();
    fs::create_dir_all(ws.path().join("src/deep")).unwrap();
    fs::write(ws.path().join("src/deep/main.c"), "int main;\n").unwrap();
    std::os::unix::fs::symlink(&target, ws.path().join("link")).unwrap();
    std::os::unix::fs::symlink(host.path(), ws.path().join("dirlink")).unwrap();

    prepare_workspace(ws.path()).unwrap();
    for path in ["", "src", "src/deep", "src/deep/main.c"] {
        assert_eq!(
            fs::metadata(ws.path().join(path)).unwrap().uid(),
            SANDBOX_UID,
            "{path}"
        );
    }
    assert_eq!(
        fs::symlink_metadata(ws.path().join("link")).unwrap().uid(),
        SANDBOX_UID
    );
    assert_eq!(
        fs::metadata(&target).unwrap().uid(),
        0,
        "symlink target untouched"
    );
    assert_eq!(
        fs::metadata(host.path()).unwrap().uid(),
        0,
        "dir target untouched"
    );

    // The sandbox can now change what root put there.
    let ran = run_ok(&sh(
        ws.path(),
        "echo more >> src/deep/main.c && mkdir src/new",
    ));
    assert!(ran.outcome.exit.success(), "{ran:?}");
    assert_eq!(
        fs::read_to_string(ws.path().join("src/deep/main.c")).unwrap(),
        "int main;\nmore\n"
    );
    assert!(
        prepare_workspace(&ws.path().join("link")).is_err(),
        "a symlink is refused"
    );

    // A hard link to a host file (a local `git clone`, a package store) is refused:
    // re-owning it would hand the host's other name for it to the sandbox.
    fs::hard_link(&target, ws.path().join("src/shared-object")).unwrap();
    let refused = prepare_workspace(ws.path()).unwrap_err();
    assert!(
        matches!(&refused, SandboxError::Workspace { path, .. } if path.ends_with("src/shared-object")),
        "{refused}"
    );
    assert_eq!(
        fs::metadata(&target).unwrap().uid(),
        0,
        "hard-linked file untouched"
    );
    // Hard links the sandbox made itself (cargo does) are its own files: fine.
    fs::remove_file(ws.path().join("src/shared-object")).unwrap();
    let ran = run_ok(&sh(ws.path(), "ln src/deep/main.c src/again"));
    assert!(ran.outcome.exit.success(), "{ran:?}");
    prepare_workspace(ws.path()).unwrap();
}

/// Issue 19: a run starts no thread of cairn's: the supervision (both output
/// pipes, the exit, the wall clock) runs on the caller's thread, the one that
/// gets every line. Counted from inside the line callback, while the sandbox
/// sleeps. Its output still arrives whole and in each stream's order.
#[test]
fn a_run_starts_no_thread_of_its_own() {
    let tasks = || -> std::collections::BTreeSet<String> {
        fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .map(|t| t.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let ws = workspace();
    let mut seen = Vec::new();
    let mut lines = Vec::new();
    let spec = sh(
        ws.path(),
        "for i in 1 2 3; do echo out-$i; echo err-$i >&2; done; sleep 0.2; echo last",
    );
    let caller = std::thread::current().id();
    let before = tasks();
    let outcome = cairn_sandbox::run(&spec, &mut |stream, line| {
        assert_eq!(std::thread::current().id(), caller);
        seen.push(tasks());
        lines.push((stream, String::from_utf8_lossy(line).into_owned()));
    })
    .unwrap();
    println!("threads before: {before:?}, during: {:?}", seen.last());
    assert_eq!(outcome.exit, Exit::Code(0));
    assert_eq!(seen.len(), 7, "{lines:?}");
    for during in &seen {
        assert!(during.is_subset(&before), "{before:?} -> {during:?}");
    }
    let out: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| *s == cairn_sandbox::Stream::Stdout)
        .map(|(_, l)| l.as_str())
        .collect();
    let err: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| *s == cairn_sandbox::Stream::Stderr)
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(out, ["out-1", "out-2", "out-3", "last"]);
    assert_eq!(err, ["err-1", "err-2", "err-3"]);
}

/// `bubblewrap_alone` (what `cairn bench sandbox` times to tell bubblewrap's
/// share from cairn's) is the step's own sandbox: the same hostname, read-only
/// system, scrubbed environment and no capability, without the status
/// descriptor only cairn's supervision reads; a command that looks like that
/// option is left alone, and a step with a network is refused.
#[test]
fn bubblewrap_alone_is_the_steps_sandbox_without_cairns_status_descriptor() {
    let ws = workspace();
    let spec = sh(
        ws.path(),
        "hostname; touch /usr/x 2>/dev/null || echo usr-read-only; \
         grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '; \
         env | sort | tr '\\n' ' '",
    );
    let alone = cairn_sandbox::bubblewrap_alone(&spec).unwrap();
    assert!(
        !alone.args.iter().any(|a| a == "--json-status-fd"),
        "{:?}",
        alone.args
    );
    let out = alone.command().output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], cairn_sandbox::HOSTNAME, "{text}");
    assert_eq!(lines[1], "usr-read-only", "{text}");
    assert_eq!(lines[2], "CapEff: 0000000000000000", "{text}");
    assert_eq!(lines[3], "NoNewPrivs: 1", "{text}");
    assert!(lines[4].contains("HOME=/home/cairn"), "{text}");
    assert!(
        !lines[4].contains("CARGO"),
        "the host's environment leaked: {text}"
    );

    // Only bubblewrap's own options lose the status descriptor.
    let mut lookalike = sh(ws.path(), "true");
    lookalike.argv = vec!["/bin/echo".into(), "--json-status-fd".into(), "3".into()];
    let alone = cairn_sandbox::bubblewrap_alone(&lookalike).unwrap();
    assert!(
        alone
            .args
            .ends_with(&["/bin/echo".into(), "--json-status-fd".into(), "3".into()]),
        "{:?}",
        alone.args
    );

    let mut networked = sh(ws.path(), "true");
    networked.network = true;
    assert!(matches!(
        cairn_sandbox::bubblewrap_alone(&networked),
        Err(SandboxError::InvalidSpec {
            field: "network",
            ..
        })
    ));
}

//! Image sandboxes against the real sandbox (cairn's runtime; bubblewrap for detached
//! sandboxes): a static program alone in an almost empty root filesystem runs; it
//! cannot see or write what it must not, has no network but its own loopback, is
//! bounded and killed; a running one is reachable only from its own network
//! namespace; a detached one outlives its starter and stops from a record.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_sandbox::{
    CgroupKind, DetachedSandbox, Exit, ImageNetwork, ImageSandboxSpec, LeftReason, Limits,
    PortWait, RunningSandbox, SANDBOX_UID, SandboxError, Stream, cgroup_parents,
    in_network_namespace, list_cgroups, run_in_network_of, start_detached, start_image,
    stop_detached, sweep_cgroups,
};
use common::{Ran, run_image_ok, run_ok, sh, workspace};
use tempfile::TempDir;

/// The probe (tests/data/probe.c), compiled once per test process with `gcc -static`.
fn probe_binary() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/probe.c");
        let out =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("probe-{}", std::process::id()));
        let status = Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&out)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success(), "gcc -static failed");
        out
    })
}

/// An almost empty root filesystem: the probe under a unique name, `/etc/passwd`,
/// `/etc/group`, an `/app` directory, and a root-only file. Owned by root, like an
/// unpacked image; world-readable where the image means it.
struct Rootfs {
    dir: TempDir,
    /// The probe's file name, unique to this rootfs: `pgrep -f` finds its processes.
    name: String,
}

fn rootfs() -> Rootfs {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "cairnprobe{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };
    mode(root, 0o755);
    for sub in ["bin", "etc", "app"] {
        fs::create_dir(root.join(sub)).unwrap();
        mode(&root.join(sub), 0o755);
    }
    let probe = root.join("bin").join(&name);
    fs::copy(probe_binary(), &probe).unwrap();
    mode(&probe, 0o755);
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n\
             app:x:1000:1000:app:/app:/bin/sh\n",
            0o644,
        ),
        (
            "etc/group",
            "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n",
            0o644,
        ),
        ("etc/root-only", "ROOT-ONLY\n", 0o600),
        ("app/data", "APP-DATA\n", 0o644),
    ];
    for (path, contents, bits) in files {
        fs::write(root.join(path), contents).unwrap();
        mode(&root.join(path), bits);
    }
    Rootfs { dir, name }
}

impl Rootfs {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The probe with `args`, PATH only, a 10 s clock.
    fn spec(&self, args: &[&str]) -> ImageSandboxSpec {
        let mut argv = vec![format!("/bin/{}", self.name)];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let mut spec = ImageSandboxSpec::new(self.path(), argv);
        spec.env.push(("PATH".into(), "/bin".into()));
        spec.limits.wall_clock = Duration::from_secs(10);
        spec
    }

    /// Host pids whose command line names this rootfs's probe (`pgrep -f`).
    fn pgrep(&self) -> String {
        let out = Command::new("pgrep")
            .args(["-f", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits up to 5 s for `pgrep` to find nothing.
    fn assert_gone(&self) {
        let until = Instant::now() + Duration::from_secs(5);
        while !self.pgrep().is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.pgrep(), "", "processes of the sandbox are left");
    }
}

fn lines(ran: &Ran) -> Vec<String> {
    ran.out().lines().map(str::to_owned).collect()
}

/// Waits for the sandbox's output to contain `needle`.
fn wait_output(sandbox: &RunningSandbox, needle: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = sandbox
            .tail()
            .iter()
            .any(|(_, line)| String::from_utf8_lossy(line).contains(needle));
        if seen {
            return;
        }
        assert!(
            Instant::now() < until,
            "no {needle:?} in {:?}",
            sandbox.tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// GET / on `stream`; the whole response.
fn http_get(mut stream: TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A port nothing listens on right now on the host's 127.0.0.1.
fn free_host_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

/// A per-deployment token for the detached sandboxes started here: new for
/// every run of the tests, so a run killed before it cleaned up (or the same
/// tests running in another checkout) never looks like this one's.
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_static_binary_runs_in_an_almost_empty_rootfs() {
    let root = rootfs();
    let ran = run_image_ok(&root.spec(&["say", "hello", "from the image"]));
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    assert_eq!(lines(&ran), ["hello", "from the image"]);

    // The environment is exactly the spec's (the sandbox adds PWD); the working
    // directory and the ids seen inside are the spec's.
    let mut spec = root.spec(&["env"]);
    spec.env.push(("GREETING".into(), "a = b c".into()));
    spec.working_dir = "/app".into();
    let mut env = lines(&run_image_ok(&spec));
    env.sort();
    assert_eq!(env, ["GREETING=a = b c", "PATH=/bin", "PWD=/app"]);
    spec.argv[1] = "pwd".into();
    assert_eq!(run_image_ok(&spec).out(), "/app");
    spec.argv[1] = "id".into();
    assert_eq!(
        run_image_ok(&spec).out(),
        "uid=65534 euid=65534 gid=65534 egid=65534"
    );
    // The image's numeric USER is what the command sees, still not root.
    spec.uid = 1000;
    spec.gid = 1000;
    assert_eq!(
        run_image_ok(&spec).out(),
        "uid=1000 euid=1000 gid=1000 egid=1000"
    );
    // A bare name is looked up in the spec's PATH, inside the image.
    let mut bare = root.spec(&["say", "found"]);
    bare.argv[0] = root.name.clone();
    assert_eq!(run_image_ok(&bare).out(), "found");

    // A missing program and a missing working directory.
    let mut missing = root.spec(&[]);
    missing.argv = vec!["/bin/no-such-program".into()];
    assert_eq!(run_image_ok(&missing).outcome.exit, Exit::Code(127));
    let mut nowhere = root.spec(&["pwd"]);
    nowhere.working_dir = "/no/such/dir".into();
    assert!(matches!(
        cairn_sandbox::run_image(&nowhere, &mut |_, _| {}),
        Err(SandboxError::Setup { .. })
    ));
    // A rootfs the sandbox user cannot reach (a 0700 directory on the way) is refused
    // with the directory named, before anything starts.
    let hidden = tempfile::tempdir().unwrap();
    fs::set_permissions(hidden.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let inner = hidden.path().join("rootfs");
    fs::rename(root.path(), &inner).unwrap();
    let mut unreachable = root.spec(&["pwd"]);
    unreachable.rootfs = inner.clone();
    match cairn_sandbox::run_image(&unreachable, &mut |_, _| {}) {
        Err(SandboxError::Rootfs { path, .. }) => assert_eq!(path, hidden.path()),
        other => panic!("{other:?}"),
    }
    fs::rename(&inner, root.path()).unwrap();
    let mut not_a_root = root.spec(&["pwd"]);
    not_a_root.rootfs = root.path().join("missing");
    assert!(matches!(
        cairn_sandbox::run_image(&not_a_root, &mut |_, _| {}),
        Err(SandboxError::Rootfs { .. })
    ));
}

#[test]
fn the_image_sees_only_its_rootfs_and_cannot_write_it() {
    // A stand-in for cairn's data dir and the host's home, readable by anyone on the
    // host: only the mount namespace keeps them out of reach.
    let host = tempfile::tempdir().unwrap();
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let secret = host.path().join("signing.key");
    fs::write(&secret, "TOPSECRET-KEY\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();

    let root = rootfs();
    let secret_path = secret.to_str().unwrap();
    let ran = run_image_ok(&root.spec(&[
        "cat",
        secret_path,
        "/root/.bashrc",
        "/etc/shadow",
        "/etc/root-only",
        "/app/data",
    ]));
    let out = ran.out();
    assert!(!out.contains("TOPSECRET"), "{out}");
    assert!(
        !out.contains("ROOT-ONLY"),
        "root-only file of the image: {out}"
    );
    assert!(
        out.contains("DENIED /etc/root-only: Permission denied"),
        "{out}"
    );
    assert!(
        out.contains(&format!("DENIED {secret_path}: No such file")),
        "{out}"
    );
    // Positive control: a world-readable file of the image is read.
    assert!(out.ends_with("APP-DATA"), "{out}");

    // The root is the rootfs plus the sandbox's own mounts.
    let mut top = lines(&run_image_ok(&root.spec(&["ls", "/"])));
    top.sort();
    assert_eq!(top, ["app", "bin", "dev", "etc", "proc", "run", "tmp"]);
    let host_home = lines(&run_image_ok(&root.spec(&["ls", "/home"])));
    assert!(host_home[0].starts_with("DENIED"), "{host_home:?}");

    // Read-only everywhere but the private /tmp and /run.
    let probe = format!("/bin/{}", root.name);
    let targets = ["/escaped", "/etc/passwd", "/etc/new", "/app/new", &probe];
    let mut args = vec!["write"];
    args.extend(targets);
    args.extend(["/tmp/scratch", "/run/scratch"]);
    let written = lines(&run_image_ok(&root.spec(&args)));
    for target in targets {
        assert!(
            written.contains(&format!("REFUSED {target}")),
            "{written:?}"
        );
    }
    assert!(
        written.contains(&"WROTE /tmp/scratch".to_owned()),
        "{written:?}"
    );
    assert!(
        written.contains(&"WROTE /run/scratch".to_owned()),
        "{written:?}"
    );
    assert!(!root.path().join("escaped").exists());
    assert!(
        !root.path().join("tmp").exists(),
        "the scratch stayed inside"
    );
    assert!(
        fs::read_to_string(root.path().join("etc/passwd"))
            .unwrap()
            .starts_with("root:")
    );

    // The image's directories are mounted read-only and nosuid: a setuid binary in an
    // image cannot raise anything.
    let mounts = run_image_ok(&root.spec(&["cat", "/proc/self/mounts"])).out();
    for dir in ["/app", "/bin", "/etc"] {
        let line = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(dir))
            .unwrap_or_else(|| panic!("{dir} not mounted: {mounts}"));
        let options: Vec<&str> = line.split_whitespace().nth(3).unwrap().split(',').collect();
        assert!(
            options.contains(&"ro") && options.contains(&"nosuid"),
            "{line}"
        );
    }

    // No capabilities, and on the host it is the unprivileged sandbox user.
    let caps = run_image_ok(&root.spec(&["cat", "/proc/self/status"])).out();
    for cap in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(
            caps.contains(&format!("{cap}:\t0000000000000000")),
            "{cap}: {caps}"
        );
    }
    let sandbox = start_image(&root.spec(&["sleep", "30"]), None).unwrap();
    wait_output(&sandbox, "sleeping");
    let pids = root.pgrep();
    assert!(!pids.is_empty());
    for pid in pids.lines() {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uid.split_whitespace().skip(1).collect::<Vec<_>>(),
            vec![SANDBOX_UID.to_string().as_str(); 4],
            "{uid}"
        );
    }
    drop(sandbox);
    root.assert_gone();
}

#[test]
fn an_isolated_image_has_only_its_own_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let root = rootfs();
    let devices = run_image_ok(&root.spec(&["cat", "/proc/net/dev"])).out();
    let names: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(names, ["lo"], "{devices}");
    let closed = run_image_ok(&root.spec(&["connect", "127.0.0.1", &port]));
    assert_eq!(closed.out(), "REFUSED");
    assert!(!accepted_within(&listener, Duration::from_millis(200)));

    // Positive control: with the host's network the same probe reaches the listener.
    let mut open = root.spec(&["connect", "127.0.0.1", &port]);
    open.network = ImageNetwork::Host;
    assert_eq!(run_image_ok(&open).out(), "CONNECTED");
    assert!(accepted_within(&listener, Duration::from_secs(2)));
}

#[test]
fn a_fork_bomb_in_an_image_is_bounded() {
    let root = rootfs();
    let limit = 16;
    let mut spec = root.spec(&["forkbomb", "500"]);
    spec.limits.max_processes = limit;
    let ran = run_image_ok(&spec);
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    let forked: u32 = ran.out().strip_prefix("forked ").unwrap().parse().unwrap();
    // The probe itself is one of the command's tasks.
    assert!(forked < limit, "forked {forked}");
    assert!(forked > 4, "the bomb forked: {forked}");
    assert!(
        ran.outcome.usage.process_limit_hit,
        "{:?}",
        ran.outcome.usage
    );
    root.assert_gone();
}

#[test]
fn an_image_is_held_to_its_memory_limit() {
    let root = rootfs();
    let mut hog = root.spec(&["hog", "300"]);
    hog.limits.memory_bytes = 64 << 20;
    let ran = run_image_ok(&hog);
    assert_eq!(ran.outcome.exit, Exit::OutOfMemory, "{ran:?}");
    assert!(ran.outcome.usage.peak_memory_bytes.unwrap() <= 64 << 20);
    // Positive control: within the limit the same probe completes.
    let mut small = root.spec(&["hog", "16"]);
    small.limits.memory_bytes = 64 << 20;
    let ran = run_image_ok(&small);
    assert_eq!(ran.outcome.exit, Exit::Code(0), "{ran:?}");
    assert_eq!(ran.out(), "touched 16 MiB");
}

#[test]
fn the_wall_clock_kills_the_whole_image_sandbox() {
    let root = rootfs();
    let mut spec = root.spec(&["sleepers", "3", "60"]);
    spec.limits.wall_clock = Duration::from_secs(1);
    let ran = run_image_ok(&spec);
    assert_eq!(ran.outcome.exit, Exit::TimedOut);
    assert!(ran.elapsed < Duration::from_secs(4), "{:?}", ran.elapsed);
    root.assert_gone();

    // In the background too.
    let sandbox = start_image(&spec, None).unwrap();
    let outcome = sandbox.wait().unwrap();
    assert_eq!(outcome.exit, Exit::TimedOut);
    root.assert_gone();
}

/// An image whose command ends at once (a server that exits before it listens)
/// has started, even when its init is gone before `start_image` can pin it: the
/// handle says it exited, with its outcome and its output, never a set-up error.
#[test]
fn an_image_that_ends_at_once_has_started_and_ended() {
    let root = rootfs();
    for round in 0..20 {
        let sandbox = start_image(&root.spec(&["say", "bye"]), None)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(
            sandbox.wait_port(8080, Duration::from_secs(5)),
            cairn_sandbox::PortWait::Exited
        );
        let (outcome, tail) = sandbox.stop_with_tail(Duration::from_secs(1)).unwrap();
        assert_eq!(outcome.exit, Exit::Code(0), "round {round}");
        assert!(
            tail.iter().any(|(_, line)| line == b"bye"),
            "round {round}: {tail:?}"
        );
    }
    root.assert_gone();
}

#[test]
fn handles_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<RunningSandbox>();
    send_and_sync::<cairn_sandbox::NetworkNamespace>();
    send_and_sync::<DetachedSandbox>();
}

#[test]
fn a_running_image_is_reachable_only_from_its_namespace() {
    let root = rootfs();
    let (sent, received) = std::sync::mpsc::channel();
    let sink: cairn_sandbox::LineSink = Box::new(move |stream, line: &[u8]| {
        let _ = sent.send((stream, line.to_vec()));
    });
    let started = Instant::now();
    let sandbox = start_image(&root.spec(&["serve", "8080"]), Some(sink)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(sandbox.is_running());
    assert_eq!(
        sandbox.wait_port(8080, Duration::from_secs(5)),
        PortWait::Listening
    );
    assert_eq!(
        sandbox.wait_port(8081, Duration::from_millis(200)),
        PortWait::TimedOut
    );
    // The callback got the line, on the supervisor's thread.
    let (stream, line) = received.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(
        (stream, line.as_slice()),
        (Stream::Stdout, &b"listening on 8080"[..])
    );

    // cairn's own code reaches it from a thread inside the namespace.
    let network = sandbox.network_namespace().unwrap();
    let response = in_network_namespace(&network, || {
        TcpStream::connect("127.0.0.1:8080").map(http_get)
    })
    .unwrap()
    .unwrap();
    assert!(response.ends_with("\r\n\r\nhello\n"), "{response}");
    // This thread is still in the host's namespace.
    let host_ns = fs::read_link("/proc/thread-self/ns/net").unwrap();
    assert_ne!(host_ns.to_string_lossy(), network.id().unwrap());

    let stopped = sandbox.stop(Duration::from_secs(2)).unwrap();
    assert_eq!(stopped.exit, Exit::Code(143), "ended by SIGTERM");
    root.assert_gone();
    // The namespace handle outlives the sandbox, but nothing listens in it any more.
    let refused = in_network_namespace(&network, || TcpStream::connect("127.0.0.1:8080")).unwrap();
    assert!(refused.is_err());
}

#[test]
fn a_joined_step_reaches_the_rc_and_nothing_else() {
    let root = rootfs();
    let sandbox = start_image(&root.spec(&["serve", "8080"]), None).unwrap();
    assert_eq!(
        sandbox.wait_port(8080, Duration::from_secs(5)),
        PortWait::Listening
    );
    // On every host address: loopback and the host's own non-loopback one.
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let host_ip = common::host_address();
    let script = format!(
        "cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' '; \
         if exec 3<>/dev/tcp/127.0.0.1/8080; then printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; \
         cat <&3 2>/dev/null | tail -n 1; else echo RC-REFUSED; fi; \
         for ip in 127.0.0.1 {host_ip}; do \
         if bash -c \"exec 4<>/dev/tcp/$ip/{host_port}\" 2>/dev/null; \
         then echo HOST-CONNECTED; else echo HOST-REFUSED; fi; done"
    );
    let ws = workspace();
    let mut step = sh(ws.path(), "");
    step.argv = vec!["/bin/bash".into(), "-c".into(), script.clone()];
    let network = sandbox.network_namespace().unwrap();
    let mut out = Vec::new();
    let outcome = run_in_network_of(&step, &network, &mut |_, line| {
        out.push(String::from_utf8_lossy(line).into_owned());
    })
    .unwrap();
    assert!(outcome.exit.success(), "{outcome:?} {out:?}");
    assert_eq!(out, ["lo", "hello", "HOST-REFUSED", "HOST-REFUSED"]);
    assert!(!accepted_within(&host, Duration::from_millis(200)));

    // Positive control: a fetch step (user-mode network) reaches the host's listener
    // through the host's own address.
    let mut control = step.clone();
    control.argv[2] = format!(
        "if bash -c 'exec 4<>/dev/tcp/{host_ip}/{host_port}' 2>/dev/null; \
         then echo HOST-CONNECTED; else echo HOST-REFUSED; fi"
    );
    control.network = true;
    assert_eq!(run_ok(&control).out(), "HOST-CONNECTED");
    assert!(accepted_within(&host, Duration::from_secs(2)));
    // Joining and sharing the host's network at once is refused.
    assert!(matches!(
        run_in_network_of(&control, &network, &mut |_, _| {}),
        Err(SandboxError::InvalidSpec {
            field: "network",
            ..
        })
    ));
    drop(sandbox);
    root.assert_gone();
}

#[test]
fn wait_port_counts_only_the_sandbox_own_listeners() {
    // On the host's network a host process's listener is on the same table: it must
    // not pass for the image's.
    let root = rootfs();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let port = free_host_port();
    let mut spec = root.spec(&["serve", &port.to_string()]);
    spec.network = ImageNetwork::Host;
    let sandbox = start_image(&spec, None).unwrap();
    assert_eq!(
        sandbox.wait_port(port, Duration::from_secs(5)),
        PortWait::Listening
    );
    assert_eq!(
        sandbox.wait_port(taken_port, Duration::from_millis(200)),
        PortWait::TimedOut
    );
    // On the host's network the app is reachable from the host.
    let response = http_get(TcpStream::connect(("127.0.0.1", port)).unwrap());
    assert!(response.ends_with("hello\n"), "{response}");
    drop(sandbox);
    root.assert_gone();

    // A command that ends: Exited, not a timeout.
    let quick = start_image(&root.spec(&["say", "bye"]), None).unwrap();
    assert_eq!(
        quick.wait_port(8080, Duration::from_secs(5)),
        PortWait::Exited
    );
    assert!(!quick.is_running());
    // Its output is whole once the sandbox is stopped: the supervisor may still
    // be draining the pipe when the exit is seen.
    let (outcome, tail) = quick.stop_with_tail(Duration::from_secs(1)).unwrap();
    assert_eq!(tail, [(Stream::Stdout, b"bye".to_vec())]);
    assert_eq!(outcome.exit, Exit::Code(0));
}

#[test]
fn stop_escalates_and_drop_leaves_nothing() {
    let root = rootfs();
    let stubborn = start_image(&root.spec(&["stubborn", "60"]), None).unwrap();
    wait_output(&stubborn, "ignoring SIGTERM");
    let start = Instant::now();
    let outcome = stubborn.stop(Duration::from_millis(300)).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(!outcome.exit.success(), "{outcome:?}");
    root.assert_gone();

    let sandbox = start_image(&root.spec(&["sleepers", "4", "60"]), None).unwrap();
    wait_output(&sandbox, "sleeping");
    // The probe and its 4 children (the sandbox's init runs in the reaper's memory:
    // its command line is cairn's).
    assert_eq!(root.pgrep().lines().count(), 5, "{}", root.pgrep());
    drop(sandbox);
    // Drop returns once everything is gone: no waiting here.
    assert_eq!(root.pgrep(), "");
}

#[test]
fn a_detached_image_outlives_its_starter_and_stops_from_its_record() {
    let root = rootfs();
    let token = fresh_token();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("app.log");
    let port = free_host_port();
    let mut spec = root.spec(&["serve", &port.to_string()]);
    spec.network = ImageNetwork::Host;
    spec.limits = Limits {
        wall_clock: Duration::from_secs(1),
        ..spec.limits
    };

    // Orphans come to this process (as they would to systemd), so it can reap them.
    // SAFETY: prctl(2) with integer arguments.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    // The starter: a process that starts the sandbox, hands over the record and exits.
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only starts the sandbox, writes to the pipe and _exits.
    let starter = unsafe { libc::fork() };
    assert!(starter >= 0);
    if starter == 0 {
        let text = match start_detached(&spec, &log, &token) {
            Ok(record) => record.to_record(),
            Err(e) => format!("ERROR {e}"),
        };
        // SAFETY: write(2) of our buffer to the pipe, then _exit(2).
        unsafe {
            libc::write(fds[1], text.as_ptr().cast(), text.len());
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end; waitpid(2) on our child.
    unsafe {
        libc::close(fds[1]);
        let mut status = 0;
        assert_eq!(libc::waitpid(starter, &mut status, 0), starter);
    }
    let mut text = String::new();
    // SAFETY: the read end is ours alone.
    let mut pipe = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    pipe.read_to_string(&mut text).unwrap();
    let record = DetachedSandbox::from_record(&text).unwrap_or_else(|e| panic!("{e}: {text}"));

    // Above the init: bubblewrap's monitor, which this process adopted when the
    // starter exited, in a session of its own.
    let stat = |pid: u32| -> Vec<String> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &text[text.rfind(')').unwrap() + 2..];
        after.split_whitespace().map(str::to_owned).collect()
    };
    let monitor: u32 = stat(record.pid)[1].parse().unwrap();
    assert_eq!(stat(monitor)[1], std::process::id().to_string());
    let own_session = stat(std::process::id())[3].clone();
    assert_ne!(stat(monitor)[3], own_session);

    // The starter is gone; the sandbox runs on, past its (ignored) wall clock.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(record.is_running(), "{record:?}");
    let until = Instant::now() + Duration::from_secs(5);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(Instant::now() < until, "no listening line in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
    let response = http_get(TcpStream::connect(("127.0.0.1", port)).unwrap());
    assert!(response.ends_with("hello\n"), "{response}");
    for dir in &record.cgroups {
        assert!(dir.is_dir(), "{}", dir.display());
    }
    // Its identity: the token is in its cgroup's name, found by a scan of the
    // host's detached cgroups, and the port's listener is a process of it.
    assert_eq!(record.token().as_deref(), Some(token.as_str()));
    let found: Vec<_> = cairn_sandbox::find_detached()
        .unwrap()
        .into_iter()
        .filter(|f| f.token.as_deref() == Some(token.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let adopted = found[0].sandbox(log.clone()).unwrap();
    assert_eq!(
        (adopted.pid, adopted.start_time),
        (record.pid, record.start_time)
    );
    let holders = record.port_holders(port);
    assert!(holders.ours && holders.others.is_empty(), "{holders:?}");
    // A port someone else holds is not this sandbox's.
    let stray = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let stray_port = stray.local_addr().unwrap().port();
    let holders = record.port_holders(stray_port);
    assert!(!holders.ours, "{holders:?}");
    assert_eq!(holders.others, [std::process::id()]);
    drop(stray);
    // A token that is not hex digits is refused before anything starts.
    assert!(start_detached(&spec, &log, "not-a-token").is_err());
    // A record whose start time does not match is somebody else's process.
    let stale = DetachedSandbox {
        start_time: record.start_time + 1,
        ..record.clone()
    };
    assert!(!stale.is_running());

    // Another cairn process would read the record back and stop it.
    let reread = DetachedSandbox::from_record(&record.to_record()).unwrap();
    stop_detached(&reread, Duration::from_secs(2)).unwrap();
    assert!(!record.is_running());
    for dir in &record.cgroups {
        assert!(!dir.exists(), "{}", dir.display());
    }
    root.assert_gone();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // Stopping again only finds nothing to do.
    stop_detached(&reread, Duration::from_secs(1)).unwrap();

    // A detached command that ends by itself: no longer running, its output in the
    // log, and its (empty) cgroup kept until it is stopped.
    let mut short = root.spec(&["say", "short-lived"]);
    short.network = ImageNetwork::Isolated;
    let ended = start_detached(&short, &log, &fresh_token()).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while ended.is_running() {
        assert!(Instant::now() < until, "{ended:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let until = Instant::now() + Duration::from_secs(5);
    while !fs::read_to_string(&log).unwrap().contains("short-lived") {
        assert!(Instant::now() < until);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(ended.cgroups.iter().all(|dir| dir.is_dir()));
    stop_detached(&ended, Duration::from_secs(1)).unwrap();
    assert!(ended.cgroups.iter().all(|dir| !dir.exists()));

    // Reap the orphans this process adopted.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) for any adopted child, without blocking.
        let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if reaped < 0 || Instant::now() > until {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A random 128-bit id as cairn writes them (32 lowercase hex digits).
fn random_hex() -> String {
    fs::read_to_string("/proc/sys/kernel/random/uuid")
        .unwrap()
        .trim()
        .replace('-', "")
}

/// Kills and removes what the leftover test made, even when it fails.
struct LeftoverCleanup {
    stranger: std::process::Child,
    dirs: Vec<PathBuf>,
    record: Option<DetachedSandbox>,
}

impl Drop for LeftoverCleanup {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let _ = stop_detached(&record, Duration::from_secs(1));
        }
        let _ = self.stranger.kill();
        let _ = self.stranger.wait();
        for dir in &self.dirs {
            let until = Instant::now() + Duration::from_secs(5);
            while dir.exists() && fs::remove_dir(dir).is_err() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Issue 20, item 2: leftover cgroups of dead deployments, named as this very process's
/// next ones were under the old pid naming, do not stop a detached sandbox; a sweep
/// removes the leftovers of gone cairn processes and leaves alone (and reports) what it
/// cannot identify or what still runs.
#[test]
fn leftover_cgroups_never_block_a_deploy_and_are_swept_safely() {
    // Also this process's own first sweep, before the leftovers below exist.
    let parents = cgroup_parents().unwrap();
    assert!(!parents.is_empty(), "the tests run as root");
    let make = |name: &str| {
        for parent in &parents {
            fs::create_dir(parent.join(name)).unwrap();
        }
    };
    // Somebody else's cgroup with a process in it.
    let unknown = format!("someone-else-{}", random_hex());
    make(&unknown);
    let mut cleanup = LeftoverCleanup {
        stranger: Command::new("sleep").arg("60").spawn().unwrap(),
        dirs: parents.iter().map(|p| p.join(&unknown)).collect(),
        record: None,
    };
    let stranger = cleanup.stranger.id();
    for parent in &parents {
        fs::write(
            parent.join(&unknown).join("cgroup.procs"),
            stranger.to_string(),
        )
        .unwrap();
    }
    // What the old naming gave this process next: only this process may sweep them
    // (to any other, the pid is a live process's).
    let me = std::process::id();
    let mine: Vec<String> = (0..4)
        .flat_map(|n| [format!("detached-{me}-{n}"), format!("run-{me}-{n}")])
        .collect();
    // A gone owner's, in today's naming (any cairn process may sweep them).
    let gone = [
        format!("detached-{}-{}", random_hex(), random_hex()),
        format!("run-{}-{}", random_hex(), random_hex()),
    ];
    for name in mine.iter().chain(&gone) {
        make(name);
        cleanup.dirs.extend(parents.iter().map(|p| p.join(name)));
    }

    let root = rootfs();
    let logs = tempfile::tempdir().unwrap();
    let mut spec = root.spec(&["serve", "8080"]);
    spec.network = ImageNetwork::Isolated;
    let token = fresh_token();
    let record = start_detached(&spec, &logs.path().join("app.log"), &token).unwrap();
    cleanup.record = Some(record.clone());
    let name = record.cgroups[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    println!("started despite the leftovers, in cgroup {name}");
    // detached-<deployment token>-<owner token>-<random id>: no pid in it.
    let parts: Vec<&str> = name.strip_prefix("detached-").unwrap().split('-').collect();
    assert_eq!(parts[0], token, "{name}");
    assert!(
        parts.len() == 3 && parts[1].len() == 32 && parts[2].len() == 32,
        "{name}"
    );

    let report = sweep_cgroups().unwrap();
    for found in &report.removed {
        println!("swept {} ({:?})", found.name, found.kind);
    }
    for (found, reason) in &report.left {
        println!(
            "left {} {:?} pids {:?}: {reason}",
            found.name, found.kind, found.pids
        );
    }
    let removed: Vec<&str> = report.removed.iter().map(|c| c.name.as_str()).collect();
    for name in &mine {
        assert!(
            removed.contains(&name.as_str()),
            "{name} not swept: {report:?}"
        );
    }
    for name in mine.iter().chain(&gone) {
        for parent in &parents {
            assert!(!parent.join(name).exists(), "{name}");
        }
    }
    let left = |wanted: &str| {
        report
            .left
            .iter()
            .find(|(c, _)| c.name == wanted)
            .unwrap_or_else(|| panic!("{wanted} not reported: {report:?}"))
            .clone()
    };
    let (stranger_cgroup, reason) = left(&unknown);
    assert_eq!(reason, LeftReason::UnknownName);
    assert_eq!(stranger_cgroup.kind, CgroupKind::Unknown);
    assert!(stranger_cgroup.pids.contains(&stranger));
    let (ours, reason) = left(&name);
    assert_eq!(reason, LeftReason::OwnerAlive);
    assert_eq!(ours.kind, CgroupKind::Detached);
    assert!(ours.pids.contains(&record.pid), "{ours:?}");
    assert!(record.is_running());
    // Nothing it could not identify was killed.
    assert!(cleanup.stranger.try_wait().unwrap().is_none());
    let listed = list_cgroups().unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c.name == name && c.pids.contains(&record.pid))
    );

    stop_detached(&record, Duration::from_secs(2)).unwrap();
    cleanup.record = None;
    root.assert_gone();

    // A deployment that ended, whose empty cgroup a sweep removed (as it does once
    // its starter is gone): its record still stops cleanly and says it is not running.
    let ended = start_detached(
        &root.spec(&["say", "bye"]),
        &logs.path().join("app.log"),
        &fresh_token(),
    )
    .unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while ended.is_running() {
        assert!(Instant::now() < until, "{ended:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    for dir in ended.cgroups.iter().rev() {
        let until = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir(dir).is_err() {
            assert!(Instant::now() < until, "{}", dir.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert!(!ended.is_running());
    stop_detached(&ended, Duration::from_secs(1)).unwrap();
    drop(cleanup);
    for parent in &parents {
        assert!(!parent.join(&unknown).exists());
    }
}

//! `cairn bench sandbox|chain|verify|image|push|gate`: measurements against the
//! named peer, in the same run.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::Output;
use crate::sandbox_noop::{bare_bwrap_noop, bubblewrap_alone_noop, sandboxed_noop};
use crate::{Failure, print_json, summary};

pub fn sandbox(out: &Output, iterations: usize, once: bool) -> Result<ExitCode, Failure> {
    if once {
        let took = sandboxed_noop().context("sandboxed no-op step")?;
        if out.json {
            print_json(&json!({ "cairn_sandbox_ms": took.as_secs_f64() * 1000.0 }));
        } else {
            println!(
                "one sandboxed no-op step: {:.2} ms",
                took.as_secs_f64() * 1000.0
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let iterations = iterations.clamp(10, 100_000);
    let ours = || sandboxed_noop().context("sandboxed no-op step");
    let alone = || bubblewrap_alone_noop().context("bubblewrap with cairn's arguments");
    let bare = || bare_bwrap_noop().context("bare bwrap");
    // Warm up the page cache and the cgroup hierarchy.
    for _ in 0..5 {
        ours()?;
        alone()?;
        bare()?;
    }
    let (mut o, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        o.push(ours()?);
        a.push(alone()?);
        b.push(bare()?);
    }
    let (o, a, b) = (summary(o), summary(a), summary(b));
    if out.json {
        print_json(&json!({
            "iterations": iterations,
            "cairn_sandbox_ms": { "p50": o[0], "p99": o[1], "mean": o[2], "max": o[3] },
            "bwrap_with_cairn_args_ms": { "p50": a[0], "p99": a[1], "mean": a[2], "max": a[3] },
            "bare_bwrap_ms": { "p50": b[0], "p99": b[1], "mean": b[2], "max": b[3] },
            "ratio_p50": o[0] / b[0],
            "ratio_p99": o[1] / b[1],
            "bwrap_with_cairn_args_ratio_p50": a[0] / b[0],
            "bwrap_with_cairn_args_ratio_p99": a[1] / b[1],
        }));
    } else {
        println!("sandboxed no-op step start, {iterations} iterations each, interleaved");
        println!(
            "{:<42} {:>8} {:>8} {:>8} {:>8}",
            "", "p50 ms", "p99 ms", "mean ms", "max ms"
        );
        println!(
            "{:<42} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            "cairn sandbox (limits, scrubbed env, no net)", o[0], o[1], o[2], o[3]
        );
        println!(
            "{:<42} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            "bwrap alone with cairn's arguments", a[0], a[1], a[2], a[3]
        );
        println!(
            "{:<42} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            "bare `bwrap --ro-bind / / true`", b[0], b[1], b[2], b[3]
        );
        println!(
            "ratio cairn/bare: p50 {:.2}x, p99 {:.2}x (goal: both <= 1.5x)",
            o[0] / b[0],
            o[1] / b[1]
        );
        println!(
            "of which bubblewrap alone with cairn's arguments/bare: p50 {:.2}x, p99 {:.2}x",
            a[0] / b[0],
            a[1] / b[1]
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn chain(out: &Output, stages: usize, repeat: usize) -> Result<ExitCode, Failure> {
    let stages = stages.clamp(1, 60);
    let repeat = repeat.clamp(1, 1000);
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let runs = crate::chain_setup::chain(scratch.path(), stages, repeat)?;
    let (fewest, most) = runs.commits_per_run;
    let s = summary(runs.times);
    if out.json {
        print_json(&json!({
            "stages": stages + 1,
            "repeat": repeat,
            "run_ms": { "p50": s[0], "mean": s[2], "max": s[3] },
            "store_commits_per_run": { "min": fewest, "max": most },
        }));
    } else {
        println!(
            "chain of source + {stages} no-op sandboxed stages, end to end (git, store, sandbox), {repeat} runs"
        );
        println!(
            "run wall time: p50 {:.1} ms, mean {:.1} ms, max {:.1} ms (goal: p50 <= 60 ms)",
            s[0], s[2], s[3]
        );
        println!(
            "store commits per run: {fewest} to {most} (each a WAL fsync: {} = the run's creation with its first stage's start, one per boundary between {} stages, the last stage's end with the run's; more when a stage outlived the log flusher's 100 ms tick)",
            stages + 2,
            stages + 1
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The peer's script for [`verify`], written to a temporary file at run time.
const SIGSTORE_JS_BENCH: &str = include_str!("sigstore_verify.js");

/// The conformance suite's default identity and issuer (its README).
const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Bundles verified per second on one core: cairn-sigstore in this process, and
/// npm `@sigstore/verify` on the same bundle, artifact and trusted root.
pub fn verify(
    out: &Output,
    case: &std::path::Path,
    iterations: usize,
    node_modules: Option<&std::path::Path>,
) -> Result<ExitCode, Failure> {
    let iterations = iterations.clamp(10, 1_000_000);
    let in_case_or_parent = |name: &str, fallback: &str| {
        let here = case.join(name);
        if here.exists() {
            here
        } else {
            case.join("..").join(fallback)
        }
    };
    let bundle_path = case.join("bundle.sigstore.json");
    let artifact_path = in_case_or_parent("artifact", "a.txt");
    let root_path = in_case_or_parent("trusted_root.json", "production_trusted_root.json");
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let (bundle, artifact, root) = (
        read(&bundle_path)?,
        read(&artifact_path)?,
        read(&root_path)?,
    );
    let trusted = cairn_sigstore::TrustedRoot::from_json(&root)
        .map_err(|e| Failure::user(anyhow::Error::new(e)))?;
    let policy = cairn_sigstore::VerificationPolicy::Identity {
        san: DEFAULT_IDENTITY.to_owned(),
        issuer: DEFAULT_ISSUER.to_owned(),
    };
    let now = cairn_engine::now_ms() / 1000;
    let once = || {
        cairn_sigstore::verify(
            &bundle,
            cairn_sigstore::ArtifactInput::Bytes(&artifact),
            &policy,
            &trusted,
            now,
        )
    };
    once().map_err(|e| {
        Failure::user(anyhow::anyhow!(
            "{} does not verify with cairn: {e}",
            bundle_path.display()
        ))
    })?;
    for _ in 0..50.min(iterations) {
        let _ = once();
    }
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        once().map_err(|e| anyhow::anyhow!("verification stopped passing: {e}"))?;
    }
    let ours = iterations as f64 / start.elapsed().as_secs_f64();

    let modules = match node_modules {
        Some(dir) => dir.to_path_buf(),
        None => std::env::var_os("CAIRN_INTEROP_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("target/interop-tools"))
            .join("npm/node_modules"),
    };
    if !modules.join("@sigstore/verify").is_dir() {
        return Err(Failure::user(anyhow::anyhow!(
            "npm @sigstore/verify is not in {} (run scripts/install-interop-tools, or pass --node-modules)",
            modules.display()
        )));
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let script = scratch.path().join("sigstore_verify.js");
    std::fs::write(&script, SIGSTORE_JS_BENCH).context("cannot write the peer's script")?;
    let peer_iterations = (iterations / 10).max(10);
    let peer = std::process::Command::new("node")
        .arg(&script)
        .args([&root_path, &bundle_path, &artifact_path])
        .args([
            DEFAULT_IDENTITY,
            DEFAULT_ISSUER,
            &peer_iterations.to_string(),
        ])
        .env("NODE_PATH", &modules)
        .output()
        .context("cannot run node")?;
    if !peer.status.success() {
        return Err(anyhow::anyhow!(
            "@sigstore/verify failed: {}",
            String::from_utf8_lossy(&peer.stderr).trim()
        )
        .into());
    }
    let peer: serde_json::Value =
        serde_json::from_slice(&peer.stdout).context("the peer's output is not JSON")?;
    let peer_seconds = peer["seconds"].as_f64().unwrap_or(f64::NAN);
    let theirs = peer_iterations as f64 / peer_seconds;
    if out.json {
        print_json(&json!({
            "bundle": bundle_path.display().to_string(),
            "cairn_per_second": ours,
            "sigstore_js_per_second": theirs,
            "ratio": ours / theirs,
        }));
    } else {
        println!(
            "full offline verification of {} (one core)",
            bundle_path.display()
        );
        println!(
            "{:<34} {:>12.0} bundles/s  ({iterations} iterations)",
            "cairn-sigstore", ours
        );
        println!(
            "{:<34} {:>12.0} bundles/s  ({peer_iterations} iterations)",
            "npm @sigstore/verify 3.1.1", theirs
        );
        println!(
            "ratio cairn/sigstore-js: {:.1}x (goal: >= 20x)",
            ours / theirs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The example app's chain with its image build, end to end through this binary:
/// cold (a fresh data directory: the catalog base made and unpacked, every layer
/// new) and warm (the same commit again in the same data directory).
pub fn image(out: &Output, app: &std::path::Path, repeat: usize) -> Result<ExitCode, Failure> {
    use std::process::Command;
    let repeat = repeat.clamp(1, 50);
    let exe = std::env::current_exe().context("cannot find the cairn binary")?;
    if !app.join("cairn.toml").is_file() {
        return Err(Failure::user(anyhow::anyhow!(
            "{} has no cairn.toml (run from cairn's source tree, or pass --app)",
            app.display()
        )));
    }
    let timed = |args: &[&str],
                 repo: &std::path::Path,
                 home: &std::path::Path|
     -> Result<Duration, Failure> {
        let start = std::time::Instant::now();
        let out = Command::new(&exe)
            .args(args)
            .current_dir(repo)
            .env("CAIRN_HOME", home)
            .output()
            .context("cannot run cairn")?;
        if !out.status.success() {
            return Err(anyhow::anyhow!(
                "cairn {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(start.elapsed())
    };
    let (mut cold, mut warm, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeat {
        let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
        let repo = scratch.path().join("app");
        let home = scratch.path().join("data");
        let status = Command::new("cp")
            .arg("-r")
            .arg(app)
            .arg(&repo)
            .status()
            .context("cannot copy the app")?;
        if !status.success() {
            return Err(anyhow::anyhow!("cannot copy {}", app.display()).into());
        }
        for args in [
            &["init", "-q"][..],
            &["add", "-A"],
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@cairn.invalid",
                "commit",
                "-qm",
                "bench",
            ],
        ] {
            let ok = Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(args)
                .status()
                .context("git")?;
            if !ok.success() {
                return Err(anyhow::anyhow!("git {args:?} failed").into());
            }
        }
        base.push(timed(
            &["base", "create", "tiny", "--name", "tiny"],
            &repo,
            &home,
        )?);
        cold.push(timed(&["run"], &repo, &home)?);
        warm.push(timed(&["run"], &repo, &home)?);
    }
    let (b, c, w) = (summary(base), summary(cold), summary(warm));
    if out.json {
        print_json(&json!({
            "app": app.display().to_string(),
            "repeat": repeat,
            "base_create_ms": { "p50": b[0], "max": b[3] },
            "cold_run_ms": { "p50": c[0], "max": c[3] },
            "warm_run_ms": { "p50": w[0], "max": w[3] },
        }));
    } else {
        println!(
            "{} through the chain with its image build and RC acceptance tests, {repeat} times",
            app.display()
        );
        println!("catalog base `tiny` made and imported: p50 {:.0} ms", b[0]);
        println!(
            "cold run (fresh data dir, new layers, RC rootfs unpacked): p50 {:.0} ms, max {:.0} ms",
            c[0], c[3]
        );
        println!(
            "warm run (same commit, same data dir):                  p50 {:.0} ms, max {:.0} ms",
            w[0], w[3]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A registry for [`push`]: the one named, or Debian's `docker-registry` started on
/// a free loopback port with a temporary config (stopped when dropped).
#[derive(Debug)]
pub struct BenchRegistry {
    pub host: String,
    child: Option<std::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchRegistry {
    pub fn start(named: Option<&str>) -> Result<Self, Failure> {
        if let Some(host) = named {
            return Ok(BenchRegistry {
                host: host.to_owned(),
                child: None,
                _dir: None,
            });
        }
        let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("no free port")?
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )
        .context("cannot write the registry's config")?;
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start docker-registry (apt-get install docker-registry), or pass --registry HOST:PORT")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(anyhow::anyhow!("docker-registry did not start on port {port}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(BenchRegistry {
            host: format!("127.0.0.1:{port}"),
            child: Some(child),
            _dir: Some(dir),
        })
    }
}

impl Drop for BenchRegistry {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Assembles an image with one `size_mib` layer (random bytes, taken as a
/// pre-built layer blob) and pushes it to a real registry over plain HTTP on
/// loopback, beside `sha256sum` of the same bytes (the floor: every byte must
/// be hashed at least once). Two ways in the same run: one pass (the layer is
/// hashed, stored, fsync'd and uploaded as it is read:
/// `images::registry::store_and_upload`), and, for comparison, two passes
/// (stored into the layout, then read again and pushed). Goal: one pass
/// ≤ 1.5× the floor.
pub fn push(out: &Output, size_mib: u64, registry: Option<&str>) -> Result<ExitCode, Failure> {
    use std::io::Write;
    let size_mib = size_mib.clamp(1, 16 * 1024);
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let file = scratch.path().join("layer.bin");
    {
        let mut layer =
            std::io::BufWriter::new(std::fs::File::create(&file).context("layer file")?);
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..size_mib {
            aws_lc_rs::rand::fill(&mut chunk).map_err(|_| anyhow::anyhow!("no randomness"))?;
            layer
                .write_all(&chunk)
                .context("cannot write the layer file")?;
        }
        layer.flush().context("cannot write the layer file")?;
    }
    let registry = BenchRegistry::start(registry)?;

    let t = std::time::Instant::now();
    let summed = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .context("cannot run sha256sum")?;
    let floor = t.elapsed();
    if !summed.status.success() {
        return Err(anyhow::anyhow!("sha256sum failed").into());
    }

    let two = assemble_and_push(scratch.path(), &file, &registry.host, "two-pass", false)?;
    let one = assemble_and_push(scratch.path(), &file, &registry.host, "layer", true)?;
    let ratio = |p: &PushRun| (p.assembled + p.pushed).as_secs_f64() / floor.as_secs_f64();
    if out.json {
        let run = |p: &PushRun| {
            json!({
                "assemble_s": p.assembled.as_secs_f64(),
                "push_s": p.pushed.as_secs_f64(),
                "total_s": (p.assembled + p.pushed).as_secs_f64(),
                "ratio_to_sha256sum": ratio(p),
                "digest": p.digest,
            })
        };
        print_json(&json!({
            "size_mib": size_mib,
            "registry": registry.host,
            "sha256sum_s": floor.as_secs_f64(),
            "one_pass": run(&one),
            "two_passes": run(&two),
            "ratio_to_sha256sum": ratio(&one),
        }));
    } else {
        println!(
            "a {size_mib} MiB layer assembled into an image and pushed to {} (docker-registry, loopback)",
            registry.host
        );
        println!(
            "sha256sum of the same bytes (the floor):        {:>7.2} s",
            floor.as_secs_f64()
        );
        for (name, p) in [
            ("two passes (store, then push)", &two),
            ("one pass (store and upload) ", &one),
        ] {
            let total = p.assembled + p.pushed;
            println!(
                "cairn {name}: {:>7.2} s = {:.2}x the floor (assemble {:.2} s, push {:.2} s, {:.0} MiB/s)",
                total.as_secs_f64(),
                ratio(p),
                p.assembled.as_secs_f64(),
                p.pushed.as_secs_f64(),
                size_mib as f64 / total.as_secs_f64()
            );
        }
        println!(
            "one pass = {:.2}x the floor (goal <= 1.5x); pushed {}",
            ratio(&one),
            one.digest
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One assemble-and-push of [`push`].
struct PushRun {
    assembled: Duration,
    pushed: Duration,
    digest: String,
}

fn assemble_and_push(
    scratch: &std::path::Path,
    file: &std::path::Path,
    host: &str,
    name: &str,
    one_pass: bool,
) -> Result<PushRun, Failure> {
    let data = cairn_engine::DataDir::at(scratch.join(format!("data-{name}")));
    let images = cairn_engine::images::Images::open(&data)?;
    let (store, _) = cairn_engine::pairing::open_store(&data)?;
    let org = cairn_model::config::OrgConfig {
        registries: vec![host.to_owned()],
        ..Default::default()
    };
    let connection = cairn_engine::images::registry::Connection {
        plain_http: true,
        ..Default::default()
    };
    let target = format!("{host}/bench/{name}:latest");
    let t = std::time::Instant::now();
    let blob = if one_pass {
        let layer = std::fs::File::open(file).context("cannot read the layer file")?;
        cairn_engine::images::registry::store_and_upload(
            &images,
            &org,
            &target,
            &connection,
            layer,
        )?
    } else {
        images.layout().put_blob_from_file(file)?
    };
    let rootfs = scratch.join(format!("base-{name}"));
    std::fs::create_dir_all(rootfs.join("etc")).context("base rootfs")?;
    std::fs::write(rootfs.join("etc/os-release"), "ID=bench\n").context("base rootfs")?;
    let base = cairn_oci::import_rootfs(images.layout(), &rootfs, 0)?;
    // The layer is incompressible random data taken as a pre-built layer blob: the
    // image is for measuring assembly and push, not for running.
    let layer = cairn_oci::Layer {
        digest: blob.digest,
        diff_id: blob.digest,
        size: blob.size,
    };
    let spec = cairn_oci::ImageSpec {
        base_name: "bench".into(),
        ..cairn_oci::ImageSpec::default()
    };
    let image = cairn_oci::assemble(images.layout(), &base, &[layer], &spec)?;
    let assembled = t.elapsed();
    let t = std::time::Instant::now();
    let pushed =
        cairn_engine::images::registry::push(&images, &store, &org, &image, &target, &connection)?;
    Ok(PushRun {
        assembled,
        pushed: t.elapsed(),
        digest: pushed.digest,
    })
}

/// A gate decision with the default policy set on a realistic production input
/// (provenance, test results, reviews, findings), beside regorus evaluating the
/// same policies on the same input alone. Goal: p99 ≤ 1 ms.
pub fn gate(out: &Output, iterations: usize) -> Result<ExitCode, Failure> {
    let iterations = iterations.clamp(10, 1_000_000);
    let builder = cairn_policy::POLICY_TEST_BUILDER_ID;
    let params = cairn_policy::DefaultParams::new(builder);
    let fail = |e: cairn_policy::PolicyError| Failure::from(anyhow::Error::new(e));
    let gate = cairn_policy::Gate::default_set(&params).map_err(fail)?;
    let input = cairn_policy::realistic_input(builder);
    let b = cairn_policy::bench_gate(
        &gate,
        &cairn_policy::default_policy_files(),
        &params.to_data().map_err(fail)?,
        &input,
        iterations,
        &std::time::Instant::now,
    )
    .map_err(fail)?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if out.json {
        print_json(&json!({
            "iterations": b.iterations,
            "allowed": b.allowed,
            "gate_ms": { "p50": ms(b.gate.p50), "p99": ms(b.gate.p99), "max": ms(b.gate.max) },
            "regorus_ms": { "p50": ms(b.regorus.p50), "p99": ms(b.regorus.p99), "max": ms(b.regorus.max) },
            "ratio_p50": ms(b.gate.p50) / ms(b.regorus.p50),
            "ratio_p99": ms(b.gate.p99) / ms(b.regorus.p99),
        }));
    } else {
        println!(
            "gate decision, default policy set, realistic production input ({} iterations, allowed: {})",
            b.iterations, b.allowed
        );
        println!(
            "cairn gate (fail-closed checks, digests)  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            ms(b.gate.p50),
            ms(b.gate.p99),
            ms(b.gate.max)
        );
        println!(
            "regorus alone, same policies and input    p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            ms(b.regorus.p50),
            ms(b.regorus.p99),
            ms(b.regorus.max)
        );
        println!(
            "ratio p50 {:.2}x, p99 {:.2}x (goal: p99 <= 1 ms)",
            ms(b.gate.p50) / ms(b.regorus.p50),
            ms(b.gate.p99) / ms(b.regorus.p99)
        );
    }
    Ok(ExitCode::SUCCESS)
}

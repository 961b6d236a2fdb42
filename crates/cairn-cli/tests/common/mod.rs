//! The harness of the `cairn` binary's end-to-end tests: a temporary git
//! repository and data directory, and the binary run against them.
#![allow(clippy::unwrap_used, dead_code)]

pub(crate) mod osv_feed;
pub(crate) mod registry;
pub(crate) mod server;
pub(crate) mod tls;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::mpsc;

use serde_json::Value;

/// Everything `child` prints on its stdout and stderr (both piped), line by
/// line as it comes, read by one thread per stream: a long-lived child
/// (`cairn up`, an identity provider) never blocks on a full pipe, and a test
/// waits for a line with a deadline.
pub(crate) fn output_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let streams = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ];
    for stream in streams.into_iter().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// A temporary app repository and data directory.
pub(crate) struct Fixture {
    _tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub data: PathBuf,
}

pub(crate) use cairn_testkit::{copy_dir, git};

impl Fixture {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("app");
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        Fixture {
            _tmp: tmp,
            repo,
            data,
        }
    }

    /// A repository holding a copy of `examples/<name>`, committed.
    pub(crate) fn example(name: &str) -> Self {
        let f = Self::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        copy_dir(&src, &f.repo);
        f.commit("import example");
        f
    }

    pub(crate) fn write(&self, path: &str, text: &str) -> &Self {
        let p = self.repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub(crate) fn commit(&self, message: &str) -> &Self {
        git(&self.repo, &["add", "-A"]);
        git(
            &self.repo,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self
    }

    /// `cairn ARGS` in the repository, with this fixture's data directory and
    /// nothing of the host's cairn settings.
    pub(crate) fn cairn(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.current_dir(&self.repo)
            .env("CAIRN_HOME", &self.data)
            .env_remove("CAIRN_PLATFORM_DIR")
            .env_remove("CAIRN_DATABASE_URL")
            .env_remove("CAIRN_SIGSTORE_TRUSTED_ROOT")
            .env_remove("CAIRN_TOKEN")
            .env("CAIRN_NO_CONFIG", "1")
            .args(args);
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cairn(args).output().unwrap())
    }

    /// `cairn ARGS`, which must exit 0.
    pub(crate) fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "cairn {args:?}: {r:?}");
        r
    }

    /// `cairn ARGS` as the identity holding `token` (CAIRN_TOKEN), which must exit 0.
    pub(crate) fn ok_as(&self, token: &str, args: &[&str]) -> Run {
        let r = Run::from(self.cairn(args).env("CAIRN_TOKEN", token).output().unwrap());
        assert_eq!(r.code, 0, "cairn {args:?} as a token: {r:?}");
        r
    }

    /// cairn's public signing key, as `cairn key show` prints it.
    pub(crate) fn signing_key(&self) -> cairn_evidence::VerifyingKey {
        let key = self.json(&["key", "show"]);
        cairn_evidence::VerifyingKey::from_pem(key["public_key"].as_str().unwrap()).unwrap()
    }

    /// The audit log's note verifier, as `cairn log checkpoint --verifier` prints it.
    pub(crate) fn log_verifier(&self) -> cairn_tlog::note::Verifier {
        cairn_tlog::note::Verifier::parse(
            self.ok(&["log", "checkpoint", "--verifier"]).stdout.trim(),
        )
        .unwrap()
    }

    /// The statements of the last run (`cairn evidence last --export`), each
    /// verified against cairn's key and log: `(stage, statement)`.
    pub(crate) fn statements(&self) -> Vec<(String, Value)> {
        let public = self.signing_key();
        let log = self.log_verifier();
        let export = self.data.join("../evidence-export");
        let _ = std::fs::remove_dir_all(&export);
        let list = self.json(&["evidence", "last", "--export", export.to_str().unwrap()]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let bytes = std::fs::read(e["file"].as_str().unwrap()).unwrap();
                let bundle = cairn_evidence::Bundle::from_json(&bytes).unwrap();
                let payload = bundle.verify_with_log(&public, &log).unwrap();
                (
                    e["stage"].as_str().unwrap_or_default().to_owned(),
                    serde_json::from_slice(payload).unwrap(),
                )
            })
            .collect()
    }

    /// `cairn --json ARGS`, which must exit 0, parsed.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let r = self.ok(&all);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
    }
}

/// What a `cairn` process did.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Stop what the test started: every `local` deployment in the fixture's data
/// directory runs detached from cairn, so it is stopped here, not left behind.
impl Fixture {
    /// Runs `sql` (with `?` parameters) on the fixture's SQLite store, through
    /// Python's sqlite3: the test plays an attacker who can write the database
    /// but not the keys.
    pub(crate) fn tamper(&self, sql: &str, params: &[&str]) {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2], sys.argv[3:]); c.commit()",
            ])
            .arg(self.data.join("cairn.db"))
            .arg(sql)
            .args(params)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let data = cairn_engine::DataDir::at(&self.data);
        let Ok(workloads) = std::fs::read_dir(data.deployments()) else {
            return;
        };
        for workload in workloads.flatten() {
            let Ok(records) = std::fs::read_dir(workload.path()) else {
                continue;
            };
            for record in records.flatten() {
                let path = record.path();
                if path.extension().is_some_and(|x| x == "json") {
                    let env = path.file_stem().unwrap().to_string_lossy().into_owned();
                    let name = workload.file_name().to_string_lossy().into_owned();
                    let _ = cairn_engine::deploy::local::undeploy(&data, &name, &env);
                }
            }
        }
    }
}

/// A GitOps repository (`git init`, branch `main`) and a platform directory whose
/// org.toml sends `staging` to it (`envs/{environment}/{workload}`, images at
/// `registry.example.org/apps/{workload}`), followed by `extra`. Returns the
/// directory holding the repository, the repository and the platform directory.
pub(crate) fn gitops_staging(extra: &str) -> (tempfile::TempDir, PathBuf, tempfile::TempDir) {
    let gitops = tempfile::tempdir().unwrap();
    let repo = gitops.path().join("deploy");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        format!(
            "[promotion]\npath = [\"staging\"]\n\n[environments.staging]\ntarget = \"gitops\"\nrepo = \"{}\"\ndir = \"envs/{{environment}}/{{workload}}\"\nimage_repository = \"registry.example.org/apps/{{workload}}\"\n{extra}",
            repo.display()
        ),
    )
    .unwrap();
    (gitops, repo, platform)
}

/// `mmdebstrap --variant=minbase bookworm DEST`: a Debian 12 root filesystem from
/// Debian's packages (scripts/install-deps installs mmdebstrap).
pub(crate) fn debian_minbase(dest: &Path) {
    let out = Command::new("mmdebstrap")
        .args(["--quiet", "--variant=minbase", "bookworm"])
        .arg(dest)
        .output()
        .expect("mmdebstrap (Debian package; scripts/install-deps) must be installed");
    assert!(
        out.status.success(),
        "mmdebstrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small Debian 12 root filesystem for a static binary: the `tiny` base's
/// files, `/etc/os-release`, and a dpkg database with one package, `zlib1g`
/// (source `zlib`) at `zlib_version`, with its DEP-5 copyright file (Zlib).
pub(crate) fn debian_fixture(root: &Path, zlib_version: &str) {
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "etc/passwd",
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
    );
    write("etc/group", "root:x:0:\nnogroup:x:65534:\n");
    write("etc/hosts", "127.0.0.1 localhost\n");
    write(
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
    );
    write(
        "var/lib/dpkg/status",
        &format!(
            "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: {zlib_version}\n"
        ),
    );
    write(
        "usr/share/doc/zlib1g/copyright",
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 1995-2013 Jean-loup Gailly and Mark Adler\nLicense: Zlib\n",
    );
    for dir in ["tmp", "app"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
}

/// A critical (CVSS 9.8) OSV record `id` for Debian 12's `zlib`, fixed in `fixed`.
pub(crate) fn zlib_advisory(id: &str, fixed: Option<&str>) -> Value {
    let mut events = vec![serde_json::json!({ "introduced": "0" })];
    if let Some(f) = fixed {
        events.push(serde_json::json!({ "fixed": f }));
    }
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-12-01T00:00:00Z",
        "published": "2026-12-01T00:00:00Z",
        "summary": "zlib overflows",
        "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }],
        "affected": [{
            "package": { "ecosystem": "Debian:12", "name": "zlib" },
            "ranges": [{ "type": "ECOSYSTEM", "events": events }]
        }]
    })
}

/// `cairn ARGS` as the identity holding `token` (CAIRN_TOKEN), whatever it exits.
pub(crate) fn as_(f: &Fixture, token: &str, args: &[&str]) -> Run {
    Run::from(f.cairn(args).env("CAIRN_TOKEN", token).output().unwrap())
}

/// Adds the identity `name` as `actor` (None: the first identity, which
/// bootstraps the organisation) and returns its token.
pub(crate) fn token(f: &Fixture, actor: Option<&str>, name: &str) -> String {
    let mut cmd = f.cairn(&["--json", "identity", "add", name]);
    if let Some(t) = actor {
        cmd.env("CAIRN_TOKEN", t);
    }
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// hello-web on the `tiny` base with an admin and four people bound at the
/// workload: the commits' author (git's `author@example.invalid`) and two more
/// maintainers, a release manager and a developer.
pub(crate) struct Team {
    pub f: Fixture,
    pub admin: String,
    /// The commits' author (git's `author@example.invalid`), a maintainer too.
    pub author: String,
    /// A maintainer who is not the author.
    pub bob: String,
    /// A third maintainer.
    pub carol: String,
    /// A release manager: promotes, rolls back, overrides.
    pub rita: String,
    /// A developer: may not promote.
    pub dev: String,
}

pub(crate) fn team() -> Team {
    let f = Fixture::example("hello-web");
    f.ok(&["base", "create", "tiny", "--name", "tiny"]);
    let admin = token(&f, None, "admin@example.org");
    let author = token(&f, Some(&admin), "author@example.invalid");
    let bob = token(&f, Some(&admin), "bob@example.org");
    let carol = token(&f, Some(&admin), "carol@example.org");
    let rita = token(&f, Some(&admin), "rita@example.org");
    let dev = token(&f, Some(&admin), "dev@example.org");
    for (who, role) in [
        ("author@example.invalid", "maintainer"),
        ("bob@example.org", "maintainer"),
        ("carol@example.org", "maintainer"),
        ("rita@example.org", "release-manager"),
        ("dev@example.org", "developer"),
    ] {
        let r = as_(
            &f,
            &admin,
            &["role", "grant", who, role, "--workload", "hello-web"],
        );
        assert_eq!(r.code, 0, "{r:?}");
    }
    Team {
        f,
        admin,
        author,
        bob,
        carol,
        rita,
        dev,
    }
}

/// `node_modules` of the interop tools (`scripts/install-interop-tools`), by the
/// same rule as cairn-evidence's interop tests. Missing tools fail the test; it
/// never skips.
pub(crate) fn node_modules() -> PathBuf {
    let dir = interop_dir().join("npm/node_modules");
    assert!(
        dir.join("@sigstore/verify/package.json").is_file(),
        "run scripts/install-interop-tools first (missing {})",
        dir.display()
    );
    dir
}

/// The Python of the interop tools' venv, with PyPI `in-toto` (the same rule).
pub(crate) fn in_toto_python() -> PathBuf {
    let python = interop_dir().join("venv/bin/python");
    assert!(
        python.is_file(),
        "run scripts/install-interop-tools first (missing {})",
        python.display()
    );
    python
}

/// The interop tools' directory: `$CAIRN_INTEROP_DIR`, else
/// `<target dir>/interop-tools`.
pub(crate) fn interop_dir() -> PathBuf {
    match std::env::var_os("CAIRN_INTEROP_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("interop-tools"),
    }
}

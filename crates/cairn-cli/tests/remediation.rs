//! The closed loop's remediation, end to end with the real binary: `cairn base
//! refresh` makes a new version of a catalog base (its recipe run again, or a
//! newer source) through the catalog's gate, keeping the old one known.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Fixture, Run, debian_fixture};
use serde_json::Value;

fn catalog_entries(f: &Fixture, name: &str) -> Vec<Value> {
    f.json(&["base", "show", name]).as_array().unwrap().clone()
}

/// A base imported from a root filesystem: refreshed by reading it again —
/// unchanged while it is the same, a new admitted version (replacing the old,
/// which stays in the history) once its packages moved on, or from a given
/// newer source; refusals say why and change nothing.
#[test]
fn base_refresh_runs_the_recipe_again_or_imports_a_newer_source_through_the_gate() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("deb");
    debian_fixture(&root, "1:1.2.13.dfsg-1");
    f.ok(&["base", "import", root.to_str().unwrap(), "--name", "deb"]);
    let first = catalog_entries(&f, "deb")[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    // Nothing moved: the same version, nothing recorded.
    let r = f.ok(&["base", "refresh", "deb"]);
    println!("{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is unchanged"), "{r:?}");
    assert_eq!(catalog_entries(&f, "deb").len(), 1);

    // The archive moved on: the recipe (the recorded root filesystem) gives a
    // new version, admitted and signed; the old one stays in the history.
    debian_fixture(&root, "1:1.2.13.dfsg-1+deb12u1");
    let r = f.run(&["--json", "base", "refresh", "deb"]);
    assert_eq!(r.code, 0, "{r:?}");
    println!("{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["replaces"], first.as_str(), "{v}");
    assert!(v["log_index"].as_u64().is_some(), "{v}");
    let entries = catalog_entries(&f, "deb");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["digest"], v["digest"]);
    assert_eq!(entries[1]["digest"], first.as_str());

    // A newer source named with --from.
    let newer = tmp.path().join("deb-newer");
    debian_fixture(&newer, "1:1.2.13.dfsg-1+deb12u2");
    let r = f.ok(&["base", "refresh", "deb", "--from", newer.to_str().unwrap()]);
    assert!(r.stdout.contains("it replaces"), "{r:?}");
    assert_eq!(catalog_entries(&f, "deb").len(), 3);

    // A recorded source (now the newer one) others may write to is not read
    // again by cairn.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = f.run(&["base", "refresh", "deb"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("writable by group or others"), "{r:?}");
    std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o755)).unwrap();

    // A base the catalog does not know.
    let r = f.run(&["base", "refresh", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not in the catalog"), "{r:?}");

    // A recipe that cannot run: the recorded source is gone.
    let gone = tmp.path().join("gone");
    debian_fixture(&gone, "1:1.2.13.dfsg-1");
    f.ok(&["base", "import", gone.to_str().unwrap(), "--name", "gone"]);
    std::fs::remove_dir_all(&gone).unwrap();
    let r = f.run(&["base", "refresh", "gone"]);
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("cannot refresh base `gone`") && r.stderr.contains("no longer exists"),
        "{r:?}"
    );
    assert_eq!(catalog_entries(&f, "gone").len(), 1);

    // A new version the catalog's gate refuses (a critical finding with a fix,
    // over the organisation's threshold; an unfixed OS finding would not block
    // by default): refused, the name keeps its version.
    let advisories = tmp.path().join("advisories");
    std::fs::create_dir_all(&advisories).unwrap();
    std::fs::write(
        advisories.join("DSA-9999-1.json"),
        common::zlib_advisory("DSA-9999-1", Some("1:1.2.13.dfsg-1+deb12u4")).to_string(),
    )
    .unwrap();
    f.ok(&["vulns", "import", advisories.to_str().unwrap()]);
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        "[base]\nmax_severity = \"high\"\n",
    )
    .unwrap();
    let worse = tmp.path().join("deb-worse");
    debian_fixture(&worse, "1:1.2.13.dfsg-1+deb12u3");
    let r = Run::from(
        f.cairn(&["base", "refresh", "deb", "--from", worse.to_str().unwrap()])
            .env("CAIRN_PLATFORM_DIR", platform.path())
            .output()
            .unwrap(),
    );
    println!("{}", r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("DSA-9999-1 (critical)")
            && r.stderr.contains("did not pass the catalog's gate"),
        "{r:?}"
    );
    assert_eq!(catalog_entries(&f, "deb").len(), 3);
}

const ADVISORY: &str = "DSA-9999-1";
const VULNERABLE: &str = "1:1.2.13.dfsg-1";
const FIXED: &str = "1:1.2.13.dfsg-1+deb12u1";

/// The example web app on a small Debian base, running in staging and
/// production; its people; the base's root filesystem (its recorded source)
/// and the platform directory (org.toml).
struct Prod {
    f: Fixture,
    admin: String,
    rita: String,
    root: std::path::PathBuf,
    platform: tempfile::TempDir,
    _tmp: tempfile::TempDir,
    digest: String,
}

impl Prod {
    /// `cairn ARGS` as `token`, with the platform directory.
    fn as_(&self, token: &str, args: &[&str]) -> Run {
        Run::from(
            self.f
                .cairn(args)
                .env("CAIRN_TOKEN", token)
                .env("CAIRN_PLATFORM_DIR", self.platform.path())
                .output()
                .unwrap(),
        )
    }

    fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let r = self.as_(token, &all);
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
    }

    fn exposures(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["exposures"];
        all.extend_from_slice(args);
        self.json(&self.rita, &all)["exposures"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn running(&self, env: &str) -> String {
        self.json(&self.rita, &["status"])
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["environment"] == env)
            .map(|s| s["digest"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Imports OSV record `record` as the admin.
    fn import(&self, record: &Value) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path()
                .join(format!("{}.json", record["id"].as_str().unwrap())),
            record.to_string(),
        )
        .unwrap();
        let r = self.as_(
            &self.admin,
            &["vulns", "import", dir.path().to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{r:?}");
    }
}

fn token(f: &Fixture, actor: Option<&str>, name: &str) -> String {
    let mut cmd = f.cairn(&["--json", "identity", "add", name]);
    if let Some(t) = actor {
        cmd.env("CAIRN_TOKEN", t);
    }
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// hello-web (with `make_app` applied to its repository) built on base `deb`
/// (`base(root)` made its root filesystem), promoted to staging and, with a
/// second maintainer's approval, to production, under `org_toml`.
fn in_production(
    org_toml: &str,
    base: &dyn Fn(&std::path::Path),
    make_app: &dyn Fn(&Fixture),
) -> Prod {
    let f = Fixture::example("hello-web");
    let cairn_toml = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    f.write(
        "cairn.toml",
        &cairn_toml.replace("base = \"tiny\"", "base = \"deb\""),
    )
    .commit("on the Debian base");
    in_production_of(f, org_toml, base, make_app, &[])
}

/// [`in_production`] for the workload `hello-web` that `f` holds, each
/// promotion with `promote_extra` (e.g. `--override REASON`).
fn in_production_of(
    f: Fixture,
    org_toml: &str,
    base: &dyn Fn(&std::path::Path),
    make_app: &dyn Fn(&Fixture),
    promote_extra: &[&str],
) -> Prod {
    make_app(&f);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("deb");
    base(&root);
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(platform.path().join("org.toml"), org_toml).unwrap();
    let admin = token(&f, None, "admin@example.org");
    let bob = token(&f, Some(&admin), "bob@example.org");
    let rita = token(&f, Some(&admin), "rita@example.org");
    let mut p = Prod {
        f,
        admin,
        rita,
        root,
        platform,
        _tmp: tmp,
        digest: String::new(),
    };
    for (who, role) in [
        ("bob@example.org", "maintainer"),
        ("rita@example.org", "release-manager"),
    ] {
        let r = p.as_(
            &p.admin,
            &["role", "grant", who, role, "--workload", "hello-web"],
        );
        assert_eq!(r.code, 0, "{r:?}");
    }
    let r = p.as_(
        &p.admin,
        &["base", "import", p.root.to_str().unwrap(), "--name", "deb"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.as_(&p.rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    p.digest = p.json(&p.rita, &["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = p.digest.clone();
    let promote = |env: &str| {
        let mut args = vec!["promote", "hello-web", &digest, "--to", env];
        args.extend_from_slice(promote_extra);
        let r = p.as_(&p.rita, &args);
        assert_eq!(r.code, 0, "{r:?}");
    };
    promote("staging");
    assert_eq!(p.as_(&bob, &["review", "approve"]).code, 0);
    promote("production");
    assert_eq!(p.running("production"), p.digest);
    p
}

const AUTO: &str = "[remediation]\nauto_promote = [\"staging\", \"production\"]\n";

/// The closed loop, end to end with real bubblewrap: the example web app runs
/// in production on a Debian base; an advisory for a package of that base is
/// imported and `cairn exposures` shows the exposure with its deadline; the
/// base's source moves on to the fixed package; `cairn remediate` refreshes
/// the base, rebases the image, runs the chain's test stages on the rebased
/// digest and promotes it to staging and production under `auto_promote`,
/// while a second remediation of the workload is refused naming the first;
/// the exposure is closed with its time to remediate and `cairn audit` shows
/// every step.
#[test]
fn a_base_layer_advisory_is_remediated_in_production_by_cairn() {
    let p = in_production(AUTO, &|root| debian_fixture(root, VULNERABLE), &|_| {});
    assert!(p.exposures(&[]).is_empty());

    let imported = std::time::Instant::now();
    p.import(&common::zlib_advisory(ADVISORY, Some(FIXED)));
    let open = p.exposures(&["--env", "production"]);
    println!("exposures after the import: {open:#?}");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["advisory"], ADVISORY);
    assert_eq!(open[0]["state"], "open");
    assert_eq!(open[0]["digest"], p.digest.as_str());
    assert_eq!(open[0]["fixed_versions"], serde_json::json!([FIXED]));
    assert!(open[0]["deadline"].as_str().unwrap() > open[0]["first_seen"].as_str().unwrap());
    let text = p.as_(&p.rita, &["exposures"]).stdout;
    println!("{text}");
    assert!(
        text.contains(open[0]["deadline"].as_str().unwrap()),
        "{text}"
    );

    // The plan: nothing done.
    let r = p.as_(&p.rita, &["remediate", "--all", "--plan"]);
    println!("{}", r.stdout);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("fix: base `deb`"), "{r:?}");
    assert!(r.stdout.contains("promote it to production"), "{r:?}");
    assert_eq!(p.running("production"), p.digest);

    // Debian's archive moved on: the base's recorded source has the fix.
    debian_fixture(&p.root, FIXED);
    let child =
        p.f.cairn(&["remediate", "--all"])
            .env("CAIRN_TOKEN", &p.rita)
            .env("CAIRN_PLATFORM_DIR", p.platform.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    // While it runs: the exposure is `remediating`, and a second remediation
    // of the workload is refused, naming the first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = p.json(&p.rita, &["remediate"]);
        if s.as_array()
            .unwrap()
            .iter()
            .any(|s| s["state"] == "running")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never started: {s}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = p.as_(&p.rita, &["remediate", ADVISORY]);
    println!("second: {}", second.stderr);
    let during = p.exposures(&["--env", "production"]);
    let out = child.wait_with_output().unwrap();
    let first = Run::from(out);
    println!("{}\n{}", first.stdout, first.stderr);
    assert_eq!(first.code, 0, "{first:?}");
    let took = imported.elapsed();
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second
            .stderr
            .contains("a remediation of hello-web is already running: hello-web-"),
        "{second:?}"
    );
    assert_eq!(during[0]["state"], "remediating", "{during:?}");

    // Production runs the rebased, tested digest; the exposure is closed.
    let now = p.running("production");
    assert_ne!(now, p.digest);
    assert_eq!(p.running("staging"), now);
    let images = p.json(&p.rita, &["image", "list"]);
    let rebased = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == now.as_str())
        .unwrap_or_else(|| panic!("{images}"));
    println!("rebased: {rebased}");
    assert_eq!(rebased["rebased_from"], p.digest.as_str(), "{rebased}");
    assert!(p.exposures(&[]).is_empty());
    let all = p.exposures(&["--all", "--env", "production"]);
    println!("{all:#?}");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["state"], "remediated");
    assert_eq!(all[0]["remediated_by"], now.as_str());
    let ttr = all[0]["time_to_remediate_seconds"].as_i64().unwrap();
    assert!(ttr >= 0 && ttr <= took.as_secs() as i64 + 1, "{ttr}");
    println!(
        "advisory imported → production remediated: {:.1} s (time to remediate recorded: {ttr} s)",
        took.as_secs_f64()
    );

    // The rebased digest was tested by a run of the same commit.
    let runs = p.json(&p.rita, &["runs"]);
    let retest = &runs.as_array().unwrap()[0];
    println!("retest run: {retest}");
    assert_eq!(retest["status"], "succeeded", "{retest}");

    // Every step is in the audit log.
    let audit = p.as_(&p.rita, &["audit"]).stdout;
    println!("{audit}");
    for step in [
        "started:",
        "base-refreshed:",
        "rebased:",
        "tested:",
        "remediated:",
    ] {
        assert!(audit.contains(step), "{step}: {audit}");
    }
    let deploys = audit
        .lines()
        .filter(|l| l.contains("deploy") && l.contains("by cairn-remediation") && l.contains(&now))
        .count();
    assert_eq!(deploys, 2, "{audit}");
    let status = p.as_(&p.rita, &["remediate"]).stdout;
    println!("{status}");
    assert!(status.contains("remediated by"), "{status}");
}

/// The debian fixture and, with `libc`, the host's C library and loader (for
/// a dynamically linked app).
fn debian_with_libc(root: &std::path::Path, zlib: &str, libc: bool) {
    debian_fixture(root, zlib);
    for (host, at) in [
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
    ] {
        let dest = root.join(at);
        if libc {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(host, &dest).unwrap();
        } else {
            let _ = std::fs::remove_file(&dest);
        }
    }
}

/// Remediations that cannot finish stop at the failed step, say why (the
/// command, `cairn remediate`'s status, the audit log), leave staging and
/// production as they were and the exposure open: a base refresh that gives
/// no fixed version, a rebased digest whose tests fail (the new base version
/// lost the C library the app needs), an advisory with no fixed version.
#[test]
fn a_failed_remediation_step_leaves_production_untouched_and_says_why() {
    // hello-web linked dynamically, on a base with the C library.
    let p = in_production(
        AUTO,
        &|root| debian_with_libc(root, VULNERABLE, true),
        &|f| {
            let make = std::fs::read_to_string(f.repo.join("Makefile")).unwrap();
            f.write("Makefile", &make.replace(" -static", ""))
                .commit("link dynamically");
        },
    );
    p.import(&common::zlib_advisory(ADVISORY, Some(FIXED)));
    let unchanged = |p: &Prod| {
        assert_eq!(p.running("production"), p.digest);
        assert_eq!(p.running("staging"), p.digest);
        let open = p.exposures(&["--env", "production"]);
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0]["state"], "open", "{open:?}");
    };

    // 1. The base's recipe gives the version it has: no fixed base yet.
    let r = p.as_(&p.rita, &["remediate", ADVISORY]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("FAILED at `refresh`")
            && r.stdout.contains("gives the version it has")
            && r.stdout.contains("production is unchanged"),
        "{r:?}"
    );
    unchanged(&p);
    let status = p.as_(&p.rita, &["remediate"]).stdout;
    println!("{status}");
    assert!(
        status.contains("failed at `refresh`: base `deb`'s recipe gives the version it has"),
        "{status}"
    );

    // 2. The fixed base lost the C library: the rebased digest fails its
    //    acceptance tests; nothing is promoted.
    debian_with_libc(&p.root, FIXED, false);
    let r = p.as_(&p.rita, &["remediate", &format!("hello-web:{ADVISORY}")]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("FAILED at `test`") && r.stdout.contains("acceptance-tests"),
        "{r:?}"
    );
    unchanged(&p);
    let audit = p.as_(&p.rita, &["audit"]).stdout;
    println!("{audit}");
    assert!(audit.contains("failed: step `test` failed"), "{audit}");
    let why = p.as_(&p.rita, &["explain", "remediation:hello-web"]).stdout;
    println!("{why}");
    assert!(
        why.contains("failed at `test`")
            && why.contains("the release candidate exited before listening"),
        "{why}"
    );
    assert!(!audit.contains("by cairn-remediation"), "{audit}");
    let runs = p.json(&p.rita, &["runs"]);
    assert_eq!(runs[0]["status"], "failed", "{runs}");

    // 3. An advisory with no fixed version: nothing to move to.
    p.import(&common::zlib_advisory("DSA-9998-1", None));
    let r = p.as_(&p.rita, &["remediate", "DSA-9998-1", "--plan"]);
    println!("{}", r.stdout);
    assert!(r.stdout.contains("fix: none"), "{r:?}");
    let r = p.as_(&p.rita, &["remediate", "DSA-9998-1"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("FAILED at `plan`: no fixed version of pkg:deb/debian/zlib1g"),
        "{r:?}"
    );
    assert_eq!(p.running("production"), p.digest);
    // With every exposure: the one with a fix is planned, the other waits.
    let r = p.as_(&p.rita, &["remediate", "--all", "--plan"]);
    println!("{}", r.stdout);
    assert!(
        r.stdout.contains("DSA-9999-1 in pkg:deb/debian/zlib1g")
            && r.stdout.contains("fix: base `deb`")
            && !r.stdout.contains("DSA-9998-1 in"),
        "{r:?}"
    );

    // Nothing open for an advisory nobody has.
    let r = p.as_(&p.rita, &["remediate", "CVE-2099-0000"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("nothing to remediate"), "{r:?}");
}

/// The server's loop: `cairn up` with `auto_promote`; the base's source has
/// the fix; an advisory for the base's package is imported (by the CLI) and
/// cairn remediates production by itself, as `cairn-remediation`.
#[test]
fn cairn_up_remediates_after_an_advisory_import_by_itself() {
    let p = in_production(AUTO, &|root| debian_fixture(root, VULNERABLE), &|_| {});
    debian_fixture(&p.root, FIXED);
    let mut up = common::server::Up::start(
        &p.f.data,
        &["--platform-dir", p.platform.path().to_str().unwrap()],
    );
    let imported = std::time::Instant::now();
    p.import(&common::zlib_advisory(ADVISORY, Some(FIXED)));
    let line = up.wait_for(
        "remediation: remediated:",
        std::time::Duration::from_secs(120),
    );
    let took = imported.elapsed();
    println!("{}", up.seen.join("\n"));
    println!(
        "advisory imported → production remediated by `cairn up`: {:.1} s",
        took.as_secs_f64()
    );
    assert!(line.contains("production runs sha256:"), "{line}");
    let now = p.running("production");
    assert_ne!(now, p.digest);
    let all = p.exposures(&["--all", "--env", "production"]);
    assert_eq!(all[0]["state"], "remediated", "{all:?}");
    assert_eq!(all[0]["remediated_by"], now.as_str());
    let audit = p.as_(&p.rita, &["audit"]).stdout;
    assert!(
        audit.contains("remediation hello-web → production by cairn-remediation"),
        "{audit}"
    );
    // Nothing more to do: the next passes leave it alone.
    assert!(p.exposures(&[]).is_empty());
}

/// An npm lockfile naming minimist 1.2.5, and its manifest.
const PACKAGE_LOCK: &str = r#"{
  "name": "hello-web-tools",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": { "name": "hello-web-tools", "version": "1.0.0", "license": "MIT",
          "dependencies": { "minimist": "1.2.5" } },
    "node_modules/minimist": {
      "version": "1.2.5",
      "resolved": "https://registry.npmjs.org/minimist/-/minimist-1.2.5.tgz",
      "license": "MIT"
    }
  }
}
"#;
const PACKAGE_JSON: &str = r#"{
  "name": "hello-web-tools",
  "version": "1.0.0",
  "license": "MIT",
  "dependencies": { "minimist": "1.2.5" }
}
"#;

/// An OSV record for minimist below `fixed`, with a CVSS vector.
fn minimist_advisory(id: &str, fixed: &str, cvss: &str) -> Value {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-12-01T00:00:00Z",
        "summary": "minimist pollutes prototypes",
        "severity": [{ "type": "CVSS_V3", "score": cvss }],
        "affected": [{
            "package": { "ecosystem": "npm", "name": "minimist", "purl": "pkg:npm/minimist" },
            "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": fixed }] }]
        }]
    })
}

/// A dependency finding: cairn bumps minimist to its lowest fixed version
/// with npm in the sandbox (network on), commits the lockfile and manifest on
/// a new branch, runs the chain for it, and waits for review; a maintainer
/// approves, a release manager promotes, and the exposure closes. A tool that
/// fails (no such version on the registry) stops at its step, saying why.
#[test]
fn a_dependency_advisory_becomes_a_reviewed_remediation_commit() {
    let p = in_production(AUTO, &|root| debian_fixture(root, VULNERABLE), &|f| {
        f.write("tools/package-lock.json", PACKAGE_LOCK)
            .write("tools/package.json", PACKAGE_JSON)
            .commit("tools lockfile");
    });
    let bob = token(&p.f, Some(&p.admin), "bob2@example.org");
    let r = p.as_(
        &p.admin,
        &[
            "role",
            "grant",
            "bob2@example.org",
            "maintainer",
            "--workload",
            "hello-web",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");

    // A fixed version the registry does not have: npm fails, nothing moves.
    p.import(&minimist_advisory(
        "GHSA-cair-n000-0009",
        "9.9.9",
        "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L",
    ));
    let r = p.as_(&p.rita, &["remediate", "GHSA-cair-n000-0009"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("FAILED at `bump`") && r.stdout.contains("minimist@9.9.9"),
        "{r:?}"
    );
    assert_eq!(p.running("production"), p.digest);

    // The real fix: 1.2.6.
    let imported = std::time::Instant::now();
    p.import(&minimist_advisory(
        "GHSA-cair-n000-0001",
        "1.2.6",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    ));
    let r = p.as_(&p.rita, &["remediate", "GHSA-cair-n000-0001", "--plan"]);
    println!("{}", r.stdout);
    assert!(r.stdout.contains("fix: dependency"), "{r:?}");
    let r = p.as_(&p.rita, &["--json", "remediate", "GHSA-cair-n000-0001"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let ending = &v[0]["ending"];
    assert_eq!(ending["state"], "waiting-for-review", "{v}");
    let commit = ending["commit"].as_str().unwrap().to_owned();
    let branch = ending["branch"].as_str().unwrap().to_owned();
    let image = ending["digest"].as_str().unwrap().to_owned();
    // The commit is on its branch, with the bumped lockfile; the work tree is untouched.
    let show = std::process::Command::new("git")
        .arg("-C")
        .arg(&p.f.repo)
        .args(["show", &format!("{branch}:tools/package-lock.json")])
        .output()
        .unwrap();
    let lock = String::from_utf8_lossy(&show.stdout);
    assert!(lock.contains("minimist-1.2.6.tgz"), "{lock}");
    let worktree = std::fs::read_to_string(p.f.repo.join("tools/package-lock.json")).unwrap();
    assert!(worktree.contains("1.2.5"), "the work tree is untouched");
    // Its review counts like any commit's: the author (cairn) is not the reviewer.
    let r = p.as_(
        &p.rita,
        &["promote", "hello-web", &image, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.as_(
        &p.rita,
        &["promote", "hello-web", &image, "--to", "production"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("[review]"), "{r:?}");
    let r = p.as_(&bob, &["review", "approve", &commit]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.as_(
        &p.rita,
        &["promote", "hello-web", &image, "--to", "production"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let took = imported.elapsed();
    let all = p.exposures(&["--all", "--env", "production"]);
    println!("{all:#?}");
    let fixed = all
        .iter()
        .find(|e| e["advisory"] == "GHSA-cair-n000-0001")
        .unwrap();
    assert_eq!(fixed["state"], "remediated");
    assert_eq!(fixed["remediated_by"], image.as_str());
    println!(
        "dependency advisory imported → production (with a human review): {:.1} s",
        took.as_secs_f64()
    );
    let audit = p.as_(&p.rita, &["audit"]).stdout;
    for step in ["bumped:", "committed:", "tested:", "waiting-for-review:"] {
        assert!(audit.contains(step), "{step}: {audit}");
    }
}

/// A remediation does not replace a newer build in staging: production runs
/// commit A; staging already runs a build of a later commit B; the base-layer
/// finding is remediated (base refreshed, A rebased and retested), but cairn
/// stops before staging, saying what runs there and which command would
/// replace it. Staging keeps B's build, production is unchanged.
#[test]
fn a_remediation_leaves_a_newer_build_in_staging_alone() {
    let p = in_production(AUTO, &|root| debian_fixture(root, VULNERABLE), &|_| {});
    p.f.write("NOTES.md", "a later commit\n")
        .commit("a later commit");
    let r = p.as_(&p.rita, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    let newer = p.json(&p.rita, &["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(newer, p.digest);
    let r = p.as_(
        &p.rita,
        &["promote", "hello-web", &newer, "--to", "staging"],
    );
    assert_eq!(r.code, 0, "{r:?}");

    p.import(&common::zlib_advisory(ADVISORY, Some(FIXED)));
    debian_fixture(&p.root, FIXED);
    let r = p.as_(&p.rita, &["remediate", &format!("hello-web:{ADVISORY}")]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("kept: staging runs ")
            && r.stderr.contains("cairn does not replace another build")
            && r.stdout
                .contains("waiting for approval to staging: staging runs another build"),
        "{r:?}"
    );
    assert_eq!(p.running("staging"), newer);
    assert_eq!(p.running("production"), p.digest);
    let status = p.as_(&p.rita, &["remediate"]).stdout;
    println!("{status}");
    let audit = p.as_(&p.rita, &["audit"]).stdout;
    assert!(audit.contains("kept:"), "{audit}");
    assert!(!audit.contains("by cairn-remediation"), "{audit}");
}

/// Without production in `auto_promote`, cairn takes the remediation to
/// staging and stops, saying which command a human runs; the exposure in
/// production stays open until they do.
#[test]
fn without_auto_promote_for_production_the_remediation_waits_for_a_human() {
    let p = in_production(
        "[remediation]\nauto_promote = [\"staging\"]\n",
        &|root| debian_fixture(root, VULNERABLE),
        &|_| {},
    );
    p.import(&common::zlib_advisory(ADVISORY, Some(FIXED)));
    debian_fixture(&p.root, FIXED);
    let r = p.as_(&p.rita, &["remediate", ADVISORY]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{r:?}");
    let staged = p.running("staging");
    assert_ne!(staged, p.digest);
    assert_eq!(p.running("production"), p.digest);
    let command = format!("cairn promote hello-web {staged} --to production");
    assert!(
        r.stdout
            .contains(&format!("waiting for approval to production: {command}")),
        "{r:?}"
    );
    let open = p.exposures(&["--env", "production"]);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["state"], "open");
    let r = p.as_(
        &p.rita,
        &["promote", "hello-web", &staged, "--to", "production"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(p.exposures(&[]).is_empty());
}

/// `cairn up` takes a remediation as far as org.toml lets it and leaves one
/// that waits for a human alone: another advisory import does not start it
/// again.
#[test]
fn cairn_up_leaves_a_remediation_waiting_for_approval_alone() {
    let p = in_production(
        "[remediation]\nauto_promote = [\"staging\"]\n",
        &|root| debian_fixture(root, VULNERABLE),
        &|_| {},
    );
    debian_fixture(&p.root, FIXED);
    let mut up = common::server::Up::start(
        &p.f.data,
        &["--platform-dir", p.platform.path().to_str().unwrap()],
    );
    p.import(&common::zlib_advisory(ADVISORY, Some(FIXED)));
    let line = up.wait_for(
        "remediation: waiting-for-approval:",
        std::time::Duration::from_secs(120),
    );
    println!("{line}");
    // Another import (a new re-match): the loop looks again, starts nothing.
    p.import(&common::zlib_advisory("DSA-9997-1", Some(FIXED)));
    std::thread::sleep(std::time::Duration::from_secs(6));
    up.stop(std::time::Duration::from_secs(10));
    let started = up
        .seen
        .iter()
        .filter(|l| l.contains("remediation: started:"))
        .count();
    println!("{}", up.seen.join("\n"));
    assert_eq!(started, 1, "{:?}", up.seen);
    assert_eq!(p.running("production"), p.digest);
}

/// The real OSV advisory for PyJWT below 2.4.0 (GHSA-ffqj-6fqr-9h24), as
/// `id`, fixed in `fixed` (none: no fix known).
fn pyjwt_advisory(id: &str, fixed: Option<&str>) -> Value {
    let mut events = vec![serde_json::json!({ "introduced": "0" })];
    if let Some(f) = fixed {
        events.push(serde_json::json!({ "fixed": f }));
    }
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-12-01T00:00:00Z",
        "summary": "PyJWT: key confusion through non-blocklisted public key formats",
        "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N" }],
        "affected": [{
            "package": { "ecosystem": "PyPI", "name": "pyjwt", "purl": "pkg:pypi/pyjwt" },
            "ranges": [{ "type": "ECOSYSTEM", "events": events }]
        }]
    })
}

/// A web server in Python (the image runs it with the build image's Python)
/// and its acceptance test.
const SERVER_PY: &str = "import http.server, os\n\
class H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200)\n        self.end_headers()\n        self.wfile.write(b'hello from python\\n')\n\
http.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";
const CHECK_PY: &str = "import os, urllib.request\n\
assert b'hello from python' in urllib.request.urlopen(os.environ['CAIRN_RC_URL'] + '/', timeout=5).read()\n";

/// A uv project needing PyJWT, locked at 2.3.0 (made by `uv lock`).
const PYPROJECT: &str = "[project]\nname = \"tools\"\nversion = \"0.1.0\"\nrequires-python = \">=3.9\"\ndependencies = [\"pyjwt>=2\"]\n";
const UV_LOCK: &str = r#"version = 1
revision = 5
requires-python = ">=3.9"

[[package]]
name = "pyjwt"
version = "2.3.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/packages/1d/8e/01bdcfdbb352daaba8ea406d9df149c5bba7dbf70f908d4fa4c269fe6a08/PyJWT-2.3.0.tar.gz", hash = "sha256:b888b4d56f06f6dcd777210c334e69c737be74755d3e5e9ee3fe67dc18a0ee41", size = 62279, upload-time = "2021-10-16T15:54:56.057Z" }
wheels = [
    { url = "https://files.pythonhosted.org/packages/2a/4d/67cc66a0c49003dc216fc73db2d05a3b80c7193167fd113da1f2c678ac2a/PyJWT-2.3.0-py3-none-any.whl", hash = "sha256:e0c4bb8d9f0af0c7f5b1ec4c5036309617d03d56932877f2f7a0beeb5318322f", size = 16907, upload-time = "2021-10-16T15:54:52.964Z" },
]

[[package]]
name = "tools"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "pyjwt" },
]

[package.metadata]
requires-dist = [{ name = "pyjwt", specifier = ">=2" }]
"#;

/// A tool `scripts/install-interop-tools` installs (`bin/uv`, PyPI's static
/// build; `pip-tools`, a directory of pure Python packages).
fn interop_tool(rel: &str) -> std::path::PathBuf {
    let dir = match std::env::var_os("CAIRN_INTEROP_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
            })
            .join("interop-tools"),
    };
    let path = dir.join(rel);
    assert!(
        path.exists(),
        "run scripts/install-interop-tools first (missing {})",
        path.display()
    );
    path
}

/// A build image's root filesystem from host files: dash as `/bin/sh`, the
/// host's Python 3.11 (interpreter, the libraries it links, its standard
/// library) and uv, which the host's system does not have.
fn python_toolchain_rootfs(root: &std::path::Path) {
    use std::os::unix::fs::symlink;
    for dir in [
        "usr/bin",
        "usr/lib/x86_64-linux-gnu",
        "usr/lib64",
        "etc",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy("/usr/bin/dash", root.join("usr/bin/sh")).unwrap();
    std::fs::copy("/usr/bin/python3.11", root.join("usr/bin/python3")).unwrap();
    std::fs::copy(interop_tool("bin/uv"), root.join("usr/bin/uv")).unwrap();
    for lib in [
        "libc.so.6",
        "libm.so.6",
        "libz.so.1",
        "libexpat.so.1",
        "libssl.so.3",
        "libcrypto.so.3",
    ] {
        std::fs::copy(
            format!("/lib/x86_64-linux-gnu/{lib}"),
            root.join("usr/lib/x86_64-linux-gnu").join(lib),
        )
        .unwrap();
    }
    std::fs::copy(
        "/lib64/ld-linux-x86-64.so.2",
        root.join("usr/lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    let out = std::process::Command::new("tar")
        .args(["-C", "/usr/lib", "-cf", "-"])
        .args([
            "--exclude=python3.11/config-3.11-x86_64-linux-gnu",
            "--exclude=python3.11/test",
            "--exclude=python3.11/idlelib",
            "--exclude=python3.11/tkinter",
            "--exclude=python3.11/lib2to3",
            "--exclude=python3.11/ensurepip",
            "--exclude=python3.11/pydoc_data",
            "--exclude=__pycache__",
            "python3.11",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut untar = std::process::Command::new("tar")
        .arg("-C")
        .arg(root.join("usr/lib"))
        .arg("-xf")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        untar.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    }
    assert!(untar.wait().unwrap().success());
    // pip-tools (with its pip) where Debian's Python finds packages, and
    // its command.
    common::copy_dir(
        &interop_tool("pip-tools"),
        &root.join("usr/lib/python3/dist-packages"),
    );
    let _ = std::fs::remove_dir_all(root.join("usr/lib/python3/dist-packages/bin"));
    let pip_compile = root.join("usr/bin/pip-compile");
    std::fs::write(
        &pip_compile,
        "#!/usr/bin/python3\nimport sys\nfrom piptools.scripts.compile import cli\nsys.exit(cli())\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pip_compile, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        symlink(target, root.join(link)).unwrap();
    }
    std::fs::write(root.join("etc/os-release"), "ID=fixture\nVERSION_ID=1\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "nobody:x:65534:65534::/:/bin/sh\n").unwrap();
}

/// A Python web server (built and run in the build image `pytools`: Python,
/// uv, pip-compile; its image on `pytools` too) with `files` (its tool's
/// lockfiles), in production; the dependency's missing licence overridden.
fn pytools_in_production(files: &[(&str, &str)]) -> Prod {
    let f = Fixture::new();
    f.write(
        "cairn.toml",
        "[workload]\nname = \"hello-web\"\nchain = \"default\"\nenvironments = [\"staging\", \"production\"]\n\
         [build]\nimage = \"pytools\"\n\
         command = \"python3 -m py_compile server.py\"\noutput = \"server.py\"\n\
         [test]\nunit = \"test -x /usr/bin/uv && test -x /usr/bin/pip-compile\"\nacceptance = \"python3 check.py\"\n\
         [image]\nbase = \"pytools\"\nentrypoint = [\"/usr/bin/python3\", \"/app/server.py\"]\nport = 8080\n",
    )
    .write("server.py", SERVER_PY)
    .write("check.py", CHECK_PY);
    for (path, text) in files {
        f.write(path, text);
    }
    f.commit("a Python server with a tool's lockfile, built in pytools");
    // PyPI's lockfiles name no licence (the gate denies the dependency for
    // it): the release manager overrides that, as an organisation would.
    in_production_of(
        f,
        AUTO,
        &|root| debian_fixture(root, VULNERABLE),
        &|f| {
            let rootfs = f.repo.parent().unwrap().join("pytools-rootfs");
            python_toolchain_rootfs(&rootfs);
            f.ok(&[
                "base",
                "import",
                rootfs.to_str().unwrap(),
                "--name",
                "pytools",
            ]);
        },
        &["--override", "PyJWT is MIT; the lockfile does not say"],
    )
}

/// Issue 13, item 6 (uv, in the build image): a workload building in the
/// build image `pytools` (Python and uv; the host's system has no uv) runs in
/// production with a uv.lock at PyJWT 2.3.0. An advisory with no fixed version
/// stops at the plan; one whose fixed version PyPI does not have stops at the
/// bump, uv's error printed; the real advisory (fixed in 2.4.0) is bumped by
/// `uv lock --upgrade-package pyjwt==2.4.0` run in the build image with network,
/// committed on a branch, its run passes, and it waits for review. A build
/// image without its signed catalog admission refuses the bump before uv
/// runs. Production is unchanged throughout and the exposures stay open.
#[test]
fn a_uv_lock_is_bumped_by_the_build_images_uv_and_waits_for_review() {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin"] {
        assert!(
            !std::path::Path::new(dir).join("uv").exists(),
            "the host's system must not have uv ({dir})"
        );
    }
    let p = pytools_in_production(&[
        ("tools/pyproject.toml", PYPROJECT),
        ("tools/uv.lock", UV_LOCK),
    ]);
    let unchanged = |p: &Prod, advisory: &str| {
        assert_eq!(p.running("production"), p.digest);
        assert_eq!(p.running("staging"), p.digest);
        let open = p.exposures(&["--env", "production"]);
        let it = open
            .iter()
            .find(|e| e["advisory"] == advisory)
            .unwrap_or_else(|| panic!("{open:?}"));
        assert_eq!(it["state"], "open", "{open:?}");
        assert_eq!(it["package"], "pkg:pypi/pyjwt@2.3.0", "{open:?}");
    };

    // No fixed version known: nothing to move to.
    p.import(&pyjwt_advisory("GHSA-cair-n000-0101", None));
    let r = p.as_(&p.rita, &["remediate", "GHSA-cair-n000-0101"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("FAILED at `plan`: no fixed version of pkg:pypi/pyjwt@2.3.0"),
        "{r:?}"
    );
    unchanged(&p, "GHSA-cair-n000-0101");

    // A fixed version PyPI does not have: uv fails in the build image, saying why.
    p.import(&pyjwt_advisory("GHSA-cair-n000-0102", Some("99.0")));
    let r = p.as_(&p.rita, &["remediate", "GHSA-cair-n000-0102"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("FAILED at `bump`")
            && r.stdout.contains("uv lock --upgrade-package pyjwt==99.0")
            && r.stdout.contains("build image pytools sha256:")
            && r.stdout.contains("there is no version of pyjwt==99.0"),
        "{r:?}"
    );
    unchanged(&p, "GHSA-cair-n000-0102");
    let why = p.as_(&p.rita, &["explain", "remediation:hello-web"]).stdout;
    println!("{why}");
    assert!(why.contains("failed at `bump`"), "{why}");

    // The real fix, 2.4.0: bumped by the build image's uv, committed, run, waiting for review.
    p.import(&pyjwt_advisory("GHSA-ffqj-6fqr-9h24", Some("2.4.0")));
    let r = p.as_(&p.rita, &["--json", "remediate", "GHSA-ffqj-6fqr-9h24"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let ending = &v[0]["ending"];
    assert_eq!(ending["state"], "waiting-for-review", "{v}");
    let branch = ending["branch"].as_str().unwrap().to_owned();
    assert!(
        branch.starts_with("cairn/remediate-ghsa-ffqj-6fqr-9h24-"),
        "{branch}"
    );
    let steps = v.to_string();
    assert!(
        steps.contains("by `uv lock --upgrade-package pyjwt==2.4.0` in the sandbox (build image pytools sha256:"),
        "{steps}"
    );
    let show = std::process::Command::new("git")
        .arg("-C")
        .arg(&p.f.repo)
        .args(["show", &format!("{branch}:tools/uv.lock")])
        .output()
        .unwrap();
    let lock = String::from_utf8_lossy(&show.stdout);
    println!("{lock}");
    assert!(
        lock.contains("version = \"2.4.0\"") && lock.contains("PyJWT-2.4.0-py3-none-any.whl"),
        "{lock}"
    );
    let worktree = std::fs::read_to_string(p.f.repo.join("tools/uv.lock")).unwrap();
    assert_eq!(worktree, UV_LOCK, "the work tree is untouched");
    assert_eq!(p.running("production"), p.digest);
    let audit = p.as_(&p.rita, &["audit"]).stdout;
    for step in ["bumped:", "committed:", "tested:", "waiting-for-review:"] {
        assert!(audit.contains(step), "{step}: {audit}");
    }

    // The build image loses its signed catalog admission (evidence removed):
    // the bump is refused as a run would be, before any tool runs.
    p.f.tamper(
        "DELETE FROM evidence WHERE run_id IS NULL AND subject_name LIKE 'base pytools%'",
        &[],
    );
    let r = p.as_(&p.rita, &["remediate", "GHSA-ffqj-6fqr-9h24"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("FAILED at `bump`")
            && r.stdout.contains("build image `pytools` (sha256:")
            && r.stdout.contains("did not pass the catalog's gate"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("$ (in tools) uv lock"), "{r:?}");
    assert_eq!(p.running("production"), p.digest);
}

/// Issue 13, item 6 (pip): hello-web (no build image: the host's system) has
/// a pinned tools/requirements.txt; the pin is rewritten exactly (comments
/// and markers kept) and `pip download` in the sandbox proves PyPI has the
/// version; committed on a branch, its run passes, waiting for review.
#[test]
fn a_pinned_requirements_txt_is_rewritten_and_checked_with_pip() {
    const REQUIREMENTS: &str =
        "# tools\nPyJWT==2.3.0 ; python_version >= \"3.7\"  # pinned by hand\n";
    let f = Fixture::example("hello-web");
    let cairn_toml = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    f.write(
        "cairn.toml",
        &cairn_toml.replace("base = \"tiny\"", "base = \"deb\""),
    )
    .write("tools/requirements.txt", REQUIREMENTS)
    .commit("on the Debian base, with pinned tool requirements");
    let p = in_production_of(
        f,
        AUTO,
        &|root| debian_fixture(root, VULNERABLE),
        &|_| {},
        &["--override", "PyJWT is MIT; requirements.txt does not say"],
    );
    p.import(&pyjwt_advisory("GHSA-ffqj-6fqr-9h24", Some("2.4.0")));
    let r = p.as_(&p.rita, &["--json", "remediate", "GHSA-ffqj-6fqr-9h24"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let ending = &v[0]["ending"];
    assert_eq!(ending["state"], "waiting-for-review", "{v}");
    assert!(
        v.to_string().contains("python3 -m pip download")
            && v.to_string().contains("the host's /usr"),
        "{v}"
    );
    let branch = ending["branch"].as_str().unwrap();
    let show = std::process::Command::new("git")
        .arg("-C")
        .arg(&p.f.repo)
        .args(["show", &format!("{branch}:tools/requirements.txt")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&show.stdout),
        REQUIREMENTS.replace("PyJWT==2.3.0", "PyJWT==2.4.0")
    );
    assert_eq!(p.running("production"), p.digest);
}

/// Issue 13, bad input (pip): a requirements.txt cairn cannot bump exactly
/// (its pin carries hashes, which would not match the new version) is refused
/// at the bump with the reason, production unchanged, the exposure open.
#[test]
fn a_hashed_requirement_pin_is_refused_with_the_reason() {
    for (files, why) in [(
        vec![(
            "tools/requirements.txt",
            "pyjwt==2.3.0 \\\n    --hash=sha256:e0c4bb8d9f0af0c7f5b1ec4c5036309617d03d56932877f2f7a0beeb5318322f\n",
        )],
        "the pin of pyjwt carries hashes (line 1): they would not match 2.4.0",
    )] {
        let f = Fixture::example("hello-web");
        let cairn_toml = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
        f.write(
            "cairn.toml",
            &cairn_toml.replace("base = \"tiny\"", "base = \"deb\""),
        );
        for (path, text) in &files {
            f.write(path, text);
        }
        f.commit("on the Debian base, with tool requirements");
        let p = in_production_of(
            f,
            AUTO,
            &|root| debian_fixture(root, VULNERABLE),
            &|_| {},
            &["--override", "PyJWT is MIT; requirements.txt does not say"],
        );
        p.import(&pyjwt_advisory("GHSA-ffqj-6fqr-9h24", Some("2.4.0")));
        let r = p.as_(&p.rita, &["remediate", "GHSA-ffqj-6fqr-9h24"]);
        println!("{}\n{}", r.stdout, r.stderr);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stdout.contains("FAILED at `bump`") && r.stdout.contains(why),
            "{r:?}"
        );
        assert_eq!(p.running("production"), p.digest);
        let open = p.exposures(&["--env", "production"]);
        assert_eq!(open[0]["state"], "open", "{open:?}");
    }
}

/// Issue 13, item 6 (pip-compile): a requirements.txt compiled from a
/// requirements.in beside it is compiled again by the build image's
/// pip-compile, upgrading only PyJWT to 2.4.0, committed on a branch, its run
/// passes, waiting for review; without pip-compile in the system (the host's
/// /usr here) the same bump fails at its step, saying so.
#[test]
fn a_compiled_requirements_txt_is_bumped_by_the_build_images_pip_compile() {
    const COMPILED: &str = "#\n# This file is autogenerated by pip-compile with Python 3.11\n# by the following command:\n#\n#    pip-compile requirements.in\n#\npyjwt==2.3.0\n    # via -r requirements.in\n";
    let p = pytools_in_production(&[
        ("tools/requirements.in", "PyJWT\n"),
        ("tools/requirements.txt", COMPILED),
    ]);
    p.import(&pyjwt_advisory("GHSA-ffqj-6fqr-9h24", Some("2.4.0")));
    let r = p.as_(&p.rita, &["--json", "remediate", "GHSA-ffqj-6fqr-9h24"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let ending = &v[0]["ending"];
    assert_eq!(ending["state"], "waiting-for-review", "{v}");
    assert!(
        v.to_string().contains(
            "by `pip-compile --quiet --output-file requirements.txt --upgrade-package pyjwt==2.4.0 requirements.in` in the sandbox (build image pytools"
        ),
        "{v}"
    );
    let branch = ending["branch"].as_str().unwrap();
    let show = std::process::Command::new("git")
        .arg("-C")
        .arg(&p.f.repo)
        .args(["show", &format!("{branch}:tools/requirements.txt")])
        .output()
        .unwrap();
    let compiled = String::from_utf8_lossy(&show.stdout);
    println!("{compiled}");
    assert!(
        compiled.contains("pyjwt==2.4.0") && !compiled.contains("pyjwt==2.3.0"),
        "{compiled}"
    );
    assert_eq!(p.running("production"), p.digest);

    // hello-web on the host's /usr, which has no pip-compile: the tool fails.
    assert!(!std::path::Path::new("/usr/bin/pip-compile").exists());
    let f = Fixture::example("hello-web");
    let cairn_toml = std::fs::read_to_string(f.repo.join("cairn.toml")).unwrap();
    f.write(
        "cairn.toml",
        &cairn_toml.replace("base = \"tiny\"", "base = \"deb\""),
    )
    .write("tools/requirements.in", "PyJWT\n")
    .write("tools/requirements.txt", COMPILED)
    .commit("on the Debian base, with compiled tool requirements");
    let p = in_production_of(
        f,
        AUTO,
        &|root| debian_fixture(root, VULNERABLE),
        &|_| {},
        &["--override", "PyJWT is MIT; requirements.txt does not say"],
    );
    p.import(&pyjwt_advisory("GHSA-ffqj-6fqr-9h24", Some("2.4.0")));
    let r = p.as_(&p.rita, &["remediate", "GHSA-ffqj-6fqr-9h24"]);
    println!("{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("FAILED at `bump`: `pip-compile")
            && r.stdout.contains(
                "`pip-compile` is not in the host's /usr: put it in the workload's build image"
            ),
        "{r:?}"
    );
    assert_eq!(p.running("production"), p.digest);
}

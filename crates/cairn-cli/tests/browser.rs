//! The web UI end to end in a real browser: `cairn up` serving two onboarded
//! example apps, Debian's chromium (headless) driven by npm's playwright-core
//! (`tests/browser/e2e.mjs`): log in, watch the example app's run go green
//! live, follow it through the delivery view (waiting for review with the
//! rule, a denied promotion that changes nothing, a maintainer's approval, a
//! release manager's promotions to staging and production, each after the
//! gate's answer; a viewer sees no buttons; the overview shows the digest in
//! production), open a failed run and read why. Screenshots of the main pages are kept
//! in `target/browser-screenshots/`. `scripts/install-browser-tools` installs
//! both; without them this test fails, saying so.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Fixture;
use common::server::Up;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

#[test]
fn log_in_watch_a_run_go_green_and_read_why_another_failed() {
    let playwright = target_dir().join("browser-tools/node_modules/playwright-core");
    assert!(
        playwright.join("package.json").is_file() && Path::new("/usr/bin/chromium").is_file(),
        "the browser tests need chromium and playwright-core: run scripts/install-browser-tools"
    );
    let green = Fixture::example("hello-web");
    let red = Fixture::example("greeter-py");
    green.ok(&["base", "create", "tiny", "--name", "tiny"]);
    let mut up = Up::start(&green.data, &[]);
    let admin = up.admin_token();
    green.ok_as(&admin, &["workload", "add", "."]);
    green.ok_as(&admin, &["workload", "add", red.repo.to_str().unwrap()]);
    // A release manager, a maintainer and a viewer, each acting in the UI.
    let person = |name: &str, role: &str| {
        let added = green
            .cairn(&["identity", "add", name])
            .env("CAIRN_TOKEN", &admin)
            .output()
            .unwrap();
        let token = String::from_utf8_lossy(&added.stdout)
            .lines()
            .find(|l| l.starts_with("cairn_"))
            .unwrap()
            .to_owned();
        let granted = green
            .cairn(&["role", "grant", name, role])
            .env("CAIRN_TOKEN", &admin)
            .output()
            .unwrap();
        assert!(granted.status.success(), "{granted:?}");
        token
    };
    let release = person("rita@example.org", "release-manager");
    let maintainer = person("mae@example.org", "maintainer");
    let viewer = person("vic@example.org", "viewer");
    let shots = target_dir().join("browser-screenshots");
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/e2e.mjs"))
        .env("CAIRN_URL", &up.url)
        .env("CAIRN_TOKEN", &admin)
        .env("RELEASE_TOKEN", &release)
        .env("MAINTAINER_TOKEN", &maintainer)
        .env("VIEWER_TOKEN", &viewer)
        .env("SCREENSHOTS", &shots)
        .env("GREEN", "hello-web")
        .env("RED", "greeter-py")
        .env("PLAYWRIGHT", &playwright)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\nserver:\n{}",
        up.seen.join("\n")
    );
    assert!(stdout.contains("went green live"), "{stdout}");
    assert!(
        stdout.contains("waiting for review: review: commit"),
        "{stdout}"
    );
    assert!(stdout.contains("a viewer sees no buttons"), "{stdout}");
    assert!(
        stdout.contains("on a phone the pipeline fits its width"),
        "{stdout}"
    );
    assert!(
        stdout.contains("without approval: denied (review)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("approved in the UI by mae@example.org"),
        "{stdout}"
    );
    assert!(
        stdout.contains("promoted in the UI to staging: gate: allowed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("promoted in the UI to production: gate: allowed"),
        "{stdout}"
    );
    assert!(stdout.contains("the overview shows sha256:"), "{stdout}");
    assert!(
        stdout.contains("undeployed staging and production"),
        "{stdout}"
    );
    assert!(stdout.contains("each proven in tree"), "{stdout}");
    assert!(stdout.contains("failed; why: stage unit-tests"), "{stdout}");
    for name in [
        "login",
        "run-green",
        "run-failed",
        "overview",
        "workload-pipeline",
        "workload-pipeline-phone",
        "artifact",
        "confirm-production",
        "runs",
        "environments",
        "audit",
    ] {
        let png = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&png).unwrap().len() > 1000,
            "{}",
            png.display()
        );
    }
    assert_eq!(up.stop(Duration::from_secs(20)), Some(0));
}

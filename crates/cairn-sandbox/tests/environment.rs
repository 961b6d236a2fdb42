//! The environment inside the sandbox is exactly the spec's: a secret in cairn's own
//! environment does not leak in. Its own test binary, so that setting a variable in
//! this process cannot race with other tests.

#![allow(clippy::unwrap_used)]

mod common;

use common::{run_ok, sh, workspace};

#[test]
fn environment_is_exactly_the_spec() {
    // SAFETY: the only test in this binary; no other thread reads the environment.
    unsafe { std::env::set_var("CAIRN_TEST_SECRET_TOKEN", "hunter2-do-not-leak") };
    assert_eq!(
        std::env::var("CAIRN_TEST_SECRET_TOKEN").unwrap(),
        "hunter2-do-not-leak"
    );

    let ws = workspace();
    let mut spec = sh(ws.path(), "");
    spec.argv = vec!["/usr/bin/env".into()];
    spec.env
        .push(("PASSED".into(), "yes, with = and spaces".into()));
    let ran = run_ok(&spec);
    assert!(ran.outcome.exit.success(), "{ran:?}");

    let mut seen: Vec<String> = ran.out().lines().map(str::to_owned).collect();
    seen.sort();
    let mut expected: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // The sandbox always sets PWD to the working directory it changed to, as
    // bubblewrap does.
    expected.push("PWD=/workspace".into());
    expected.sort();
    assert_eq!(seen, expected);
    assert!(!ran.out().contains("hunter2"));

    // Positive control: the same probe does show a variable that is passed.
    let mut leaky = spec.clone();
    leaky.env.push((
        "CAIRN_TEST_SECRET_TOKEN".into(),
        "hunter2-do-not-leak".into(),
    ));
    assert!(run_ok(&leaky).out().contains("hunter2-do-not-leak"));
}

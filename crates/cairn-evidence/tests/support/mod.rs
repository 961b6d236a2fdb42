//! What an engine would observe of one build stage; shared by the test files.

use cairn_evidence::{NamedDigest, Observed, Subject, hash_log_lines};

pub(crate) const BUILDER_ID: &str = "https://example.invalid/cairn/builder/test";

pub(crate) fn observed_build() -> Observed {
    let log: [&[u8]; 2] = [b"cc -o hello hello.c", b"ok"];
    Observed {
        workload: "hello-c".into(),
        repository: "https://git.example.invalid/hello-c.git".into(),
        commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
        run_id: "42".into(),
        chain: "default".into(),
        stage: "build".into(),
        stage_kind: "build".into(),
        command: Some("make".into()),
        started_ms: 1_764_072_000_000,
        finished_ms: 1_764_072_003_250,
        exit_code: Some(0),
        logs: vec![NamedDigest::new("build/stdout", hash_log_lines(log))],
        base_images: vec![NamedDigest::new(
            "catalog/debian:bookworm",
            cairn_evidence::sha256(b"base image manifest"),
        )],
        failed_tests: vec![],
        tests: None,
        artifacts: vec![Subject::sha256(
            "hello",
            cairn_evidence::sha256(b"\x7fELF hello"),
        )],
        triggered_by: None,
        change: Vec::new(),
    }
}

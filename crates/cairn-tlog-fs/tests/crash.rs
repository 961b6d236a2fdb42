//! A real crash test: a child process (this test binary, re-executed with
//! an environment variable) appends from many threads and prints every
//! acknowledged index; the parent SIGKILLs it at varying moments, reopens
//! the log, and checks that every acknowledged entry is there and that the
//! log is consistent with every checkpoint the child published.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_tlog::checkpoint;
use cairn_tlog::merkle;
use cairn_tlog::note::Signer;
use cairn_tlog_fs::{Appender, Log, verify};

const CHILD_DIR: &str = "CAIRN_TLOG_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "CAIRN_TLOG_CRASH_CHILD_ROUND";
const TEST_NAME: &str = "sigkill_never_loses_an_acknowledged_entry";
const ORIGIN: &str = "crash.local/log";

fn signer() -> Signer {
    Signer::from_seed(ORIGIN, [7u8; 32]).expect("signer")
}

/// The child: append forever from 16 threads, printing `ack <index> <entry>`
/// after each acknowledgement. It only ends by SIGKILL.
fn child(dir: &Path, round: &str) -> ! {
    let appender = Appender::new(Log::open(dir, signer()).expect("child opens the log"));
    for t in 0..16 {
        let appender = appender.clone();
        let round = round.to_owned();
        std::thread::spawn(move || {
            for i in 0u64.. {
                let entry = format!("r{round}-t{t}-{i}");
                let index = appender.append(entry.clone().into_bytes()).expect("append");
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {index} {entry}").expect("stdout");
                out.flush().expect("stdout");
            }
        });
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn sigkill_never_loses_an_acknowledged_entry() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let round = std::env::var(CHILD_ROUND).unwrap_or_default();
        child(Path::new(&dir), &round);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    let exe = std::env::current_exe().expect("test binary");
    let mut total_acks = 0usize;
    for (round, delay_ms) in [0u64, 13, 60, 150, 400, 5, 250].into_iter().enumerate() {
        let mut proc = Command::new(&exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, &dir)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = proc.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match lines.read_line(&mut line) {
                    // Only complete lines: the kill may cut the last one.
                    Ok(n) if n > 0 && line.ends_with('\n') => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        });
        // Wait for the first acknowledgement, then let it run a while,
        // sampling the published checkpoint, and kill it mid-flight.
        let mut acks: Vec<(u64, String)> = Vec::new();
        let take = |line: String, acks: &mut Vec<(u64, String)>| {
            if let Some(rest) = line.trim_end().strip_prefix("ack ") {
                let (index, entry) = rest.split_once(' ').expect("ack line");
                acks.push((index.parse().expect("index"), entry.to_owned()));
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while acks.is_empty() {
            assert!(Instant::now() < deadline, "child never acknowledged");
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                take(line, &mut acks);
            }
        }
        let mut checkpoints = Vec::new();
        let until = Instant::now() + Duration::from_millis(delay_ms);
        loop {
            if let Ok(cp) = std::fs::read(dir.join("checkpoint")) {
                checkpoints.push(cp);
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        proc.kill().expect("SIGKILL");
        proc.wait().expect("reap");
        reader.join().expect("reader");
        for line in rx.try_iter() {
            take(line, &mut acks);
        }
        checkpoints.push(std::fs::read(dir.join("checkpoint")).expect("checkpoint"));

        let log = Log::open(&dir, signer()).expect("reopens after SIGKILL");
        for (index, entry) in &acks {
            assert_eq!(
                log.entry(*index).expect("acknowledged entry present"),
                entry.as_bytes(),
                "round {round}: index {index}"
            );
        }
        for signed in &checkpoints {
            let cp = checkpoint::open(signed, ORIGIN, &[log.verifier()])
                .expect("published checkpoint verifies")
                .checkpoint;
            assert!(
                cp.size <= log.size(),
                "round {round}: checkpoint beyond the log"
            );
            assert_eq!(log.root_at(cp.size).expect("root"), cp.root);
            let proof = log.consistency_proof(cp.size, log.size()).expect("proof");
            if cp.size > 0 {
                merkle::verify_consistency(cp.size, log.size(), &cp.root, &log.root(), &proof)
                    .expect("consistent with a published checkpoint");
            }
        }
        let report = verify(&dir, ORIGIN, &[log.verifier()]).expect("verify runs");
        assert!(report.is_intact(), "round {round}: {:?}", report.problems);
        println!(
            "round {round}: killed after {delay_ms} ms, {} acks, {} checkpoints sampled, log size {}",
            acks.len(),
            checkpoints.len(),
            log.size()
        );
        total_acks += acks.len();
    }
    assert!(total_acks >= 7, "only {total_acks} acknowledgements seen");
}

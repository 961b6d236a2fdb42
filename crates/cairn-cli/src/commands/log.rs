//! `cairn log`: the transparency log of production changes, on disk in
//! `<data dir>/log/` in the C2SP tlog-tiles layout (serve that directory
//! statically and it is the log's HTTP API). Its Ed25519 checkpoint key is
//! `<data dir>/keys/log.key` (0600, created on first use, never printed), or
//! in a PKCS#11 token (`cairn key log-hsm`, `cairn_engine::log_key`).
//! Only cairn itself appends to it (its records are what `cairn recover`
//! rebuilds the store from). `cairn log --scratch …` is a separate log with its
//! own key and origin under `<data dir>/scratch/`, the one `append` writes: free-form
//! entries never sit beside the audit records where they could be read as one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cairn_tlog::merkle::{self, Hash, ProofError};
use cairn_tlog::proof::ProveError;
use cairn_tlog_fs::{Log, LogError};
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

/// The origin line of cairn's checkpoints, and the name of its log key (the
/// engine's audit log: the same log, paths and key).
pub(super) const ORIGIN: &str = cairn_engine::audit::ORIGIN;

/// `cairn log [--scratch] COMMAND`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogArgs {
    /// The scratch log (`<data dir>/scratch/log`, origin `cairn.local/scratch-log`)
    /// instead of the audit log; the only log `append` writes.
    #[arg(long)]
    pub scratch: bool,
    #[command(subcommand)]
    pub cmd: LogCommand,
}

/// The origin line of the scratch log's checkpoints.
pub(super) const SCRATCH_ORIGIN: &str = "cairn.local/scratch-log";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LogCommand {
    /// Append entries durably to the scratch log (`cairn log --scratch append`):
    /// each ENTRY argument, and each --file's bytes, is one entry.
    Append {
        /// Entries given as text.
        entries: Vec<String>,
        /// A file whose whole content is one entry (repeatable; max 65535 bytes).
        #[arg(long = "file", value_name = "PATH")]
        files: Vec<PathBuf>,
    },
    /// Show the log's size, root and verifier key, or one entry.
    Show {
        /// The entry's index (default: a summary of the log).
        index: Option<u64>,
    },
    /// Prove that an entry is in the log, or that the log only grew.
    Prove {
        #[command(subcommand)]
        proof: ProveCommand,
    },
    /// Recompute the whole tree from the entries and compare with the
    /// stored tiles and the checkpoint (exit 1 if anything differs).
    Verify {
        /// Also check the log against this older signed checkpoint.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Print the latest signed checkpoint (a C2SP signed note).
    Checkpoint {
        /// Print the verifier key instead (`<name>+<hash>+<key>`).
        #[arg(long)]
        verifier: bool,
    },
    /// Measure durable appends/s (batched, N threads) and checkpoint
    /// latency, beside an unbatched baseline, in a scratch log.
    Bench {
        #[arg(long, default_value_t = 256)]
        threads: usize,
        #[arg(long, default_value_t = 50_000)]
        entries: u64,
        /// Entries for the one-commit-per-entry baseline.
        #[arg(long, default_value_t = 500)]
        baseline: u64,
        #[arg(long, default_value_t = 200)]
        entry_bytes: usize,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProveCommand {
    /// The inclusion proof of entry INDEX in the tree of --size (default: now).
    Inclusion {
        index: u64,
        #[arg(long)]
        size: Option<u64>,
    },
    /// The consistency proof from tree size OLD to --new (default: now).
    Consistency {
        old: u64,
        #[arg(long)]
        new: Option<u64>,
    },
}

/// What a subcommand produced: JSON for programs, text for people, and the
/// exit code.
#[derive(Debug)]
pub(super) struct Outcome {
    pub json: Value,
    pub text: String,
    pub code: u8,
}

impl Outcome {
    fn ok(json: Value, text: String) -> Self {
        Outcome {
            json,
            text,
            code: 0,
        }
    }
}

pub(super) fn log(cli: &Cli, args: &LogArgs) -> Result<ExitCode, Failure> {
    let data = super::data_dir(cli)?;
    let outcome = if args.scratch {
        execute_in(&data.root().join("scratch"), SCRATCH_ORIGIN, &args.cmd)?
    } else {
        if matches!(args.cmd, LogCommand::Append { .. }) {
            return Err(Failure::user(anyhow::anyhow!(
                "the audit log holds only the records cairn writes itself (`cairn recover` \
                 rebuilds the store from them); `cairn log --scratch append` writes free-form \
                 entries to the scratch log"
            )));
        }
        execute(data.root(), &args.cmd)?
    };
    if cli.json {
        print_json(&outcome.json);
    } else {
        print!("{}", outcome.text);
    }
    Ok(ExitCode::from(outcome.code))
}

/// Runs `cmd` against the audit log under the data directory `data_root`.
pub(super) fn execute(data_root: &Path, cmd: &LogCommand) -> Result<Outcome, Failure> {
    execute_in(data_root, ORIGIN, cmd)
}

/// Runs `cmd` against the log under `data_root` whose checkpoints name `origin`.
fn execute_in(data_root: &Path, origin: &str, cmd: &LogCommand) -> Result<Outcome, Failure> {
    match cmd {
        LogCommand::Append { entries, files } => append(data_root, origin, entries, files),
        LogCommand::Show { index } => show(data_root, origin, *index),
        LogCommand::Prove { proof } => prove(data_root, origin, proof),
        LogCommand::Verify { checkpoint } => verify(data_root, origin, checkpoint.as_deref()),
        LogCommand::Checkpoint { verifier } => checkpoint(data_root, origin, *verifier),
        LogCommand::Bench {
            threads,
            entries,
            baseline,
            entry_bytes,
        } => bench(
            data_root,
            cairn_bench::log::BenchConfig {
                threads: (*threads).clamp(1, 4096),
                entries: (*entries).clamp(1, 10_000_000),
                baseline_entries: (*baseline).clamp(1, 100_000),
                entry_bytes: (*entry_bytes).clamp(1, 65_535),
            },
        ),
    }
}

fn log_dir(data_root: &Path) -> PathBuf {
    cairn_engine::audit::log_dir(&cairn_engine::DataDir::at(data_root))
}

fn key_path(data_root: &Path) -> PathBuf {
    cairn_engine::audit::key_path(&cairn_engine::DataDir::at(data_root))
}

fn fail(err: LogError) -> Failure {
    let user = matches!(
        err,
        LogError::NoSuchEntry { .. }
            | LogError::EntryTooLarge(_)
            | LogError::BatchTooLarge(_)
            | LogError::Locked(_)
            | LogError::Prove(ProveError::Proof(_))
    );
    if user {
        Failure::user(err)
    } else {
        Failure::from(anyhow::Error::new(err))
    }
}

/// Opens the log for appending, creating it and its key on first use.
fn open_for_append(data_root: &Path, origin: &str) -> Result<Log, Failure> {
    if origin == ORIGIN {
        // Never a key file beside a token's key: the engine's one way in.
        let data = cairn_engine::DataDir::at(data_root);
        let signer = cairn_engine::log_key::signer(&data)?;
        return Log::open_shared(&log_dir(data_root), signer).map_err(fail);
    }
    let signer = cairn_tlog_fs::load_or_create_signer(&key_path(data_root), origin)
        .context("cannot load the log's signing key")?;
    Log::open(&log_dir(data_root), signer).map_err(fail)
}

/// Opens the log for reading without the append lock; the key file (to
/// know the verifier) must exist, i.e. something was appended before.
fn open_for_reading(data_root: &Path, origin: &str) -> Result<Log, Failure> {
    let verifier = log_verifier(data_root, origin)?;
    Log::open_read_only(&log_dir(data_root), verifier).map_err(fail)
}

/// The verifier of the log's checkpoints once a log exists (reading never
/// creates a key): the audit log's recorded verifier (`keys/log.pub`, or its
/// token's), never its key file; a scratch log's from its key file.
fn log_verifier(data_root: &Path, origin: &str) -> Result<cairn_tlog::note::Verifier, Failure> {
    let dir = log_dir(data_root);
    if !dir.join("checkpoint").is_file() {
        return Err(Failure::user(anyhow::anyhow!(
            "there is no log in {} yet",
            dir.display()
        )));
    }
    let key = key_path(data_root);
    let missing = || {
        Failure::user(anyhow::anyhow!(
            "the log's key {} is missing; without it the checkpoint cannot be checked",
            key.display()
        ))
    };
    if origin == ORIGIN {
        // The audit log's key may be in a PKCS#11 token: its recorded
        // verifier, read without the token.
        let data = cairn_engine::DataDir::at(data_root);
        return cairn_engine::log_key::current_verifier(&data)?.ok_or_else(missing);
    }
    if !key.is_file() {
        return Err(missing());
    }
    let signer = cairn_tlog_fs::load_or_create_signer(&key, origin)
        .context("cannot load the log's signing key")?;
    Ok(signer.verifier())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| hex(h)).collect()
}

fn append(
    data_root: &Path,
    origin: &str,
    entries: &[String],
    files: &[PathBuf],
) -> Result<Outcome, Failure> {
    let mut all: Vec<Vec<u8>> = entries.iter().map(|e| e.as_bytes().to_vec()).collect();
    for file in files {
        let bytes = std::fs::read(file)
            .with_context(|| format!("cannot read {}", file.display()))
            .map_err(Failure::user)?;
        all.push(bytes);
    }
    if all.is_empty() {
        return Err(Failure::user(anyhow::anyhow!(
            "nothing to append: give entries as arguments or with --file"
        )));
    }
    let mut log = open_for_append(data_root, origin)?;
    let indices = log.append(&all).map_err(fail)?;
    let mut text = String::new();
    for i in &indices {
        text.push_str(&format!("appended entry {i}\n"));
    }
    text.push_str(&format!(
        "checkpoint: size {}, root {}\n",
        log.size(),
        hex(&log.root())
    ));
    Ok(Outcome::ok(
        json!({
            "indices": indices,
            "size": log.size(),
            "root": hex(&log.root()),
            "checkpoint": log.checkpoint(),
        }),
        text,
    ))
}

fn summary_json(log: &Log) -> Value {
    json!({
        "dir": log.dir().display().to_string(),
        "origin": log.origin(),
        "size": log.size(),
        "root": hex(&log.root()),
        "verifier": log.verifier().to_string(),
    })
}

fn show(data_root: &Path, origin: &str, index: Option<u64>) -> Result<Outcome, Failure> {
    let log = open_for_reading(data_root, origin)?;
    let Some(index) = index else {
        let text = format!(
            "log {}\norigin {}\nsize {}\nroot {}\nverifier key {}\n",
            log.dir().display(),
            log.origin(),
            log.size(),
            hex(&log.root()),
            log.verifier()
        );
        return Ok(Outcome::ok(summary_json(&log), text));
    };
    let entry = log.entry(index).map_err(fail)?;
    let leaf = merkle::leaf_hash(&entry);
    let printable = std::str::from_utf8(&entry)
        .ok()
        .filter(|s| !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
    let text = match printable {
        Some(s) => format!("entry {index} (leaf hash {})\n{s}\n", hex(&leaf)),
        None => format!(
            "entry {index} (leaf hash {}), {} bytes of binary, hex:\n{}\n",
            hex(&leaf),
            entry.len(),
            hex(&entry)
        ),
    };
    Ok(Outcome::ok(
        json!({
            "index": index,
            "leaf_hash": hex(&leaf),
            "entry_hex": hex(&entry),
            "entry_text": printable,
        }),
        text,
    ))
}

fn prove(data_root: &Path, origin: &str, proof: &ProveCommand) -> Result<Outcome, Failure> {
    let log = open_for_reading(data_root, origin)?;
    match *proof {
        ProveCommand::Inclusion { index, size } => {
            let size = size.unwrap_or(log.size());
            let hashes = log.inclusion_proof(index, size).map_err(fail)?;
            let root = log.root_at(size).map_err(fail)?;
            let leaf = merkle::leaf_hash(&log.entry(index).map_err(fail)?);
            // Fail closed: never hand out a proof that does not verify.
            merkle::verify_inclusion(&leaf, index, size, &hashes, &root)
                .map_err(|e| internal_proof(e, "inclusion"))?;
            let mut text = format!(
                "entry {index} is in the tree of size {size}\nleaf hash {}\nroot {}\nproof ({} hashes):\n",
                hex(&leaf),
                hex(&root),
                hashes.len()
            );
            for h in &hashes {
                text.push_str(&format!("  {}\n", hex(h)));
            }
            Ok(Outcome::ok(
                json!({
                    "type": "inclusion",
                    "index": index,
                    "tree_size": size,
                    "leaf_hash": hex(&leaf),
                    "root": hex(&root),
                    "proof": hexes(&hashes),
                }),
                text,
            ))
        }
        ProveCommand::Consistency { old, new } => {
            let new = new.unwrap_or(log.size());
            let hashes = log.consistency_proof(old, new).map_err(fail)?;
            let old_root = log.root_at(old).map_err(fail)?;
            let new_root = log.root_at(new).map_err(fail)?;
            merkle::verify_consistency(old, new, &old_root, &new_root, &hashes)
                .map_err(|e| internal_proof(e, "consistency"))?;
            let mut text = format!(
                "the tree of size {new} extends the tree of size {old}\nold root {}\nnew root {}\nproof ({} hashes):\n",
                hex(&old_root),
                hex(&new_root),
                hashes.len()
            );
            for h in &hashes {
                text.push_str(&format!("  {}\n", hex(h)));
            }
            Ok(Outcome::ok(
                json!({
                    "type": "consistency",
                    "old_size": old,
                    "new_size": new,
                    "old_root": hex(&old_root),
                    "new_root": hex(&new_root),
                    "proof": hexes(&hashes),
                }),
                text,
            ))
        }
    }
}

fn internal_proof(err: ProofError, kind: &str) -> Failure {
    Failure::from(anyhow::Error::new(err).context(format!(
        "the log produced an {kind} proof that does not verify; the log may be damaged"
    )))
}

fn verify(data_root: &Path, origin: &str, older: Option<&Path>) -> Result<Outcome, Failure> {
    // Not through `Log::open*`: that refuses a damaged right edge, and
    // verify must report damage, not fail on it.
    let verifiers = [log_verifier(data_root, origin)?];
    let dir = log_dir(data_root);
    let mut report = cairn_tlog_fs::verify(&dir, origin, &verifiers).map_err(fail)?;
    let mut older_json = Value::Null;
    if let Some(path) = older {
        let signed = std::fs::read(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(Failure::user)?;
        // An older checkpoint may be signed by a key the log had before
        // (`cairn key log-hsm` retires one): any of the log's keys.
        let mut all = verifiers.to_vec();
        if origin == ORIGIN {
            let data = cairn_engine::DataDir::at(data_root);
            all.extend(
                cairn_engine::log_key::retired(&data)?
                    .into_iter()
                    .map(|r| r.verifier),
            );
        }
        let old = cairn_tlog::checkpoint::open(&signed, origin, &all)
            .with_context(|| format!("{} is not a checkpoint signed by this log", path.display()))
            .map_err(Failure::user)?
            .checkpoint;
        // Both trees are recomputed from the same entry bundles, so if the
        // old checkpoint's root matches the first `old.size` entries and the
        // current one matches all of them, the log only grew.
        let old_report = cairn_tlog_fs::verify_against(&dir, &old);
        let consistent = old.size <= report.checkpoint.size && old_report.is_intact();
        older_json = json!({ "size": old.size, "consistent": consistent });
        report.problems.extend(old_report.problems);
        if old.size > report.checkpoint.size {
            report.problems.push(cairn_tlog_fs::Problem::RootMismatch {
                computed: report.checkpoint.root,
                checkpoint: old.root,
            });
        }
    }
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let mut text = if problems.is_empty() {
        format!(
            "log intact: {} entries hash to the checkpoint's root {}\n",
            report.checkpoint.size,
            hex(&report.checkpoint.root)
        )
    } else {
        format!(
            "log DAMAGED: {} problem(s) at checkpoint size {}\n",
            problems.len(),
            report.checkpoint.size
        )
    };
    for p in &problems {
        text.push_str(&format!("  {p}\n"));
    }
    if let Value::Object(o) = &older_json {
        text.push_str(&format!(
            "older checkpoint (size {}): {}\n",
            o.get("size").cloned().unwrap_or_default(),
            if o.get("consistent") == Some(&Value::Bool(true)) {
                "consistent"
            } else {
                "NOT consistent"
            }
        ));
    }
    Ok(Outcome {
        json: json!({
            "intact": problems.is_empty(),
            "size": report.checkpoint.size,
            "root": hex(&report.checkpoint.root),
            "problems": problems,
            "older_checkpoint": older_json,
        }),
        text,
        code: if problems.is_empty() { 0 } else { 1 },
    })
}

fn checkpoint(data_root: &Path, origin: &str, verifier: bool) -> Result<Outcome, Failure> {
    let log = open_for_reading(data_root, origin)?;
    let text = if verifier {
        format!("{}\n", log.verifier())
    } else {
        log.checkpoint().to_owned()
    };
    Ok(Outcome::ok(
        json!({
            "checkpoint": log.checkpoint(),
            "origin": log.origin(),
            "size": log.size(),
            "root": hex(&log.root()),
            "verifier": log.verifier().to_string(),
        }),
        text,
    ))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn bench(data_root: &Path, config: cairn_bench::log::BenchConfig) -> Result<Outcome, Failure> {
    std::fs::create_dir_all(data_root)
        .with_context(|| format!("cannot create {}", data_root.display()))?;
    // On the data directory's file system, which is the one that matters.
    let scratch = tempfile::Builder::new()
        .prefix("log-bench-")
        .tempdir_in(data_root)
        .context("cannot create a scratch directory")?;
    let signer = cairn_tlog_fs::generate_signer("bench.local/log").context("bench key")?;
    let baseline = cairn_tlog_fs::generate_signer("bench.local/baseline").context("bench key")?;
    let r =
        cairn_bench::log::run(scratch.path(), signer, baseline, config).context("log benchmark")?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let text = format!(
        "durable log appends, {} entries of {} bytes\n\
         batched, {} threads: {:>9.0} appends/s ({} batches, mean {:.1} entries)\n\
         checkpoint latency:   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (goal: p99 <= 1000 ms)\n\
         baseline, one durable log commit per entry: {:>9.0} appends/s ({} entries)\n\
         baseline, one bare fsync per entry:         {:>9.0} appends/s\n\
         ratio batched/log baseline: {:.1}x; batched/bare fsync: {:.1}x (goal: >= 5000 appends/s)\n",
        config.entries,
        config.entry_bytes,
        config.threads,
        r.batched_per_sec,
        r.batches,
        config.entries as f64 / r.batches.max(1) as f64,
        ms(r.latency_p50),
        ms(r.latency_p99),
        ms(r.latency_max),
        r.baseline_per_sec,
        config.baseline_entries,
        r.raw_fsync_per_sec,
        r.speedup(),
        ratio(r.batched_per_sec, r.raw_fsync_per_sec)
    );
    Ok(Outcome::ok(
        json!({
            "entries": config.entries,
            "entry_bytes": config.entry_bytes,
            "threads": config.threads,
            "batched_appends_per_sec": r.batched_per_sec,
            "batches": r.batches,
            "checkpoint_latency_ms": {
                "p50": ms(r.latency_p50),
                "p99": ms(r.latency_p99),
                "max": ms(r.latency_max),
            },
            "baseline_appends_per_sec": r.baseline_per_sec,
            "baseline_entries": config.baseline_entries,
            "one_fsync_per_entry_per_sec": r.raw_fsync_per_sec,
            "ratio": r.speedup(),
            "ratio_to_one_fsync_per_entry": ratio(r.batched_per_sec, r.raw_fsync_per_sec),
        }),
        text,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &Path, cmd: LogCommand) -> Result<Outcome, Failure> {
        execute(data, &cmd)
    }

    fn ok(data: &Path, cmd: LogCommand) -> Outcome {
        match run(data, cmd) {
            Ok(o) => o,
            Err(f) => panic!("failed with {}: {:#}", f.code, f.error),
        }
    }

    fn code(data: &Path, cmd: LogCommand) -> u8 {
        match run(data, cmd) {
            Ok(o) => o.code,
            Err(f) => f.code,
        }
    }

    fn append(data: &Path, entries: &[&str]) -> Outcome {
        ok(
            data,
            LogCommand::Append {
                entries: entries.iter().map(|e| (*e).to_owned()).collect(),
                files: vec![],
            },
        )
    }

    #[test]
    fn append_show_prove_verify_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path();
        let first = append(data, &["deploy app@sha256:aa to staging", "second"]);
        assert_eq!(first.json["indices"], json!([0, 1]));
        let entry_file = data.join("entry.bin");
        std::fs::write(&entry_file, [0u8, 159, 146, 150]).expect("write");
        let more = ok(
            data,
            LogCommand::Append {
                entries: vec!["third".into()],
                files: vec![entry_file],
            },
        );
        assert_eq!(more.json["indices"], json!([2, 3]));
        assert_eq!(more.json["size"], json!(4));

        let summary = ok(data, LogCommand::Show { index: None });
        assert_eq!(summary.json["size"], json!(4));
        assert_eq!(summary.json["origin"], json!(ORIGIN));
        let shown = ok(data, LogCommand::Show { index: Some(0) });
        assert_eq!(
            shown.json["entry_text"],
            json!("deploy app@sha256:aa to staging")
        );
        let binary = ok(data, LogCommand::Show { index: Some(3) });
        assert_eq!(binary.json["entry_hex"], json!("009f9296"));
        assert_eq!(binary.json["entry_text"], Value::Null);

        let incl = ok(
            data,
            LogCommand::Prove {
                proof: ProveCommand::Inclusion {
                    index: 1,
                    size: None,
                },
            },
        );
        assert_eq!(incl.json["tree_size"], json!(4));
        assert_eq!(incl.json["proof"].as_array().map(Vec::len), Some(2));
        let cons = ok(
            data,
            LogCommand::Prove {
                proof: ProveCommand::Consistency { old: 2, new: None },
            },
        );
        assert_eq!(cons.json["proof"].as_array().map(Vec::len), Some(1));

        // Keep the checkpoint at size 4, grow the log, verify against both.
        let cp = ok(data, LogCommand::Checkpoint { verifier: false });
        let cp_file = data.join("cp4");
        std::fs::write(&cp_file, cp.text.as_bytes()).expect("write");
        append(data, &["fifth"]);
        let verified = ok(
            data,
            LogCommand::Verify {
                checkpoint: Some(cp_file),
            },
        );
        assert_eq!(verified.code, 0, "{}", verified.text);
        assert_eq!(verified.json["intact"], json!(true));
        assert_eq!(verified.json["older_checkpoint"]["consistent"], json!(true));

        let key = ok(data, LogCommand::Checkpoint { verifier: true });
        assert!(key.text.starts_with("cairn.local/log+"), "{}", key.text);
        assert!(!key.text.contains("PRIVATE"));
    }

    #[test]
    fn exit_codes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path();
        let show0 = || LogCommand::Show { index: Some(0) };
        // No log yet: the user's problem.
        assert_eq!(code(data, show0()), 1);
        assert_eq!(
            code(
                data,
                LogCommand::Append {
                    entries: vec![],
                    files: vec![]
                }
            ),
            1
        );
        append(data, &["a", "b", "c"]);
        assert_eq!(code(data, show0()), 0);
        assert_eq!(code(data, LogCommand::Show { index: Some(3) }), 1);
        let inclusion = |index, size| LogCommand::Prove {
            proof: ProveCommand::Inclusion { index, size },
        };
        assert_eq!(code(data, inclusion(3, None)), 1);
        assert_eq!(code(data, inclusion(0, Some(9))), 1);
        let consistency = |old, new| LogCommand::Prove {
            proof: ProveCommand::Consistency { old, new },
        };
        assert_eq!(code(data, consistency(3, Some(2))), 1);
        assert_eq!(code(data, consistency(1, Some(3))), 0);
        // Tampering: verify says no (1), it does not crash (2).
        let bundle = data.join("log/tile/entries/000.p/3");
        let mut bytes = std::fs::read(&bundle).expect("bundle");
        bytes[2] ^= 1;
        std::fs::write(&bundle, bytes).expect("write");
        let tampered = ok(data, LogCommand::Verify { checkpoint: None });
        assert_eq!(tampered.code, 1);
        assert!(tampered.text.contains("DAMAGED"), "{}", tampered.text);
    }

    #[test]
    fn key_file_is_created_private_and_never_printed() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path();
        let out = append(data, &["x"]);
        let key = key_path(data);
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let secret = std::fs::read_to_string(&key).expect("key");
        assert!(secret.starts_with("PRIVATE+KEY+cairn.local/log+"));
        for o in [
            out,
            ok(data, LogCommand::Show { index: None }),
            ok(data, LogCommand::Checkpoint { verifier: false }),
        ] {
            assert!(!o.text.contains(secret.trim()) && !o.json.to_string().contains(secret.trim()));
        }
    }

    #[test]
    fn bench_reports_both_rates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = ok(
            tmp.path(),
            LogCommand::Bench {
                threads: 16,
                entries: 500,
                baseline: 10,
                entry_bytes: 64,
            },
        );
        assert!(
            out.json["batched_appends_per_sec"]
                .as_f64()
                .is_some_and(|r| r > 0.0)
        );
        assert!(
            out.json["baseline_appends_per_sec"]
                .as_f64()
                .is_some_and(|r| r > 0.0)
        );
        assert!(
            out.json["one_fsync_per_entry_per_sec"]
                .as_f64()
                .is_some_and(|r| r > 0.0)
        );
        assert!(out.text.contains("baseline"), "{}", out.text);
        // The scratch logs are gone afterwards.
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("dir")
            .flatten()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

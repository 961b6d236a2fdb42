//! The log on disk: appends, reopen, proofs verified with cairn-tlog,
//! batching, locking, tampering, and recovery from an unpublished append.

use std::path::Path;

use cairn_tlog::checkpoint::{self, Checkpoint};
use cairn_tlog::merkle::{self, Hash};
use cairn_tlog::note::Signer;
use cairn_tlog::tiles;
use cairn_tlog_fs::{Appender, Log, LogError, Problem, load_or_create_signer, verify};

const ORIGIN: &str = "test.local/log";

fn signer() -> Signer {
    Signer::from_seed(ORIGIN, [42u8; 32]).expect("signer")
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

fn open(dir: &Path) -> Log {
    Log::open(dir, signer()).expect("log opens")
}

fn leaf_hashes(n: u64) -> Vec<Hash> {
    (0..n).map(|i| merkle::leaf_hash(&entry(i))).collect()
}

/// Appends entries `[from, to)` in batches of `batch`.
fn fill(log: &mut Log, from: u64, to: u64, batch: u64) {
    let mut i = from;
    while i < to {
        let end = (i + batch).min(to);
        let entries: Vec<Vec<u8>> = (i..end).map(entry).collect();
        let indices = log.append(&entries).expect("append");
        assert_eq!(indices, (i..end).collect::<Vec<_>>());
        i = end;
    }
}

#[test]
fn appends_survive_reopen_and_match_the_reference_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    {
        let mut log = open(&dir);
        assert_eq!(log.size(), 0);
        assert_eq!(log.root(), merkle::empty_root());
        fill(&mut log, 0, 600, 97);
    }
    let log = open(&dir);
    assert_eq!(log.size(), 600);
    assert_eq!(log.root(), merkle::root_from_leaves(&leaf_hashes(600)));
    for i in [0, 1, 255, 256, 511, 512, 599] {
        assert_eq!(log.entry(i).expect("entry"), entry(i), "entry {i}");
    }
    assert!(matches!(log.entry(600), Err(LogError::NoSuchEntry { .. })));
    // The published checkpoint is a valid signed C2SP checkpoint.
    let opened = checkpoint::open(log.checkpoint().as_bytes(), ORIGIN, &[log.verifier()])
        .expect("checkpoint verifies");
    assert_eq!(opened.checkpoint.size, 600);
    // The files are exactly where tlog-tiles says.
    for path in [
        "checkpoint",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/002.p/88",
    ] {
        assert!(dir.join(path).is_file(), "{path} missing");
    }
    let bundle = std::fs::read(dir.join("tile/entries/001")).expect("bundle");
    assert_eq!(
        tiles::parse_bundle(&bundle, 256).expect("parses")[0],
        entry(256)
    );
}

#[test]
fn proofs_from_the_store_verify_with_cairn_tlog() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = open(tmp.path());
    let n = 70_000;
    fill(&mut log, 0, n, 9_999);
    let leaves = leaf_hashes(n);
    let sizes = [1u64, 2, 255, 256, 257, 9_999, 65_535, 65_536, 65_537, n];
    for &size in &sizes {
        let root = merkle::root_from_leaves(&leaves[..size as usize]);
        assert_eq!(log.root_at(size).expect("root"), root, "root at {size}");
        for index in [0, size / 2, size - 1] {
            let proof = log.inclusion_proof(index, size).expect("inclusion proof");
            merkle::verify_inclusion(&leaves[index as usize], index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("inclusion {index} in {size}: {e}"));
        }
        for &old in sizes.iter().filter(|&&s| s <= size) {
            let old_root = merkle::root_from_leaves(&leaves[..old as usize]);
            let proof = log.consistency_proof(old, size).expect("consistency proof");
            merkle::verify_consistency(old, size, &old_root, &root, &proof)
                .unwrap_or_else(|e| panic!("consistency {old} -> {size}: {e}"));
        }
    }
    assert!(log.inclusion_proof(0, n + 1).is_err());
    assert!(log.inclusion_proof(n, n).is_err());
    let report = verify(tmp.path(), ORIGIN, &[log.verifier()]).expect("verify runs");
    assert!(report.is_intact(), "{:?}", report.problems);
}

#[test]
fn concurrent_appends_share_batches_and_get_distinct_indices() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let appender = Appender::new(open(tmp.path()));
    let threads = 8;
    let per_thread = 200;
    let mut handles = Vec::new();
    for t in 0..threads {
        let appender = appender.clone();
        handles.push(std::thread::spawn(move || {
            (0..per_thread)
                .map(|i| {
                    let data = format!("t{t}-{i}").into_bytes();
                    let index = appender.append(data.clone()).expect("append");
                    (index, data)
                })
                .collect::<Vec<_>>()
        }));
    }
    // An oversized entry is refused alone; it fails nobody else's batch.
    assert!(matches!(
        appender.append(vec![0u8; 70_000]),
        Err(cairn_tlog_fs::AppendError::EntryTooLarge(70_000))
    ));
    let mut all: Vec<(u64, Vec<u8>)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    all.sort();
    let total = threads * per_thread;
    assert_eq!(all.len() as u64, total);
    assert!(
        appender.batches() < total,
        "{} batches for {total} entries: nothing was shared",
        appender.batches()
    );
    appender
        .with_log(|log| {
            assert_eq!(log.size(), total);
            for (want, (index, data)) in all.iter().enumerate() {
                assert_eq!(*index, want as u64);
                assert_eq!(&log.entry(*index).expect("entry"), data);
            }
        })
        .expect("log");
}

#[test]
fn a_second_appender_is_locked_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _log = open(tmp.path());
    assert!(matches!(
        Log::open(tmp.path(), signer()),
        Err(LogError::Locked(_))
    ));
}

#[test]
fn oversized_and_empty_appends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = open(tmp.path());
    assert_eq!(
        log.append::<Vec<u8>>(&[]).expect("empty"),
        Vec::<u64>::new()
    );
    assert!(matches!(
        log.append(&[vec![0u8; 65_536]]),
        Err(LogError::EntryTooLarge(65_536))
    ));
    assert_eq!(log.size(), 0);
    assert_eq!(log.append(&[vec![0u8; 65_535]]).expect("max size"), vec![0]);
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).expect("read");
    data[at] ^= 0x01;
    std::fs::write(path, data).expect("write");
}

/// One check per kind of tampering: (file, byte offset, expected problem).
#[test]
fn tampering_is_detected() {
    let check = |file: &str, at: usize, want: fn(&Problem) -> bool| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let verifier = {
            let mut log = open(tmp.path());
            fill(&mut log, 0, 700, 100);
            log.verifier()
        };
        flip_byte(&tmp.path().join(file), at);
        let report = verify(tmp.path(), ORIGIN, &[verifier]).expect("verify runs");
        assert!(
            report.problems.iter().any(want),
            "{file}@{at}: {:?}",
            report.problems
        );
    };
    let root = |p: &Problem| matches!(p, Problem::RootMismatch { .. });
    let tile = |p: &Problem| matches!(p, Problem::TileMismatch { .. });
    let unreadable = |p: &Problem| matches!(p, Problem::Unreadable(_));
    check("tile/entries/000", 4, root);
    check("tile/entries/002.p/188", 103, root);
    check("tile/0/001", 5, tile);
    check("tile/0/002.p/188", 32 * 187, tile);
    check("tile/1/000.p/2", 40, tile);
    // A length prefix changed: the bundle no longer parses.
    check("tile/entries/001", 0, unreadable);
    // Older partial tiles and bundles, which the tile server still serves:
    // each must be a prefix of what it grew into.
    check("tile/entries/000.p/100", 5, tile);
    check("tile/entries/001.p/44", 5, tile);
    check("tile/0/000.p/100", 32 * 50, tile);
    check("tile/0/001.p/144", 5, tile);
    check("tile/1/000.p/1", 3, tile);
    check("tile/entries/002.p/88", 0, unreadable);

    // A changed checkpoint no longer verifies.
    let tmp = tempfile::tempdir().expect("tempdir");
    let verifier = {
        let mut log = open(tmp.path());
        fill(&mut log, 0, 10, 10);
        log.verifier()
    };
    let cp = std::fs::read_to_string(tmp.path().join("checkpoint")).expect("checkpoint");
    std::fs::write(
        tmp.path().join("checkpoint"),
        cp.replacen("\n10\n", "\n9\n", 1),
    )
    .expect("write");
    assert!(verify(tmp.path(), ORIGIN, std::slice::from_ref(&verifier)).is_err());
    assert!(Log::open(tmp.path(), signer()).is_err());
}

/// A crash after the tiles were written but before the checkpoint was
/// published: the reopened log is at the old checkpoint, ignores the
/// leftovers, and appends different entries consistently.
#[test]
fn unpublished_tiles_are_ignored_and_rewritten() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let old_checkpoint;
    {
        let mut log = open(tmp.path());
        fill(&mut log, 0, 300, 50);
        old_checkpoint = std::fs::read(tmp.path().join("checkpoint")).expect("checkpoint");
        let junk: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("unpublished {i}").into_bytes())
            .collect();
        log.append(&junk).expect("append");
        assert!(tmp.path().join("tile/0/001.p/144").is_file());
    }
    // Roll the checkpoint back, as if the process died before publishing.
    std::fs::write(tmp.path().join("checkpoint"), &old_checkpoint).expect("restore");
    let mut log = open(tmp.path());
    assert_eq!(log.size(), 300);
    assert!(
        !tmp.path().join("tile/0/001.p/144").exists(),
        "leftover kept"
    );
    fill(&mut log, 300, 500, 60);
    assert_eq!(log.root(), merkle::root_from_leaves(&leaf_hashes(500)));
    assert_eq!(log.entry(399).expect("entry"), entry(399));
    let report = verify(tmp.path(), ORIGIN, &[log.verifier()]).expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    let old = Checkpoint::parse(
        cairn_tlog::note::Note::parse(&old_checkpoint)
            .expect("note")
            .text(),
    )
    .expect("checkpoint");
    let proof = log.consistency_proof(old.size, 500).expect("proof");
    merkle::verify_consistency(old.size, 500, &old.root, &log.root(), &proof).expect("consistent");
}

#[test]
fn an_unpublished_batch_that_crossed_a_tile_leaves_nothing_behind() {
    // A crash after a batch crossed into the next tile and before its
    // checkpoint: that tile's narrow partials hold entries the log never
    // published. Left in place, the log would later write other entries there
    // and the old partial (which the tile server serves) would contradict it.
    let tmp = tempfile::tempdir().expect("tempdir");
    let old_checkpoint;
    {
        let mut log = open(tmp.path());
        fill(&mut log, 0, 250, 50);
        old_checkpoint = std::fs::read(tmp.path().join("checkpoint")).expect("checkpoint");
        let junk: Vec<Vec<u8>> = (0..8)
            .map(|i| format!("unpublished {i}").into_bytes())
            .collect();
        log.append(&junk).expect("append");
        for path in ["tile/0/001.p/2", "tile/entries/001.p/2", "tile/0/000"] {
            assert!(tmp.path().join(path).is_file(), "{path}");
        }
    }
    std::fs::write(tmp.path().join("checkpoint"), &old_checkpoint).expect("restore");
    let mut log = open(tmp.path());
    assert_eq!(log.size(), 250);
    for path in ["tile/0/001.p", "tile/entries/001.p", "tile/0/000"] {
        assert!(!tmp.path().join(path).exists(), "leftover kept: {path}");
    }
    fill(&mut log, 250, 270, 20);
    assert_eq!(log.root(), merkle::root_from_leaves(&leaf_hashes(270)));
    let report = verify(tmp.path(), ORIGIN, &[log.verifier()]).expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
}

#[test]
fn key_file_is_private_and_stable() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("keys/log.key");
    let first = load_or_create_signer(&path, ORIGIN).expect("created");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = load_or_create_signer(&path, ORIGIN).expect("loaded");
    assert_eq!(first.verifier(), again.verifier());
    assert!(load_or_create_signer(&path, "other/log").is_err());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(load_or_create_signer(&path, ORIGIN).is_err());
    assert!(!format!("{first:?}").contains(&first.to_secret_key_string()));
}

#[test]
fn read_only_opens_beside_an_appender() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = open(tmp.path());
    fill(&mut log, 0, 300, 100);
    let reader = Log::open_read_only(tmp.path(), log.verifier()).expect("read-only open");
    fill(&mut log, 300, 400, 100);
    // The reader stays at the checkpoint it opened, and can prove from it.
    assert_eq!(reader.size(), 300);
    assert_eq!(reader.entry(299).expect("entry"), entry(299));
    let proof = reader.inclusion_proof(5, 300).expect("proof");
    let root = merkle::root_from_leaves(&leaf_hashes(300));
    merkle::verify_inclusion(&leaf_hashes(6)[5], 5, 300, &proof, &root).expect("verifies");
    let mut reader = reader;
    assert!(matches!(reader.append(&[b"x"]), Err(LogError::ReadOnly)));
    let stranger = Signer::from_seed("test.local/log", [1u8; 32]).expect("signer");
    assert!(Log::open_read_only(tmp.path(), stranger.verifier()).is_err());
}

/// The directory is the tlog-tiles API: a client that only GETs paths
/// (here: reads `dir/<path>`, as a static file server would serve them)
/// verifies the checkpoint, fetches an entry from its bundle, and checks
/// its inclusion with hashes from the tiles, at an older checkpoint too.
#[test]
fn a_path_only_client_can_verify_inclusion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let get = |path: &str| std::fs::read(tmp.path().join(path)).expect(path);
    let mut log = open(tmp.path());
    let verifier = log.verifier();
    fill(&mut log, 0, 1000, 333);
    let old_checkpoint = get("checkpoint");
    fill(&mut log, 1000, 70_000, 20_000);
    for signed in [old_checkpoint, get("checkpoint")] {
        let cp = checkpoint::open(&signed, ORIGIN, std::slice::from_ref(&verifier))
            .expect("checkpoint verifies")
            .checkpoint;
        let fetch = |level: u8, index: u64, width: u64| -> Result<Vec<Hash>, std::io::Error> {
            let data = get(&tiles::tile_path(level, index, width));
            tiles::parse_tile(&data, width).map_err(std::io::Error::other)
        };
        let reader = tiles::TileReader::new(cp.size, fetch);
        assert_eq!(
            cairn_tlog::proof::tree_root(&reader, cp.size).expect("root"),
            cp.root
        );
        for index in [0, 257, cp.size - 1] {
            let width = tiles::tile_width(0, index / 256, cp.size).expect("bundle width");
            let bundle = get(&tiles::entries_path(index / 256, width));
            let entries = tiles::parse_bundle(&bundle, width).expect("bundle parses");
            let leaf = merkle::leaf_hash(&entries[(index % 256) as usize]);
            let proof = cairn_tlog::proof::inclusion_proof(&reader, index, cp.size).expect("proof");
            merkle::verify_inclusion(&leaf, index, cp.size, &proof, &cp.root)
                .unwrap_or_else(|e| panic!("{index} in {}: {e}", cp.size));
        }
    }
}

/// A new checkpoint key: the handover checkpoint is signed by both keys, the
/// next ones by the new key only; the old key alone no longer opens the log,
/// the new one does, and a key of another name is refused.
#[test]
fn a_new_checkpoint_key_is_vouched_for_by_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let old = signer();
    let next = Signer::from_seed(ORIGIN, [8u8; 32]).unwrap();
    let mut log = open(&dir);
    fill(&mut log, 0, 5, 2);
    let renamed = Signer::from_seed("other.test/log", [8u8; 32]).unwrap();
    assert!(matches!(
        log.rotate_signer(std::sync::Arc::new(renamed)),
        Err(LogError::OriginChange { .. })
    ));
    assert!(matches!(
        log.rotate_signer(std::sync::Arc::new(signer())),
        Err(LogError::SameKey)
    ));
    let next_again = || Signer::from_seed(ORIGIN, [8u8; 32]).unwrap();
    log.rotate_signer(std::sync::Arc::new(next_again()))
        .unwrap();
    let handover = std::fs::read(dir.join("checkpoint")).unwrap();
    for key in [old.verifier(), next.verifier()] {
        let opened = checkpoint::open(&handover, ORIGIN, &[key]).unwrap();
        assert_eq!(opened.checkpoint.size, 5);
    }
    assert_eq!(log.verifier(), next.verifier());
    fill(&mut log, 5, 9, 2);
    drop(log);
    let after = std::fs::read(dir.join("checkpoint")).unwrap();
    assert!(checkpoint::open(&after, ORIGIN, &[old.verifier()]).is_err());
    assert!(matches!(
        Log::open(&dir, signer()),
        Err(LogError::Checkpoint(_))
    ));
    let reopened = Log::open(&dir, next).unwrap();
    assert_eq!(reopened.size(), 9);
    assert_eq!(reopened.root(), merkle::root_from_leaves(&leaf_hashes(9)));
}

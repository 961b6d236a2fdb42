//! Unit tests, data-driven: one `check` helper per concern, many cases.

use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::merkle::{self, Hash, ProofError};
use crate::note::{self, Note, NoteError, Signer, Verifier};
use crate::proof::{self, LeafHashes};
use crate::tiles::{self, TilePath, TileReader};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect()
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Recursive MTH straight from RFC 9162 §2.1.1, as the oracle.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => merkle::empty_root(),
        1 => d[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            merkle::node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

#[test]
fn roots_match_the_rfc_definition() {
    let all = leaves(300);
    for n in 0..=300 {
        assert_eq!(
            merkle::root_from_leaves(&all[..n]),
            mth(&all[..n]),
            "size {n}"
        );
    }
}

#[test]
fn rfc6962_reference_roots() {
    // The RFC 6962 test tree (also transparency-dev/merkle's reference tree).
    let inputs: [&[u8]; 8] = [
        b"",
        &[0x00],
        &[0x10],
        &[0x20, 0x21],
        &[0x30, 0x31],
        &[0x40, 0x41, 0x42, 0x43],
        &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        &[
            0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
            0x6e, 0x6f,
        ],
    ];
    let want = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let hashes: Vec<Hash> = inputs.iter().map(|i| merkle::leaf_hash(i)).collect();
    for (n, w) in want.iter().enumerate() {
        assert_eq!(hex(&merkle::root_from_leaves(&hashes[..n])), *w, "size {n}");
    }
}

#[test]
fn every_inclusion_proof_verifies_up_to_70_leaves() {
    let all = leaves(70);
    for n in 1..=70u64 {
        let d = &all[..n as usize];
        let root = mth(d);
        for i in 0..n {
            let p = proof::inclusion_proof(&LeafHashes(d), i, n).expect("proof");
            assert_eq!(
                merkle::verify_inclusion(&d[i as usize], i, n, &p, &root),
                Ok(()),
                "leaf {i} of {n}"
            );
        }
    }
}

#[test]
fn every_consistency_proof_verifies_up_to_40_leaves() {
    let all = leaves(40);
    for n in 1..=40u64 {
        let new_root = mth(&all[..n as usize]);
        for m in 1..=n {
            let old_root = mth(&all[..m as usize]);
            let p = proof::consistency_proof(&LeafHashes(&all[..n as usize]), m, n).expect("proof");
            assert_eq!(
                merkle::verify_consistency(m, n, &old_root, &new_root, &p),
                Ok(()),
                "{m} -> {n}"
            );
        }
    }
}

/// The ways a correct inclusion proof is corrupted on purpose.
#[derive(Debug, Clone, Copy)]
enum Corrupt {
    IndexPlusOne,
    IndexMinusOne,
    SizeHalved,
    SizeDoubled,
    FlipBitInProof,
    FlipBitInLeaf,
    FlipBitInRoot,
    Truncated,
    ExtraHashAfter,
    JunkHashBefore,
    Reversed,
}

/// (A size off by one is not in the list: a proof can be valid for two sizes
/// whose trees have the same shape around the leaf, e.g. leaf 0 in sizes 3
/// and 4; the checkpoint's signature is what binds the size to the root.)
const CORRUPTIONS: [Corrupt; 11] = [
    Corrupt::IndexPlusOne,
    Corrupt::IndexMinusOne,
    Corrupt::SizeHalved,
    Corrupt::SizeDoubled,
    Corrupt::FlipBitInProof,
    Corrupt::FlipBitInLeaf,
    Corrupt::FlipBitInRoot,
    Corrupt::Truncated,
    Corrupt::ExtraHashAfter,
    Corrupt::JunkHashBefore,
    Corrupt::Reversed,
];

/// Applies `how` to a valid inclusion proof and asserts it is rejected.
/// Returns false if the corruption does not apply to this proof (e.g.
/// reversing a one-hash proof), so callers can count what was exercised.
fn check_inclusion_rejected(all: &[Hash], index: u64, size: u64, how: Corrupt) -> bool {
    let d = &all[..size as usize];
    let mut root = mth(d);
    let mut leaf = d[index as usize];
    let mut p = proof::inclusion_proof(&LeafHashes(d), index, size).expect("proof");
    let (mut i, mut n) = (index, size);
    match how {
        Corrupt::IndexPlusOne => i += 1,
        Corrupt::IndexMinusOne if i > 0 => i -= 1,
        Corrupt::SizeHalved if n > 1 => n /= 2,
        Corrupt::SizeDoubled => n *= 2,
        Corrupt::FlipBitInProof if !p.is_empty() => p[0][7] ^= 0x10,
        Corrupt::FlipBitInLeaf => leaf[31] ^= 1,
        Corrupt::FlipBitInRoot => root[0] ^= 0x80,
        Corrupt::Truncated if !p.is_empty() => {
            p.pop();
        }
        Corrupt::ExtraHashAfter => p.push(root),
        Corrupt::JunkHashBefore => p.insert(0, [0u8; 32]),
        Corrupt::Reversed if p.len() > 1 && p.first() != p.last() => p.reverse(),
        _ => return false,
    }
    let got = merkle::verify_inclusion(&leaf, i, n, &p, &root);
    assert!(
        got.is_err(),
        "{how:?} on leaf {index} of {size} was accepted"
    );
    true
}

#[test]
fn corrupted_inclusion_proofs_are_rejected() {
    let all = leaves(64);
    let mut exercised = 0;
    for size in [1u64, 2, 3, 5, 7, 8, 13, 31, 32, 33, 63] {
        for index in [0, size / 2, size - 1] {
            for how in CORRUPTIONS {
                exercised += usize::from(check_inclusion_rejected(&all, index, size, how));
            }
        }
    }
    assert!(exercised > 300, "only {exercised} corruptions applied");
}

/// (what, old size, new size, old root, new root, proof)
type ConsistencyCase<'a> = (&'a str, u64, u64, Hash, Hash, &'a [Hash]);

#[test]
fn corrupted_consistency_proofs_are_rejected() {
    let all = leaves(40);
    for (m, n) in [
        (1u64, 2u64),
        (3, 7),
        (4, 8),
        (6, 8),
        (7, 13),
        (16, 33),
        (31, 40),
    ] {
        let old = mth(&all[..m as usize]);
        let new = mth(&all[..n as usize]);
        let p = proof::consistency_proof(&LeafHashes(&all[..n as usize]), m, n).expect("proof");
        assert_eq!(merkle::verify_consistency(m, n, &old, &new, &p), Ok(()));
        let mut flipped = p.clone();
        flipped[0][3] ^= 4;
        let mut truncated = p.clone();
        truncated.pop();
        let mut extra = p.clone();
        extra.push(new);
        let mut junk = p.clone();
        junk.insert(0, [7u8; 32]);
        let mut bad_old = old;
        bad_old[0] ^= 1;
        let cases: [ConsistencyCase; 9] = [
            ("flipped bit", m, n, old, new, &flipped),
            ("truncated", m, n, old, new, &truncated),
            ("extra hash", m, n, old, new, &extra),
            ("junk before", m, n, old, new, &junk),
            ("old size doubled", 2 * m, n.max(2 * m), old, new, &p),
            ("new size doubled", m, 2 * n, old, new, &p),
            ("swapped roots", m, n, new, old, &p),
            ("wrong old root", m, n, bad_old, new, &p),
            ("sizes swapped", n, m, old, new, &p),
        ];
        for (what, a, b, r1, r2, pr) in cases {
            assert!(
                merkle::verify_consistency(a, b, &r1, &r2, pr).is_err(),
                "{what} accepted for {m} -> {n}"
            );
        }
    }
}

#[test]
fn proof_edge_cases() {
    let e = merkle::empty_root();
    let l = merkle::leaf_hash(b"x");
    let check = |got: Result<(), ProofError>, want: Result<(), ProofError>| assert_eq!(got, want);
    check(
        merkle::verify_inclusion(&l, 0, 0, &[], &e),
        Err(ProofError::IndexOutOfRange {
            index: 0,
            tree_size: 0,
        }),
    );
    check(merkle::verify_inclusion(&l, 0, 1, &[], &l), Ok(()));
    check(
        merkle::verify_inclusion(&l, 0, 1, &[l], &l),
        Err(ProofError::WrongProofLength { got: 1, want: 0 }),
    );
    check(merkle::verify_consistency(0, 0, &e, &e, &[]), Ok(()));
    check(
        merkle::verify_consistency(0, 0, &l, &l, &[]),
        Err(ProofError::EqualSizesMismatch),
    );
    check(merkle::verify_consistency(5, 5, &l, &l, &[]), Ok(()));
    check(
        merkle::verify_consistency(5, 5, &l, &l, &[l]),
        Err(ProofError::EqualSizesMismatch),
    );
    check(
        merkle::verify_consistency(0, 3, &e, &l, &[]),
        Err(ProofError::EmptyOldTree),
    );
    check(
        merkle::verify_consistency(4, 3, &e, &l, &[]),
        Err(ProofError::SizesOutOfOrder {
            old_size: 4,
            new_size: 3,
        }),
    );
    assert!(matches!(
        proof::inclusion_proof(&LeafHashes(&[l]), 1, 1),
        Err(proof::ProveError::Proof(ProofError::IndexOutOfRange { .. }))
    ));
    assert!(crate::untrusted::verify_inclusion(&l[..31], 0, 1, &[] as &[&[u8]], &l).is_err());
}

#[test]
fn index_encoding() {
    let check = |n: u64, want: &str| assert_eq!(tiles::encode_index(n), want, "{n}");
    check(0, "000");
    check(5, "005");
    check(999, "999");
    check(1000, "x001/000");
    check(1234067, "x001/x234/067");
    check(u64::MAX, "x018/x446/x744/x073/x709/x551/615");
}

#[test]
fn tile_paths() {
    let check = |got: String, want: &str| assert_eq!(got, want);
    check(tiles::tile_path(0, 0, 256), "tile/0/000");
    check(tiles::tile_path(0, 0, 3), "tile/0/000.p/3");
    check(
        tiles::tile_path(2, 1234067, 255),
        "tile/2/x001/x234/067.p/255",
    );
    check(tiles::entries_path(1000, 256), "tile/entries/x001/000");
    check(tiles::entries_path(7, 1), "tile/entries/007.p/1");
}

#[test]
fn tile_path_parsing() {
    let ok = |p: &str, want: TilePath| assert_eq!(tiles::parse_path(p), Ok(want), "{p}");
    ok(
        "tile/0/000",
        TilePath::Hashes {
            level: 0,
            index: 0,
            width: 256,
        },
    );
    ok(
        "tile/1/x001/x234/067.p/8",
        TilePath::Hashes {
            level: 1,
            index: 1234067,
            width: 8,
        },
    );
    ok(
        "tile/entries/x001/000.p/255",
        TilePath::Entries {
            index: 1000,
            width: 255,
        },
    );
    for bad in [
        "tile/0/0",
        "tile/0/0000",
        "tile/0/x000/001",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/07",
        "tile/9/001",
        "tile/00/001",
        "tile/0/x1/001",
        "tiles/0/000",
        "tile/0/000/",
        "tile/entries/000.p/",
    ] {
        assert!(tiles::parse_path(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn tile_widths() {
    let check = |level: u8, index: u64, size: u64, want: Option<u64>| {
        assert_eq!(
            tiles::tile_width(level, index, size),
            want,
            "({level},{index}) in {size}"
        );
    };
    check(0, 0, 0, None);
    check(0, 0, 1, Some(1));
    check(0, 0, 256, Some(256));
    check(0, 1, 256, None);
    check(0, 1, 300, Some(44));
    check(1, 0, 255, None);
    check(1, 0, 256, Some(1));
    check(1, 0, 70_000, Some(256));
    check(1, 1, 70_000, Some(17));
    check(2, 0, 65_536, Some(1));
}

#[test]
fn bundles_round_trip_and_reject_garbage() {
    let entries: Vec<Vec<u8>> = vec![b"".to_vec(), b"a".to_vec(), vec![9u8; 300]];
    let data = tiles::encode_bundle(&entries).expect("encodes");
    assert_eq!(tiles::parse_bundle(&data, 3), Ok(entries.clone()));
    assert!(tiles::parse_bundle(&data, 2).is_err());
    assert!(tiles::parse_bundle(&data, 4).is_err());
    assert!(tiles::parse_bundle(&data[..data.len() - 1], 3).is_err());
    let mut trailing = data.clone();
    trailing.push(0);
    assert!(tiles::parse_bundle(&trailing, 3).is_err());
    assert!(tiles::encode_bundle(&[vec![0u8; 65_536]]).is_err());
}

/// Proofs through tiles equal proofs straight from the leaves, across tile
/// boundaries and for partial tiles.
#[test]
fn tile_reader_matches_leaf_reader() {
    let all = leaves(70_000);
    // Level-0 and level-1 tiles, in memory.
    let level1: Vec<Hash> = all
        .chunks_exact(256)
        .map(merkle::root_from_leaves)
        .collect();
    let level2: Vec<Hash> = level1
        .chunks_exact(256)
        .map(merkle::root_from_leaves)
        .collect();
    let fetch = |level: u8, index: u64, width: u64| -> Result<Vec<Hash>, std::io::Error> {
        let source = match level {
            0 => &all,
            1 => &level1,
            2 => &level2,
            _ => return Err(std::io::Error::other("no such level")),
        };
        let start = (index * 256) as usize;
        Ok(source[start..start + width as usize].to_vec())
    };
    for size in [
        1u64, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 70_000,
    ] {
        let tiles = TileReader::new(size, fetch);
        let leafs = LeafHashes(&all[..size as usize]);
        assert_eq!(
            proof::tree_root(&tiles, size).expect("root"),
            merkle::root_from_leaves(&all[..size as usize]),
            "root of {size}"
        );
        for index in [0, size / 3, size - 1] {
            assert_eq!(
                proof::inclusion_proof(&tiles, index, size).expect("tiles"),
                proof::inclusion_proof(&leafs, index, size).expect("leaves"),
                "inclusion {index} in {size}"
            );
        }
        for old in [1, size / 2, size] {
            if old == 0 {
                continue;
            }
            assert_eq!(
                proof::consistency_proof(&tiles, old, size).expect("tiles"),
                proof::consistency_proof(&leafs, old, size).expect("leaves"),
                "consistency {old} -> {size}"
            );
        }
    }
}

const VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const SIGNER: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";

fn check_note(input: &str, want: Result<usize, NoteError>) {
    let got = Note::parse(input.as_bytes()).map(|n| n.signatures().len());
    assert_eq!(got, want, "{input:?}");
}

#[test]
fn note_parsing() {
    check_note(&format!("{TEXT}\n{SIG}\n"), Ok(1));
    check_note(&format!("{TEXT}\n{SIG}\n{SIG}\n"), Ok(2));
    check_note(
        &format!("{TEXT}\n— other+x AAAAAAAA\n"),
        Err(NoteError::MalformedSignature { line: 1 }),
    );
    check_note(
        &format!("{TEXT}\n{SIG}"),
        Err(NoteError::MalformedSignature { line: 1 }),
    );
    check_note(&format!("{TEXT}\n{SIG}\n\n"), Err(NoteError::NoSignatures));
    check_note(&format!("{TEXT}{SIG}\n"), Err(NoteError::NoSignatureBlock));
    check_note(&format!("junk{TEXT}\n{SIG}\n"), Ok(1));
    check_note(
        &format!("{TEXT}\n{SIG}\njunk\n"),
        Err(NoteError::MalformedSignature { line: 2 }),
    );
    check_note(
        &format!("{TEXT}\n- PeterNeumann AAAAAAAA\n"),
        Err(NoteError::MalformedSignature { line: 1 }),
    );
    check_note(
        &format!("{TEXT}\n— PeterNeumann AAAA\n"),
        Err(NoteError::MalformedSignature { line: 1 }),
    );
    check_note(
        &format!("{TEXT}\n— PeterNeumann  AAAAAAAA\n"),
        Err(NoteError::MalformedSignature { line: 1 }),
    );
    check_note("a\tb\n\n— k AAAAAAAA\n", Err(NoteError::ControlCharacter));
    check_note("\n\n— k AAAAAAAA\n", Ok(1));
    let many = format!("{TEXT}\n{}", format!("{SIG}\n").repeat(101));
    check_note(&many, Err(NoteError::TooManySignatures));
    let huge = format!("{}\n\n{SIG}\n", "a".repeat(note::MAX_NOTE_BYTES));
    assert!(matches!(
        Note::parse(huge.as_bytes()),
        Err(NoteError::TooLarge { .. })
    ));
    assert_eq!(Note::parse(b"\xff\n\n- k AAAA\n"), Err(NoteError::NotUtf8));
}

#[test]
fn note_verification_reports_signers_and_keeps_unknown_keys() {
    let known = Verifier::parse(VERIFIER).expect("verifier");
    let other = Signer::from_seed("other.example/key", [7u8; 32]).expect("signer");
    let neumann = Signer::parse(SIGNER).expect("signer");
    let signed = note::sign_note(TEXT, &[&neumann, &other]).expect("signs");
    let parsed = Note::parse(signed.as_bytes()).expect("parses");
    assert_eq!(parsed.signatures().len(), 2);
    assert_eq!(parsed.signatures()[1].name, "other.example/key");
    // Only the verifier given counts; the other signature is kept, unverified.
    let by = parsed
        .verify(std::slice::from_ref(&known))
        .expect("verifies");
    assert_eq!(by, vec![&known]);
    let both = [known.clone(), other.verifier()];
    assert_eq!(parsed.verify(&both).expect("verifies").len(), 2);
    // Signed by nobody we know: fail closed.
    let stranger = Signer::from_seed("stranger", [9u8; 32]).expect("signer");
    assert_eq!(
        parsed.verify(&[stranger.verifier()]),
        Err(NoteError::NotSigned)
    );
    // A wrong signature under a known name and hash: rejected.
    let mut forged = parsed.signatures()[0].clone();
    forged.signature[0] ^= 1;
    let text = format!("{TEXT}\n{}\n", forged.to_line());
    let forged = Note::parse(text.as_bytes()).expect("parses");
    assert!(matches!(
        forged.verify(&[known]),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn key_strings() {
    let check = |key: &str, ok: bool| assert_eq!(Verifier::parse(key).is_ok(), ok, "{key}");
    check(VERIFIER, true);
    check(
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        false,
    );
    check(
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        false,
    );
    check(
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        false,
    );
    check(
        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        false,
    );
    check("PeterNeumann+c74f20a3", false);
    assert!(Signer::parse(SIGNER).is_ok());
    assert!(Signer::parse(&SIGNER.replace("c74f20a3", "c74f20a4")).is_err());
    assert!(Signer::parse(&SIGNER.replace("PRIVATE+KEY+", "")).is_err());
    let s = Signer::from_seed("cairn.local/log", [1u8; 32]).expect("signer");
    let round = Signer::parse(&s.to_secret_key_string()).expect("round trip");
    assert_eq!(round.verifier(), s.verifier());
    assert_eq!(Verifier::parse(&s.verifier().to_string()), Ok(s.verifier()));
    let debug = format!("{s:?}");
    assert!(
        debug.contains("redacted") && !debug.contains("AQEBAQ"),
        "{debug}"
    );
    assert!(Signer::from_seed("has+plus", [1u8; 32]).is_err());
}

fn check_checkpoint(text: &str, want: Result<(u64, usize), ()>) {
    let got = Checkpoint::parse(text)
        .map(|c| (c.size, c.extensions.len()))
        .map_err(|_| ());
    assert_eq!(got, want, "{text:?}");
}

#[test]
fn checkpoint_parsing() {
    let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    check_checkpoint(&format!("example.com/log\n0\n{root}\n"), Ok((0, 0)));
    check_checkpoint(
        &format!("example.com/log\n123\n{root}\nx\ny z\n"),
        Ok((123, 2)),
    );
    check_checkpoint(
        &format!("example.com/log\n18446744073709551615\n{root}\n"),
        Ok((u64::MAX, 0)),
    );
    check_checkpoint(
        &format!("example.com/log\n18446744073709551616\n{root}\n"),
        Err(()),
    );
    check_checkpoint(&format!("example.com/log\n0123\n{root}\n"), Err(()));
    check_checkpoint(&format!("example.com/log\n+1\n{root}\n"), Err(()));
    check_checkpoint(&format!("example.com/log\n1\n{root}"), Err(()));
    check_checkpoint(&format!("example.com/log\n1\n{root}\n\n"), Err(()));
    check_checkpoint(&format!("\n1\n{root}\n"), Err(()));
    check_checkpoint("example.com/log\n1\nAAAA\n", Err(()));
    check_checkpoint("example.com/log\n1\n", Err(()));
    check_checkpoint(
        &format!("example.com/log\n1\n{}\n", root.trim_end_matches('=')),
        Err(()),
    );
    let cp = Checkpoint {
        origin: "o".into(),
        size: 9,
        root: [3u8; 32],
        extensions: vec!["e".into()],
    };
    assert_eq!(Checkpoint::parse(&cp.to_text()), Ok(cp));
}

#[test]
fn signed_checkpoints_open() {
    let signer = Signer::from_seed("cairn.local/log", [2u8; 32]).expect("signer");
    let cp = Checkpoint {
        origin: "cairn.local/log".into(),
        size: 3,
        root: merkle::root_from_leaves(&leaves(3)),
        extensions: vec![],
    };
    let signed = note::sign_note(&cp.to_text(), &[&signer]).expect("signs");
    let opened = checkpoint::open(signed.as_bytes(), "cairn.local/log", &[signer.verifier()])
        .expect("opens");
    assert_eq!(opened.checkpoint, cp);
    assert_eq!(opened.signed_by, vec!["cairn.local/log".to_owned()]);
    assert!(matches!(
        checkpoint::open(signed.as_bytes(), "other/log", &[signer.verifier()]),
        Err(CheckpointError::WrongOrigin { .. })
    ));
    let tampered = signed.replacen("\n3\n", "\n4\n", 1);
    assert!(
        checkpoint::open(tampered.as_bytes(), "cairn.local/log", &[signer.verifier()]).is_err()
    );
}

/// A small deterministic generator (xorshift64*), so the robustness test
/// below needs no randomness it is not handed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every parser of untrusted input, fed mutations of valid inputs (byte
/// flips, truncations, insertions, splices): it returns, never panics, and
/// what it accepts re-serialises to itself.
#[test]
fn parsers_survive_mutated_inputs() {
    let signer = Signer::parse(SIGNER).expect("signer");
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size: 1234,
        root: [9u8; 32],
        extensions: vec!["ext line".into()],
    };
    let signed_cp = note::sign_note(&cp.to_text(), &[&signer]).expect("signs");
    let seeds: Vec<Vec<u8>> = vec![
        format!("{TEXT}\n{SIG}\n").into_bytes(),
        signed_cp.into_bytes(),
        b"tile/1/x001/x234/067.p/8".to_vec(),
        tiles::encode_bundle(&[b"abc".to_vec(), vec![], vec![7u8; 40]]).expect("bundle"),
        VERIFIER.as_bytes().to_vec(),
        SIGNER.as_bytes().to_vec(),
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut accepted = 0usize;
    for _ in 0..20_000 {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] ^= 1 << rng.below(8);
                }
                1 if !input.is_empty() => input.truncate(rng.below(input.len())),
                2 => {
                    let i = rng.below(input.len() + 1);
                    let b = [b'\n', b' ', b'+', b'/', b'0', 0xe2, 0x80, 0x94][rng.below(8)];
                    input.insert(i, b);
                }
                _ => {
                    let other = &seeds[rng.below(seeds.len())];
                    let cut = rng.below(other.len() + 1);
                    input.extend_from_slice(&other[..cut]);
                }
            }
        }
        if let Ok(n) = Note::parse(&input) {
            accepted += 1;
            assert_eq!(n.to_text().as_bytes(), &input[..], "note round trip");
            if let Ok(c) = Checkpoint::parse(n.text()) {
                assert_eq!(c.to_text(), n.text(), "checkpoint round trip");
            }
            let _ = n.verify(&[signer.verifier()]);
        }
        if let Ok(text) = std::str::from_utf8(&input) {
            if let Ok(p) = tiles::parse_path(text) {
                let back = match p {
                    TilePath::Hashes {
                        level,
                        index,
                        width,
                    } => tiles::tile_path(level, index, width),
                    TilePath::Entries { index, width } => tiles::entries_path(index, width),
                };
                assert_eq!(back, text, "path round trip");
            }
            if let Ok(v) = Verifier::parse(text) {
                assert_eq!(v.to_string(), text, "verifier round trip");
            }
            let _ = Signer::parse(text);
            let _ = Checkpoint::parse(text);
        }
        for width in [0, 1, 3, 256] {
            if let Ok(entries) = tiles::parse_bundle(&input, width) {
                assert_eq!(tiles::encode_bundle(&entries).as_deref(), Ok(&input[..]));
            }
        }
        let _ = tiles::parse_tile(&input, (input.len() / 32) as u64);
    }
    assert!(accepted > 100, "only {accepted} mutated notes parsed");
}

/// A signer whose answer is not a signature by its own public key (a token
/// that signs with another key, or garbage): nothing is written.
#[derive(Debug)]
struct Lying {
    claims: Signer,
    signs_with: Signer,
}

impl note::NoteSigner for Lying {
    fn name(&self) -> &str {
        self.claims.name()
    }
    fn key_hash(&self) -> u32 {
        self.claims.key_hash()
    }
    fn verifier(&self) -> Verifier {
        self.claims.verifier()
    }
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], NoteError> {
        note::NoteSigner::sign(&self.signs_with, msg)
    }
}

#[test]
fn a_signer_is_checked_against_its_public_key_before_its_signature_is_used() {
    let claims = Signer::from_seed("cairn.local/log", [4u8; 32]).expect("signer");
    let other = Signer::from_seed("cairn.local/log", [5u8; 32]).expect("signer");
    let lying = Lying {
        claims,
        signs_with: other,
    };
    assert_eq!(
        note::sign_note(TEXT, &[&lying]),
        Err(NoteError::SignerMismatch {
            name: "cairn.local/log".into()
        })
    );
    // Through the trait, the file signer signs exactly what it did before.
    let honest = Signer::parse(SIGNER).expect("signer");
    let via_trait = note::sign_note(TEXT, &[&honest as &dyn note::NoteSigner]).expect("signs");
    assert_eq!(via_trait, note::sign_note(TEXT, &[&honest]).expect("signs"));
    let opened = Note::parse(via_trait.as_bytes()).expect("parses");
    assert!(opened.verify(&[honest.verifier()]).is_ok());
}

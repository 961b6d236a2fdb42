//! Readers check the audit log with its recorded public key
//! (`keys/log.pub`) and never open the private key file (`keys/log.key`);
//! nor do readers of the evidence key (`keys/signing.pub`, not
//! `keys/signing.key`). End to end with the real binary: read-only commands
//! answer as before with both key files replaced by directories (any read of
//! them would fail; tests run as root, for whom mode 000 hides nothing), and
//! a tampered or malformed log public key fails their checkpoint check
//! closed, saying why.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::Fixture;

#[test]
fn read_only_commands_never_open_a_private_key_and_a_tampered_log_public_key_fails_closed() {
    let f = Fixture::new();
    // A writer makes the log's key and records its public key beside it.
    f.ok(&["key", "create"]);
    let keys = f.data.join("keys");
    let (key, public) = (keys.join("log.key"), keys.join("log.pub"));
    let recorded = std::fs::read_to_string(&public).unwrap();
    assert_eq!(recorded.trim(), f.log_verifier().to_string());
    let rustsec = cairn_testkit::conformance("osv/rustsec");
    f.ok(&["vulns", "import", rustsec.to_str().unwrap()]);
    f.write(
        "Cargo.lock",
        "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n\
         [[package]]\nname = \"abi_stable\"\nversion = \"0.1.0\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    );
    let reads: [&[&str]; 7] = [
        &["--json", "scan", "Cargo.lock"],
        &["--json", "status"],
        &["--json", "exposures"],
        &["--json", "where", "abi_stable"],
        &["--json", "log", "verify"],
        &["--json", "audit"],
        &["--json", "key", "show"],
    ];
    let before: Vec<_> = reads.iter().map(|args| f.run(args)).collect();
    assert_eq!(
        before[0].code, 1,
        "abi_stable 0.1.0 is vulnerable: {:?}",
        before[0]
    );
    assert!(
        before[0].stdout.contains("RUSTSEC-2020-0105"),
        "{:?}",
        before[0]
    );

    let secret = std::fs::read(&key).unwrap();
    let signing = keys.join("signing.key");
    let signing_secret = std::fs::read(&signing).unwrap();
    for file in [&key, &signing] {
        std::fs::remove_file(file).unwrap();
        std::fs::create_dir(file).unwrap();
    }
    for (args, was) in reads.iter().zip(&before) {
        let now = f.run(args);
        println!(
            "cairn {args:?} without a readable private key: exit {}",
            now.code
        );
        assert_eq!(now.code, was.code, "cairn {args:?}: {now:?}");
        match args[1] {
            // (`exposures` says when it was asked.)
            "exposures" => {}
            // The same keys; where the log key is it cannot say (no key file).
            "key" => {
                let parse = |r: &common::Run| -> serde_json::Value {
                    serde_json::from_str(&r.stdout).unwrap()
                };
                let (mut now, was) = (parse(&now), parse(was));
                assert_eq!(now["log_key_location"], serde_json::Value::Null);
                now["log_key_location"] = was["log_key_location"].clone();
                assert_eq!(now, was);
            }
            _ => assert_eq!(now.stdout, was.stdout, "cairn {args:?}"),
        }
    }

    // Another key's verifier recorded: the checkpoint does not verify.
    let other = cairn_tlog::note::Signer::from_seed("cairn.local/log", [7u8; 32])
        .unwrap()
        .verifier();
    std::fs::write(&public, format!("{other}\n")).unwrap();
    let tampered = f.run(reads[0]);
    println!(
        "scan with a tampered keys/log.pub: {}",
        tampered.stderr.trim()
    );
    assert!(tampered.code > 1, "{tampered:?}");
    assert!(tampered.stdout.is_empty(), "{tampered:?}");
    assert!(
        tampered.stderr.contains("checkpoint is invalid"),
        "{tampered:?}"
    );
    std::fs::write(&public, "cairn.local/log+00000000+not-a-key\n").unwrap();
    let malformed = f.run(reads[1]);
    println!(
        "status with a malformed keys/log.pub: {}",
        malformed.stderr.trim()
    );
    assert!(malformed.code > 1, "{malformed:?}");
    assert!(
        malformed.stderr.contains("log.pub") && malformed.stderr.contains("verifier key"),
        "{malformed:?}"
    );

    // Both put back: the writer signs again, the log stays intact.
    std::fs::write(&public, &recorded).unwrap();
    for (file, bytes) in [(&key, &secret), (&signing, &signing_secret)] {
        std::fs::remove_dir(file).unwrap();
        std::fs::write(file, bytes).unwrap();
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    f.ok(&["key", "rotate"]);
    assert_eq!(f.json(&["log", "verify"])["intact"], true);
}

//! The promotion's own promises, tested against a real store and data
//! directory: an evaluation records nothing; the last policy change is found
//! however many changes came after it, and is the system's, not the promoter's.
#![allow(clippy::unwrap_used)]

use cairn_model::config::OrgConfig;
use cairn_model::{ChangeRecord, IdentityKind, IdentityRecord, ImageRecord, RoleBinding};
use cairn_policy::Identity;
use cairn_store::SqliteStore;
use cairn_store::prelude::*;

use super::{Intent, POLICY_ACTOR, Promoter, Request};
use crate::DataDir;
use crate::images::Images;

/// A data directory holding one image of `hello` (in the layout and the
/// store) and a viewer, and nothing else: no key, no log.
fn fresh() -> (tempfile::TempDir, DataDir, SqliteStore, String) {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("src");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/passwd"), "nobody:x:65534:65534::/:/x\n").unwrap();
    let data = DataDir::at(tmp.path().join("data"));
    let images = Images::open(&data).unwrap();
    let image = cairn_oci::import_rootfs(images.layout(), &rootfs, 0).unwrap();
    let digest = image.manifest_digest.to_string();
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .add_image(&ImageRecord {
            digest: digest.clone(),
            workload: "hello".into(),
            run: None,
            commit: "a".repeat(40),
            base_name: "tiny".into(),
            base_digest: format!("sha256:{}", "b".repeat(64)),
            created_at_ms: 1,
            rebased_from: None,
        })
        .unwrap();
    store
        .add_identity(&IdentityRecord {
            name: "vera@example.org".into(),
            kind: IdentityKind::User,
            token_sha256: "c".repeat(64),
            created_at_ms: 1,
            revoked_at_ms: None,
            expires_at_ms: None,
        })
        .unwrap();
    store
        .add_binding(&RoleBinding {
            identity: "vera@example.org".into(),
            role: "viewer".into(),
            workload: None,
            environment: None,
        })
        .unwrap();
    (tmp, data, store, digest)
}

fn vera() -> Identity {
    Identity {
        name: "vera@example.org".into(),
        kind: cairn_policy::IdentityKind::User,
    }
}

fn log_entries(data: &DataDir) -> u64 {
    let dir = crate::audit::log_dir(data);
    if !dir.exists() {
        return 0;
    }
    let verifier = cairn_tlog_fs::load_signer(&crate::audit::key_path(data), crate::audit::ORIGIN)
        .unwrap()
        .unwrap()
        .verifier();
    cairn_tlog_fs::Log::open_read_only(&dir, verifier)
        .unwrap()
        .size()
}

#[test]
fn evaluate_on_an_empty_data_dir_creates_nothing() {
    let (tmp, _, store, digest) = fresh();
    let data = DataDir::at(tmp.path().join("empty"));
    let org = OrgConfig::default();
    let err = promoter(&data, &store, &org)
        .evaluate(&Request {
            workload: "hello".into(),
            image: digest,
            environment: "staging".into(),
            actor: vera(),
            intent: Intent::Promote,
            override_reason: None,
        })
        .unwrap_err();
    println!("{err}");
    assert!(err.to_string().contains("no images yet"), "{err}");
    assert!(
        !data.root().exists(),
        "an evaluation created the data directory"
    );
}

#[test]
fn evaluate_on_a_fresh_data_dir_creates_no_key_and_appends_nothing() {
    let (_tmp, data, store, digest) = fresh();
    let org = OrgConfig::default();
    let (input, decision) = promoter(&data, &store, &org)
        .evaluate(&Request {
            workload: "hello".into(),
            image: digest.clone(),
            environment: "staging".into(),
            actor: vera(),
            intent: Intent::Promote,
            override_reason: None,
        })
        .unwrap();
    println!(
        "decision: allow={} ({} reasons), evidence {}",
        decision.allow,
        decision.reasons.len(),
        input.evidence.len()
    );
    assert!(!decision.allow, "no evidence, no pass: {decision:?}");
    let signing_key = crate::keys::KeyStore::new(&data).signing_key_path();
    let signing_pub = crate::keys::KeyStore::new(&data).public_key_path();
    let log_key = crate::audit::key_path(&data);
    let log_pub = crate::log_key::public_key_path(&data);
    let log_dir = crate::audit::log_dir(&data);
    let root = crate::audit::trusted_root_path(&data);
    for path in [
        &signing_key,
        &signing_pub,
        &log_key,
        &log_pub,
        &log_dir,
        &root,
    ] {
        assert!(
            !path.exists(),
            "an evaluation created {} (it records nothing)",
            path.display()
        );
    }
    assert_eq!(log_entries(&data), 0);
    assert!(store.changes(None, 10).unwrap().is_empty());
}

fn promoter<'a>(data: &'a DataDir, store: &'a SqliteStore, org: &'a OrgConfig) -> Promoter<'a> {
    Promoter {
        data,
        store,
        org,
        platform_dir: None,
    }
}

#[test]
fn the_first_policy_change_is_the_systems_not_the_promoters() {
    let (_tmp, data, store, _) = fresh();
    let org = OrgConfig::default();
    let promoter = promoter(&data, &store, &org);
    // The first decision under these policies records them, attributed to the
    // system; the promoter is only who cairn noticed them for.
    promoter
        .record_policy_change(&promoter.gate().unwrap(), &vera())
        .unwrap();
    let (_, first) = store.last_change_of_kind("policy-change").unwrap().unwrap();
    let record: serde_json::Value = serde_json::from_str(&first.json).unwrap();
    println!("policy-change by {}: {}", first.actor, record["outcome"]);
    assert_eq!(first.actor, POLICY_ACTOR);
    assert_eq!(record["noticed_for"], "vera@example.org");
}

#[test]
fn the_last_policy_change_is_found_past_ten_thousand_newer_changes() {
    let (_tmp, data, store, _) = fresh();
    let org = OrgConfig::default();
    let promoter = promoter(&data, &store, &org);
    let gate = promoter.gate().unwrap();
    promoter.record_policy_change(&gate, &vera()).unwrap();
    let entries = log_entries(&data);
    assert_eq!(entries, 1);
    // More changes than the old scan read (10 000) come after it.
    for i in 0..10_001 {
        store
            .add_change(&ChangeRecord {
                kind: "denied".into(),
                workload: "hello".into(),
                environment: "staging".into(),
                actor: "vera@example.org".into(),
                from_digest: None,
                to_digest: format!("sha256:{i:064x}"),
                log_index: 0,
                at_ms: i,
                json: "{}".into(),
            })
            .unwrap();
    }
    // The same policies: nothing new is recorded.
    promoter.record_policy_change(&gate, &vera()).unwrap();
    assert_eq!(log_entries(&data), entries, "no second policy-change entry");
    let policy_changes = store
        .changes(None, 20_000)
        .unwrap()
        .into_iter()
        .filter(|(_, c)| c.kind == "policy-change")
        .count();
    println!("policy-change records after 10 001 newer changes: {policy_changes}");
    assert_eq!(policy_changes, 1);
}

/// The record's `counted` marks agree with the default policy's review rule:
/// for each single review, the gate denies `review` exactly when the mark says
/// not counted, and names the same reason.
#[test]
fn a_records_approval_marks_agree_with_the_review_rule() {
    use cairn_policy::{Author, DefaultParams, Gate, Verdict};
    let gate =
        Gate::default_set(&DefaultParams::new(cairn_policy::POLICY_TEST_BUILDER_ID)).unwrap();
    let roles = crate::policy_params::gate_params(
        &OrgConfig::default(),
        cairn_policy::POLICY_TEST_BUILDER_ID,
    )
    .approver_roles;
    let base = cairn_policy::realistic_input(cairn_policy::POLICY_TEST_BUILDER_ID);
    let commit = base.artifact.commit.clone();
    type Case = (&'static str, fn(&mut cairn_policy::GateInput));
    let cases: [Case; 5] = [
        ("a maintainer who is not the author", |_| {}),
        ("the author's own", |i| {
            i.reviews[0].reviewer = "alice".into();
        }),
        ("another commit's", |i| i.reviews[0].commit = "f".repeat(40)),
        ("by one who ran the run", |i| {
            i.authors.push(Author {
                identity: "bob".into(),
                why: "bob ran run 42, which produced this artifact".into(),
            });
        }),
        ("by a developer", |i| {
            i.reviews[0].reviewer_roles = vec!["developer".into()];
        }),
    ];
    for (name, change) in cases {
        let mut input = base.clone();
        change(&mut input);
        assert_eq!(input.reviews[0].verdict, Verdict::Approve);
        let marks = super::change::approvals_json(&input, &roles);
        let mark = &marks[0];
        let decision = gate.decide(&input).unwrap();
        let review_denial = decision.reasons.iter().find(|d| d.rule == "review");
        println!("{name}: {mark} / gate: {review_denial:?}");
        match mark["not_counted"].as_str() {
            None => {
                assert_eq!(mark["counted"], true, "{name}");
                assert!(review_denial.is_none(), "{name}: {review_denial:?}");
            }
            Some(why) => {
                assert_eq!(mark["counted"], false, "{name}");
                let denial = review_denial.unwrap_or_else(|| panic!("{name}: no denial"));
                assert!(denial.message.contains(why), "{name}: {why} / {denial:?}");
            }
        }
        assert_eq!(mark["commit"], input.reviews[0].commit, "{name}: {commit}");
    }
}

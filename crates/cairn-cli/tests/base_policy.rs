//! The default policy's parameters in org.toml (`[policy.params]`), judged on a
//! real Debian 12 minbase (`mmdebstrap --variant=minbase bookworm`, Debian's
//! packages, licences from their DEP-5 copyright files) with OSV.dev's Debian
//! records imported: the defaults admit it through the catalog's gate and a
//! promotion gate reading its signed SBOM; an organisation that denies
//! GPL-3.0-only, or blocks unfixed findings, is refused, naming the rule and
//! the package.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;

use common::{Fixture, Run};
use serde_json::Value;

fn with_org(f: &Fixture, platform: &Path, org_toml: &str, args: &[&str]) -> Run {
    std::fs::write(platform.join("org.toml"), org_toml).unwrap();
    Run::from(
        f.cairn(args)
            .env("CAIRN_PLATFORM_DIR", platform)
            .output()
            .unwrap(),
    )
}

/// The CycloneDX predicate of the signed SBOM about `digest`, verified.
fn signed_sbom(f: &Fixture, digest: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    f.ok(&["evidence", digest, "--export", dir.path().to_str().unwrap()]);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let bundle = cairn_evidence::Bundle::from_json(&bytes).unwrap();
        bundle
            .envelope
            .verify(&f.signing_key())
            .expect("cairn signed it");
        let statement: Value = serde_json::from_slice(&bundle.envelope.payload).unwrap();
        if statement["predicateType"] == "https://cyclonedx.org/bom" {
            return statement["predicate"].clone();
        }
    }
    panic!("no signed SBOM about {digest}");
}

/// The promotion gate's decision for a production promotion whose only
/// findings are the licences of `sbom` (read as the promotion reads a signed
/// SBOM), under org.toml `org_toml`.
fn promotion_decision(sbom: &Value, org_toml: &str) -> cairn_policy::Decision {
    let org = cairn_model::config::parse_org("org.toml", org_toml).unwrap();
    let params =
        cairn_engine::policy_params::gate_params(&org, cairn_policy::POLICY_TEST_BUILDER_ID);
    let gate = cairn_policy::Gate::default_set(&params).unwrap();
    let mut input = cairn_policy::realistic_input(cairn_policy::POLICY_TEST_BUILDER_ID);
    let licences: Vec<cairn_policy::Licence> =
        cairn_engine::policy_params::sbom_licence_entries(sbom)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
    assert!(
        licences.len() >= 80,
        "a minbase's packages: {}",
        licences.len()
    );
    input.findings.licences = licences;
    gate.decide(&input).unwrap()
}

#[test]
fn the_default_policy_admits_a_debian_minbase_and_org_params_can_refuse_it() {
    let tmp = tempfile::tempdir().unwrap();
    // A tarball (what `cairn base create debian` imports; a directory import
    // refuses /dev's device nodes).
    let rootfs = tmp.path().join("rootfs.tar");
    common::debian_minbase(&rootfs);
    let rootfs = rootfs.to_str().unwrap();
    let platform = tmp.path().join("platform");
    std::fs::create_dir_all(&platform).unwrap();
    let f = Fixture::new();
    let zip = cairn_testkit::conformance("osv/debian-12.zip");
    f.ok(&["vulns", "import", zip.to_str().unwrap()]);

    // The defaults, with the organisation's severity gate for bases on: every
    // finding of an up-to-date bookworm waits for a fix, and its packages'
    // GPL/LGPL licences are allowed for OS packages.
    let defaults = "[base]\nmax_severity = \"high\"\n";
    let r = with_org(
        &f,
        &platform,
        defaults,
        &["--json", "base", "import", rootfs, "--name", "debian"],
    );
    assert_eq!(
        r.code, 0,
        "the default policy admits a stock minbase: {r:?}"
    );
    let admitted: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        admitted["vulnerabilities"].as_u64().unwrap() > 0,
        "it has known (unfixed) vulnerabilities: {admitted}"
    );
    let sbom = signed_sbom(&f, admitted["digest"].as_str().unwrap());
    let decision = promotion_decision(&sbom, defaults);
    assert!(
        decision.allow,
        "the promotion gate admits its licences: {:?}",
        decision.reasons
    );

    // Denying GPL-3.0-only refuses it at the catalog and at promotion,
    // naming the rule and the package.
    let deny_gpl3 = "[policy.params]\ndenied_licences = [\"GPL-3.0-only\"]\n";
    let r = with_org(
        &f,
        &platform,
        deny_gpl3,
        &["base", "import", rootfs, "--name", "debian-gpl"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    println!("{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("refused: rule licences: pkg:deb/debian/")
                && l.contains("needs a denied licence (GPL-3.0-only)")),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("did not pass the catalog's gate"),
        "{r:?}"
    );
    let decision = promotion_decision(&sbom, deny_gpl3);
    assert!(!decision.allow);
    assert!(
        decision.reasons.iter().any(|d| d.rule == "licences"
            && d.message.starts_with("pkg:deb/debian/")
            && d.message.contains("GPL-3.0-only")),
        "{:?}",
        decision.reasons
    );

    // Blocking unfixed findings refuses it for its no-fix-yet findings.
    let block_unfixed =
        "[base]\nmax_severity = \"high\"\n[policy.params]\nblock_unfixed = { \"*\" = true }\n";
    let r = with_org(
        &f,
        &platform,
        block_unfixed,
        &["base", "import", rootfs, "--name", "debian-strict"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with("refused: rule vulnerabilities: ")
                && l.contains(" in pkg:deb/debian/")
                && l.ends_with("no fix is available yet")),
        "{r:?}"
    );
    let names = f.json(&["base", "list"]);
    assert_eq!(
        names.as_array().unwrap().len(),
        1,
        "only the admitted base is named: {names}"
    );

    // An unknown key is refused, naming it and where it is.
    let r = with_org(
        &f,
        &platform,
        "[policy.params]\nblock_unfixd = true\n",
        &["base", "list"],
    );
    let r2 = with_org(
        &f,
        &platform,
        "[policy.params]\nblock_unfixd = true\n",
        &["base", "import", rootfs, "--name", "x"],
    );
    assert_eq!(r2.code, 1, "{r2:?} / {r:?}");
    assert!(r2.stderr.contains("unknown field `block_unfixd`"), "{r2:?}");
    assert!(r2.stderr.contains("org.toml:2:"), "{r2:?}");
}

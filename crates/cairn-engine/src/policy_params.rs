//! The default policy's parameters as the organisation set them: cairn's
//! builder id, the documented defaults, and org.toml's `[policy.params]` over
//! them, member by member. Every gate (promotion, the catalog's) reads them as
//! `data.cairn.params`; one function makes them so none can differ. Also the
//! gate input's licence entry of a component, so both gates read a signed
//! SBOM's licences the same way.

use cairn_model::config::OrgConfig;
use cairn_policy::{
    Actor, Artifact, DefaultParams, Environment, Findings, GateInput, Intent, Licence, Severity,
    Verification, Vulnerability,
};
use serde_json::Value;

/// The parameters every gate of this organisation uses; `builder_id` is this
/// installation's (`audit::gate_builder_id`).
pub fn gate_params(org: &OrgConfig, builder_id: &str) -> DefaultParams {
    let mut params = DefaultParams::new(builder_id);
    let p = &org.policy_params;
    if let Some(l) = &p.allowed_licences {
        params.allowed_licences = l.clone();
    }
    if let Some(l) = &p.denied_licences {
        params.denied_licences = l.clone();
    }
    if let Some(l) = &p.os_allowed_licences {
        params.os_allowed_licences = l.clone();
    }
    if let Some(b) = p.os_unknown_licence_blocks {
        params.os_unknown_licence_blocks = b;
    }
    if let Some(thresholds) = &p.severity_threshold {
        for (env, severity) in thresholds {
            // Checked when org.toml was read; anything else fails closed.
            let s = match severity.as_str() {
                "low" => Severity::Low,
                "medium" => Severity::Medium,
                "high" => Severity::High,
                _ => Severity::Critical,
            };
            params.severity_threshold.insert(env.clone(), s);
        }
    }
    if let Some(b) = &p.block_unfixed {
        params
            .block_unfixed
            .extend(b.iter().map(|(k, v)| (k.clone(), *v)));
    }
    if let Some(b) = p.count_unimportant {
        params.count_unimportant = b;
    }
    params
}

/// One component's entry of the gate input's `findings.licences`: its purl,
/// its SPDX expression (as the signed SBOM states it) and the expression's
/// choices (`cairn_sbom::licence_choices`), so the policy need not parse SPDX.
pub fn licence_entry(purl: &str, expression: Option<&str>) -> Licence {
    Licence {
        component: purl.to_owned(),
        expression: expression.map(str::to_owned),
        choices: expression.and_then(cairn_sbom::licence_choices),
    }
}

/// `findings.licences` entries of a CycloneDX document's components, keyed
/// by purl (the first entry of a purl counts).
pub fn sbom_licence_entries(bom: &Value) -> Vec<(String, Licence)> {
    let Some(components) = bom["components"].as_array() else {
        return Vec::new();
    };
    components
        .iter()
        .filter_map(|c| {
            let purl = c["purl"].as_str()?;
            let expression = c["licenses"]
                .as_array()
                .and_then(|l| l.iter().find_map(|l| l["expression"].as_str()));
            Some((purl.to_owned(), licence_entry(purl, expression)))
        })
        .collect()
}

/// The catalog's gate as policy: the default set with the organisation's
/// parameters decides a candidate base's licences, and — when org.toml sets
/// `[base] max_severity`, which is then the threshold of the environment
/// `catalog` — its vulnerabilities (the stored advisories matched against its
/// SBOM now, so `block_unfixed` and `count_unimportant` apply as in a
/// promotion). Returns the denials as `rule R: message`; a gate that cannot
/// decide is a denial (fail closed).
pub fn catalog_denials(
    store: &dyn cairn_store::Store,
    org: &OrgConfig,
    builder_id: &str,
    candidate: (&str, &str),
    sbom: &Value,
) -> Vec<String> {
    let mut params = gate_params(org, builder_id);
    if let Some(max) = &org.base_max_severity {
        let s = match max.as_str() {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            _ => Severity::Critical,
        };
        params.severity_threshold.insert(CATALOG.to_owned(), s);
    }
    let vulnerabilities: Vec<Vulnerability> = if org.base_max_severity.is_some() {
        match crate::current::rematch_signed_sbom(store, sbom) {
            Ok(found) => found
                .into_iter()
                .map(|f| Vulnerability {
                    severity: Severity::parse(&f.severity),
                    id: f.id,
                    package: f.package,
                    fix_available: f.fix_available,
                    suppressed: false,
                    urgency: f.urgency,
                })
                .collect(),
            Err(why) => return vec![format!("rule vulnerabilities: {why}")],
        }
    } else {
        Vec::new()
    };
    let licences: Vec<Licence> = sbom_licence_entries(sbom)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let input = catalog_input(candidate, vulnerabilities, licences);
    let decision = params
        .to_data()
        .and_then(|data| {
            cairn_policy::Gate::load_with(
                &cairn_policy::default_policy_files(),
                &data,
                cairn_policy::Limits::default(),
            )
        })
        .map(|gate| gate.decide_input_or_deny(&input));
    match decision {
        Err(e) => vec![format!(
            "rule gate: the catalog's policy could not be loaded: {e}"
        )],
        Ok(d) => d
            .reasons
            .into_iter()
            .filter(|r| {
                r.rule == "licences"
                    || r.rule == cairn_policy::GATE_RULE
                    || (r.rule == "vulnerabilities" && org.base_max_severity.is_some())
            })
            .map(|r| format!("rule {}: {}", r.rule, r.message))
            .collect(),
    }
}

/// The environment name the catalog's gate decides as.
pub const CATALOG: &str = "catalog";

/// The catalog's gate input for a candidate base `(name, digest)`: the
/// environment `catalog` and the findings of its signed SBOM. A base has no
/// workload, commit, evidence chain, reviews or actor of its own; those are
/// empty, and only the `licences` and `vulnerabilities` rules (and the gate's
/// own failures) are read from the decision.
fn catalog_input(
    (_name, digest): (&str, &str),
    vulnerabilities: Vec<Vulnerability>,
    licences: Vec<Licence>,
) -> GateInput {
    GateInput {
        artifact: Artifact {
            digest: digest.to_owned(),
            workload: String::new(),
            commit: String::new(),
            // It is the base.
            base_image: None,
            image_references: Vec::new(),
            change: Vec::new(),
        },
        evidence: Vec::new(),
        reviews: Vec::new(),
        environment: Environment {
            name: CATALOG.to_owned(),
            position: 0,
            previous: None,
            ran_before: false,
            require_signed_commits: false,
        },
        findings: Findings {
            scanned: true,
            vulnerabilities,
            licences,
            advisory_db: None,
        },
        actor: Actor {
            identity: String::new(),
            kind: String::new(),
            roles: Vec::new(),
        },
        override_: None,
        verification: Verification::default(),
        authors: Vec::new(),
        intent: Intent::Promote,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_organisations_params_override_the_defaults_member_by_member() {
        let org = cairn_model::config::parse_org(
            "org.toml",
            "[policy.params]\ndenied_licences = [\"GPL-3.0-only\"]\nblock_unfixed = { production = true }\nseverity_threshold = { staging = \"high\" }\n",
        )
        .unwrap();
        let p = gate_params(&org, cairn_policy::POLICY_TEST_BUILDER_ID);
        assert_eq!(p.denied_licences, ["GPL-3.0-only"]);
        assert!(p.block_unfixed["production"]);
        assert!(!p.block_unfixed["*"], "the default stays for others");
        assert_eq!(p.severity_threshold["staging"], Severity::High);
        assert_eq!(p.severity_threshold["production"], Severity::High);
        assert!(
            p.os_allowed_licences
                .contains(&"GPL-2.0-or-later".to_owned())
        );
        assert_eq!(
            gate_params(&OrgConfig::default(), cairn_policy::POLICY_TEST_BUILDER_ID),
            DefaultParams::new(cairn_policy::POLICY_TEST_BUILDER_ID)
        );
    }

    /// The licence expressions of cairn's own dependencies (the packaged
    /// `Cargo.toml` of each crate in its Cargo.lock, as `cargo deny` and the
    /// SBOM read them) pass the default licence rules, as they stand in a
    /// signed SBOM; a crate with none, or a copyleft-only one, does not.
    #[test]
    fn the_default_licence_rules_admit_every_licence_cairns_own_crates_state() {
        let own = [
            "MIT OR Apache-2.0",
            "MIT",
            "Apache-2.0 OR MIT",
            "MIT/Apache-2.0",
            "Apache-2.0 / MIT",
            "Zlib",
            "Apache-2.0",
            "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT",
            "ISC",
            "Unlicense OR MIT",
            "Zlib OR Apache-2.0 OR MIT",
            "(MIT OR Apache-2.0) AND Unicode-3.0",
            "CC0-1.0 OR MIT-0 OR Apache-2.0",
            "Apache-2.0 OR BSL-1.0 OR MIT",
            "ISC AND (Apache-2.0 OR ISC)",
            "ISC AND (Apache-2.0 OR ISC) AND Apache-2.0 AND MIT AND BSD-3-Clause AND (Apache-2.0 OR ISC OR MIT) AND (Apache-2.0 OR ISC OR MIT-0)",
            "MIT AND BSD-3-Clause",
            "MIT OR Apache-2.0 OR LGPL-2.1-or-later",
            "MIT AND Apache-2.0 AND BSD-3-Clause",
            "Apache-2.0 AND ISC",
            "Apache-2.0 OR ISC OR MIT",
            "Apache-2.0 OR BSL-1.0",
            "BSD-3-Clause",
            "CDLA-Permissive-2.0",
            "MPL-2.0",
        ];
        let store = cairn_store::SqliteStore::open_in_memory().unwrap();
        let denials = |components: Vec<Value>| {
            catalog_denials(
                &store,
                &OrgConfig::default(),
                cairn_policy::POLICY_TEST_BUILDER_ID,
                ("cairn", "sha256:00"),
                &serde_json::json!({ "components": components }),
            )
        };
        let stated = |i: usize, raw: &str| {
            let l = cairn_sbom::parse_licence(raw);
            let e = l.expression().unwrap_or_else(|| panic!("{raw}: {l:?}"));
            serde_json::json!({"purl": format!("pkg:cargo/c{i}@1.0.0"), "licenses": [{"expression": e}]})
        };
        let all: Vec<Value> = own
            .iter()
            .enumerate()
            .map(|(i, raw)| stated(i, raw))
            .collect();
        assert_eq!(denials(all), Vec::<String>::new());
        let denied = denials(vec![
            stated(0, "GPL-3.0-only"),
            serde_json::json!({"purl": "pkg:cargo/none@1.0.0"}),
            serde_json::json!({"purl": "pkg:cargo/file@1.0.0", "licenses": [{"license": {"name": "license-file LICENCE (no SPDX expression)"}}]}),
        ]);
        assert_eq!(
            denied,
            [
                "rule licences: pkg:cargo/c0@1.0.0 is licensed GPL-3.0-only, which is not allowed",
                "rule licences: pkg:cargo/file@1.0.0 has no known licence",
                "rule licences: pkg:cargo/none@1.0.0 has no known licence",
            ],
            "{denied:#?}"
        );
    }
}

# Rego unit tests of the default policy set (run by `cairn policy test` and by
# the crate's tests). The params come from data.cairn.params as cairn hands them in.
package cairn.gate_test

import data.cairn.gate

digest := "sha256:4f1c6c1b1f0a0c2e8a4b2e6d3c9a7f5e1d2c3b4a5968778695a4b3c2d1e0f9a8"

other_digest := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

commit := "9f2c1e7b5a3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e"

builder := "urn:cairn:builder:engine"

provenance := {
	"predicate_type": "https://slsa.dev/provenance/v1",
	"signer": "key-1",
	"subject_digest": digest,
	"stage_kind": "build",
	"predicate": {
		"buildDefinition": {"externalParameters": {"workload": "hello", "commit": commit}},
		"runDetails": {"builder": {"id": builder}},
	},
}

test_result(kind, result) := {
	"predicate_type": "https://in-toto.io/attestation/test-result/v0.1",
	"signer": "key-1",
	"subject_digest": digest,
	"stage_kind": kind,
	"predicate": {"result": result, "configuration": [], "failedTests": failed},
} if {
	result == "PASSED"
	failed := []
} else := {
	"predicate_type": "https://in-toto.io/attestation/test-result/v0.1",
	"signer": "key-1",
	"subject_digest": digest,
	"stage_kind": kind,
	"predicate": {"result": result, "configuration": [], "failedTests": ["greets_in_french"]},
}

approval(reviewer, roles, author) := {
	"commit": commit, "reviewer": reviewer, "reviewer_roles": roles,
	"author": author, "verdict": "approve",
}

good := {
	"artifact": {
		"digest": digest,
		"workload": "hello",
		"commit": commit,
		"base_image": {
			"name": "catalog.cairn.local/base/debian",
			"digest": other_digest,
			"in_catalog": true,
		},
		"image_references": [sprintf("catalog.cairn.local/base/debian@%s", [other_digest])],
	},
	"evidence": [provenance, test_result("unit-test", "PASSED"), test_result("acceptance-test", "PASSED")],
	"reviews": [approval("bob", ["maintainer"], "alice")],
	"environment": {"name": "production", "position": 1, "previous": {"name": "staging", "deployed": true, "healthy": true}},
	"findings": {"scanned": true, "vulnerabilities": [], "licences": [{"component": "pkg:cargo/serde@1", "expression": "MIT OR Apache-2.0"}]},
	"actor": {"identity": "carol", "kind": "user", "roles": ["release-manager"]},
	"override": null,
}

with_(patch) := object.union(good, patch)

# The rules that deny the input. Tests put `with input as …` on the comparison:
# regorus 0.14 loses a `with` inside a function body, so no helper function
# wraps it.
denied_rules := {d.rule | some d in gate.deny}

# --- the good input ---------------------------------------------------------

test_good_input_is_allowed if {
	count(gate.deny) == 0 with input as good
}

test_empty_input_denies if {
	"input" in denied_rules with input as {}
}

# --- review -----------------------------------------------------------------

test_no_review_denies_production if {
	inp := with_({"reviews": []})
	denied_rules == {"review"} with input as inp
}

test_self_approval_does_not_count if {
	some d in gate.deny with input as with_({"reviews": [approval("alice", ["maintainer"], "alice")]})
	d.rule == "review"
	contains(d.msg, "alice approved their own commit")
}

test_developer_approval_does_not_count if {
	inp := with_({"reviews": [approval("dan", ["developer"], "alice")]})
	denied_rules == {"review"} with input as inp
}

test_approval_of_another_commit_does_not_count if {
	other := object.union(approval("bob", ["maintainer"], "alice"), {"commit": "0000000000000000000000000000000000000000"})
	inp := with_({"reviews": [other]})
	denied_rules == {"review"} with input as inp
}

test_request_changes_blocks if {
	rc := object.union(approval("erin", ["maintainer"], "alice"), {"verdict": "request-changes"})
	inp := with_({"reviews": [approval("bob", ["maintainer"], "alice"), rc]})
	denied_rules == {"review"} with input as inp
}

test_staging_needs_no_approval_by_default if {
	count(gate.deny) == 0 with input as with_({"reviews": [], "environment": {"name": "staging", "position": 0, "previous": null}})
}

test_two_approvals_when_configured if {
	inp := with_({"reviews": [approval("bob", ["maintainer"], "alice")]})
	denied := {d.rule | some d in gate.deny} with input as inp with data.cairn.params.required_approvals as {"production": 2}
	denied == {"review"}
}

# --- tests ------------------------------------------------------------------

test_missing_acceptance_test_denies if {
	inp := with_({"evidence": [provenance, test_result("unit-test", "PASSED")]})
	denied_rules == {"tests"} with input as inp
}

test_failed_acceptance_test_denies_naming_the_test if {
	inp := with_({"evidence": [provenance, test_result("unit-test", "PASSED"), test_result("acceptance-test", "FAILED")]})
	some d in gate.deny with input as inp
	d.rule == "tests"
	contains(d.msg, "greets_in_french")
}

test_test_result_about_another_digest_does_not_count if {
	moved := object.union(test_result("acceptance-test", "PASSED"), {"subject_digest": other_digest})
	inp := with_({"evidence": [provenance, test_result("unit-test", "PASSED"), moved]})
	denied_rules == {"tests"} with input as inp
}

# --- provenance -------------------------------------------------------------

test_provenance_from_another_builder_denies if {
	foreign := object.union(provenance, {"predicate": {"runDetails": {"builder": {"id": "https://github.com/actions/runner"}}}})
	inp := with_({"evidence": [foreign, test_result("unit-test", "PASSED"), test_result("acceptance-test", "PASSED")]})
	denied_rules == {"provenance"} with input as inp
}

test_provenance_for_another_commit_denies if {
	moved := object.union(provenance, {"predicate": {"buildDefinition": {"externalParameters": {"commit": "0000000000000000000000000000000000000000"}}}})
	inp := with_({"evidence": [moved, test_result("unit-test", "PASSED"), test_result("acceptance-test", "PASSED")]})
	denied_rules == {"provenance"} with input as inp
}

test_untrusted_signer_does_not_count if {
	denied := {d.rule | some d in gate.deny} with input as good with data.cairn.params.trusted_signers as ["key-2"]
	denied == {"provenance", "tests"}
}

# --- base image and registries ----------------------------------------------

test_base_image_outside_the_catalog_denies if {
	inp := with_({"artifact": {"base_image": {"in_catalog": false}}})
	denied_rules == {"base-image"} with input as inp
}

test_docker_hub_short_name_denies if {
	inp := with_({"artifact": {"image_references": ["alpine:3.20"]}})
	denied_rules == {"no-docker-hub"} with input as inp
}

test_docker_io_denies if {
	inp := with_({"artifact": {"image_references": ["docker.io/library/debian:bookworm"]}})
	denied_rules == {"no-docker-hub"} with input as inp
}

test_other_registries_pass if {
	count(gate.deny) == 0 with input as with_({"artifact": {"image_references": ["ghcr.io/org/app:1", "localhost:5000/app@sha256:00"]}})
}

# --- vulnerabilities --------------------------------------------------------

vuln(severity, suppressed) := {
	"id": "CVE-2026-0001", "package": "pkg:deb/debian/openssl@3.0.1",
	"severity": severity, "fix_available": true, "suppressed": suppressed,
}

test_high_finding_blocks_production if {
	inp := with_({"findings": {"vulnerabilities": [vuln("high", false)]}})
	denied_rules == {"vulnerabilities"} with input as inp
}

test_high_finding_passes_staging if {
	count(gate.deny) == 0 with input as with_({
		"findings": {"vulnerabilities": [vuln("high", false)]},
		"environment": {"name": "staging", "position": 0, "previous": null},
	})
}

test_suppressed_finding_passes if {
	count(gate.deny) == 0 with input as with_({"findings": {"vulnerabilities": [vuln("critical", true)]}})
}

test_unknown_severity_counts_as_critical if {
	inp := with_({
		"findings": {"vulnerabilities": [vuln("unknown", false)]},
		"environment": {"name": "staging", "position": 0, "previous": null},
	})
	denied_rules == {"vulnerabilities"} with input as inp
}

test_no_signed_scan_denies if {
	inp := with_({"findings": {"scanned": false}})
	denied_rules == {"vulnerabilities"} with input as inp
	some d in gate.deny with input as inp
	contains(d.msg, "no signed vulnerability scan")
}

test_missing_scanned_flag_denies if {
	inp := object.remove(good, ["findings"])
	inp2 := object.union(inp, {"findings": {"vulnerabilities": [], "licences": []}})
	denied_rules == {"vulnerabilities"} with input as inp2
}

# --- licences ---------------------------------------------------------------

test_agpl_denies if {
	inp := with_({"findings": {"licences": [{"component": "pkg:npm/x@1", "expression": "AGPL-3.0-only"}]}})
	denied_rules == {"licences"} with input as inp
}

test_and_needs_every_licence_allowed if {
	inp := with_({"findings": {"licences": [{"component": "pkg:npm/x@1", "expression": "MIT AND GPL-3.0-only"}]}})
	denied_rules == {"licences"} with input as inp
}

test_or_needs_one_alternative_allowed if {
	count(gate.deny) == 0 with input as with_({"findings": {"licences": [{"component": "pkg:npm/x@1", "expression": "GPL-3.0-only OR MIT"}]}})
}

test_unknown_licence_denies if {
	inp := with_({"findings": {"licences": [{"component": "pkg:npm/x@1", "expression": null}]}})
	denied_rules == {"licences"} with input as inp
}

licence_of(component, expression) := {"component": component, "expression": expression}

with_licence(l) := with_({"findings": {"licences": [l]}})

test_os_package_under_gpl_is_allowed if {
	count(gate.deny) == 0 with input as with_licence(licence_of("pkg:deb/debian/bash@5.2.15-2?arch=amd64", "GPL-3.0-or-later"))
}

test_dependency_under_gpl_is_not_allowed if {
	inp := with_licence(licence_of("pkg:npm/x@1", "GPL-2.0-only"))
	denied_rules == {"licences"} with input as inp
}

test_os_package_without_a_known_licence_passes_by_default if {
	count(gate.deny) == 0 with input as with_licence(licence_of("pkg:deb/debian/tzdata@2025b-0+deb12u1", null))
}

test_os_unknown_licence_blocks_when_the_organisation_says if {
	inp := with_licence(licence_of("pkg:deb/debian/tzdata@2025b-0+deb12u1", null))
	denied_rules == {"licences"} with input as inp with data.cairn.params.os_unknown_licence_blocks as true
}

test_a_denied_licence_denies_an_os_package_naming_it if {
	inp := with_licence(licence_of("pkg:deb/debian/libgmp10@6.2.1", "LGPL-2.1-or-later AND GPL-2.0-or-later AND GPL-3.0-only"))
	denied_rules == {"licences"} with input as inp with data.cairn.params.denied_licences as ["GPL-3.0-only"]
	some d in gate.deny with input as inp with data.cairn.params.denied_licences as ["GPL-3.0-only"]
	contains(d.msg, "pkg:deb/debian/libgmp10@6.2.1")
	contains(d.msg, "needs a denied licence (GPL-3.0-only)")
}

test_a_denied_licence_an_alternative_avoids_passes if {
	inp := with_licence(licence_of("pkg:npm/x@1", "GPL-3.0-only OR MIT"))
	count(gate.deny) == 0 with input as inp with data.cairn.params.denied_licences as ["GPL-3.0-only"]
}

test_a_denied_base_licence_denies_it_with_an_exception if {
	inp := with_licence(licence_of("pkg:deb/debian/bison@3", "GPL-3.0-or-later WITH Bison-exception-2.2"))
	count(gate.deny) == 0 with input as inp
	denied_rules == {"licences"} with input as inp with data.cairn.params.denied_licences as ["GPL-3.0-or-later"]
}

test_choices_decide_an_expression_with_parentheses if {
	expression := "(BSD-3-Clause OR GPL-2.0-only) AND Zlib AND MIT"
	naive := licence_of("pkg:npm/x@1", expression)
	denied_rules == {"licences"} with input as with_licence(naive)
	chosen := object.union(naive, {"choices": [["BSD-3-Clause", "MIT", "Zlib"], ["GPL-2.0-only", "MIT", "Zlib"]]})
	count(gate.deny) == 0 with input as with_licence(chosen)
}

test_an_empty_choice_list_is_not_allowed if {
	inp := with_licence(object.union(licence_of("pkg:npm/x@1", "MIT"), {"choices": []}))
	count(gate.deny) == 0 with input as inp
	inp2 := with_licence(object.union(licence_of("pkg:npm/x@1", "Foo"), {"choices": []}))
	denied_rules == {"licences"} with input as inp2
}

# --- unfixed and unimportant findings ---------------------------------------

finding(purl, severity, fixed, urgency) := {
	"id": "CVE-2026-0002", "package": purl, "severity": severity,
	"fix_available": fixed, "suppressed": false, "urgency": urgency,
}

with_finding(v) := with_({"findings": {"vulnerabilities": [v]}})

test_an_unfixed_os_finding_waits_for_its_fix_by_default if {
	count(gate.deny) == 0 with input as with_finding(finding("pkg:deb/debian/libc6@2.36", "critical", false, "medium"))
}

test_an_unfixed_os_finding_blocks_where_block_unfixed if {
	inp := with_finding(finding("pkg:deb/debian/libc6@2.36", "critical", false, "medium"))
	denied_rules == {"vulnerabilities"} with input as inp with data.cairn.params.block_unfixed as {"production": true}
	count(gate.deny) == 0 with input as inp with data.cairn.params.block_unfixed as {"staging": true}
	denied_rules == {"vulnerabilities"} with input as inp with data.cairn.params.block_unfixed as {"*": true, "staging": false}
}

test_a_fixed_os_finding_blocks if {
	inp := with_finding(finding("pkg:deb/debian/libc6@2.36", "high", true, "medium"))
	denied_rules == {"vulnerabilities"} with input as inp
}

test_an_unfixed_dependency_finding_blocks if {
	inp := with_finding(finding("pkg:cargo/smallvec@0.6.0", "critical", false, null))
	denied_rules == {"vulnerabilities"} with input as inp
}

test_an_unimportant_finding_counts_only_when_asked if {
	inp := with_finding(finding("pkg:deb/debian/libc6@2.36", "critical", true, "unimportant"))
	count(gate.deny) == 0 with input as inp
	denied_rules == {"vulnerabilities"} with input as inp with data.cairn.params.count_unimportant as true
}

# --- promotion path ---------------------------------------------------------

test_production_before_staging_denies if {
	inp := with_({"environment": {"previous": {"deployed": false}}})
	denied_rules == {"promotion-path"} with input as inp
}

test_unhealthy_in_staging_denies if {
	inp := with_({"environment": {"previous": {"healthy": false}}})
	denied_rules == {"promotion-path"} with input as inp
}

test_missing_previous_environment_denies if {
	inp := with_({"environment": {"previous": null}})
	denied_rules == {"promotion-path"} with input as inp
}

# --- evidence ---------------------------------------------------------------

test_a_bundle_that_failed_verification_denies_naming_it if {
	inp := with_({"verification": {"failures": [{"evidence": 17, "what": "https://in-toto.io/attestation/test-result/v0.1", "reason": "bad signature"}]}})
	denied_rules == {"evidence"} with input as inp
	some d in gate.deny with input as inp
	contains(d.msg, "bundle 17")
	contains(d.msg, "failed verification: bad signature")
}

test_a_contradicted_record_denies if {
	inp := with_({"verification": {"failures": [{"evidence": null, "what": "image record", "reason": "another commit"}]}})
	denied_rules == {"evidence"} with input as inp
}

test_no_failures_allow if {
	count(gate.deny) == 0 with input as with_({"verification": {"failures": []}})
}

# --- authors ----------------------------------------------------------------

test_who_ran_it_may_not_approve_even_under_another_author if {
	inp := with_({
		"reviews": [approval("bob", ["maintainer"], "someone-else")],
		"authors": [{"identity": "bob", "why": "bob ran run 3"}],
	})
	denied_rules == {"review"} with input as inp
	some d in gate.deny with input as inp
	contains(d.msg, "bob may not approve: bob ran run 3")
}

test_another_identity_than_the_authors_counts if {
	inp := with_({"authors": [{"identity": "alice", "why": "alice ran run 3"}]})
	count(gate.deny) == 0 with input as inp
}

# --- rollback ---------------------------------------------------------------

test_rollback_to_a_digest_that_passed_here_skips_the_previous_environment if {
	inp := with_({
		"intent": "rollback",
		"environment": {"name": "production", "position": 1, "ran_before": true, "previous": {"name": "staging", "deployed": false, "healthy": false}},
	})
	count(gate.deny) == 0 with input as inp
}

test_rollback_to_a_digest_that_never_passed_here_needs_the_previous_environment if {
	inp := with_({
		"intent": "rollback",
		"environment": {"name": "production", "position": 1, "ran_before": false, "previous": {"name": "staging", "deployed": false, "healthy": false}},
	})
	denied_rules == {"promotion-path"} with input as inp
}

test_a_promotion_of_a_digest_that_ran_here_still_needs_the_previous_environment if {
	inp := with_({
		"intent": "promote",
		"environment": {"name": "production", "position": 1, "ran_before": true, "previous": {"name": "staging", "deployed": false, "healthy": false}},
	})
	denied_rules == {"promotion-path"} with input as inp
}

# --- signed commits ---------------------------------------------------------

test_signed_commits_not_required_by_default if {
	count(gate.deny) == 0 with input as with_({"artifact": {"change": [{"commit": commit, "signed_by": null}]}})
}

test_an_unsigned_commit_denies_where_required if {
	inp := with_({
		"artifact": {"change": [{"commit": commit, "signed_by": null}]},
		"environment": {"require_signed_commits": true},
	})
	denied_rules == {"signed-commits"} with input as inp
}

test_an_unknown_change_denies_where_required if {
	inp := with_({"environment": {"require_signed_commits": true}})
	denied_rules == {"signed-commits"} with input as inp
}

test_a_signed_change_passes_where_required if {
	inp := with_({
		"artifact": {"change": [{"commit": commit, "signed_by": "carol"}]},
		"environment": {"require_signed_commits": true},
	})
	count(gate.deny) == 0 with input as inp
}

test_a_test_result_signed_for_another_commit_does_not_count if {
	other := object.union(test_result("acceptance-test", "PASSED"), {"commit": "0000000000000000000000000000000000000000"})
	inp := with_({"evidence": [provenance, test_result("unit-test", "PASSED"), other]})
	denied_rules == {"tests"} with input as inp
}

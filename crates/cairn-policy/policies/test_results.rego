# Tests: for every required test kind (unit-test, acceptance-test) a signed
# test-result says PASSED about this exact digest, from a run of its commit.
package cairn.gate

tr_predicate_type := "https://in-toto.io/attestation/test-result/v0.1"

# Indices of the trusted test results about this artifact (rules, not
# functions, so regorus evaluates each once per decision).
artifact_test_results contains i if {
	some i, e in input.evidence
	e.predicate_type == tr_predicate_type
	e.subject_digest == input.artifact.digest
	trusted_signer(e)
	# The run it came from, as signed, is of this workload's commit (an entry
	# that does not say is taken as about the artifact).
	object.get(e, "commit", input.artifact.commit) == input.artifact.commit
	object.get(e, "workload", input.artifact.workload) == input.artifact.workload
}

passed_kinds contains input.evidence[i].stage_kind if {
	some i in artifact_test_results
	input.evidence[i].predicate.result == "PASSED"
}

failed_kinds contains input.evidence[i].stage_kind if {
	some i in artifact_test_results
	input.evidence[i].predicate.result != "PASSED"
}

failed_test_names(kind) := {name |
	some i in artifact_test_results
	e := input.evidence[i]
	e.stage_kind == kind
	e.predicate.result != "PASSED"
	some name in object.get(e.predicate, "failedTests", [])
}

deny contains {"rule": "tests", "msg": msg} if {
	some kind in params.required_tests
	not kind in passed_kinds
	not kind in failed_kinds
	msg := sprintf("no %s result about %s", [kind, input.artifact.digest])
}

deny contains {"rule": "tests", "msg": msg} if {
	some kind in params.required_tests
	not kind in passed_kinds
	kind in failed_kinds
	failed := failed_test_names(kind)
	msg := sprintf("%s failed on %s%s", [kind, input.artifact.digest, failed_note(failed)])
}

failed_note(failed) := sprintf(": %s", [concat(", ", sort(failed))]) if {
	count(failed) > 0
} else := ""

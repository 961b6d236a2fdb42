# Evidence: every bundle filed under the artifact (and its commit's reviews)
# verified. One that did not (a bad signature or log entry, a statement about
# another subject, a store row that disagrees with what the bundle signs) is
# named, never dropped silently, and denies.
package cairn.gate

deny contains {"rule": "evidence", "msg": msg} if {
	some f in input.verification.failures
	is_number(f.evidence)
	msg := sprintf("bundle %v (%v) failed verification: %v", [f.evidence, f.what, f.reason])
}

deny contains {"rule": "evidence", "msg": msg} if {
	some f in input.verification.failures
	not is_number(f.evidence)
	msg := sprintf("%v failed verification: %v", [f.what, f.reason])
}

malformed contains "verification.failures" if {
	is_object(input.verification)
	not is_array(input.verification.failures)
}

malformed contains "authors" if {
	input.authors
	not is_array(input.authors)
}

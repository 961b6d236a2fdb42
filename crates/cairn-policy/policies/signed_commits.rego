# Signed commits: where the organisation requires them
# (environment.require_signed_commits), every commit of the change carries a
# verified SSH signature by a key registered to a cairn identity. A change the
# signed provenance does not list cannot be checked: it denies (fail closed).
package cairn.gate

deny contains {"rule": "signed-commits", "msg": msg} if {
	input.environment.require_signed_commits == true
	count(object.get(input.artifact, "change", [])) == 0
	msg := sprintf("%s requires signed commits, and no signed record of the change's commits exists for %s", [input.environment.name, input.artifact.digest])
}

deny contains {"rule": "signed-commits", "msg": msg} if {
	input.environment.require_signed_commits == true
	some c in object.get(input.artifact, "change", [])
	not is_string(c.signed_by)
	msg := sprintf("%s requires signed commits; commit %s has no signature that verifies against a key registered to a cairn identity", [input.environment.name, c.commit])
}

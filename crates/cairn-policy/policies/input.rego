# Input shape: the fields every default rule reads are present and well-formed
# (a rule whose input is missing must deny, not stay silent).
package cairn.gate

is_digest(d) if {
	is_string(d)
	startswith(d, "sha256:")
	count(d) == 71
	# All 64 characters after the prefix are lower-case hex: trimming every hex
	# character from both ends leaves nothing.
	trim(substring(d, 7, 64), "0123456789abcdef") == ""
}

malformed contains "artifact.digest" if not is_digest(input.artifact.digest)

malformed contains "artifact.commit" if not is_string(input.artifact.commit)

malformed contains "artifact.workload" if not is_string(input.artifact.workload)

malformed contains "artifact.image_references" if not is_array(input.artifact.image_references)

malformed contains "evidence" if not is_array(input.evidence)

malformed contains "reviews" if not is_array(input.reviews)

malformed contains "environment.name" if not is_string(input.environment.name)

malformed contains "environment.position" if not is_number(input.environment.position)

malformed contains "findings.vulnerabilities" if not is_array(input.findings.vulnerabilities)

malformed contains "findings.licences" if not is_array(input.findings.licences)

deny contains {"rule": "input", "msg": msg} if {
	count(malformed) > 0
	msg := sprintf("the gate input lacks or has a malformed %s", [concat(", ", sort(malformed))])
}

# Vulnerabilities: a signed vulnerability scan of this digest exists
# (findings.scanned), and no open (not VEX-suppressed) finding is at or above the
# environment's severity threshold (production: high, staging: critical);
# an unknown severity counts as critical.
package cairn.gate

severity_rank := {"low": 1, "medium": 2, "high": 3, "critical": 4, "unknown": 4}

severity_threshold := t if {
	t := params.severity_threshold[input.environment.name]
} else := t if {
	t := params.severity_threshold["*"]
}

threshold_rank := severity_rank[severity_threshold]

fix_note(v) := "a fix is available" if v.fix_available == true

fix_note(v) := "no fix is available yet" if not v.fix_available == true

deny contains {"rule": "vulnerabilities", "msg": msg} if {
	not is_number(threshold_rank)
	msg := sprintf("no valid severity threshold is configured for environment %s", [input.environment.name])
}

deny contains {"rule": "vulnerabilities", "msg": msg} if {
	some v in input.findings.vulnerabilities
	not v.suppressed == true
	object.get(severity_rank, v.severity, 4) >= threshold_rank
	msg := sprintf("%v (%v) in %v is at or above the %s threshold of %s; %s", [
		v.id, v.severity, v.package, severity_threshold, input.environment.name, fix_note(v),
	])
}

deny contains {"rule": "vulnerabilities", "msg": msg} if {
	not input.findings.scanned == true
	msg := "no signed vulnerability scan of this digest: its vulnerabilities cannot be evaluated"
}

# Vulnerabilities: a signed vulnerability scan of this digest exists
# (findings.scanned), and no open finding is at or above the environment's
# severity threshold (production: high, staging: critical); an unknown
# severity counts as critical. A finding is open unless a VEX statement
# suppresses it, or it is in an OS package and has no fixed version yet while
# params.block_unfixed for the environment is false (the default: the
# distribution has nothing to install yet), or the distribution rates it
# `unimportant` while params.count_unimportant is false (the default).
package cairn.gate

severity_rank := {"low": 1, "medium": 2, "high": 3, "critical": 4, "unknown": 4}

severity_threshold := t if {
	t := params.severity_threshold[input.environment.name]
} else := t if {
	t := params.severity_threshold["*"]
}

threshold_rank := severity_rank[severity_threshold]

block_unfixed_value := b if {
	b := params.block_unfixed[input.environment.name]
} else := b if {
	b := params.block_unfixed["*"]
} else := false

block_unfixed if block_unfixed_value == true

fix_note(v) := "a fix is available" if v.fix_available == true

fix_note(v) := "no fix is available yet" if not v.fix_available == true

waits_for_fix(v) if {
	not v.fix_available == true
	os_package(v.package)
	not block_unfixed
}

not_counted(v) if {
	v.urgency == "unimportant"
	not params.count_unimportant == true
}

counts(v) if {
	not v.suppressed == true
	not waits_for_fix(v)
	not not_counted(v)
}

deny contains {"rule": "vulnerabilities", "msg": msg} if {
	not is_number(threshold_rank)
	msg := sprintf("no valid severity threshold is configured for environment %s", [input.environment.name])
}

deny contains {"rule": "vulnerabilities", "msg": msg} if {
	some v in input.findings.vulnerabilities
	counts(v)
	object.get(severity_rank, v.severity, 4) >= threshold_rank
	msg := sprintf("%v (%v) in %v is at or above the %s threshold of %s; %s", [
		v.id, v.severity, v.package, severity_threshold, input.environment.name, fix_note(v),
	])
}

deny contains {"rule": "vulnerabilities", "msg": msg} if {
	not input.findings.scanned == true
	msg := "no signed vulnerability scan of this digest: its vulnerabilities cannot be evaluated"
}

# Licences: every component's SPDX licence expression is satisfied by the
# allowed licences (params.allowed_licences): some OR-alternative whose
# AND-ed identifiers are all allowed. Unknown licences and expressions with
# parentheses or WITH are not allowed unless listed verbatim (fail closed).
package cairn.gate

allowed_licence_set := {l | some l in params.allowed_licences}

licence_ok(expr) if expr in allowed_licence_set

licence_ok(expr) if {
	some alternative in split(expr, " OR ")
	every id in split(alternative, " AND ") {
		trim_space(id) in allowed_licence_set
	}
}

deny contains {"rule": "licences", "msg": msg} if {
	some l in input.findings.licences
	not is_string(l.expression)
	msg := sprintf("%v has no known licence", [l.component])
}

deny contains {"rule": "licences", "msg": msg} if {
	some l in input.findings.licences
	is_string(l.expression)
	not licence_ok(l.expression)
	msg := sprintf("%v is licensed %s, which is not allowed", [l.component, l.expression])
}

# Licences: every component's SPDX licence expression has a choice (an
# OR-alternative) whose licences are all allowed — for an OS distribution's
# package (pkg:deb/apk/rpm) by params.os_allowed_licences, for any other by
# params.allowed_licences — and no component needs a denied licence
# (params.denied_licences: every choice names one). `ID WITH EXCEPTION` is
# judged by its full text and by its base licence (an exception only adds
# permissions). A choice list (`choices`, computed by the engine from the
# signed expression) is used where given, else the expression is split on
# " OR " / " AND ". An unknown licence denies, except an OS package's when
# params.os_unknown_licence_blocks is false (fail closed for dependencies).
package cairn.gate

allowed_for(purl) := s if {
	os_package(purl)
	s := {l | some l in params.os_allowed_licences}
} else := {l | some l in params.allowed_licences}

denied_licence_set := {l | some l in params.denied_licences}

req_base(r) := trim_space(split(r, " WITH ")[0])

req_in(r, set) if trim_space(r) in set

req_in(r, set) if req_base(r) in set

licence_choices(l) := l.choices if {
	is_array(l.choices)
} else := [[trim_space(id) | some id in split(alt, " AND ")] | some alt in split(l.expression, " OR ")]

licence_ok(l) if l.expression in allowed_for(l.component)

licence_ok(l) if {
	allowed := allowed_for(l.component)
	some choice in licence_choices(l)
	count(choice) > 0
	every r in choice {
		req_in(r, allowed)
	}
}

# Every choice needs a denied licence (an empty choice list is not denied: it
# is not allowed either).
licence_denied(l) if {
	choices := licence_choices(l)
	count(choices) > 0
	every choice in choices {
		some r in choice
		req_in(r, denied_licence_set)
	}
}

denied_in(l) := sort({trim_space(r) | some choice in licence_choices(l); some r in choice; req_in(r, denied_licence_set)})

unknown_blocks(l) if not os_package(l.component)

unknown_blocks(l) if params.os_unknown_licence_blocks == true

deny contains {"rule": "licences", "msg": msg} if {
	some l in input.findings.licences
	not is_string(l.expression)
	unknown_blocks(l)
	msg := sprintf("%v has no known licence", [l.component])
}

deny contains {"rule": "licences", "msg": msg} if {
	some l in input.findings.licences
	is_string(l.expression)
	licence_denied(l)
	msg := sprintf("%v is licensed %s, which needs a denied licence (%s)", [l.component, l.expression, concat(", ", denied_in(l))])
}

deny contains {"rule": "licences", "msg": msg} if {
	some l in input.findings.licences
	is_string(l.expression)
	not licence_denied(l)
	not licence_ok(l)
	msg := sprintf("%v is licensed %s, which is not allowed", [l.component, l.expression])
}

# Review: the artifact's commit has the approvals its environment needs
# (params.required_approvals), each by a reviewer holding an approver role who
# is not the commit's author (four eyes); a request for changes blocks.
# Authorship is authenticated identities (input.authors: who queued or ran the
# run, who pushed, who signed or authored a commit); the commit's author e-mail
# is only an additional exclusion.
package cairn.gate

excluded_authors contains a.identity if {
	some a in input.authors
}

required_approvals := n if {
	n := params.required_approvals[input.environment.name]
} else := n if {
	n := params.required_approvals["*"]
}

has_approver_role(r) if {
	some role in r.reviewer_roles
	role in params.approver_roles
}

approvers contains r.reviewer if {
	some r in input.reviews
	r.commit == input.artifact.commit
	r.verdict == "approve"
	r.reviewer != r.author
	not r.reviewer in excluded_authors
	has_approver_role(r)
}

not_counted contains sprintf("%s may not approve: %s", [r.reviewer, a.why]) if {
	some r in input.reviews
	r.commit == input.artifact.commit
	r.verdict == "approve"
	some a in input.authors
	a.identity == r.reviewer
}

not_counted contains sprintf("%s approved their own commit", [r.reviewer]) if {
	some r in input.reviews
	r.commit == input.artifact.commit
	r.verdict == "approve"
	r.reviewer == r.author
}

not_counted contains sprintf("%s is not a %s", [r.reviewer, concat(" or ", params.approver_roles)]) if {
	some r in input.reviews
	r.commit == input.artifact.commit
	r.verdict == "approve"
	r.reviewer != r.author
	not has_approver_role(r)
}

not_counted contains sprintf("%s approved another commit (%s)", [r.reviewer, r.commit]) if {
	some r in input.reviews
	r.commit != input.artifact.commit
	r.verdict == "approve"
}

# (An else chain rather than a `default`: regorus 0.14 evaluates defaults
# wrongly under `with`, which the Rego tests use.)
not_counted_note := sprintf(" (not counted: %s)", [concat("; ", sort(not_counted))]) if {
	count(not_counted) > 0
} else := ""

deny contains {"rule": "review", "msg": msg} if {
	not is_number(required_approvals)
	msg := sprintf("no approval count is configured for environment %s", [input.environment.name])
}

deny contains {"rule": "review", "msg": msg} if {
	count(approvers) < required_approvals
	msg := sprintf("commit %s needs %d approval(s) by a %s who is not its author, and has %d%s", [
		input.artifact.commit, required_approvals, concat(" or ", params.approver_roles),
		count(approvers), not_counted_note,
	])
}

deny contains {"rule": "review", "msg": msg} if {
	some r in input.reviews
	r.commit == input.artifact.commit
	r.verdict == "request-changes"
	msg := sprintf("%s requested changes on commit %s", [r.reviewer, r.commit])
}

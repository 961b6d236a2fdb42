# Provenance: SLSA Provenance v1 about this digest, from cairn's own builder
# (params.builder_id), built from the artifact's commit.
package cairn.gate

provenance_type := "https://slsa.dev/provenance/v1"

# Indices of the trusted provenance statements about this artifact.
provenance_about_artifact contains i if {
	some i, e in input.evidence
	e.predicate_type == provenance_type
	e.subject_digest == input.artifact.digest
	trusted_signer(e)
}

has_provenance if {
	some i in provenance_about_artifact
	e := input.evidence[i].predicate
	e.runDetails.builder.id == params.builder_id
	e.buildDefinition.externalParameters.commit == input.artifact.commit
}

foreign_builders contains e.runDetails.builder.id if {
	some i in provenance_about_artifact
	e := input.evidence[i].predicate
	e.runDetails.builder.id != params.builder_id
}

other_commits contains e.buildDefinition.externalParameters.commit if {
	some i in provenance_about_artifact
	e := input.evidence[i].predicate
	e.runDetails.builder.id == params.builder_id
	e.buildDefinition.externalParameters.commit != input.artifact.commit
}

provenance_note := sprintf(" (provenance from other builders: %s)", [concat(", ", sort(foreign_builders))]) if {
	count(foreign_builders) > 0
} else := sprintf(" (cairn built it from another commit: %s)", [concat(", ", sort(other_commits))]) if {
	count(other_commits) > 0
} else := ""

deny contains {"rule": "provenance", "msg": "no builder id is configured (data.cairn.params.builder_id)"} if {
	not is_string(params.builder_id)
}

deny contains {"rule": "provenance", "msg": msg} if {
	is_string(params.builder_id)
	not has_provenance
	msg := sprintf("no SLSA provenance about %s from builder %s for commit %s%s", [
		input.artifact.digest, params.builder_id, input.artifact.commit, provenance_note,
	])
}

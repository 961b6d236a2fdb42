# Promotion path: an environment after the first (production after staging)
# takes only a digest that is deployed and healthy in the environment before it,
# unless it is a rollback to a digest cairn's gate passed into this environment
# before (a verified VSA says so: environment.ran_before).
package cairn.gate

returning if {
	input.intent == "rollback"
	input.environment.ran_before == true
}

deny contains {"rule": "promotion-path", "msg": msg} if {
	input.environment.position > 0
	not returning
	not is_object(input.environment.previous)
	msg := sprintf("%s is not the first environment, but no previous environment is named", [input.environment.name])
}

deny contains {"rule": "promotion-path", "msg": msg} if {
	input.environment.position > 0
	not returning
	p := input.environment.previous
	is_object(p)
	not p.deployed == true
	msg := sprintf("%s is not deployed in %v: promote it there before %s", [input.artifact.digest, p.name, input.environment.name])
}

deny contains {"rule": "promotion-path", "msg": msg} if {
	input.environment.position > 0
	not returning
	p := input.environment.previous
	is_object(p)
	p.deployed == true
	not p.healthy == true
	msg := sprintf("%s is deployed in %v but not healthy there", [input.artifact.digest, p.name])
}

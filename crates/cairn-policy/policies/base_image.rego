# Base image: the artifact is built on a base image from cairn's catalog,
# pinned by digest.
package cairn.gate

deny contains {"rule": "base-image", "msg": "the artifact names no base image"} if {
	not is_object(input.artifact.base_image)
}

deny contains {"rule": "base-image", "msg": msg} if {
	b := input.artifact.base_image
	is_object(b)
	not is_digest(b.digest)
	msg := sprintf("base image %v is not pinned by a sha256 digest", [object.get(b, "name", "<unnamed>")])
}

deny contains {"rule": "base-image", "msg": msg} if {
	b := input.artifact.base_image
	is_object(b)
	is_digest(b.digest)
	not b.in_catalog == true
	msg := sprintf("base image %v@%s is not in cairn's catalog", [object.get(b, "name", "<unnamed>"), b.digest])
}

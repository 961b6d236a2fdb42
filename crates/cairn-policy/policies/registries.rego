# No Docker Hub: no image reference the build used (the engine lists the catalog
# base's origin among them) resolves to Docker Hub, including short names like
# "alpine:3.20". `base_image.name` is a catalog name, not a reference.
package cairn.gate

docker_hub_hosts := {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "hub.docker.com"}

image_refs contains ref if {
	some ref in input.artifact.image_references
}

# The registry host a reference resolves to: a short name ("alpine:3.20") or
# a first component that is not a host (no dot, no port, not localhost) is
# Docker Hub.
registry_host(ref) := "docker.io" if {
	not contains(ref, "/")
} else := host if {
	host := lower(split(ref, "/")[0])
	contains(host, ".")
} else := host if {
	host := lower(split(ref, "/")[0])
	contains(host, ":")
} else := "localhost" if {
	split(ref, "/")[0] == "localhost"
} else := "docker.io"

on_docker_hub(ref) if registry_host(ref) in docker_hub_hosts

deny contains {"rule": "no-docker-hub", "msg": msg} if {
	some ref in image_refs
	is_string(ref)
	on_docker_hub(ref)
	msg := sprintf("image reference %s resolves to Docker Hub", [ref])
}

deny contains {"rule": "no-docker-hub", "msg": msg} if {
	some ref in image_refs
	not is_string(ref)
	msg := sprintf("image reference %v is not a string", [ref])
}

# Parameters of the default policy set: the defaults below, overridden member
# by member by data.cairn.params (cairn hands in builder_id there, and the
# organisation's `[policy.params]` from org.toml). Keep in step with
# `DefaultParams::new` (cairn always hands in every member, so these are
# what a policy test without data.cairn.params sees).
package cairn.gate

permissive_licences := [
	"0BSD", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0", "CC0-1.0", "CDLA-Permissive-2.0",
	"ISC", "MIT", "MIT-0", "MPL-2.0", "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "Zlib",
]

# What a stock Debian minbase's packages are under, beside the permissive set.
os_licences := [
	"GPL-1.0-only", "GPL-1.0-or-later", "GPL-2.0-only", "GPL-2.0-or-later",
	"GPL-3.0-only", "GPL-3.0-or-later", "LGPL-2.0-only", "LGPL-2.0-or-later",
	"LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later",
	"Artistic-1.0", "Artistic-1.0-Perl", "Artistic-2.0", "GFDL-1.2-or-later",
	"GFDL-1.3-or-later", "OpenSSL", "X11", "curl", "FSFAP", "FSFUL", "FSFULLR", "Sleepycat",
]

default_params := {
	"required_approvals": {"*": 1, "staging": 0, "production": 1},
	"approver_roles": ["maintainer"],
	"required_tests": ["unit-test", "acceptance-test"],
	"severity_threshold": {"*": "high", "staging": "critical", "production": "high"},
	"allowed_licences": permissive_licences,
	"denied_licences": [],
	"os_allowed_licences": sort({l | some l in array.concat(permissive_licences, os_licences)}),
	"os_unknown_licence_blocks": false,
	"block_unfixed": {"*": false},
	"count_unimportant": false,
	"trusted_signers": [],
}

params_data := p if {
	p := data.cairn.params
	is_object(p)
} else := {}

params := object.union(default_params, params_data)

# An evidence entry counts only when its signer is trusted (any verified signer
# when trusted_signers is empty).
trusted_signer(e) if count(params.trusted_signers) == 0

trusted_signer(e) if e.signer in params.trusted_signers

# A package of an OS distribution (a catalog base's dpkg, apk or rpm package).
os_package(purl) if {
	is_string(purl)
	some prefix in ["pkg:deb/", "pkg:apk/", "pkg:rpm/"]
	startswith(purl, prefix)
}

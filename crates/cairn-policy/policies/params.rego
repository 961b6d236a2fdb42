# Parameters of the default policy set: the defaults below, overridden member
# by member by data.cairn.params (cairn hands in builder_id there).
package cairn.gate

default_params := {
	"required_approvals": {"*": 1, "staging": 0, "production": 1},
	"approver_roles": ["maintainer"],
	"required_tests": ["unit-test", "acceptance-test"],
	"severity_threshold": {"*": "high", "staging": "critical", "production": "high"},
	"allowed_licences": [
		"0BSD", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0", "CC0-1.0",
		"ISC", "MIT", "MIT-0", "MPL-2.0", "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "Zlib",
	],
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

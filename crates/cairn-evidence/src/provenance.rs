//! SLSA Provenance v1 (https://slsa.dev/spec/v1.0/provenance), built from what the
//! engine observed, with cairn's build type.

use serde::{Deserialize, Serialize};

use crate::statement::{Predicate, ResourceDescriptor, Statement};
use crate::{EvidenceError, Observed, rfc3339_utc_ms};

/// `predicateType` of SLSA Provenance v1.
pub const PROVENANCE_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// cairn's `buildType`: a stage of a cairn chain. It names the schema of
/// [`ExternalParameters`] and [`InternalParameters`].
pub const CAIRN_BUILD_TYPE: &str = crate::types::CHAIN_STAGE_BUILD_TYPE_V1;

/// The provenance predicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

impl Predicate for Provenance {
    const PREDICATE_TYPE: &'static str = PROVENANCE_PREDICATE_TYPE;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    /// The source commit (`digest.gitCommit`), then the base images (`sha256`).
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// Parameters under the control of the workload's owners.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalParameters {
    pub workload: String,
    pub repository: String,
    pub commit: String,
}

/// Parameters set by the platform (the organisation's chain).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InternalParameters {
    pub chain: String,
    pub stage: String,
    pub stage_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The authenticated identity that queued or ran the run, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    /// The commits of the change (see [`crate::ChangeCommit`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub change_commits: Vec<crate::observed::ChangeCommit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunDetails {
    pub builder: Builder,
    pub metadata: BuildMetadata,
    /// The step logs, by digest.
    pub byproducts: Vec<ResourceDescriptor>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Builder {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildMetadata {
    pub invocation_id: String,
    /// RFC 3339, UTC.
    pub started_on: String,
    pub finished_on: String,
}

impl Provenance {
    /// The provenance of a stage that exited 0; `builder_id` is the URI that names
    /// this cairn installation as the builder (SLSA `runDetails.builder.id`).
    /// A stage that failed, was killed, or ended before it started yields no
    /// provenance (fail closed).
    pub fn from_observed(observed: &Observed, builder_id: &str) -> Result<Self, EvidenceError> {
        observed.check_commit()?;
        if observed.exit_code != Some(0) {
            return Err(EvidenceError::Invalid {
                what: "provenance input",
                reason: "the stage did not exit 0",
            });
        }
        if observed.finished_ms < observed.started_ms {
            return Err(EvidenceError::Invalid {
                what: "provenance input",
                reason: "the stage finished before it started",
            });
        }
        let mut resolved = vec![ResourceDescriptor::git_commit(
            &observed.repository,
            &observed.commit,
        )];
        resolved.extend(observed.base_images.iter().map(|image| ResourceDescriptor {
            uri: Some(image.name.clone()),
            ..ResourceDescriptor::named_sha256(image.name.clone(), image.sha256)
        }));
        Ok(Provenance {
            build_definition: BuildDefinition {
                build_type: CAIRN_BUILD_TYPE.to_owned(),
                external_parameters: ExternalParameters {
                    workload: observed.workload.clone(),
                    repository: observed.repository.clone(),
                    commit: observed.commit.clone(),
                },
                internal_parameters: InternalParameters {
                    chain: observed.chain.clone(),
                    stage: observed.stage.clone(),
                    stage_kind: observed.stage_kind.clone(),
                    command: observed.command.clone(),
                    triggered_by: observed.triggered_by.clone(),
                    change_commits: observed.change.clone(),
                },
                resolved_dependencies: resolved,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: builder_id.to_owned(),
                },
                metadata: BuildMetadata {
                    invocation_id: observed.run_id.clone(),
                    started_on: rfc3339_utc_ms(observed.started_ms)?,
                    finished_on: rfc3339_utc_ms(observed.finished_ms)?,
                },
                byproducts: observed
                    .logs
                    .iter()
                    .map(|log| ResourceDescriptor {
                        media_type: Some("text/plain".to_owned()),
                        ..ResourceDescriptor::named_sha256(log.name.clone(), log.sha256)
                    })
                    .collect(),
            },
        })
    }
}

impl Statement<Provenance> {
    /// The provenance statement about the stage's artifacts.
    pub fn provenance(observed: &Observed, builder_id: &str) -> Result<Self, EvidenceError> {
        Statement::new(
            observed.artifacts.clone(),
            Provenance::from_observed(observed, builder_id)?,
        )
    }
}

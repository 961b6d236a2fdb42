//! Pure domain types of cairn: the workload and chain configuration (parsed with
//! spans), runs, stages and log lines, ecosystem detection, and the reading of test
//! output. Nothing here does I/O it was not handed: callers pass file contents,
//! file names and clock readings in.

pub mod config;
pub mod deployment;
pub mod digest;
pub mod ecosystem;
pub mod error_kind;
pub mod image;
pub mod image_ref;
pub mod purl;
pub mod run;
pub mod sort;
pub mod test_report;
pub mod test_results;
pub mod time;

pub use deployment::{
    ChangeKind, ChangeRecord, DeploymentKind, DeploymentRecord, DeploymentStatus, IdentityKind,
    IdentityRecord, RoleBinding, SessionRecord, TargetKind,
};
pub use digest::{Digest, DigestError};
pub use error_kind::ErrorKind;
pub use image::{
    BaseRecipe, BaseRecord, DebianRecipe, ImageRecord, RUST_COMPONENTS, RecipeError, RustRecipe,
};
pub use run::{
    DeliveryRecord, EvidenceRecord, LogLine, LogStream, NewDelivery, NewEvidence, NewRun, NewStage,
    RunId, RunRecord, RunStatus, StageId, StageKind, StageRecord, StageStatus, Trigger,
    WorkloadRecord,
};

/// An error and its causes on one line, `error: cause: cause`, each cause once
/// (a cause whose text the line already holds is not repeated).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_once_each() {
        let e = E(
            "cannot open x",
            Some(Box::new(E("permission denied", None))),
        );
        assert_eq!(error_chain(&e), "cannot open x: permission denied");
        let repeated = E(
            "cannot open x: permission denied",
            Some(Box::new(E("permission denied", None))),
        );
        assert_eq!(error_chain(&repeated), "cannot open x: permission denied");
        assert_eq!(error_chain(&E("alone", None)), "alone");
    }
}

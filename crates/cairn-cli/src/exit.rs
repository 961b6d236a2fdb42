//! Exit codes that mean something: 0 ok, 1 the user's input (or a policy, or a
//! failed run) said no, 2 an internal failure.

use cairn_engine::EngineError;

pub(crate) const USER: u8 = 1;
pub(crate) const INTERNAL: u8 = 2;

/// An error with the exit code it deserves.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub(crate) fn user(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: USER,
            error: error.into(),
        }
    }
}

/// The exit code of an error's kind: 1 when the user can fix it, 2 when cairn
/// failed (the server answers the same kinds with 4xx and 5xx).
pub(crate) fn code_of(kind: cairn_model::ErrorKind) -> u8 {
    if kind.is_user() { USER } else { INTERNAL }
}

impl From<EngineError> for Failure {
    fn from(err: EngineError) -> Self {
        Failure {
            code: code_of(err.kind()),
            error: err.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure {
            code: INTERNAL,
            error,
        }
    }
}

impl From<cairn_store::StoreError> for Failure {
    fn from(err: cairn_store::StoreError) -> Self {
        Failure {
            code: code_of(err.kind()),
            error: err.into(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        Failure {
            code: INTERNAL,
            error: err.into(),
        }
    }
}

/// Whether the error (or any cause) is the disk being full: `ENOSPC` or
/// `EDQUOT` from any write (the store, the log, blobs, keys), or the store's
/// own [`cairn_store::StoreError::DiskFull`].
pub(crate) fn is_disk_full(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        }) || cause
            .downcast_ref::<cairn_store::StoreError>()
            .is_some_and(cairn_store::StoreError::is_disk_full)
    }) || render(error).contains("No space left on device")
}

/// The error and its causes. A config error is already a full diagnostic.
pub(crate) fn render(error: &anyhow::Error) -> String {
    cairn_model::error_chain(error.as_ref())
}

impl From<cairn_model::image_ref::RefError> for Failure {
    fn from(err: cairn_model::image_ref::RefError) -> Self {
        Failure::user(err)
    }
}

impl From<cairn_oci::OciError> for Failure {
    fn from(err: cairn_oci::OciError) -> Self {
        Failure {
            code: INTERNAL,
            error: err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_store::StoreError;

    /// Issue 15: every store error was exit 2. A missing record, a taken name or
    /// a refused value is the user's (1), as the server answers it with a 4xx;
    /// a full disk or a database failure is cairn's (2).
    #[test]
    fn store_errors_exit_by_their_kind() {
        let code = |e: StoreError| Failure::from(e).code;
        assert_eq!(
            code(StoreError::NotFound {
                what: "run",
                id: "7".into()
            }),
            USER
        );
        assert_eq!(
            code(StoreError::Exists {
                what: "identity",
                id: "dev".into()
            }),
            USER
        );
        assert_eq!(
            code(StoreError::Invalid {
                what: "name",
                why: "empty".into()
            }),
            USER
        );
        assert_eq!(
            code(StoreError::Corrupt {
                what: "status",
                value: "x".into()
            }),
            INTERNAL
        );
        let engine = EngineError::Store(StoreError::NotFound {
            what: "workload",
            id: "ghost".into(),
        });
        assert_eq!(Failure::from(engine).code, USER);
    }
}

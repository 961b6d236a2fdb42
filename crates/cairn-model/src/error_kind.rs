//! What kind of failure an error is: decided once, by each error type's `kind()`,
//! and mapped in one place each to the CLI's exit code and the server's HTTP status.

/// The kind of a failure, as a caller must treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request (input, file, name, configuration) is not one that can be done.
    Invalid,
    /// What the request names does not exist.
    NotFound,
    /// What the request would create exists already, or is held by another.
    Conflict,
    /// No credential, or one that belongs to no active identity.
    Unauthenticated,
    /// The identity may not do this.
    Forbidden,
    /// The disk is full; nothing was written.
    DiskFull,
    /// cairn itself failed.
    Internal,
}

impl ErrorKind {
    /// Whether the user (their input, their rights, a policy) can fix it: exit 1,
    /// a 4xx answer. The rest is cairn's failure: exit 2, a 5xx answer.
    pub fn is_user(self) -> bool {
        !matches!(self, ErrorKind::DiskFull | ErrorKind::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn only_cairn_s_own_failures_are_not_the_user_s() {
        for k in [
            ErrorKind::Invalid,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Unauthenticated,
            ErrorKind::Forbidden,
        ] {
            assert!(k.is_user(), "{k:?}");
        }
        assert!(!ErrorKind::DiskFull.is_user());
        assert!(!ErrorKind::Internal.is_user());
    }
}

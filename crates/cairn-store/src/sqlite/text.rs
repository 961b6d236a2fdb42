//! Bounds on the text the store keeps: names, digests, logins, outcomes.

use crate::StoreError;

/// The longest name, digest, login, token hash or detail kept in a text column.
pub(crate) const MAX_TEXT: usize = 4096;

/// Refuses any of `values` longer than [`MAX_TEXT`].
pub(crate) fn check_len(what: &'static str, values: &[&str]) -> Result<(), StoreError> {
    for v in values {
        if v.len() > MAX_TEXT {
            return Err(StoreError::TooLarge {
                what,
                size: v.len(),
                limit: MAX_TEXT,
            });
        }
    }
    Ok(())
}

/// Refuses an empty `field` of `what`.
pub(crate) fn check_nonempty(
    what: &'static str,
    field: &str,
    value: &str,
) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid {
            what,
            why: format!("the {field} is empty"),
        });
    }
    Ok(())
}

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

/// A duty lease's name and owner are short, non-empty text and its length is
/// positive and under a day.
pub(crate) fn check_duty(duty: &str, owner: &str, ttl_ms: i64) -> Result<(), StoreError> {
    check_len("a duty lease's field", &[duty, owner])?;
    check_nonempty("duty lease", "duty", duty)?;
    check_nonempty("duty lease", "owner", owner)?;
    if !(1..=86_400_000).contains(&ttl_ms) {
        return Err(StoreError::Invalid {
            what: "duty lease",
            why: format!("lease length {ttl_ms} ms is not between 1 ms and a day"),
        });
    }
    Ok(())
}

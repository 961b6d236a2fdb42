//! Unix milliseconds to RFC 3339 UTC with milliseconds, without a clock: the
//! caller hands in times. The calendar is `cairn_model::time`'s.

use cairn_model::time::{civil_from_days, rfc3339_utc_millis};

use crate::EvidenceError;

/// `1764072000123` → `2025-11-25T12:00:00.123Z`: RFC 3339 §5.6 `date-time` in UTC
/// with millisecond precision, the form of protobuf's JSON `Timestamp` (which SLSA
/// Provenance v1 `startedOn`/`finishedOn` use). Years outside 0001–9999 are refused.
pub fn rfc3339_utc_ms(unix_ms: i64) -> Result<String, EvidenceError> {
    let (y, _, _) = civil_from_days(unix_ms.div_euclid(86_400_000));
    if !(1..=9999).contains(&y) {
        return Err(EvidenceError::TimeOutOfRange { unix_ms });
    }
    Ok(rfc3339_utc_millis(unix_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_764_072_000_123, "2025-11-25T12:00:00.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(rfc3339_utc_ms(ms).expect("in range"), want, "{ms}");
        }
    }

    #[test]
    fn refuses_years_outside_the_protobuf_range() {
        for ms in [253_402_300_800_000, -62_135_596_800_001, i64::MAX, i64::MIN] {
            assert!(rfc3339_utc_ms(ms).is_err(), "{ms}");
        }
    }
}

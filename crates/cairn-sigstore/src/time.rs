//! The timestamps Sigstore carries, to Unix seconds (fractions truncated):
//! RFC 3339 strings (trusted root `validFor`) and ASN.1 GeneralizedTime (RFC 3161
//! `genTime`). The calendar is `cairn_model::time`'s.

use cairn_model::time::unix_seconds;

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `2021-01-12T11:53:27Z`, `2022-12-31T23:59:59.999Z`, `...+01:00`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    cairn_model::time::parse_rfc3339(s.trim()).map(|(secs, _)| secs)
}

/// ASN.1 GeneralizedTime as DER requires it: `YYYYMMDDHHMMSS[.f+]Z`.
pub fn parse_generalized_time(s: &str) -> Option<i64> {
    if s.len() < 15 || !s.is_ascii() || !s.ends_with('Z') {
        return None;
    }
    let base = unix_seconds(
        i64::from(digits(&s[0..4])?),
        digits(&s[4..6])?,
        digits(&s[6..8])?,
        digits(&s[8..10])?,
        digits(&s[10..12])?,
        digits(&s[12..14])?,
    )?;
    let rest = &s[14..s.len() - 1];
    if !rest.is_empty() {
        let frac = rest.strip_prefix('.')?;
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2021-01-12T11:53:27Z"), Some(1_610_452_407));
        assert_eq!(
            parse_rfc3339("2022-12-31T23:59:59.999Z"),
            Some(1_672_531_199)
        );
        assert_eq!(
            parse_rfc3339("2021-01-12T12:53:27+01:00"),
            Some(1_610_452_407)
        );
        for bad in [
            "",
            "2021-01-12",
            "2021-13-12T11:53:27Z",
            "2021-01-12T11:53:27",
            "2021-01-12T11:53:27.Z",
            "２０２１-01-12T11:53:27Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn generalized_time() {
        assert_eq!(
            parse_generalized_time("20210112115327Z"),
            Some(1_610_452_407)
        );
        assert_eq!(
            parse_generalized_time("20210112115327.123Z"),
            Some(1_610_452_407)
        );
        assert_eq!(parse_generalized_time("20210112115327"), None);
        assert_eq!(parse_generalized_time("20210112115327.Z"), None);
        assert_eq!(parse_generalized_time("20000229000000Z"), Some(951_782_400));
        assert_eq!(parse_generalized_time("21000229000000Z"), None);
        assert_eq!(parse_generalized_time("20230431000000Z"), None);
    }
}

//! Calendar arithmetic for the timestamps Sigstore carries: RFC 3339 strings
//! (trusted root `validFor`) and ASN.1 GeneralizedTime (RFC 3161 `genTime`).
//! Times are Unix seconds; fractions are truncated.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn civil(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// `2021-01-12T11:53:27Z`, `2022-12-31T23:59:59.999Z`, `...+01:00`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 20 || !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let base = civil(
        digits(&s[0..4])?,
        digits(&s[5..7])?,
        digits(&s[8..10])?,
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    )?;
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (digits(&rest[1..3])? * 3600 + digits(&rest[4..6])? * 60)
        }
    };
    Some(base - offset)
}

/// ASN.1 GeneralizedTime as DER requires it: `YYYYMMDDHHMMSS[.f+]Z`.
pub fn parse_generalized_time(s: &str) -> Option<i64> {
    if s.len() < 15 || !s.is_ascii() || !s.ends_with('Z') {
        return None;
    }
    let base = civil(
        digits(&s[0..4])?,
        digits(&s[4..6])?,
        digits(&s[6..8])?,
        digits(&s[8..10])?,
        digits(&s[10..12])?,
        digits(&s[12..14])?,
    )?;
    let rest = &s[14..s.len() - 1];
    if !rest.is_empty() {
        let frac = rest.strip_prefix('.')?;
        digits(frac)?;
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
    }
}

//! The one calendar of cairn: unix time to and from the proleptic Gregorian
//! calendar (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"), RFC 3339
//! UTC text (§5.6 `date-time`) both ways, and short durations for people;
//! without a clock of its own (the caller hands in "now").

/// `1764072000000` → `2025-11-25T12:00:00Z` (UTC, second precision).
pub fn rfc3339_utc(unix_ms: i64) -> String {
    format_utc(unix_ms.div_euclid(1000), None)
}

/// `1764072000123` → `2025-11-25T12:00:00.123Z` (UTC, millisecond precision).
pub fn rfc3339_utc_millis(unix_ms: i64) -> String {
    format_utc(unix_ms.div_euclid(1000), Some(unix_ms.rem_euclid(1000)))
}

/// `1700000000` → `2023-11-14T22:13:20Z`: [`rfc3339_utc`] of unix seconds.
pub fn rfc3339_utc_secs(unix_secs: i64) -> String {
    format_utc(unix_secs, None)
}

fn format_utc(secs: i64, millis: Option<i64>) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let time = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    match millis {
        Some(ms) => format!("{time}.{ms:03}Z"),
        None => format!("{time}Z"),
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01 (Hinnant's `days_from_civil`);
/// the inverse of [`civil_from_days`] for a valid date (see [`days_in_month`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `y` is a Gregorian leap year (2000 is, 2100 is not).
pub fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// The number of days of month `m` (1–12) of year `y`; 0 for another `m`.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Unix seconds of a UTC date and time, checked: the day must exist in its
/// month, hours 0–23, minutes 0–59, seconds 0–60 (a leap second counts as the
/// next second's start). `None` for anything else.
pub fn unix_seconds(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    days_from_civil(y, mo, d)
        .checked_mul(86_400)?
        .checked_add(i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s))
}

/// Parses an RFC 3339 §5.6 `date-time` — `2021-01-12T11:53:27Z`,
/// `2022-12-31T23:59:59.999Z`, `2021-01-12T12:53:27+01:00` (`t`, `z` and a space
/// for `T` accepted as §5.6's note allows) — to (unix seconds, nanoseconds of
/// the fraction, truncated past 9 digits). Anything else, an impossible date
/// (`02-30`) or an offset past 23:59 is `None`.
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let base = unix_seconds(
        i64::from(num(0..4)?),
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    )?;
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let padded: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = padded.parse().ok()?;
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6
            && matches!(tz.as_bytes()[0], b'+' | b'-')
            && tz.as_bytes()[3] == b':' =>
        {
            let oh = i64::from(num(i + 1..i + 3)?);
            let om = i64::from(num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    Some((base - offset, nanos))
}

/// A duration for people: `850ms`, `4.2s`, `3m05s`, `2h10m`.
pub fn human_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// [`human_duration_ms`] of a [`std::time::Duration`].
pub fn human_duration(d: std::time::Duration) -> String {
    human_duration_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (1_764_072_000_999, "2025-11-25T12:00:00Z"),
            (4_107_542_399_000, "2100-02-28T23:59:59Z"),
            (-1000, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339_utc(ms), want, "{ms}");
        }
    }

    #[test]
    fn formats_with_millis_and_seconds() {
        assert_eq!(
            rfc3339_utc_millis(1_764_072_000_123),
            "2025-11-25T12:00:00.123Z"
        );
        assert_eq!(rfc3339_utc_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_utc_secs(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc_secs(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn civil_round_trips_across_leap_years_centuries_and_month_ends() {
        for (y, m, d, days) in [
            (1970, 1, 1, 0),
            (1969, 12, 31, -1),
            (2000, 2, 29, 11_016),
            (2000, 3, 1, 11_017),
            (2100, 2, 28, 47_540),
            (2100, 3, 1, 47_541),
            (2024, 2, 29, 19_782),
            (2023, 2, 28, 19_416),
            (2023, 3, 1, 19_417),
            (2023, 4, 30, 19_477),
            (2023, 12, 31, 19_722),
            (1, 1, 1, -719_162),
        ] {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
        }
        // Every day of 1600..2401 round-trips and the next day follows.
        let mut day = days_from_civil(1600, 1, 1);
        for y in 1600..2401 {
            for m in 1..=12 {
                for d in 1..=days_in_month(y, m) {
                    assert_eq!(days_from_civil(y, m, d), day);
                    assert_eq!(civil_from_days(day), (y, m, d));
                    day += 1;
                }
            }
        }
    }

    #[test]
    fn leap_years_and_month_lengths() {
        assert!(is_leap_year(2000) && is_leap_year(2024) && is_leap_year(1600));
        assert!(!is_leap_year(2100) && !is_leap_year(1900) && !is_leap_year(2023));
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2024, 4), 30);
        assert_eq!(days_in_month(2024, 12), 31);
        assert_eq!(days_in_month(2024, 13), 0);
    }

    #[test]
    fn parses_rfc3339() {
        for (text, want) in [
            ("1970-01-01T00:00:00Z", (0, 0)),
            ("2021-01-12T11:53:27Z", (1_610_452_407, 0)),
            ("2022-12-31T23:59:59.999Z", (1_672_531_199, 999_000_000)),
            ("2021-01-12T12:53:27+01:00", (1_610_452_407, 0)),
            ("2021-01-12T10:53:27-01:00", (1_610_452_407, 0)),
            ("2021-01-12t11:53:27z", (1_610_452_407, 0)),
            ("2021-01-12 11:53:27Z", (1_610_452_407, 0)),
            ("2000-02-29T00:00:00Z", (951_782_400, 0)),
            ("2100-02-28T23:59:59Z", (4_107_542_399, 0)),
            ("2016-12-31T23:59:60Z", (1_483_228_800, 0)),
            (
                "2024-01-31T00:00:00.1234567891Z",
                (1_706_659_200, 123_456_789),
            ),
        ] {
            assert_eq!(parse_rfc3339(text), Some(want), "{text}");
        }
        for bad in [
            "",
            "2021-01-12",
            "2021-01-12T11:53:27",
            "2021-13-01T00:00:00Z",
            "2021-00-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2021-01-00T00:00:00Z",
            "2021-01-12T24:00:00Z",
            "2021-01-12T11:60:00Z",
            "2021-01-12T11:53:61Z",
            "2021-01-12T11:53:27.Z",
            "2021-01-12T11:53:27+24:00",
            "2021-01-12T11:53:27+0100",
            "2021-01-12T11:53:27Zjunk",
            "+021-01-12T11:53:27Z",
            "2021-01-12T11:53:27\u{e9}",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        // What is formatted parses back.
        for ms in [0, 951_782_400_000, 4_107_542_399_000, 1_764_072_000_000] {
            assert_eq!(parse_rfc3339(&rfc3339_utc(ms)), Some((ms / 1000, 0)));
        }
    }

    #[test]
    fn durations() {
        for (ms, want) in [
            (-5, "0ms"),
            (850, "850ms"),
            (4_249, "4.2s"),
            (185_000, "3m05s"),
            (7_800_000, "2h10m"),
        ] {
            assert_eq!(human_duration_ms(ms), want);
        }
    }
}

use super::*;
use crate::Package;

const RECORD: &str = r#"{"id":"DEBIAN-CVE-1","modified":"2024-01-01T00:00:00Z",
 "affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},
   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:2.36-9+deb12u4"}]}],
   "versions":["2.36-9"]},
  {"package":{"ecosystem":"npm","name":"x"},
   "ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"last_affected":"1.2.0"},{"introduced":"2.0.0"},{"limit":"2.5.0"}]}]}]}"#;

fn form(key: (&str, &str)) -> Vec<u8> {
    let adv = Advisory::parse(RECORD.as_bytes()).unwrap();
    compile(&adv)
        .into_iter()
        .find(|((e, n), _)| (e.as_str(), n.as_str()) == key)
        .unwrap()
        .1
        .unwrap()
}

fn at<'f>(form: &'f [u8], v: &str) -> Result<Decision<'f>, FormError> {
    decide(form, &mut Installed::new(v))
}

/// The decision without its finding: `No`, `Maybe`, or `Affected` checked to
/// make exactly the record's finding.
fn kind(form: &[u8], record: &str, key: (&str, &str), v: &str) -> &'static str {
    let adv = Advisory::parse(record.as_bytes()).unwrap();
    let package = Package::new(key.0, key.1, v);
    let record_says = crate::matches(&adv, &package);
    match at(form, v).unwrap() {
        Decision::No => {
            assert!(matches!(record_says, Ok(None)), "{v}: {record_says:?}");
            "no"
        }
        Decision::Maybe => "maybe",
        Decision::Affected(hit) => {
            assert_eq!(record_says.unwrap(), Some(hit.finding(&package)), "{v}");
            "affected"
        }
    }
}

#[test]
fn a_form_answers_as_its_record() {
    let glibc = form(("Debian:12", "glibc"));
    assert_eq!(glibc[0], FORM_VERSION);
    let key = ("Debian:12", "glibc");
    assert_eq!(kind(&glibc, RECORD, key, "2.36-9"), "affected");
    assert_eq!(kind(&glibc, RECORD, key, "1:2.36-9+deb12u3"), "affected");
    assert_eq!(kind(&glibc, RECORD, key, "1:2.36-9+deb12u4"), "no");
    assert_eq!(kind(&glibc, RECORD, key, "2:0"), "no");
    // An installed version that does not parse: the record says why.
    assert_eq!(kind(&glibc, RECORD, key, "a b"), "maybe");
    let npm = form(("npm", "x"));
    for (v, want) in [
        ("0.9.0", "no"),
        ("1.0.0", "affected"),
        ("1.2.0", "affected"),
        ("1.2.1", "no"),
        ("2.4.9", "affected"),
        ("2.5.0", "no"),
    ] {
        assert_eq!(kind(&npm, RECORD, ("npm", "x"), v), want, "{v}");
    }
}

/// Everything a finding carries comes from the form as from the record: the
/// record's head (id, aliases, summary, informational kind, severity), and of
/// the affected entries their fixed versions (each once, in entry order), the
/// first one's own severity and urgency.
#[test]
fn an_affected_forms_finding_is_the_records() {
    let record = r#"{"id":"RUSTSEC-1","modified":"m","aliases":["CVE-1","GHSA-x"],
      "summary":"s \u00e9","database_specific":{"informational":"unsound"},
      "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
      "affected":[
        {"package":{"ecosystem":"crates.io","name":"a"},
         "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"},{"introduced":"2.0.0"},{"fixed":"2.1.0"}]}],
         "ecosystem_specific":{"urgency":"low"}},
        {"package":{"ecosystem":"crates.io","name":"a"},
         "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}],
         "ranges":[{"type":"SEMVER","events":[{"introduced":"0.5.0"},{"fixed":"1.0.0"},{"fixed":"0.9.0"}]},
                   {"type":"WEIRD","events":[{"introduced":"0"},{"fixed":"3.0.0"}]}]},
        {"package":{"ecosystem":"Debian:12","name":"a"},"versions":["1"]}]}"#;
    let adv = Advisory::parse(record.as_bytes()).unwrap();
    let forms = compile(&adv);
    assert_eq!(forms.len(), 2);
    let (key, f) = &forms[0];
    assert_eq!(key, &("crates.io".to_owned(), "a".to_owned()));
    let f = f.as_ref().unwrap();
    let key = ("crates.io", "a");
    // Only the first entry: the record's severity, that entry's urgency.
    assert_eq!(kind(f, record, key, "0.1.0"), "affected");
    // Both entries: the record's severity (the first has none of its own) and
    // the first's urgency; both entries' fixed versions each once, those of the
    // range that cannot be evaluated too (as the record's finding has them).
    assert_eq!(kind(f, record, key, "0.6.0"), "affected");
    let Decision::Affected(hit) = at(f, "0.6.0").unwrap() else {
        panic!()
    };
    let made = hit.finding(&Package::new("crates.io", "a", "0.6.0"));
    assert_eq!(made.fixed_versions, ["1.0.0", "2.1.0", "0.9.0", "3.0.0"]);
    assert_eq!(made.urgency.as_deref(), Some("low"));
    assert_eq!(made.severity.unwrap().rating, crate::Rating::Critical);
    assert_eq!(
        made.kind,
        crate::FindingKind::Informational(crate::Informational::Unsound)
    );
    assert_eq!(hit.ecosystems(), ["crates.io", "Debian:12"]);
    assert_eq!(hit.advisory_id(), "RUSTSEC-1");
    // Not affected by a range; the second entry's unknown range type cannot
    // tell: the record is read and reports it.
    assert_eq!(kind(f, record, key, "1.5.0"), "maybe");
    assert!(crate::matches(&adv, &Package::new("crates.io", "a", "1.5.0")).is_err());
    // Affected by the second entry alone: its own severity, no urgency.
    let record2 = record.replace(
        r#"{"introduced":"0"},{"fixed":"1.0.0"},{"introduced":"2.0.0"}"#,
        r#"{"introduced":"2.0.0"}"#,
    );
    let adv2 = Advisory::parse(record2.as_bytes()).unwrap();
    let f2 = compile(&adv2).remove(0).1.unwrap();
    assert_eq!(kind(&f2, &record2, key, "0.6.0"), "affected");
    let Decision::Affected(hit) = at(&f2, "0.6.0").unwrap() else {
        panic!()
    };
    let made = hit.finding(&Package::new("crates.io", "a", "0.6.0"));
    assert_eq!(made.severity.unwrap().rating, crate::Rating::Low);
    assert_eq!(made.urgency, None);
    let debian = forms[1].1.as_ref().unwrap();
    assert_eq!(kind(debian, record, ("Debian:12", "a"), "1"), "affected");
    assert_eq!(kind(debian, record, ("Debian:12", "a"), "2"), "no");
}

/// A text past its bound keeps no finding data: the form still answers "no"
/// where the record does, and "maybe" (read the record) where it matches.
#[test]
fn a_text_past_its_bound_sends_the_finding_to_the_record() {
    let long = "x".repeat(MAX_FINDING_TEXT + 1);
    let summary = RECORD.replace(
        r#""modified""#,
        &format!(r#""summary":"{long}","modified""#),
    );
    let adv = Advisory::parse(summary.as_bytes()).unwrap();
    let f = compile(&adv).remove(0).1.unwrap();
    assert_eq!(f[1] & FLAG_HEAD, 0);
    let key = ("Debian:12", "glibc");
    assert_eq!(kind(&f, &summary, key, "2.36-9"), "maybe");
    assert_eq!(kind(&f, &summary, key, "2:0"), "no");
    // A fixed version that long (its range cannot be evaluated): the entry
    // keeps no finding data.
    let fixed = RECORD.replace(
        r#"{"fixed":"1:2.36-9+deb12u4"}]}],"#,
        &format!(r#"{{"fixed":"1:2.36-9+deb12u4"}}]}},{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{long}"}}]}}],"#),
    );
    let adv = Advisory::parse(fixed.as_bytes()).unwrap();
    let f = compile(&adv).remove(0).1.unwrap();
    assert_ne!(f[1] & FLAG_HEAD, 0);
    assert_eq!(kind(&f, &fixed, key, "2.36-9"), "maybe");
    assert_eq!(kind(&f, &fixed, key, "2:0"), "maybe");
}

#[test]
fn a_withdrawn_record_and_an_unevaluable_range() {
    let withdrawn = RECORD.replace(
        r#""modified""#,
        r#""withdrawn":"2024-02-02T00:00:00Z","modified""#,
    );
    let adv = Advisory::parse(withdrawn.as_bytes()).unwrap();
    let f = compile(&adv).remove(0).1.unwrap();
    assert_eq!(at(&f, "2.36-9"), Ok(Decision::No));
    let broken = RECORD.replace(r#""type":"ECOSYSTEM""#, r#""type":"WEIRD""#);
    let adv = Advisory::parse(broken.as_bytes()).unwrap();
    let f = compile(&adv).remove(0).1.unwrap();
    // Never "no": the record is read and reports the unknown range type.
    assert_eq!(at(&f, "9:9"), Ok(Decision::Maybe));
    // The listed version still says affected, with the record's finding.
    assert_eq!(
        kind(&f, &broken, ("Debian:12", "glibc"), "2.36-9"),
        "affected"
    );
}

#[test]
fn a_corrupt_form_is_an_error_never_a_no() {
    let good = form(("Debian:12", "glibc"));
    for cut in 0..good.len() {
        let e = at(&good[..cut], "2:0").unwrap_err();
        assert!(
            e.to_string().starts_with("compiled match form is corrupt"),
            "{e}"
        );
    }
    let mut wrong_version = good.clone();
    wrong_version[0] = 9;
    assert_eq!(
        at(&wrong_version, "2:0").unwrap_err().to_string(),
        "compiled match form is corrupt at byte 0: unknown form version"
    );
    // The entry count past the end.
    let mut long = good.clone();
    long[2] = 0xff;
    assert_eq!(
        at(&long, "2:0").unwrap_err().reason,
        "a count past its bound or the end"
    );
    // A version's length past the end: the first event's bound (tag 0) is
    // "0"; the second is dpkg parts whose upstream length sits after the epoch.
    let mut past = good.clone();
    // header 4, entry scheme 1, flags 1 and range count 2, range scheme 1 and
    // event count 2, event 0 (kind, tag) 2, event 1 (kind, tag) 2, epoch 8.
    let upstream_len = 4 + 4 + 3 + 2 + 2 + 8;
    assert_eq!(usize::from(past[upstream_len]), "2.36".len());
    past[upstream_len] = 0xf0;
    assert_eq!(
        at(&past, "2:0").unwrap_err().reason,
        "truncated: a field runs past the end"
    );
    // A byte after the end: the head (last) no longer ends the form.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        at(&trailing, "2:0").unwrap_err().reason,
        "the head's length does not end the form"
    );
    assert!(at(&[], "1").is_err());
    let mut flags = good.clone();
    flags[1] = 0x80;
    assert_eq!(at(&flags, "2:0").unwrap_err().reason, "unknown flags");
    let mut v1 = good;
    v1[0] = 1;
    assert_eq!(
        at(&v1, "2.36-9").unwrap_err().to_string(),
        "compiled match form is corrupt at byte 0: unknown form version"
    );
}

/// A corrupt head is an error naming the byte whenever a finding would be made
/// of it, never a panic nor another finding; an answer "no" does not read it
/// (its length must still end the form) and is the record's; a head stored
/// under another advisory's row is refused by [`Hit::check_id`].
#[test]
fn a_corrupt_finding_head_is_an_error_naming_the_byte() {
    let record = r#"{"id":"R-1","modified":"m","aliases":["CVE-1"],"summary":"sum",
      "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
      "affected":[{"package":{"ecosystem":"crates.io","name":"a"},
        "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]}"#;
    let adv = Advisory::parse(record.as_bytes()).unwrap();
    let good = compile(&adv).remove(0).1.unwrap();
    assert!(matches!(at(&good, "0.1.0"), Ok(Decision::Affected(_))));
    // Cut anywhere, for an affected version and for one that is not (the
    // head's length no longer ends the form).
    for cut in 0..good.len() {
        for v in ["0.1.0", "2.0.0"] {
            let e = at(&good[..cut], v).unwrap_err();
            assert!(e.at <= cut, "{e} at cut {cut}");
        }
    }
    let find = |needle: &[u8]| {
        good.windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    // The summary's text not UTF-8: the error names where the text starts.
    let summary = find(b"sum") - 2;
    let mut bad = good.clone();
    bad[summary + 2] = 0xff;
    assert_eq!(
        at(&bad, "0.1.0"),
        Err(FormError {
            at: summary,
            reason: "a text is not UTF-8"
        })
    );
    // Not affected: the ranges say so, the head is not read.
    assert_eq!(kind(&bad, record, ("crates.io", "a"), "2.0.0"), "no");
    // The head's length not ending the form, for either answer.
    let id = find(b"R-1");
    let head_len = id - 2 - 4;
    for v in ["0.1.0", "2.0.0"] {
        let mut long = good.clone();
        long[head_len] += 1;
        assert_eq!(
            at(&long, v),
            Err(FormError {
                at: head_len,
                reason: "the head's length does not end the form"
            })
        );
    }
    // The score (the 8 bytes after the vector) out of range.
    let vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
    let score = find(vector.as_bytes()) + vector.len();
    let mut bad = good.clone();
    bad[score..score + 8].copy_from_slice(&11.0f64.to_bits().to_le_bytes());
    assert_eq!(
        at(&bad, "0.1.0"),
        Err(FormError {
            at: score,
            reason: "a severity score out of range"
        })
    );
    // The rating byte after it past the known ones.
    let mut bad = good.clone();
    bad[score + 8] = 9;
    assert_eq!(
        at(&bad, "0.1.0"),
        Err(FormError {
            at: score + 8,
            reason: "unknown severity rating"
        })
    );
    // An unknown advisory kind (the byte after the summary).
    let mut bad = good.clone();
    bad[summary + 2 + 3] = 7;
    assert_eq!(
        at(&bad, "0.1.0"),
        Err(FormError {
            at: summary + 5,
            reason: "unknown advisory kind"
        })
    );
    // The head of another advisory (same length, other id).
    let mut other = good.clone();
    other[id..id + 3].copy_from_slice(b"R-2");
    let Ok(Decision::Affected(hit)) = at(&other, "0.1.0") else {
        panic!()
    };
    assert_eq!(
        hit.check_id("R-1"),
        Err(FormError {
            at: id - 2,
            reason: "the head names another advisory than its row"
        })
    );
    // The entry's finding data longer than it is (its length is right after
    // the listed versions' count, zero here): read where a finding is made of
    // it, skipped (and the head's length then no longer ends the form) where not.
    let finding_len = find(&[0, 0, 0, 0]) + 4;
    // It runs up to the head's length (4 bytes before the head).
    assert_eq!(
        usize::from(good[finding_len]),
        (id - 2 - 4) - (finding_len + 4)
    );
    let mut longer = good.clone();
    longer[finding_len] += 1;
    assert_eq!(
        at(&longer, "0.1.0").unwrap_err().reason,
        "a finding's length does not end it"
    );
    assert!(at(&longer, "2.0.0").is_err());
    // Unknown entry flags.
    let mut bad = good;
    bad[5] = 0x80;
    assert_eq!(at(&bad, "2.0.0").unwrap_err().reason, "unknown entry flags");
}

/// Any one byte of a real form changed (each position, to 0, 0xff and with its
/// low bit flipped) is an error or an answer, never a panic; a finding it
/// still makes is checked against its row's advisory before it is used.
#[test]
fn every_byte_of_a_form_changed_never_panics() {
    let record = r#"{"id":"R-1","modified":"m","aliases":["CVE-1"],"summary":"sum",
      "database_specific":{"informational":"notice"},
      "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
      "affected":[{"package":{"ecosystem":"crates.io","name":"a"},
        "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}],
        "versions":["2.0.0-rc.1"],"ecosystem_specific":{"urgency":"high"}}]}"#;
    let adv = Advisory::parse(record.as_bytes()).unwrap();
    let mut forms: Vec<Vec<u8>> = vec![compile(&adv).remove(0).1.unwrap()];
    forms.push(form(("Debian:12", "glibc")));
    forms.push(form(("npm", "x")));
    let (mut errors, mut answers) = (0, 0);
    for good in &forms {
        for at in 0..good.len() {
            for change in [0u8, 0xff, good[at] ^ 1] {
                let mut bad = good.clone();
                bad[at] = change;
                for v in ["0.1.0", "1.0.0", "2.0.0-rc.1", "2.36-9", "1.5.0", "x y"] {
                    match decide(&bad, &mut Installed::new(v)) {
                        Ok(Decision::Affected(hit)) => {
                            let _ = hit.check_id("R-1");
                            let _ = hit.finding(&Package::new("crates.io", "a", v));
                            answers += 1;
                        }
                        Ok(_) => answers += 1,
                        Err(e) => {
                            assert!(e.at <= bad.len(), "{e}");
                            errors += 1;
                        }
                    }
                }
            }
        }
    }
    println!("{errors} errors, {answers} answers, no panic");
    assert!(errors > 0 && answers > 0);
}

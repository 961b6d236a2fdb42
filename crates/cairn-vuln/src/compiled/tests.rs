use super::*;

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

fn at(form: &[u8], v: &str) -> Result<Decision, FormError> {
    decide(form, &mut Installed::new(v))
}

#[test]
fn a_form_answers_as_its_record() {
    let glibc = form(("Debian:12", "glibc"));
    assert_eq!(glibc[0], FORM_VERSION);
    assert_eq!(at(&glibc, "2.36-9"), Ok(Decision::Maybe));
    assert_eq!(at(&glibc, "1:2.36-9+deb12u3"), Ok(Decision::Maybe));
    assert_eq!(at(&glibc, "1:2.36-9+deb12u4"), Ok(Decision::No));
    assert_eq!(at(&glibc, "2:0"), Ok(Decision::No));
    // An installed version that does not parse: the record says why.
    assert_eq!(at(&glibc, "a b"), Ok(Decision::Maybe));
    let npm = form(("npm", "x"));
    for (v, want) in [
        ("0.9.0", Decision::No),
        ("1.0.0", Decision::Maybe),
        ("1.2.0", Decision::Maybe),
        ("1.2.1", Decision::No),
        ("2.4.9", Decision::Maybe),
        ("2.5.0", Decision::No),
    ] {
        assert_eq!(at(&npm, v), Ok(want), "{v}");
    }
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
    // header 4, entry scheme 1 and range count 2, range scheme 1 and event
    // count 2, event 0 (kind, tag) 2, event 1 (kind, tag) 2, epoch 8.
    let upstream_len = 4 + 3 + 3 + 2 + 2 + 8;
    assert_eq!(usize::from(past[upstream_len]), "2.36".len());
    past[upstream_len] = 0xf0;
    assert_eq!(
        at(&past, "2:0").unwrap_err().reason,
        "truncated: a field runs past the end"
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        at(&trailing, "2:0").unwrap_err().reason,
        "trailing bytes after the form"
    );
    assert!(at(&[], "1").is_err());
    let mut flags = good;
    flags[1] = 0x80;
    assert_eq!(at(&flags, "2:0").unwrap_err().reason, "unknown flags");
}

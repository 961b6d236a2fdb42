//! OS distributions: which OSV ecosystem holds the advisories of an installed
//! release (`Debian:12`, `Ubuntu:22.04`, `Alpine:v3.20`), and whether an
//! advisory's distribution ecosystem names a release cairn can recognise.

/// The OSV ecosystems whose records apply to packages of distribution `id`
/// (os-release `ID`) at `release` (os-release `VERSION_ID`). `Err` says why none
/// does: the release is unknown, malformed, or the distribution has no OSV data.
pub fn ecosystems(id: &str, release: Option<&str>) -> Result<Vec<String>, String> {
    let Some(release) = release else {
        return Err(format!(
            "the {id} release is unknown (os-release has no VERSION_ID; a testing or unstable \
             release has no advisory ecosystem)"
        ));
    };
    match id {
        "debian" if is_number(release) => Ok(vec![format!("Debian:{release}")]),
        "ubuntu" if is_year_month(release) => Ok(vec![
            format!("Ubuntu:{release}"),
            format!("Ubuntu:{release}:LTS"),
        ]),
        "alpine" => {
            let mut parts = release.split('.');
            match (parts.next(), parts.next()) {
                (Some(major), Some(minor)) if is_number(major) && is_number(minor) => {
                    Ok(vec![format!("Alpine:v{major}.{minor}")])
                }
                _ => Err(format!(
                    "Alpine release {release:?} is not MAJOR.MINOR[.PATCH] (edge has no \
                     advisory ecosystem)"
                )),
            }
        }
        "debian" | "ubuntu" => Err(format!(
            "{id} release {release:?} is not one the advisory ecosystem knows (Debian: a major \
             number; Ubuntu: YY.MM)"
        )),
        other => Err(format!(
            "no advisory ecosystem is known for distribution {other:?}"
        )),
    }
}

/// For an `affected[].package.ecosystem` of a distribution (`Debian`, `Ubuntu`,
/// `Alpine`): `Some(reason)` when its release is missing or malformed, so the
/// entry can never apply to an installed release. `None` for a well-formed one
/// and for every other ecosystem.
pub fn unknown_release(ecosystem: &str) -> Option<String> {
    let (base, release) = match ecosystem.split_once(':') {
        Some((b, r)) => (b, Some(r)),
        None => (ecosystem, None),
    };
    let ok = match (base, release) {
        ("Debian", Some(r)) => is_number(r),
        ("Alpine", Some(r)) => r.strip_prefix('v').is_some_and(|r| {
            r.split_once('.')
                .is_some_and(|(a, b)| is_number(a) && is_number(b))
        }),
        // `Ubuntu:22.04`, `Ubuntu:22.04:LTS`, `Ubuntu:Pro:18.04:LTS`, …
        ("Ubuntu", Some(r)) => r.split(':').any(is_year_month),
        ("Debian" | "Alpine" | "Ubuntu", None) => false,
        _ => return None,
    };
    (!ok).then(|| format!("unknown {base} release in ecosystem {ecosystem:?}"))
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_year_month(s: &str) -> bool {
    s.split_once('.')
        .is_some_and(|(y, m)| y.len() == 2 && m.len() == 2 && is_number(y) && is_number(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, release: Option<&str>, want: Result<&[&str], &str>) {
        let got = ecosystems(id, release);
        match (want, &got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "{id} {release:?}"),
            (Err(part), Err(why)) => assert!(why.contains(part), "{id} {release:?}: {why}"),
            _ => panic!("{id} {release:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn installed_releases_name_their_ecosystems() {
        check("debian", Some("12"), Ok(&["Debian:12"]));
        check("debian", Some("11"), Ok(&["Debian:11"]));
        check(
            "ubuntu",
            Some("22.04"),
            Ok(&["Ubuntu:22.04", "Ubuntu:22.04:LTS"]),
        );
        check("alpine", Some("3.20.3"), Ok(&["Alpine:v3.20"]));
        check("alpine", Some("3.19"), Ok(&["Alpine:v3.19"]));
        check("debian", None, Err("release is unknown"));
        check(
            "debian",
            Some("bookworm"),
            Err("not one the advisory ecosystem knows"),
        );
        check(
            "debian",
            Some("12.5"),
            Err("not one the advisory ecosystem knows"),
        );
        check(
            "ubuntu",
            Some("22"),
            Err("not one the advisory ecosystem knows"),
        );
        check("alpine", Some("edge"), Err("not MAJOR.MINOR"));
        check("alpine", Some("3"), Err("not MAJOR.MINOR"));
        check(
            "raspbian",
            Some("12"),
            Err("no advisory ecosystem is known"),
        );
    }

    #[test]
    fn advisory_ecosystems_with_unknown_releases_are_named() {
        for ok in [
            "Debian:12",
            "Debian:11",
            "Ubuntu:22.04:LTS",
            "Ubuntu:24.10",
            "Ubuntu:Pro:18.04:LTS",
            "Alpine:v3.20",
            "crates.io",
            "PyPI",
        ] {
            assert_eq!(unknown_release(ok), None, "{ok}");
        }
        for bad in [
            "Debian",
            "Debian:bookworm",
            "Debian:",
            "Alpine:3.20",
            "Alpine:vedge",
            "Ubuntu:jammy",
            "Ubuntu",
        ] {
            assert!(
                unknown_release(bad).is_some_and(|r| r.contains("unknown")),
                "{bad}"
            );
        }
    }
}

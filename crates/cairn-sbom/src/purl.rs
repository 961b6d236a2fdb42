//! Package URLs, built per the purl specification
//! (<https://github.com/package-url/purl-spec>, PURL-SPECIFICATION.md "Rules for each
//! purl component" and PURL-TYPES.md for the type-specific normalisation).

pub use cairn_model::purl::{Purl, encode};

/// Builds `pkg:type/namespace/name@version?qualifiers` with cairn's one purl codec
/// ([`Purl`]'s canonical text). Namespace segments are split on `/` and encoded
/// one by one; qualifier keys lowercased, sorted, empty values dropped.
pub fn build(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut purl = Purl::new(kind, name);
    purl.namespace = namespace
        .map(|ns| {
            ns.split('/')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default();
    purl.version = version.map(str::to_owned);
    for (k, v) in qualifiers.iter().filter(|(_, v)| !v.is_empty()) {
        purl.qualifiers
            .insert(k.to_ascii_lowercase(), (*v).to_owned());
    }
    purl.to_string()
}

/// PyPI names per PEP 503: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalise_pypi(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `pkg:cargo/NAME@VERSION`. A crate's name and version are almost always made
/// of characters the purl codec leaves as they are: then the text is written
/// at once (a lockfile's every package and dependency goes through here), the
/// same text [`build`] gives; anything else goes through [`build`].
pub fn cargo(name: &str, version: &str) -> String {
    fn unreserved(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':'))
    }
    if unreserved(name) && unreserved(version) {
        let mut out = String::with_capacity(11 + name.len() + version.len());
        out.push_str("pkg:cargo/");
        out.push_str(name);
        out.push('@');
        out.push_str(version);
        return out;
    }
    build("cargo", None, name, Some(version), &[])
}

/// npm: lowercase; a scope `@scope` is the namespace (encoded `%40scope`).
pub fn npm(full_name: &str, version: &str) -> String {
    let lower = full_name.to_ascii_lowercase();
    match lower.split_once('/') {
        Some((scope, name)) if scope.starts_with('@') => {
            build("npm", Some(scope), name, Some(version), &[])
        }
        _ => build("npm", None, &lower, Some(version), &[]),
    }
}

pub fn pypi(name: &str, version: &str) -> String {
    build("pypi", None, &normalise_pypi(name), Some(version), &[])
}

/// Go: the module path up to the last `/` is the namespace; case is kept.
pub fn golang(module: &str, version: &str) -> String {
    match module.rsplit_once('/') {
        Some((ns, name)) => build("golang", Some(ns), name, Some(version), &[]),
        None => build("golang", None, module, Some(version), &[]),
    }
}

pub fn gem(name: &str, version: &str, platform: Option<&str>) -> String {
    let q: Vec<(&str, &str)> = platform.map(|p| ("platform", p)).into_iter().collect();
    build("gem", None, name, Some(version), &q)
}

/// Composer: `vendor/name`, lowercased.
pub fn composer(full_name: &str, version: &str) -> String {
    let lower = full_name.to_ascii_lowercase();
    match lower.split_once('/') {
        Some((vendor, name)) => build("composer", Some(vendor), name, Some(version), &[]),
        None => build("composer", None, &lower, Some(version), &[]),
    }
}

pub fn maven(group: &str, artifact: &str, version: &str) -> String {
    build("maven", Some(group), artifact, Some(version), &[])
}

/// Debian-family binary package; `distro` is the namespace (`debian`, `ubuntu`).
pub fn deb(distro: &str, name: &str, version: &str, arch: Option<&str>) -> String {
    let q: Vec<(&str, &str)> = arch.map(|a| ("arch", a)).into_iter().collect();
    build(
        "deb",
        Some(&distro.to_ascii_lowercase()),
        &name.to_ascii_lowercase(),
        Some(version),
        &q,
    )
}

pub fn apk(distro: &str, name: &str, version: &str, arch: Option<&str>) -> String {
    let q: Vec<(&str, &str)> = arch.map(|a| ("arch", a)).into_iter().collect();
    build(
        "apk",
        Some(&distro.to_ascii_lowercase()),
        &name.to_ascii_lowercase(),
        Some(version),
        &q,
    )
}

/// An OS binary package's purl (`pkg:deb/…`, `pkg:apk/…`) with its context as
/// qualifiers: `arch`, `distro=<ID>-<VERSION_ID>` from os-release when the release
/// is known (`distro=debian-12`), and `upstream=<source package>` when the source
/// package has another name (`pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc`).
pub fn os_package(
    kind: &str,
    distro: &str,
    release: Option<&str>,
    name: &str,
    version: &str,
    arch: Option<&str>,
    upstream: Option<&str>,
) -> String {
    let distro = distro.to_ascii_lowercase();
    let release = release.map(|r| format!("{distro}-{r}"));
    let mut q: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = arch {
        q.push(("arch", a));
    }
    if let Some(r) = &release {
        q.push(("distro", r));
    }
    if let Some(u) = upstream.filter(|u| *u != name) {
        q.push(("upstream", u));
    }
    build(
        kind,
        Some(&distro),
        &name.to_ascii_lowercase(),
        Some(version),
        &q,
    )
}

/// The value of qualifier `key` of a purl, percent-decoded; `None` when absent
/// or the purl is not one.
pub fn qualifier(purl: &str, key: &str) -> Option<String> {
    Purl::parse(purl).ok()?.qualifiers.remove(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cargo shortcut writes exactly what the codec writes, for plain
    /// names and for names and versions it must encode.
    #[test]
    fn cargo_purls_are_the_codecs() {
        for (name, version) in [
            ("serde", "1.0.200"),
            ("tokio-util", "0.7.10+wasi.0"),
            ("Inflector", "0.11.4"),
            ("a_b", "1.0.0-rc.1"),
            ("x", "1:2~3"),
            ("weird name", "1.0"),
            ("crate", "1.0.0+build/5"),
            ("ünï", "0.1.0"),
            ("q?a#b", "1@2"),
            ("", ""),
        ] {
            assert_eq!(
                cargo(name, version),
                build("cargo", None, name, Some(version), &[]),
                "{name:?} {version:?}"
            );
        }
        assert_eq!(cargo("serde", "1.0.200"), "pkg:cargo/serde@1.0.200");
    }

    #[test]
    fn os_package_purls_carry_the_release_and_the_source_package() {
        for (args, want) in [
            (
                (
                    "deb",
                    "debian",
                    Some("12"),
                    "libc6",
                    "2.36-9",
                    Some("amd64"),
                    Some("glibc"),
                ),
                "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc",
            ),
            (
                (
                    "deb",
                    "debian",
                    Some("12"),
                    "bash",
                    "5.2.15-2+b7",
                    Some("amd64"),
                    Some("bash"),
                ),
                "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
            ),
            (
                ("deb", "debian", None, "bash", "5.2.15-2", None, None),
                "pkg:deb/debian/bash@5.2.15-2",
            ),
            (
                (
                    "apk",
                    "alpine",
                    Some("3.20.3"),
                    "libcrypto3",
                    "3.3.2-r0",
                    Some("x86_64"),
                    Some("openssl"),
                ),
                "pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3&upstream=openssl",
            ),
        ] {
            let (kind, distro, release, name, version, arch, upstream) = args;
            let got = os_package(kind, distro, release, name, version, arch, upstream);
            assert_eq!(got, want);
            assert_eq!(qualifier(&got, "arch").as_deref(), arch);
        }
        let p = "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=g%2Blibc";
        assert_eq!(qualifier(p, "distro").as_deref(), Some("debian-12"));
        assert_eq!(qualifier(p, "upstream").as_deref(), Some("g+libc"));
        assert_eq!(qualifier(p, "epoch"), None);
        assert_eq!(qualifier("pkg:deb/debian/x@1?a=%zz", "a"), None);
    }
}

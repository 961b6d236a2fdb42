//! Package URLs, built per the purl specification
//! (<https://github.com/package-url/purl-spec>, PURL-SPECIFICATION.md "Rules for each
//! purl component" and PURL-TYPES.md for the type-specific normalisation).

/// Percent-encodes one purl component: everything but the unreserved characters
/// `A-Z a-z 0-9 . - _ ~` and the `:` (which the spec says must not be encoded).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `pkg:type/namespace/name@version?qualifiers`. Namespace segments are split on
/// `/` and encoded one by one; qualifiers are sorted by key and empty values dropped.
pub fn build(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut out = format!("pkg:{}/", kind.to_ascii_lowercase());
    if let Some(ns) = namespace {
        for segment in ns.split('/').filter(|s| !s.is_empty()) {
            out.push_str(&encode(segment));
            out.push('/');
        }
    }
    out.push_str(&encode(name));
    if let Some(v) = version {
        out.push('@');
        out.push_str(&encode(v));
    }
    let mut q: Vec<(String, &str)> = qualifiers
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    q.sort();
    for (i, (k, v)) in q.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
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

pub fn cargo(name: &str, version: &str) -> String {
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

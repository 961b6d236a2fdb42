//! THE package URL codec of cairn (purl specification,
//! <https://github.com/package-url/purl-spec>, PURL-SPECIFICATION.md "How to
//! build `purl` string from its components" and "How to parse a `purl` string
//! in its components"). One [`Purl`] for the SBOM builders (`cairn-sbom`), the
//! `where` query (`cairn-cli`) and OpenVEX products (`cairn-vuln`). Parsing is
//! strict: a malformed percent escape, bytes that are not UTF-8, a missing
//! scheme, type or name are refused. Type-specific normalisation (PyPI names,
//! npm lowercase, …) is the builders' (`cairn_sbom::purl`), not the codec's.

use std::collections::BTreeMap;
use std::fmt;

/// The most a purl may be; more is refused.
pub const MAX_PURL_BYTES: usize = 4096;

/// A package URL's components, decoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purl {
    /// The package type, lowercase (`cargo`, `npm`, `deb`, …).
    pub ty: String,
    /// Namespace segments joined by `/`; empty when there is none.
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
    /// Keys lowercase; no empty values.
    pub qualifiers: BTreeMap<String, String>,
    /// Segments joined by `/`; `.`, `..` and empty segments dropped.
    pub subpath: Option<String>,
}

/// Why a text is not a purl.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a package URL: {reason}")]
pub struct PurlError {
    pub text: String,
    pub reason: &'static str,
}

impl Purl {
    /// A purl of `ty` and `name` without namespace, version or qualifiers.
    pub fn new(ty: &str, name: &str) -> Purl {
        Purl {
            ty: ty.to_ascii_lowercase(),
            namespace: String::new(),
            name: name.to_owned(),
            version: None,
            qualifiers: BTreeMap::new(),
            subpath: None,
        }
    }

    /// Parses `pkg:type/namespace/name@version?qualifiers#subpath` strictly.
    pub fn parse(text: &str) -> Result<Purl, PurlError> {
        let bad = |reason| PurlError {
            text: text.chars().take(120).collect(),
            reason,
        };
        if text.len() > MAX_PURL_BYTES {
            return Err(bad("it is longer than 4096 bytes"));
        }
        let (rest, subpath) = match text.rsplit_once('#') {
            Some((r, s)) => (r, Some(s)),
            None => (text, None),
        };
        let subpath = match subpath {
            Some(s) => {
                let mut segments = Vec::new();
                for seg in s.split('/') {
                    let seg = decode(seg).ok_or_else(|| bad("a subpath escape is malformed"))?;
                    if !seg.is_empty() && seg != "." && seg != ".." {
                        segments.push(seg);
                    }
                }
                (!segments.is_empty()).then(|| segments.join("/"))
            }
            None => None,
        };
        let (rest, query) = match rest.rsplit_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let mut qualifiers = BTreeMap::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("a qualifier has no `=`"))?;
            let key = key.to_ascii_lowercase();
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                || key.as_bytes()[0].is_ascii_digit()
            {
                return Err(bad(
                    "a qualifier key is not [a-z0-9.-_] starting with a letter",
                ));
            }
            let value = decode(value).ok_or_else(|| bad("a qualifier escape is malformed"))?;
            if value.is_empty() {
                continue;
            }
            if qualifiers.insert(key, value).is_some() {
                return Err(bad("a qualifier key is repeated"));
            }
        }
        let (scheme, rest) = rest
            .split_once(':')
            .ok_or_else(|| bad("it does not start with `pkg:`"))?;
        if !scheme.eq_ignore_ascii_case("pkg") {
            return Err(bad("it does not start with `pkg:`"));
        }
        let rest = rest.trim_matches('/');
        let (ty, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad("it has no type and name"))?;
        let ty = ty.to_ascii_lowercase();
        if ty.is_empty()
            || !ty
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
            || ty.as_bytes()[0].is_ascii_digit()
        {
            return Err(bad("the type is not [a-z0-9.+-] starting with a letter"));
        }
        // The version follows an `@` in the last segment (a namespace may
        // hold an unencoded `@`, as npm scopes do).
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        let (rest, version) = match rest[last..].rfind('@').map(|i| last + i) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        let version = match version {
            "" => None,
            v => Some(decode(v).ok_or_else(|| bad("the version's escape is malformed"))?),
        };
        let rest = rest.trim_end_matches('/');
        let (namespace, name) = match rest.rsplit_once('/') {
            Some((ns, n)) => (ns, n),
            None => ("", rest),
        };
        let name = decode(name).ok_or_else(|| bad("the name's escape is malformed"))?;
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        let mut segments = Vec::new();
        for seg in namespace.split('/').filter(|s| !s.is_empty()) {
            let seg = decode(seg).ok_or_else(|| bad("a namespace escape is malformed"))?;
            if seg.contains('/') {
                return Err(bad("a namespace segment holds `/`"));
            }
            segments.push(seg);
        }
        let mut purl = Purl {
            ty,
            namespace: segments.join("/"),
            name,
            version,
            qualifiers,
            subpath,
        };
        purl.normalise();
        Ok(purl)
    }

    /// The spec's type-specific rules (PURL-TYPES.md) for the types whose
    /// names are case-insensitive: `github` and `bitbucket` namespace and name
    /// lowercase; `pypi` name lowercase with `_` as `-`. Other types keep case
    /// (their builders in `cairn_sbom::purl` normalise as their ecosystems do).
    pub fn normalise(&mut self) {
        match self.ty.as_str() {
            "github" | "bitbucket" => {
                self.namespace.make_ascii_lowercase();
                self.name.make_ascii_lowercase();
            }
            "pypi" => {
                self.name = self.name.to_ascii_lowercase().replace('_', "-");
            }
            _ => {}
        }
    }

    /// The decoded value of qualifier `key`.
    pub fn qualifier(&self, key: &str) -> Option<&str> {
        self.qualifiers.get(key).map(String::as_str)
    }
}

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

/// Undoes percent-encoding; `None` for a malformed escape or bytes that are not
/// UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The canonical text: namespace segments, name, version, qualifier values and
/// subpath segments encoded with [`encode`], qualifiers sorted by key.
impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.ty)?;
        for segment in self.namespace.split('/').filter(|s| !s.is_empty()) {
            write!(f, "{}/", encode(segment))?;
        }
        f.write_str(&encode(&self.name))?;
        if let Some(v) = &self.version {
            write!(f, "@{}", encode(v))?;
        }
        let mut first = true;
        for (k, v) in self.qualifiers.iter().filter(|(_, v)| !v.is_empty()) {
            write!(f, "{}{k}={}", if first { '?' } else { '&' }, encode(v))?;
            first = false;
        }
        if let Some(sub) = &self.subpath {
            let segments: Vec<String> = sub
                .split('/')
                .filter(|s| !s.is_empty() && *s != "." && *s != "..")
                .map(encode)
                .collect();
            if !segments.is_empty() {
                write!(f, "#{}", segments.join("/"))?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Purl {
    type Err = PurlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Purl::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_cairn_builds() {
        for text in [
            "pkg:cargo/smallvec@0.6.10",
            "pkg:npm/%40types/node@18.0.0",
            "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc",
            "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
            "pkg:golang/github.com/nats-io/nats-server/v2@v2.10.0",
            "pkg:maven/org.slf4j/slf4j-api@1.7.36",
            "pkg:gem/nokogiri@1.16.0?platform=x86_64-linux",
            "pkg:deb/debian/x@1:2.3~rc1",
            "pkg:generic/a%2Fb@1#sub/dir",
        ] {
            let p = Purl::parse(text).expect(text);
            assert_eq!(p.to_string(), text);
        }
        let p = Purl::parse("pkg:npm/%40types/node@18.0.0").unwrap();
        assert_eq!((p.namespace.as_str(), p.name.as_str()), ("@types", "node"));
        let p = Purl::parse("pkg:deb/debian/x@1?upstream=g%2Blibc").unwrap();
        assert_eq!(p.qualifier("upstream"), Some("g+libc"));
        assert_eq!(p.qualifier("epoch"), None);
    }

    #[test]
    fn refuses_malformed_purls() {
        for bad in [
            "",
            "cargo/x@1",
            "pkg:",
            "pkg:cargo",
            "pkg:cargo/",
            "pkg:cargo/x%zz",
            "pkg:cargo/x%4",
            "pkg:cargo/x@1%ff",
            "pkg:1cargo/x",
            "pkg:car go/x",
            "pkg:deb/debian/x@1?a=%zz",
            "pkg:deb/debian/x@1?novalue",
            "pkg:deb/debian/x@1?a=1&a=2",
            "pkg:deb/debian/x@1?1a=1",
            "http:cargo/x",
        ] {
            assert!(Purl::parse(bad).is_err(), "{bad}");
        }
        assert!(Purl::parse(&format!("pkg:cargo/{}", "a".repeat(5000))).is_err());
    }
}

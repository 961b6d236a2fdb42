//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): cairn's primary SBOM
//! format. Components with the same purl found in several files become one component
//! with one `evidence.occurrences` location per file.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::component::Component;
use crate::error::Error;
use crate::licence::Licence;

/// What the SBOM is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    Application,
    Container,
    Library,
}

impl SubjectKind {
    fn cyclonedx(self) -> &'static str {
        match self {
            SubjectKind::Application => "application",
            SubjectKind::Container => "container",
            SubjectKind::Library => "library",
        }
    }
    pub(crate) fn spdx_purpose(self) -> &'static str {
        match self {
            SubjectKind::Application => "APPLICATION",
            SubjectKind::Container => "CONTAINER",
            SubjectKind::Library => "LIBRARY",
        }
    }
}

/// The subject of the document: a source tree or an image.
#[derive(Debug, Clone)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
    pub version: Option<String>,
    pub purl: Option<String>,
}

/// Everything a document needs that cairn does not compute itself: the caller hands
/// in the UUID bytes (from its randomness) and the timestamp (from its clock).
#[derive(Debug, Clone)]
pub struct DocumentInput<'a> {
    pub subject: Subject,
    pub components: &'a [Component],
    /// 16 random bytes; the version and variant bits are set to make a v4 UUID.
    pub uuid: [u8; 16],
    /// RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ` (fractional seconds allowed).
    pub timestamp: &'a str,
    /// cairn's version, for `metadata.tools`.
    pub tool_version: &'a str,
}

/// The document's UUID as text (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`).
pub fn uuid_v4(bytes: [u8; 16]) -> String {
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(crate) fn check_timestamp(ts: &str) -> Result<(), Error> {
    let bad = || Error::Timestamp(ts.to_string());
    let b = ts.as_bytes();
    let core = b.get(..19).ok_or_else(bad)?;
    let shape = b"dddd-dd-ddTdd:dd:dd";
    for (c, s) in core.iter().zip(shape) {
        let ok = if *s == b'd' {
            c.is_ascii_digit()
        } else {
            c == s
        };
        if !ok {
            return Err(bad());
        }
    }
    let rest = &b[19..];
    let rest = match rest.strip_prefix(b".") {
        Some(frac) => {
            let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(bad());
            }
            &frac[digits..]
        }
        None => rest,
    };
    if rest != b"Z" {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| ts[r].parse::<u32>().unwrap_or(99);
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return Err(bad());
    }
    Ok(())
}

/// Components merged by purl (sorted), with every file each was found in.
pub(crate) struct Merged<'a> {
    pub first: &'a Component,
    pub files: BTreeSet<&'a str>,
    pub licence: &'a Licence,
    pub dependencies: BTreeSet<&'a str>,
}

pub(crate) fn merge(components: &[Component]) -> Vec<Merged<'_>> {
    let mut map: BTreeMap<&str, Merged<'_>> = BTreeMap::new();
    for c in components {
        let m = map.entry(&c.purl).or_insert_with(|| Merged {
            first: c,
            files: BTreeSet::new(),
            licence: &c.licence,
            dependencies: BTreeSet::new(),
        });
        m.files.insert(&c.source_file);
        // A stated licence wins over none, a valid expression over an unknown one.
        let rank = |l: &Licence| match l {
            Licence::Expression(_) => 2,
            Licence::Unknown(_) => 1,
            Licence::NotGiven => 0,
        };
        if rank(&c.licence) > rank(m.licence) {
            m.licence = &c.licence;
        }
        m.dependencies
            .extend(c.dependencies.iter().map(String::as_str));
    }
    let known: BTreeSet<&str> = map.keys().copied().collect();
    let mut out: Vec<Merged<'_>> = map.into_values().collect();
    for m in &mut out {
        m.dependencies.retain(|d| known.contains(d));
    }
    out
}

fn licences(l: &Licence) -> Option<Value> {
    match l {
        Licence::Expression(e) => Some(json!([{ "expression": e }])),
        Licence::Unknown(raw) => Some(json!([{ "license": { "name": raw } }])),
        Licence::NotGiven => None,
    }
}

/// The bom-ref of the subject.
pub const SUBJECT_REF: &str = "cairn:subject";

/// The component properties naming an OS package's source package: its name
/// and version (which may differ from the binary's, e.g. a binNMU's `+b1`).
pub const SOURCE_NAME_PROPERTY: &str = "cairn:source-package:name";
pub const SOURCE_VERSION_PROPERTY: &str = "cairn:source-package:version";

/// Writes the CycloneDX 1.6 JSON document (pretty, keys sorted, components sorted by
/// purl): the same input gives the same bytes.
pub fn to_json(input: &DocumentInput<'_>) -> Result<Vec<u8>, Error> {
    check_timestamp(input.timestamp)?;
    if input.subject.name.trim().is_empty() {
        return Err(Error::EmptySubject);
    }
    let mut subject = Map::new();
    subject.insert("type".into(), json!(input.subject.kind.cyclonedx()));
    subject.insert("bom-ref".into(), json!(SUBJECT_REF));
    subject.insert("name".into(), json!(input.subject.name));
    if let Some(v) = &input.subject.version {
        subject.insert("version".into(), json!(v));
    }
    if let Some(p) = &input.subject.purl {
        subject.insert("purl".into(), json!(p));
    }
    let merged = merge(input.components);
    let mut components = Vec::with_capacity(merged.len());
    let mut dependencies = Vec::new();
    for m in &merged {
        let c = m.first;
        let mut obj = Map::new();
        obj.insert("type".into(), json!("library"));
        obj.insert("bom-ref".into(), json!(c.purl));
        if let Some(ns) = &c.namespace {
            obj.insert("group".into(), json!(ns));
        }
        obj.insert("name".into(), json!(c.name));
        obj.insert("version".into(), json!(c.version));
        obj.insert("purl".into(), json!(c.purl));
        if let Some(l) = licences(m.licence) {
            obj.insert("licenses".into(), l);
        }
        let mut props = vec![json!({ "name": "cairn:ecosystem", "value": c.ecosystem.osv_name() })];
        if let Some(src) = &c.source_package {
            props.push(json!({ "name": SOURCE_NAME_PROPERTY, "value": src.name }));
            props.push(json!({ "name": SOURCE_VERSION_PROPERTY, "value": src.version }));
        }
        obj.insert("properties".into(), Value::Array(props));
        let occurrences: Vec<Value> = m.files.iter().map(|f| json!({ "location": f })).collect();
        obj.insert("evidence".into(), json!({ "occurrences": occurrences }));
        components.push(Value::Object(obj));
        if !m.dependencies.is_empty() {
            dependencies.push(json!({ "ref": c.purl, "dependsOn": m.dependencies }));
        }
    }
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid_v4(input.uuid)),
        "version": 1,
        "metadata": {
            "timestamp": input.timestamp,
            "tools": { "components": [{ "type": "application", "name": "cairn", "version": input.tool_version }] },
            "component": Value::Object(subject),
        },
        "components": components,
        "dependencies": dependencies,
    });
    serde_json::to_vec_pretty(&doc).map_err(Error::Serialise)
}

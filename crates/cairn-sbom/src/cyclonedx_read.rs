//! A strict reader of CycloneDX 1.6 JSON: it returns the component graph (every
//! component, nested ones included, and the dependencies) and rejects documents that
//! break the rules of `bom-1.6.schema.json` for the parts it reads: the root's fields,
//! serial number, timestamps, component types and required names, unique non-empty
//! bom-refs, scopes, hashes, licence choices (ids from the SPDX list, one expression
//! alone, id or name, base64 text), SWID tags, pedigree patches and issues,
//! properties, service data flows and dependencies. Sections it does not read
//! (vulnerabilities, formulation, declarations, …) are checked for their JSON type only.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::Error;

/// A component as a CycloneDX document states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BomComponent {
    pub bom_ref: Option<String>,
    pub kind: String,
    pub group: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub purl: Option<String>,
    /// Licence expressions and ids/names as stated.
    pub licences: Vec<String>,
    /// Its properties (name, value; a property without a value has `""`), e.g.
    /// cairn's `cairn:source-package:version` of an OS package.
    pub properties: Vec<(String, String)>,
}

/// What [`read`] returns.
#[derive(Debug, Clone, Default)]
pub struct Bom {
    pub serial_number: Option<String>,
    pub subject: Option<BomComponent>,
    pub components: Vec<BomComponent>,
    pub dependencies: Vec<(String, Vec<String>)>,
}

const ROOT_KEYS: &[&str] = &[
    "$schema",
    "bomFormat",
    "specVersion",
    "serialNumber",
    "version",
    "metadata",
    "components",
    "services",
    "externalReferences",
    "dependencies",
    "compositions",
    "properties",
    "vulnerabilities",
    "annotations",
    "formulation",
    "declarations",
    "definitions",
    "signature",
];
const COMPONENT_TYPES: &[&str] = &[
    "application",
    "framework",
    "library",
    "container",
    "platform",
    "operating-system",
    "device",
    "device-driver",
    "firmware",
    "file",
    "machine-learning-model",
    "data",
    "cryptographic-asset",
];
const HASH_ALGS: &[&str] = &[
    "MD5",
    "SHA-1",
    "SHA-256",
    "SHA-384",
    "SHA-512",
    "SHA3-256",
    "SHA3-384",
    "SHA3-512",
    "BLAKE2b-256",
    "BLAKE2b-384",
    "BLAKE2b-512",
    "BLAKE3",
];

struct Reader {
    refs: BTreeSet<String>,
    out: Bom,
}

fn invalid(at: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        at: at.to_string(),
        message: message.into(),
    }
}

fn obj<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| invalid(at, "must be an object"))
}

fn arr<'a>(v: &'a Value, at: &str) -> Result<&'a Vec<Value>, Error> {
    v.as_array().ok_or_else(|| invalid(at, "must be an array"))
}

fn opt_str<'a>(m: &'a Map<String, Value>, key: &str, at: &str) -> Result<Option<&'a str>, Error> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("{at}.{key}"), "must be a string")),
    }
}

fn one_of(m: &Map<String, Value>, key: &str, allowed: &[&str], at: &str) -> Result<(), Error> {
    match opt_str(m, key, at)? {
        Some(v) if !allowed.contains(&v) => Err(invalid(
            &format!("{at}.{key}"),
            format!("{v:?} is not one of {allowed:?}"),
        )),
        _ => Ok(()),
    }
}

/// RFC 3339 date-time (JSON Schema `date-time`), offset required.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape
        || !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        "Z" | "z" => true,
        o => {
            let ob = o.as_bytes();
            ob.len() == 6
                && matches!(ob[0], b'+' | b'-')
                && ob[1..3].iter().all(u8::is_ascii_digit)
                && ob[3] == b':'
                && ob[4..6].iter().all(u8::is_ascii_digit)
                && o[1..3].parse::<u32>().unwrap_or(99) <= 23
                && o[4..6].parse::<u32>().unwrap_or(99) <= 59
        }
    }
}

fn is_serial(s: &str) -> bool {
    let Some(u) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = u.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

impl Reader {
    fn bom_ref(&mut self, m: &Map<String, Value>, at: &str) -> Result<Option<String>, Error> {
        let Some(r) = opt_str(m, "bom-ref", at)? else {
            return Ok(None);
        };
        if r.is_empty() {
            return Err(invalid(&format!("{at}.bom-ref"), "must not be empty"));
        }
        if !self.refs.insert(r.to_string()) {
            return Err(invalid(
                &format!("{at}.bom-ref"),
                format!("{r:?} is not unique"),
            ));
        }
        Ok(Some(r.to_string()))
    }

    fn properties(&self, v: Option<&Value>, at: &str) -> Result<Vec<(String, String)>, Error> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for (i, p) in arr(v, at)?.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let m = obj(p, &at)?;
            let Some(name) = opt_str(m, "name", &at)? else {
                return Err(invalid(&at, "property without a name"));
            };
            let value = opt_str(m, "value", &at)?.unwrap_or_default();
            if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "name" | "value")) {
                return Err(invalid(&at, format!("unexpected field {k:?}")));
            }
            out.push((name.to_owned(), value.to_owned()));
        }
        Ok(out)
    }

    fn licences(&mut self, v: Option<&Value>, at: &str) -> Result<Vec<String>, Error> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let items = arr(v, at)?;
        let mut out = Vec::new();
        let has_expression = items.iter().any(|i| i.get("expression").is_some());
        if has_expression && items.len() != 1 {
            return Err(invalid(at, "an expression must be the only licence entry"));
        }
        for (i, item) in items.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let m = obj(item, &at)?;
            match (m.get("license"), m.get("expression")) {
                (Some(_), Some(_)) => return Err(invalid(&at, "both license and expression")),
                (None, Some(e)) => {
                    let e = e
                        .as_str()
                        .ok_or_else(|| invalid(&at, "expression must be a string"))?;
                    self.bom_ref(m, &at)?;
                    one_of(m, "acknowledgement", &["declared", "concluded"], &at)?;
                    if let Some(k) = m.keys().find(|k| {
                        !matches!(k.as_str(), "expression" | "acknowledgement" | "bom-ref")
                    }) {
                        return Err(invalid(&at, format!("unexpected field {k:?}")));
                    }
                    out.push(e.to_string());
                }
                (Some(l), None) => {
                    if let Some(k) = m.keys().find(|k| k.as_str() != "license") {
                        return Err(invalid(&at, format!("unexpected field {k:?}")));
                    }
                    let at = format!("{at}.license");
                    let l = obj(l, &at)?;
                    self.bom_ref(l, &at)?;
                    one_of(l, "acknowledgement", &["declared", "concluded"], &at)?;
                    match (opt_str(l, "id", &at)?, opt_str(l, "name", &at)?) {
                        (Some(_), Some(_)) => return Err(invalid(&at, "both id and name")),
                        (None, None) => return Err(invalid(&at, "neither id nor name")),
                        (Some(id), None) => {
                            if spdx::license_id(id).is_none()
                                || spdx::license_id(id).is_some_and(|l| l.name != id)
                            {
                                return Err(invalid(
                                    &at,
                                    format!("{id:?} is not an SPDX licence id"),
                                ));
                            }
                            out.push(id.to_string());
                        }
                        (None, Some(name)) => out.push(name.to_string()),
                    }
                    if let Some(text) = l.get("text") {
                        let tm = obj(text, &format!("{at}.text"))?;
                        one_of(tm, "encoding", &["base64"], &format!("{at}.text"))?;
                        if opt_str(tm, "content", &format!("{at}.text"))?.is_none() {
                            return Err(invalid(&format!("{at}.text"), "no content"));
                        }
                    }
                    self.properties(l.get("properties"), &format!("{at}.properties"))?;
                }
                (None, None) => return Err(invalid(&at, "neither license nor expression")),
            }
        }
        Ok(out)
    }

    fn hashes(&self, v: Option<&Value>, at: &str) -> Result<(), Error> {
        let Some(v) = v else { return Ok(()) };
        for (i, h) in arr(v, at)?.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let m = obj(h, &at)?;
            let alg = opt_str(m, "alg", &at)?.ok_or_else(|| invalid(&at, "no alg"))?;
            if !HASH_ALGS.contains(&alg) {
                return Err(invalid(&at, format!("unknown hash algorithm {alg:?}")));
            }
            let content = opt_str(m, "content", &at)?.ok_or_else(|| invalid(&at, "no content"))?;
            let len_ok = matches!(content.len(), 32 | 40 | 64 | 96 | 128);
            if !len_ok || !content.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid(&at, format!("{content:?} is not a hex digest")));
            }
        }
        Ok(())
    }

    fn component(&mut self, v: &Value, at: &str) -> Result<BomComponent, Error> {
        let m = obj(v, at)?;
        let kind = opt_str(m, "type", at)?.ok_or_else(|| invalid(at, "no type"))?;
        if !COMPONENT_TYPES.contains(&kind) {
            return Err(invalid(at, format!("unknown component type {kind:?}")));
        }
        let name = opt_str(m, "name", at)?.ok_or_else(|| invalid(at, "no name"))?;
        let bom_ref = self.bom_ref(m, at)?;
        one_of(m, "scope", &["required", "optional", "excluded"], at)?;
        self.hashes(m.get("hashes"), &format!("{at}.hashes"))?;
        let licences = self.licences(m.get("licenses"), &format!("{at}.licenses"))?;
        let properties = self.properties(m.get("properties"), &format!("{at}.properties"))?;
        if let Some(swid) = m.get("swid") {
            let s = obj(swid, &format!("{at}.swid"))?;
            if opt_str(s, "tagId", at)?.is_none() || opt_str(s, "name", at)?.is_none() {
                return Err(invalid(
                    &format!("{at}.swid"),
                    "tagId and name are required",
                ));
            }
        }
        if let Some(p) = m.get("pedigree") {
            let pat = format!("{at}.pedigree");
            let pm = obj(p, &pat)?;
            for key in ["ancestors", "descendants", "variants"] {
                if let Some(list) = pm.get(key) {
                    for (i, c) in arr(list, &pat)?.iter().enumerate() {
                        let c = self.component(c, &format!("{pat}.{key}[{i}]"))?;
                        self.out.components.push(c);
                    }
                }
            }
            if let Some(patches) = pm.get("patches") {
                for (i, patch) in arr(patches, &pat)?.iter().enumerate() {
                    let at = format!("{pat}.patches[{i}]");
                    let pm = obj(patch, &at)?;
                    if opt_str(pm, "type", &at)?.is_none() {
                        return Err(invalid(&at, "no type"));
                    }
                    one_of(
                        pm,
                        "type",
                        &["unofficial", "monkey", "backport", "cherry-pick"],
                        &at,
                    )?;
                    if let Some(res) = pm.get("resolves") {
                        for (j, issue) in arr(res, &at)?.iter().enumerate() {
                            let iat = format!("{at}.resolves[{j}]");
                            let im = obj(issue, &iat)?;
                            if opt_str(im, "type", &iat)?.is_none() {
                                return Err(invalid(&iat, "no type"));
                            }
                            one_of(im, "type", &["defect", "enhancement", "security"], &iat)?;
                        }
                    }
                }
            }
        }
        if let Some(children) = m.get("components") {
            for (i, c) in arr(children, at)?.iter().enumerate() {
                let c = self.component(c, &format!("{at}.components[{i}]"))?;
                self.out.components.push(c);
            }
        }
        Ok(BomComponent {
            bom_ref,
            kind: kind.to_string(),
            group: opt_str(m, "group", at)?.map(str::to_string),
            name: name.to_string(),
            version: opt_str(m, "version", at)?.map(str::to_string),
            purl: opt_str(m, "purl", at)?.map(str::to_string),
            licences,
            properties,
        })
    }

    fn service(&mut self, v: &Value, at: &str) -> Result<(), Error> {
        let m = obj(v, at)?;
        if opt_str(m, "name", at)?.is_none() {
            return Err(invalid(at, "no name"));
        }
        self.bom_ref(m, at)?;
        self.licences(m.get("licenses"), &format!("{at}.licenses"))?;
        self.properties(m.get("properties"), &format!("{at}.properties"))?;
        if let Some(data) = m.get("data") {
            for (i, d) in arr(data, at)?.iter().enumerate() {
                let dat = format!("{at}.data[{i}]");
                let dm = obj(d, &dat)?;
                if opt_str(dm, "flow", &dat)?.is_none()
                    || opt_str(dm, "classification", &dat)?.is_none()
                {
                    return Err(invalid(&dat, "flow and classification are required"));
                }
                one_of(
                    dm,
                    "flow",
                    &["inbound", "outbound", "bi-directional", "unknown"],
                    &dat,
                )?;
            }
        }
        if let Some(children) = m.get("services") {
            for (i, s) in arr(children, at)?.iter().enumerate() {
                self.service(s, &format!("{at}.services[{i}]"))?;
            }
        }
        Ok(())
    }
}

/// Reads a CycloneDX 1.6 JSON document strictly (see the module doc for the rules).
pub fn read(bytes: &[u8]) -> Result<Bom, Error> {
    if bytes.len() > crate::MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: crate::MAX_FILE_BYTES,
        });
    }
    let doc: Value = crate::text::json(bytes).map_err(|e| match e {
        crate::ParseError::Json(j) => Error::Json(j),
        crate::ParseError::TooDeep { limit } => Error::TooDeep { limit },
        other => invalid("$", other.to_string()),
    })?;
    let root = obj(&doc, "$")?;
    if let Some(k) = root.keys().find(|k| !ROOT_KEYS.contains(&k.as_str())) {
        return Err(invalid("$", format!("unexpected field {k:?}")));
    }
    if root.get("bomFormat").and_then(Value::as_str) != Some("CycloneDX") {
        return Err(invalid("$.bomFormat", "must be \"CycloneDX\""));
    }
    if root.get("specVersion").and_then(Value::as_str) != Some("1.6") {
        return Err(invalid("$.specVersion", "this reader reads \"1.6\""));
    }
    let mut r = Reader {
        refs: BTreeSet::new(),
        out: Bom::default(),
    };
    if let Some(serial) = opt_str(root, "serialNumber", "$")? {
        if !is_serial(serial) {
            return Err(invalid(
                "$.serialNumber",
                format!("{serial:?} is not urn:uuid:<uuid>"),
            ));
        }
        r.out.serial_number = Some(serial.to_string());
    }
    if root
        .get("version")
        .is_some_and(|v| v.as_u64().is_none_or(|n| n < 1))
    {
        return Err(invalid("$.version", "must be an integer >= 1"));
    }
    if let Some(meta) = root.get("metadata") {
        let m = obj(meta, "$.metadata")?;
        if let Some(ts) = opt_str(m, "timestamp", "$.metadata")?
            && !is_date_time(ts)
        {
            return Err(invalid(
                "$.metadata.timestamp",
                format!("{ts:?} is not an RFC 3339 date-time"),
            ));
        }
        r.licences(m.get("licenses"), "$.metadata.licenses")?;
        r.properties(m.get("properties"), "$.metadata.properties")?;
        if let Some(c) = m.get("component") {
            let c = r.component(c, "$.metadata.component")?;
            r.out.subject = Some(c);
        }
    }
    if let Some(list) = root.get("components") {
        for (i, c) in arr(list, "$.components")?.iter().enumerate() {
            let c = r.component(c, &format!("$.components[{i}]"))?;
            r.out.components.push(c);
        }
    }
    if let Some(list) = root.get("services") {
        for (i, s) in arr(list, "$.services")?.iter().enumerate() {
            r.service(s, &format!("$.services[{i}]"))?;
        }
    }
    r.properties(root.get("properties"), "$.properties")?;
    for key in [
        "externalReferences",
        "compositions",
        "vulnerabilities",
        "annotations",
        "formulation",
    ] {
        if let Some(v) = root.get(key) {
            arr(v, &format!("$.{key}"))?;
        }
    }
    for key in ["declarations", "definitions", "signature"] {
        if let Some(v) = root.get(key) {
            obj(v, &format!("$.{key}"))?;
        }
    }
    if let Some(list) = root.get("dependencies") {
        for (i, d) in arr(list, "$.dependencies")?.iter().enumerate() {
            let at = format!("$.dependencies[{i}]");
            let m = obj(d, &at)?;
            let rf = opt_str(m, "ref", &at)?.ok_or_else(|| invalid(&at, "no ref"))?;
            if rf.is_empty() {
                return Err(invalid(&at, "empty ref"));
            }
            if let Some(k) = m
                .keys()
                .find(|k| !matches!(k.as_str(), "ref" | "dependsOn" | "provides"))
            {
                return Err(invalid(&at, format!("unexpected field {k:?}")));
            }
            let mut on = Vec::new();
            for key in ["dependsOn", "provides"] {
                if let Some(v) = m.get(key) {
                    let mut seen = BTreeSet::new();
                    for t in arr(v, &at)? {
                        let t = t.as_str().filter(|t| !t.is_empty()).ok_or_else(|| {
                            invalid(&at, format!("{key} entries must be non-empty strings"))
                        })?;
                        if !seen.insert(t) {
                            return Err(invalid(&at, format!("{key} lists {t:?} twice")));
                        }
                        if key == "dependsOn" {
                            on.push(t.to_string());
                        }
                    }
                }
            }
            r.out.dependencies.push((rf.to_string(), on));
        }
    }
    Ok(r.out)
}

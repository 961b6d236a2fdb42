//! Alpine `lib/apk/db/installed`: blank-line separated records of `X:value` lines;
//! `P:` name, `V:` version, `A:` architecture, `L:` licence, `o:` origin (source).

use super::{Output, check_tokens, component};
use crate::component::{Ecosystem, SourcePackage};
use crate::error::ParseError;
use crate::licence::parse_licence;
use crate::{purl, text};

pub fn parse(path: &str, bytes: &[u8], distro: &str) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let paras = super::dpkg::apk_paragraphs(text)?;
    if paras.is_empty() {
        return Err(ParseError::structure("no package records"));
    }
    let mut out = Output::default();
    for p in &paras {
        for f in &p.fields {
            let k = f.key;
            if k.len() != 1 {
                return Err(ParseError::line(p.line, format!("bad apk field {k:?}")));
            }
        }
        let at = |what: &str| ParseError::line(p.line, format!("record without {what}"));
        let name = p.get("P").ok_or_else(|| at("P: (name)"))?;
        let version = p.get("V").ok_or_else(|| at("V: (version)"))?;
        let arch = p.get("A").ok_or_else(|| at("A: (architecture)"))?;
        let (name, version, arch) = (&*name, &*version, &*arch);
        check_tokens("package", name, version)?;
        if !version.contains("-r") {
            return Err(ParseError::line(
                p.line,
                format!("{name}: version {version:?} has no -rN release (truncated?)"),
            ));
        }
        let mut c = component(
            Ecosystem::Alpine,
            None,
            name,
            version,
            purl::apk(distro, name, version, Some(arch)),
            path,
        );
        c.arch = Some(arch.to_string());
        c.licence = p
            .get("L")
            .as_deref()
            .map(parse_licence)
            .unwrap_or(crate::licence::Licence::NotGiven);
        c.source_package = p.get("o").map(|o| SourcePackage {
            name: o.to_string(),
            version: version.to_string(),
        });
        out.push(c)?;
    }
    Ok(out)
}

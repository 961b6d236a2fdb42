//! Go: `go.mod` (`require` lines and blocks, with `replace` applied; `// indirect`
//! kept) and `go.sum` (each `module version hash` line; `/go.mod`-only lines name
//! modules whose code was not needed and are left out).

use std::collections::BTreeMap;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::{purl, text};

/// A `replace` left side: the module and, optionally, the one version it replaces.
/// The map's value is the new module and version, or `None` for a local directory.
type ReplaceKey = (String, Option<String>);

fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
    .trim()
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// A module path: `/`-separated, non-empty elements of letters, digits and `-._~+`.
fn module_ok(m: &str) -> bool {
    m.len() <= 512
        && m.split('/').all(|e| {
            !e.is_empty()
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+'))
        })
}

fn version_ok(v: &str) -> bool {
    v.starts_with('v')
        && v.len() > 1
        && text::token_ok(v)
        && v[1..].starts_with(|c: char| c.is_ascii_digit())
}

pub fn parse_mod(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let mut requires: Vec<(usize, String, String)> = Vec::new();
    let mut replaces: BTreeMap<ReplaceKey, Option<(String, String)>> = BTreeMap::new();
    let mut block: Option<(&str, usize)> = None;
    let mut saw_module = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = strip_comment(raw);
        if line.is_empty() {
            continue;
        }
        let (verb, rest) = match block {
            Some((verb, _)) => {
                if line == ")" {
                    block = None;
                    continue;
                }
                (verb, line)
            }
            None => {
                let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    if !matches!(
                        verb,
                        "require" | "replace" | "exclude" | "retract" | "tool" | "godebug"
                    ) {
                        return Err(ParseError::line(n, format!("unknown block {verb:?}")));
                    }
                    block = Some((verb, n));
                    continue;
                }
                (verb, rest)
            }
        };
        let fields: Vec<&str> = rest.split_whitespace().map(unquote).collect();
        match verb {
            "module" => {
                if fields.len() != 1 {
                    return Err(ParseError::line(n, "module needs one path"));
                }
                saw_module = true;
            }
            "require" => match fields.as_slice() {
                [m, v] if version_ok(v) && module_ok(m) => {
                    requires.push((n, m.to_string(), v.to_string()));
                }
                _ => return Err(ParseError::line(n, format!("bad require {rest:?}"))),
            },
            "replace" => {
                let Some(arrow) = fields.iter().position(|f| *f == "=>") else {
                    return Err(ParseError::line(
                        n,
                        format!("replace without => in {rest:?}"),
                    ));
                };
                let (lhs, rhs) = fields.split_at(arrow);
                let rhs = &rhs[1..];
                let key = match lhs {
                    [m] => (m.to_string(), None),
                    [m, v] => (m.to_string(), Some(v.to_string())),
                    _ => return Err(ParseError::line(n, format!("bad replace {rest:?}"))),
                };
                let target = match rhs {
                    [p] if p.starts_with('.') || p.starts_with('/') => None,
                    [m, v] if version_ok(v) && module_ok(m) => Some((m.to_string(), v.to_string())),
                    _ => {
                        return Err(ParseError::line(
                            n,
                            format!("bad replace target in {rest:?}"),
                        ));
                    }
                };
                replaces.insert(key, target);
            }
            "go" | "toolchain" | "exclude" | "retract" | "tool" | "godebug" => {}
            other => return Err(ParseError::line(n, format!("unknown directive {other:?}"))),
        }
    }
    if let Some((verb, start)) = block {
        return Err(ParseError::line(
            start,
            format!("{verb} block is never closed (truncated?)"),
        ));
    }
    if !saw_module {
        return Err(ParseError::structure("no module directive"));
    }
    let mut out = Output::default();
    for (n, module, version) in requires {
        let replaced = replaces
            .get(&(module.clone(), Some(version.clone())))
            .or_else(|| replaces.get(&(module.clone(), None)));
        let (m, v) = match replaced {
            Some(None) => {
                out.note(
                    Some(n),
                    format!("{module} is replaced by a local directory"),
                );
                continue;
            }
            Some(Some((m, v))) => (m.clone(), v.clone()),
            None => (module, version),
        };
        out.push(go_component(path, &m, &v))?;
    }
    Ok(out)
}

fn go_component(path: &str, module: &str, version: &str) -> crate::component::Component {
    let (ns, name) = match module.rsplit_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, module),
    };
    component(
        Ecosystem::Go,
        ns,
        name,
        version,
        purl::golang(module, version),
        path,
    )
}

pub fn parse_sum(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let mut out = Output::default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [module, version, hash] = fields.as_slice() else {
            return Err(ParseError::line(n, "expected `module version hash`"));
        };
        if !hash.starts_with("h1:") || hash.len() != 3 + 44 || !hash.ends_with('=') {
            return Err(ParseError::line(
                n,
                format!("bad hash {hash:?} (truncated?)"),
            ));
        }
        let plain = version.strip_suffix("/go.mod");
        let v = plain.unwrap_or(version);
        if !version_ok(v) {
            return Err(ParseError::line(n, format!("bad version {version:?}")));
        }
        check_tokens("module", module, v)?;
        if !module_ok(module) {
            return Err(ParseError::line(n, format!("bad module path {module:?}")));
        }
        if plain.is_some() {
            continue;
        }
        if seen.insert((module.to_string(), v.to_string())) {
            out.push(go_component(path, module, v))?;
        }
    }
    Ok(out)
}

//! Maven: `pom.xml` `project/dependencies` with explicit versions (`${property}`
//! resolved from the pom's own `<properties>` and `${project.version}`; anything else
//! is noted as unresolved), and the output of `mvn dependency:list`.

use std::collections::BTreeMap;

use super::{Output, check_tokens, component};
use crate::component::Ecosystem;
use crate::error::ParseError;
use crate::{purl, text};

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

fn resolve(value: &str, props: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        out.push_str(props.get(&rest[start + 2..end])?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

pub fn parse_pom(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(ParseError::Xml)?;
    // roxmltree parses without recursion; still, a pom is never deep, so cap it.
    let mut stack = vec![(doc.root_element(), 1usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > crate::MAX_JSON_DEPTH {
            return Err(ParseError::TooDeep {
                limit: crate::MAX_JSON_DEPTH,
            });
        }
        stack.extend(
            node.children()
                .filter(roxmltree::Node::is_element)
                .map(|c| (c, depth + 1)),
        );
    }
    let project = doc.root_element();
    if project.tag_name().name() != "project" {
        return Err(ParseError::structure("root element is not <project>"));
    }
    let mut props = BTreeMap::new();
    if let Some(p) = child(project, "properties") {
        for prop in p.children().filter(roxmltree::Node::is_element) {
            props.insert(
                prop.tag_name().name().to_string(),
                prop.text().unwrap_or_default().trim().to_string(),
            );
        }
    }
    let parent = child(project, "parent");
    let own_version =
        child_text(project, "version").or_else(|| parent.and_then(|p| child_text(p, "version")));
    let own_group =
        child_text(project, "groupId").or_else(|| parent.and_then(|p| child_text(p, "groupId")));
    if let Some(v) = own_version {
        props.insert("project.version".into(), v.to_string());
    }
    if let Some(g) = own_group {
        props.insert("project.groupId".into(), g.to_string());
    }
    let mut out = Output::default();
    let Some(deps) = child(project, "dependencies") else {
        return Ok(out);
    };
    for dep in deps
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "dependency")
    {
        let row = doc.text_pos_at(dep.range().start).row as usize;
        let line = Some(row);
        let (Some(g), Some(a)) = (child_text(dep, "groupId"), child_text(dep, "artifactId")) else {
            return Err(ParseError::structure(format!(
                "dependency at line {row} lacks groupId or artifactId"
            )));
        };
        let Some(raw_version) = child_text(dep, "version") else {
            out.note(
                line,
                format!("{g}:{a} has no explicit version (managed elsewhere)"),
            );
            continue;
        };
        let (Some(group), Some(version)) = (resolve(g, &props), resolve(raw_version, &props))
        else {
            out.note(
                line,
                format!("{g}:{a}:{raw_version} uses a property this pom does not define"),
            );
            continue;
        };
        check_tokens("dependency", &format!("{group}:{a}"), &version)?;
        if version.starts_with('[') || version.starts_with('(') {
            out.note(
                line,
                format!("{group}:{a} has a version range {version}, not a version"),
            );
            continue;
        }
        out.push(component(
            Ecosystem::Maven,
            Some(&group),
            a,
            &version,
            purl::maven(&group, a, &version),
            path,
        ))?;
    }
    Ok(out)
}

/// `mvn dependency:list` output, with or without the `[INFO]` prefixes:
/// `group:artifact:type[:classifier]:version:scope`, optionally followed by
/// ` -- module name` and `(optional)`.
pub fn parse_dependency_list(path: &str, bytes: &[u8]) -> Result<Output, ParseError> {
    let text = text::utf8(bytes)?;
    let mut out = Output::default();
    let mut in_list = false;
    let mut saw_header = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.strip_prefix("[INFO]").unwrap_or(raw).trim();
        if line.starts_with("The following files have been resolved") {
            in_list = true;
            saw_header = true;
            continue;
        }
        if !in_list {
            continue;
        }
        if line.is_empty() || line.starts_with("---") || line.starts_with("BUILD") || line == "none"
        {
            in_list = false;
            continue;
        }
        let coords = line.split(" -- ").next().unwrap_or(line).trim();
        let coords = coords.strip_suffix("(optional)").unwrap_or(coords).trim();
        let parts: Vec<&str> = coords.split(':').collect();
        let (g, a, v) = match parts.as_slice() {
            [g, a, _ty, v, _scope] => (*g, *a, *v),
            [g, a, _ty, _classifier, v, _scope] => (*g, *a, *v),
            _ => {
                return Err(ParseError::line(
                    n,
                    format!(
                        "expected group:artifact:type[:classifier]:version:scope, got {coords:?}"
                    ),
                ));
            }
        };
        check_tokens("dependency", &format!("{g}:{a}"), v)?;
        if g.is_empty() || a.is_empty() {
            return Err(ParseError::line(n, "empty groupId or artifactId"));
        }
        out.push(component(
            Ecosystem::Maven,
            Some(g),
            a,
            v,
            purl::maven(g, a, v),
            path,
        ))?;
    }
    if !saw_header {
        return Err(ParseError::structure(
            "no \"The following files have been resolved:\" line",
        ));
    }
    Ok(out)
}

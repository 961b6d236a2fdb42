//! The workload: an app's `cairn.toml` — its name, chain, build and test commands,
//! image and environments.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;
use super::{NAME_RULE, is_valid_name, parse_toml};
use crate::ecosystem::{Detection, Recipe};

/// The file name of a workload's config, at the app's root.
pub const WORKLOAD_FILE: &str = "cairn.toml";

/// Commands are one shell line each; longer is a mistake (or an attack on the log).
const MAX_COMMAND_BYTES: usize = 8 * 1024;

/// A validated workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    /// The organisation chain it runs through.
    pub chain: String,
    /// The promotion path, in order.
    pub environments: Vec<String>,
    /// The dependency-fetch command: the only step that gets network.
    pub fetch: Option<String>,
    pub build: String,
    /// The build's declared output, relative to the app's root.
    pub output: Option<String>,
    pub unit_test: String,
    pub acceptance_test: Option<String>,
    /// Declarative HTTP checks the engine itself makes against the running
    /// release candidate (`[[test.http]]`).
    pub http_checks: Vec<HttpCheck>,
    pub image: Option<ImageConfig>,
    /// The build image (`[build] image`): a catalog base carrying the toolchain,
    /// the root of the fetch, build and test stages' sandbox.
    pub build_image: Option<CatalogName>,
    /// `[sbom] exclude`: paths in the source tree whose lockfiles and manifests
    /// are not part of what is built (test fixtures, fuzz targets, examples),
    /// left out of the run's inventories and said so in the log. Relative,
    /// `/`-separated; a `*` component stands for any one name.
    pub sbom_exclude: Vec<String>,
}

/// At most this many `[sbom] exclude` paths.
pub const MAX_SBOM_EXCLUDES: usize = 64;
/// The longest `[sbom] exclude` path.
const MAX_EXCLUDE_BYTES: usize = 512;

/// Whether `path` (relative, `/`-separated) is one of `patterns` (as
/// [`Workload::sbom_exclude`] holds them): the same number of components, each
/// equal or `*`.
pub fn sbom_excluded(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|pattern| {
        let mut p = pattern.split('/');
        let mut c = path.split('/');
        loop {
            match (p.next(), c.next()) {
                (None, None) => return true,
                (Some(want), Some(have)) if want == "*" || want == have => {}
                _ => return false,
            }
        }
    })
}

/// A base from the organisation's catalog, by name (pinned to one digest when
/// written `name@sha256:…`), and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogName {
    pub name: String,
    pub digest: Option<String>,
    pub span: std::ops::Range<usize>,
}

/// How the build output becomes an image: it is laid out under [`APP_DIR`] on top
/// of a base from the organisation's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// A base image from the organisation's catalog, by name.
    pub base: String,
    /// `name@sha256:…` pins the catalog entry to one digest.
    pub base_digest: Option<String>,
    /// Where `base` is in the file (for errors found later, e.g. not in the catalog).
    pub base_span: std::ops::Range<usize>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The user the app runs as (documentation for other runtimes; cairn's
    /// sandbox always runs it unprivileged).
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// The port the app listens on; the RC gets it in `PORT`.
    pub port: Option<u16>,
}

/// Where the build output goes inside the image.
pub const APP_DIR: &str = "/app";

/// One declarative HTTP check against the release candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// The request path, starting with `/`.
    pub path: String,
    /// The expected status code.
    pub status: u16,
    /// Text the response body must contain.
    pub contains: Option<String>,
}

/// At most this many `[[test.http]]` checks.
pub const MAX_HTTP_CHECKS: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkloadFile {
    workload: RawWorkload,
    build: RawBuild,
    test: RawTest,
    image: Option<RawImage>,
    sbom: Option<RawSbom>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSbom {
    exclude: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: Spanned<String>,
    chain: Option<Spanned<String>>,
    environments: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    image: Option<Spanned<String>>,
    fetch: Option<Spanned<String>>,
    command: Spanned<String>,
    output: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    unit: Spanned<String>,
    acceptance: Option<Spanned<String>>,
    http: Option<Spanned<Vec<Spanned<RawHttpCheck>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpCheck {
    path: Spanned<String>,
    #[serde(default = "default_status")]
    status: u16,
    contains: Option<String>,
}

fn default_status() -> u16 {
    200
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Spanned<String>,
    #[serde(default)]
    entrypoint: Vec<String>,
    #[serde(default)]
    cmd: Vec<String>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    user: Option<String>,
    workdir: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
}

/// Parses and validates a `cairn.toml`. `file` names it in errors.
pub fn parse_workload(file: &str, text: &str) -> Result<Workload, ConfigError> {
    let raw: RawWorkloadFile = parse_toml(file, text)?;
    let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
        ConfigError::at(file, text, Some(span), msg, Some(help.to_owned()))
    };

    let name = checked_name(file, text, &raw.workload.name, "workload name")?;
    let chain = match &raw.workload.chain {
        Some(c) => checked_name(file, text, c, "chain name")?,
        None => super::DEFAULT_CHAIN_NAME.to_owned(),
    };
    let environments = match &raw.workload.environments {
        None => vec!["staging".to_owned(), "production".to_owned()],
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(err(
                    list.span(),
                    "`environments` is empty".into(),
                    "list the promotion path in order, e.g. [\"staging\", \"production\"]",
                ));
            }
            let mut names: Vec<String> = Vec::new();
            for env in list.get_ref() {
                let n = checked_name(file, text, env, "environment name")?;
                if names.contains(&n) {
                    return Err(err(
                        env.span(),
                        format!("environment `{n}` is listed twice"),
                        "each environment appears once in the promotion path",
                    ));
                }
                names.push(n);
            }
            names
        }
    };
    let command = |c: &Spanned<String>, what: &str| -> Result<String, ConfigError> {
        let s = c.get_ref();
        if s.trim().is_empty() {
            return Err(err(
                c.span(),
                format!("{what} is empty"),
                "give a shell command line",
            ));
        }
        if s.len() > MAX_COMMAND_BYTES || s.contains('\0') {
            return Err(err(
                c.span(),
                format!("{what} is longer than {MAX_COMMAND_BYTES} bytes or contains NUL"),
                "put long scripts in a file in the repository and call it",
            ));
        }
        Ok(s.clone())
    };
    let output = match &raw.build.output {
        None => None,
        Some(o) => {
            let path = o.get_ref();
            let bad = path.is_empty()
                || path.starts_with('/')
                || path.split('/').any(|c| c == "..")
                || path.contains('\0');
            if bad {
                return Err(err(
                    o.span(),
                    format!("output `{path}` is not a relative path inside the app"),
                    "use a path relative to the app's root, without `..`",
                ));
            }
            Some(path.clone())
        }
    };
    let image = raw
        .image
        .map(|img| image_config(file, text, img))
        .transpose()?;
    let (http, http_span) = match raw.test.http {
        Some(h) => {
            let span = h.span();
            (h.into_inner(), span)
        }
        None => (Vec::new(), 0..0),
    };
    if http.len() > MAX_HTTP_CHECKS {
        return Err(err(
            http_span.clone(),
            format!("more than {MAX_HTTP_CHECKS} [[test.http]] checks"),
            "put longer test suites in test.acceptance",
        ));
    }
    let mut http_checks = Vec::new();
    for check in &http {
        let path = check.get_ref().path.get_ref();
        if !path.starts_with('/')
            || path.len() > 2048
            || path.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(err(
                check.get_ref().path.span(),
                format!("check path `{path}` is not an absolute request path"),
                "write the path part of a URL, e.g. \"/healthz\"",
            ));
        }
        if !(100..=599).contains(&check.get_ref().status) {
            return Err(err(
                check.span(),
                format!(
                    "status {} is not an HTTP status code",
                    check.get_ref().status
                ),
                "use a code from 100 to 599",
            ));
        }
        http_checks.push(HttpCheck {
            path: path.clone(),
            status: check.get_ref().status,
            contains: check.get_ref().contains.clone(),
        });
    }
    let mut sbom_exclude = Vec::new();
    if let Some(list) = raw.sbom.as_ref().and_then(|s| s.exclude.as_ref()) {
        if list.get_ref().len() > MAX_SBOM_EXCLUDES {
            return Err(err(
                list.span(),
                format!("more than {MAX_SBOM_EXCLUDES} [sbom] exclude paths"),
                "name the directories that hold fixtures, e.g. \"crates/*/tests\"",
            ));
        }
        for path in list.get_ref() {
            let p = path.get_ref();
            let bad = p.is_empty()
                || p.len() > MAX_EXCLUDE_BYTES
                || p.starts_with('/')
                || p.chars().any(char::is_control)
                || p.split('/').any(|c| {
                    c.is_empty() || c == "." || c == ".." || (c.contains('*') && c != "*")
                });
            if bad {
                return Err(err(
                    path.span(),
                    format!("[sbom] exclude `{p}` is not a relative path in the source tree"),
                    "use `/`-separated names relative to the app's root, `*` for any one name, \
                     e.g. \"crates/*/tests\"",
                ));
            }
            sbom_exclude.push(p.clone());
        }
    }
    if !http_checks.is_empty() && image.as_ref().is_none_or(|i| i.port.is_none()) {
        return Err(err(
            http_span,
            "[[test.http]] checks need an image with a port".into(),
            "add [image] with `base` and `port`",
        ));
    }
    Ok(Workload {
        name,
        chain,
        environments,
        fetch: raw
            .build
            .fetch
            .as_ref()
            .map(|c| command(c, "build.fetch"))
            .transpose()?,
        build: command(&raw.build.command, "build.command")?,
        output,
        unit_test: command(&raw.test.unit, "test.unit")?,
        acceptance_test: raw
            .test
            .acceptance
            .as_ref()
            .map(|c| command(c, "test.acceptance"))
            .transpose()?,
        http_checks,
        image,
        build_image: raw
            .build
            .image
            .as_ref()
            .map(|v| {
                catalog_name(file, text, v, "build image").map(|(name, digest, span)| CatalogName {
                    name,
                    digest,
                    span,
                })
            })
            .transpose()?,
        sbom_exclude,
    })
}

/// A catalog name, or `name@sha256:…` pinning one entry: an image reference is
/// refused here, before any work, and Docker Hub by its own rule. `what` names
/// the field in errors. Returns the name, the pinned digest and the value's span.
fn catalog_name(
    file: &str,
    text: &str,
    value: &Spanned<String>,
    what: &str,
) -> Result<(String, Option<String>, std::ops::Range<usize>), ConfigError> {
    use crate::image_ref::{ImageRef, NO_DOCKER_HUB_HELP, looks_like_reference};
    let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
        ConfigError::at(file, text, Some(span), msg, Some(help.to_owned()))
    };
    let base = value.get_ref().trim();
    let span = value.span();
    if base.is_empty() {
        return Err(err(
            span,
            format!("{what} is empty"),
            "name a base image from the organisation's catalog (`cairn base list`)",
        ));
    }
    // `name@sha256:…` pins a catalog entry; anything else with `/`, `:` or `@` is
    // an image reference, which a workload may not use directly.
    let (name, digest) = match base.split_once('@') {
        Some((name, digest)) if !looks_like_reference(name) => (name, Some(digest)),
        _ => (base, None),
    };
    if looks_like_reference(name) || !is_valid_name(name) {
        let shown = match ImageRef::parse(base) {
            Ok(r) if r.is_docker_hub() => {
                return Err(err(
                    span,
                    format!(
                        "{what} `{base}` is refused: {}",
                        crate::image_ref::NO_DOCKER_HUB_RULE
                    ),
                    NO_DOCKER_HUB_HELP,
                ));
            }
            Ok(r) => r.to_string(),
            Err(_) if looks_like_reference(base) => {
                // Unparseable but reference-shaped: still never Docker Hub by accident.
                return Err(err(
                    span,
                    format!("{what} `{base}` is not a valid image reference or catalog name"),
                    NO_DOCKER_HUB_HELP,
                ));
            }
            Err(_) => base.to_owned(),
        };
        return Err(err(
            span,
            format!(
                "{what} `{shown}` is not a catalog name: a workload builds only on a validated base from the catalog"
            ),
            "import it first (`cairn base import REFERENCE@sha256:… --name NAME`), then write the catalog NAME here",
        ));
    }
    if let Some(d) = digest
        && !crate::Digest::is_valid(d)
    {
        return Err(err(
            span,
            format!("`{d}` is not a sha256 digest"),
            "pin with name@sha256:<64 lowercase hex digits>",
        ));
    }
    Ok((name.to_owned(), digest.map(str::to_owned), span))
}

/// Validates `[image]`. The base must be a catalog name: an image reference is
/// refused here, before any work, and Docker Hub by its own rule.
fn image_config(file: &str, text: &str, img: RawImage) -> Result<ImageConfig, ConfigError> {
    let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
        ConfigError::at(file, text, Some(span), msg, Some(help.to_owned()))
    };
    let (name, digest, span) = catalog_name(file, text, &img.base, "image base")?;
    if let Some(w) = &img.workdir
        && !w.get_ref().starts_with('/')
    {
        return Err(err(
            w.span(),
            "workdir must be an absolute path in the image".into(),
            "e.g. \"/app\"",
        ));
    }
    if let Some(p) = &img.port
        && *p.get_ref() == 0
    {
        return Err(err(
            p.span(),
            "port 0 is not a port".into(),
            "the port the app listens on, 1-65535",
        ));
    }
    if img
        .env
        .keys()
        .any(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        || img.env.values().any(|v| v.contains('\0'))
    {
        return Err(err(
            span,
            "image env has an empty name, a name with `=` or a NUL".into(),
            "use NAME = \"value\" pairs",
        ));
    }
    Ok(ImageConfig {
        base: name,
        base_digest: digest,
        base_span: span,
        entrypoint: img.entrypoint,
        cmd: img.cmd,
        env: img.env.into_iter().collect(),
        user: img.user,
        working_dir: img.workdir.map(Spanned::into_inner),
        port: img.port.map(Spanned::into_inner),
    })
}

pub(super) fn checked_name(
    file: &str,
    text: &str,
    name: &Spanned<String>,
    what: &str,
) -> Result<String, ConfigError> {
    if is_valid_name(name.get_ref()) {
        Ok(name.get_ref().clone())
    } else {
        Err(ConfigError::at(
            file,
            text,
            Some(name.span()),
            format!("invalid {what} `{}`", name.get_ref()),
            Some(NAME_RULE.to_owned()),
        ))
    }
}

/// The `cairn.toml` that `cairn init` writes for an app of the detected ecosystem.
pub fn render_workload(name: &str, recipe: &Recipe) -> String {
    render_detected(
        name,
        &Detection {
            recipe: recipe.clone(),
            reasons: Vec::new(),
            also: Vec::new(),
            acceptance: None,
            image: None,
        },
    )
}

/// The `cairn.toml` for what `cairn init` detected: the recipe, the project's own
/// acceptance script, and a Dockerfile's EXPOSE/CMD as a commented `[image]`.
pub fn render_detected(name: &str, d: &Detection) -> String {
    let recipe = &d.recipe;
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut out = format!(
        "# cairn workload: how this app goes through the organisation's chain.\n\
         # Detected ecosystem: {}. Reference: cairn's README, \"cairn.toml\".\n",
        recipe.ecosystem.name(),
    );
    for r in &d.reasons {
        out.push_str(&format!("#   {}\n", r.replace('\n', " ")));
    }
    out.push_str(&format!(
        "\n[workload]\nname = {}\nchain = \"default\"\nenvironments = [\"staging\", \"production\"]\n\n[build]\n",
        q(name),
    ));
    if let Some(fetch) = &recipe.fetch {
        out.push_str(&format!(
            "# The only step with network: fetch dependencies. Later steps are offline.\nfetch = {}\n",
            q(fetch)
        ));
    }
    out.push_str(&format!(
        "command = {}\n\n[test]\nunit = {}\n",
        q(&recipe.build),
        q(&recipe.unit)
    ));
    match &d.acceptance {
        Some(a) => out.push_str(&format!(
            "acceptance = {}  # runs against the release candidate\n",
            q(a)
        )),
        None => out.push_str(
            "# acceptance = \"./acceptance-test.sh\"  # runs against the release candidate\n",
        ),
    }
    if let Some(img) = &d.image {
        out.push_str("\n# Proposed from the Dockerfile's EXPOSE/CMD. Its FROM");
        if let Some(from) = &img.from {
            out.push_str(&format!(" ({})", from.replace('\n', " ")));
        }
        out.push_str(
            " is not used: bases come from cairn's catalog\n# (`cairn base list`); choose one, set `output`, then uncomment.\n# [image]\n# base = \"<a catalog base>\"\n",
        );
        if let Some(cmd) = &img.cmd {
            let arr =
                toml::Value::Array(cmd.iter().map(|c| toml::Value::String(c.clone())).collect());
            out.push_str(&format!("# cmd = {}\n", arr.to_string().replace('\n', " ")));
        }
        if let Some(port) = img.port {
            out.push_str(&format!("# port = {port}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystem::detect;

    const GOOD: &str = r#"
[workload]
name = "hello"

[build]
command = "make"
output = "bin/hello"

[test]
unit = "make test"
"#;

    #[test]
    fn parses_minimal() {
        let w = parse_workload("cairn.toml", GOOD).unwrap();
        assert_eq!(w.name, "hello");
        assert_eq!(w.chain, "default");
        assert_eq!(w.environments, ["staging", "production"]);
        assert_eq!(w.build, "make");
        assert_eq!(w.output.as_deref(), Some("bin/hello"));
        assert_eq!(w.fetch, None);
        assert_eq!(w.image, None);
    }

    #[test]
    fn sbom_exclude_paths_are_relative_names_and_match_whole_components() {
        let text = format!("{GOOD}\n[sbom]\nexclude = [\"fuzz\", \"crates/*/tests\"]\n");
        let w = parse_workload("cairn.toml", &text).unwrap();
        assert_eq!(w.sbom_exclude, ["fuzz", "crates/*/tests"]);
        assert!(
            parse_workload("cairn.toml", GOOD)
                .unwrap()
                .sbom_exclude
                .is_empty()
        );
        for (path, excluded) in [
            ("fuzz", true),
            ("fuzz/Cargo.lock", false),
            ("fuzzy", false),
            ("crates/cairn-sbom/tests", true),
            ("crates/cairn-sbom/tests/data", false),
            ("crates/tests", false),
            ("crates/a/b/tests", false),
            ("Cargo.lock", false),
        ] {
            assert_eq!(sbom_excluded(&w.sbom_exclude, path), excluded, "{path}");
        }
        for bad in [
            "\"/etc\"",
            "\"../up\"",
            "\"a/../b\"",
            "\"a//b\"",
            "\"./a\"",
            "\"\"",
            "\"crates/cairn-*/tests\"",
            "\"**\"",
            "\"a\\nb\"",
        ] {
            let text = format!("{GOOD}\n[sbom]\nexclude = [{bad}]\n");
            let e = parse_workload("cairn.toml", &text).expect_err(bad);
            assert!(
                e.to_string()
                    .contains("is not a relative path in the source tree"),
                "{bad}: {e}"
            );
        }
        let many = (0..=MAX_SBOM_EXCLUDES)
            .map(|i| format!("\"d{i}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let e = parse_workload(
            "cairn.toml",
            &format!("{GOOD}\n[sbom]\nexclude = [{many}]\n"),
        )
        .expect_err("too many");
        assert!(
            e.to_string().contains("more than 64 [sbom] exclude paths"),
            "{e}"
        );
    }

    /// `check(text, line, column, message fragment)`.
    fn check_err(text: &str, line: usize, column: usize, fragment: &str) {
        let e = parse_workload("cairn.toml", text).expect_err(text);
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert!(
            e.to_string().contains(fragment),
            "{e}\n--- wanted: {fragment}"
        );
    }

    #[test]
    fn errors_point_at_the_place() {
        let appended = format!("{GOOD}no_such_key_xyz = 1\n");
        check_err(
            &appended,
            11,
            1,
            "unknown field `no_such_key_xyz`, expected",
        );
        check_err(&appended, 11, 1, "`unit`");
        check_err(
            &GOOD.replace("name = \"hello\"", "name = 5"),
            3,
            8,
            "invalid type: integer",
        );
        check_err(
            &GOOD.replace("name = \"hello\"", "name = \"Hello\""),
            3,
            8,
            "invalid workload name",
        );
        check_err(
            &GOOD.replace("unit = \"make test\"", ""),
            9,
            1,
            "missing field `unit`",
        );
        check_err(
            &GOOD.replace("bin/hello", "../x"),
            7,
            10,
            "not a relative path",
        );
        check_err(
            &GOOD.replace("bin/hello", "/etc/x"),
            7,
            10,
            "not a relative path",
        );
        check_err(
            &GOOD.replace("command = \"make\"", "command = \"  \""),
            6,
            11,
            "build.command is empty",
        );
        check_err("[workload\n", 1, 10, "");
        check_err("", 1, 1, "missing field `workload`");
        check_err(
            &GOOD.replace(
                "name = \"hello\"",
                "name = \"hello\"\nenvironments = [\"a\", \"a\"]",
            ),
            4,
            22,
            "listed twice",
        );
        check_err(
            &GOOD.replace("[test]", "[tests]"),
            9,
            2,
            "unknown field `tests`",
        );
    }

    const WEB: &str = r#"
[workload]
name = "web"

[build]
command = "make"
output = "hello-web"

[test]
unit = "make test"

[[test.http]]
path = "/"
contains = "hello"

[[test.http]]
path = "/healthz"
status = 204

[image]
base = "tiny"
entrypoint = ["/app/hello-web"]
env = { GREETING = "hi" }
port = 8080
"#;

    #[test]
    fn image_and_http_checks() {
        let w = parse_workload("cairn.toml", WEB).unwrap();
        let img = w.image.unwrap();
        assert_eq!(img.base, "tiny");
        assert_eq!(img.base_digest, None);
        assert_eq!(&WEB[img.base_span.clone()], "\"tiny\"");
        assert_eq!(img.entrypoint, ["/app/hello-web"]);
        assert_eq!(img.env, [("GREETING".to_owned(), "hi".to_owned())]);
        assert_eq!(img.port, Some(8080));
        assert_eq!(w.http_checks.len(), 2);
        assert_eq!(w.http_checks[0].status, 200);
        assert_eq!(w.http_checks[0].contains.as_deref(), Some("hello"));
        assert_eq!(w.http_checks[1].path, "/healthz");
        assert_eq!(w.http_checks[1].status, 204);

        let pinned = WEB.replace(
            "base = \"tiny\"",
            &format!("base = \"tiny@sha256:{}\"", "ab".repeat(32)),
        );
        let img = parse_workload("cairn.toml", &pinned)
            .unwrap()
            .image
            .unwrap();
        assert_eq!(img.base, "tiny");
        assert_eq!(img.base_digest, Some(format!("sha256:{}", "ab".repeat(32))));
    }

    #[test]
    fn docker_hub_and_references_are_refused_at_the_base_line() {
        for (base, fragment) in [
            ("nginx:latest", "rule no-docker-hub"),
            ("docker.io/library/alpine", "rule no-docker-hub"),
            ("index.docker.io/library/alpine:3", "rule no-docker-hub"),
            ("library/nginx", "rule no-docker-hub"),
            ("registry.example.org/base/debian:12", "not a catalog name"),
            ("Tiny", "not a catalog name"),
            ("tiny@sha256:abc", "not a sha256 digest"),
        ] {
            let text = WEB.replace("base = \"tiny\"", &format!("base = \"{base}\""));
            check_err(&text, 21, 8, fragment);
        }
    }

    #[test]
    fn a_build_image_is_a_catalog_name() {
        let text = |image: &str| {
            format!(
                "[workload]\nname = \"app\"\n[build]\nimage = \"{image}\"\ncommand = \"make\"\n[test]\nunit = \"make test\"\n"
            )
        };
        let w = parse_workload("cairn.toml", &text("rust")).unwrap();
        let b = w.build_image.unwrap();
        assert_eq!((b.name.as_str(), b.digest), ("rust", None));
        assert_eq!(&text("rust")[b.span], "\"rust\"");
        let pinned = format!("rust@sha256:{}", "cd".repeat(32));
        let b = parse_workload("cairn.toml", &text(&pinned))
            .unwrap()
            .build_image
            .unwrap();
        assert_eq!(b.digest, Some(format!("sha256:{}", "cd".repeat(32))));
        assert_eq!(parse_workload("cairn.toml", WEB).unwrap().build_image, None);
        for (image, fragment) in [
            ("rust:1.80", "build image `rust:1.80` is refused"),
            (
                "ghcr.io/rust/rust",
                "build image `ghcr.io/rust/rust` is not a catalog name",
            ),
            ("rust@sha256:abc", "not a sha256 digest"),
            ("", "build image is empty"),
        ] {
            check_err(&text(image), 4, 9, fragment);
        }
    }

    #[test]
    fn bad_http_checks_are_refused() {
        check_err(
            &WEB.replace("path = \"/\"", "path = \"x\""),
            13,
            8,
            "not an absolute request path",
        );
        check_err(
            &WEB.replace("status = 204", "status = 999"),
            16,
            1,
            "not an HTTP status code",
        );
        let no_image = &WEB[..WEB.find("[image]").unwrap()];
        check_err(no_image, 12, 1, "need an image with a port");
    }

    #[test]
    fn oversized_is_refused() {
        let big = format!("{GOOD}#{}\n", "x".repeat(super::super::MAX_CONFIG_BYTES));
        assert!(parse_workload("cairn.toml", &big).is_err());
    }

    #[test]
    fn rendered_files_parse_and_stay_strict() {
        for files in [
            &["Cargo.toml"][..],
            &["package.json", "package-lock.json"],
            &["go.mod"],
            &["requirements.txt"],
            &["Makefile"],
        ] {
            let recipe = detect(files.iter().copied()).unwrap();
            let text = render_workload("my-app", &recipe);
            let w = parse_workload("cairn.toml", &text).unwrap();
            assert_eq!(w.name, "my-app");
            assert_eq!(w.unit_test, recipe.unit);
            assert_eq!(w.fetch, recipe.fetch);
            // A key appended by hand lands in a strict table and is refused.
            let e = parse_workload("cairn.toml", &format!("{text}no_such_key_xyz = 1\n"))
                .expect_err("appended key");
            assert!(e.message.contains("no_such_key_xyz"), "{e}");
        }
    }
}

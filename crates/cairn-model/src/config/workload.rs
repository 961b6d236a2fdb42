//! The workload: an app's `cairn.toml` — its name, chain, build and test commands,
//! image and environments.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;
use super::{NAME_RULE, is_valid_name, parse_toml};
use crate::ecosystem::Recipe;

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
    pub image: Option<ImageConfig>,
}

/// How the build output becomes an image (used by the image build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// A base image from the organisation's catalog, by name.
    pub base: String,
    pub entrypoint: Vec<String>,
    pub port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkloadFile {
    workload: RawWorkload,
    build: RawBuild,
    test: RawTest,
    image: Option<RawImage>,
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
    fetch: Option<Spanned<String>>,
    command: Spanned<String>,
    output: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    unit: Spanned<String>,
    acceptance: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Spanned<String>,
    #[serde(default)]
    entrypoint: Vec<String>,
    port: Option<u16>,
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
    let image = match raw.image {
        None => None,
        Some(img) => {
            if img.base.get_ref().trim().is_empty() {
                return Err(err(
                    img.base.span(),
                    "image base is empty".into(),
                    "name a base image from the organisation's catalog",
                ));
            }
            Some(ImageConfig {
                base: img.base.into_inner(),
                entrypoint: img.entrypoint,
                port: img.port,
            })
        }
    };
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
        image,
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
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut out = format!(
        "# cairn workload: how this app goes through the organisation's chain.\n\
         # Detected ecosystem: {}. Reference: cairn's README, \"cairn.toml\".\n\n\
         [workload]\nname = {}\nchain = \"default\"\nenvironments = [\"staging\", \"production\"]\n\n[build]\n",
        recipe.ecosystem.name(),
        q(name),
    );
    if let Some(fetch) = &recipe.fetch {
        out.push_str(&format!(
            "# The only step with network: fetch dependencies. Later steps are offline.\nfetch = {}\n",
            q(fetch)
        ));
    }
    out.push_str(&format!(
        "command = {}\n\n[test]\nunit = {}\n# acceptance = \"./acceptance-test.sh\"  # runs against the release candidate\n",
        q(&recipe.build),
        q(&recipe.unit)
    ));
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

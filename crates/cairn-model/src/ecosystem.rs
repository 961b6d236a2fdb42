//! Which ecosystem an app is written in, from the names of the files at its root,
//! and the commands `cairn init` writes for it.
use crate::test_results::RESULTS_DIR;

/// The ecosystems `cairn init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    Cargo,
    Npm,
    Python,
    Go,
    Maven,
    /// A `Makefile` with `all` and `test` targets (C and friends).
    Make,
}

impl Ecosystem {
    /// The ecosystem called `name` (as [`Ecosystem::name`] prints it).
    pub fn from_name(name: &str) -> Option<Self> {
        PREFERENCE.into_iter().find(|e| e.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Cargo => "cargo",
            Self::Npm => "npm",
            Self::Python => "python",
            Self::Go => "go",
            Self::Maven => "maven",
            Self::Make => "make",
        }
    }
}

/// The commands for one ecosystem: the dependency fetch (the only step with
/// network), the build, and the unit tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub ecosystem: Ecosystem,
    pub fetch: Option<String>,
    pub build: String,
    pub unit: String,
}

/// The order in which ecosystems are preferred when a project has several.
pub const PREFERENCE: [Ecosystem; 6] = [
    Ecosystem::Cargo,
    Ecosystem::Npm,
    Ecosystem::Go,
    Ecosystem::Maven,
    Ecosystem::Python,
    Ecosystem::Make,
];

/// Files whose contents `cairn init` reads (each bounded by [`MAX_READ_BYTES`]).
pub const READ_FILES: [&str; 7] = [
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "package.json",
    "Makefile",
    "GNUmakefile",
    "Dockerfile",
];
/// Lockfiles whose being committed (tracked by git) `cairn init` asks about.
pub const LOCKFILES: [&str; 3] = ["Cargo.lock", "package-lock.json", "npm-shrinkwrap.json"];
/// Where an existing acceptance-test script is looked for, in this order.
pub const ACCEPTANCE_SCRIPTS: [&str; 6] = [
    "acceptance-test.sh",
    "acceptance_test.sh",
    "acceptance-tests.sh",
    "scripts/acceptance-test.sh",
    "test/acceptance.sh",
    "tests/acceptance.sh",
];
/// The most of one file `cairn init` reads.
pub const MAX_READ_BYTES: u64 = 1 << 20;

/// What `cairn init` knows of a project: the names at its root, the contents of
/// [`READ_FILES`] present, which [`LOCKFILES`] are committed, and which
/// [`ACCEPTANCE_SCRIPTS`] exist.
#[derive(Debug, Clone, Default)]
pub struct Project {
    pub names: Vec<String>,
    pub texts: std::collections::BTreeMap<String, String>,
    pub committed: Vec<String>,
    pub scripts: Vec<String>,
}

impl Project {
    fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
    fn text(&self, name: &str) -> Option<&str> {
        self.texts.get(name).map(String::as_str)
    }
    fn committed(&self, name: &str) -> bool {
        self.committed.iter().any(|n| n == name)
    }
}

/// A Dockerfile's EXPOSE and CMD, proposed as an `[image]` section (never its FROM).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageProposal {
    pub port: Option<u16>,
    pub cmd: Option<Vec<String>>,
    /// The Dockerfile's FROM, named only to say it is not used.
    pub from: Option<String>,
}

/// What `cairn init` detected, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub recipe: Recipe,
    /// One line per decision, for the user.
    pub reasons: Vec<String>,
    /// The other ecosystems the project also looks like.
    pub also: Vec<Ecosystem>,
    pub acceptance: Option<String>,
    pub image: Option<ImageProposal>,
}

/// The ecosystems whose marker files are at the root, in [`PREFERENCE`] order.
pub fn candidates(p: &Project) -> Vec<Ecosystem> {
    PREFERENCE
        .into_iter()
        .filter(|e| match e {
            Ecosystem::Cargo => p.has("Cargo.toml"),
            Ecosystem::Npm => p.has("package.json"),
            Ecosystem::Go => p.has("go.mod"),
            Ecosystem::Maven => p.has("pom.xml"),
            Ecosystem::Python => {
                p.has("pyproject.toml")
                    || p.has("requirements.txt")
                    || p.has("setup.py")
                    || p.has("setup.cfg")
            }
            Ecosystem::Make => p.has("Makefile") || p.has("makefile") || p.has("GNUmakefile"),
        })
        .collect()
}

/// Detects the ecosystem and how the project builds and tests. `choose` forces
/// one (it must be among the candidates). `None` when nothing is recognised, or
/// when `choose` names one the project does not have.
pub fn detect_project(p: &Project, choose: Option<Ecosystem>) -> Option<Detection> {
    let found = candidates(p);
    let ecosystem = match choose {
        Some(e) => *found.iter().find(|f| **f == e)?,
        None => *found.first()?,
    };
    let also: Vec<Ecosystem> = found.iter().copied().filter(|e| *e != ecosystem).collect();
    let mut reasons = Vec::new();
    if choose.is_some() {
        reasons.push(format!(
            "ecosystem {}: chosen with --ecosystem",
            ecosystem.name()
        ));
    } else if also.is_empty() {
        reasons.push(format!(
            "ecosystem {}: {}",
            ecosystem.name(),
            marker(ecosystem)
        ));
    } else {
        let others: Vec<&str> = also.iter().map(|e| e.name()).collect();
        reasons.push(format!(
            "ecosystem {}: {}; the project also looks like {} — chose {} as the first in the order cargo, npm, go, maven, python, make (pass --ecosystem {} to choose another)",
            ecosystem.name(),
            marker(ecosystem),
            others.join(", "),
            ecosystem.name(),
            others.join("|"),
        ));
    }
    let recipe = recipe_for(p, ecosystem, &mut reasons);
    let acceptance = p.scripts.first().map(|s| {
        reasons.push(format!("acceptance: the project's own {s}"));
        format!("./{s}")
    });
    let image = p.text("Dockerfile").map(|d| {
        let img = dockerfile(d);
        reasons.push(format!(
            "image: proposed from the Dockerfile's EXPOSE/CMD (port {}, cmd {}); its FROM is not used: bases come from cairn's catalog",
            img.port.map_or("none".into(), |p| p.to_string()),
            img.cmd.as_ref().map_or("none".into(), |c| c.join(" ")),
        ));
        img
    });
    // The reasons quote the project's files: printable text only, bounded.
    let reasons = reasons.iter().map(|r| printable(r)).collect();
    Some(Detection {
        recipe,
        reasons,
        also,
        acceptance,
        image,
    })
}

/// The longest reason line kept.
const MAX_REASON_CHARS: usize = 300;

/// `text` with control characters (newlines, escape sequences) made spaces, cut
/// at [`MAX_REASON_CHARS`].
fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_REASON_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_REASON_CHARS {
        out.push('…');
    }
    out
}

fn marker(e: Ecosystem) -> &'static str {
    match e {
        Ecosystem::Cargo => "Cargo.toml",
        Ecosystem::Npm => "package.json",
        Ecosystem::Go => "go.mod",
        Ecosystem::Maven => "pom.xml",
        Ecosystem::Python => "pyproject.toml, setup.py, setup.cfg or requirements.txt",
        Ecosystem::Make => "a Makefile",
    }
}

fn recipe_for(p: &Project, ecosystem: Ecosystem, reasons: &mut Vec<String>) -> Recipe {
    let recipe = |fetch: Option<String>, build: &str, unit: String| Recipe {
        ecosystem,
        fetch,
        build: build.to_owned(),
        unit,
    };
    match ecosystem {
        Ecosystem::Cargo => {
            let fetch =
                if p.committed("Cargo.lock") {
                    reasons.push("fetch: Cargo.lock is committed, so `--locked`".into());
                    "cargo fetch --locked"
                } else {
                    reasons.push(format!(
                    "fetch: Cargo.lock is {}, so no `--locked` (commit it to pin the dependencies)",
                    if p.has("Cargo.lock") { "not committed" } else { "absent" }
                ));
                    "cargo fetch"
                };
            reasons.push("tests: cargo test".into());
            recipe(
                Some(fetch.into()),
                "cargo build --release --offline",
                "cargo test --offline".into(),
            )
        }
        Ecosystem::Npm => {
            let lock = ["package-lock.json", "npm-shrinkwrap.json"]
                .into_iter()
                .find(|l| p.committed(l));
            let fetch = match lock {
                Some(l) => {
                    reasons.push(format!("fetch: {l} is committed, so `npm ci`"));
                    "npm ci --ignore-scripts"
                }
                None => {
                    reasons.push(
                        "fetch: no committed package-lock.json, so `npm install` (commit one to pin the dependencies)".into(),
                    );
                    "npm install --ignore-scripts"
                }
            };
            let script = p
                .text("package.json")
                .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                .and_then(|v| v["scripts"]["test"].as_str().map(str::to_owned));
            match script {
                Some(s) => reasons.push(format!("tests: package.json's test script ({s})")),
                None => reasons.push(
                    "tests: package.json has no test script; `npm test` will fail until it has one"
                        .into(),
                ),
            }
            recipe(
                Some(fetch.into()),
                "npm run build --if-present",
                "npm test".into(),
            )
        }
        Ecosystem::Go => {
            reasons
                .push("tests: go test -v ./... (-v: each test's result, for the evidence)".into());
            recipe(
                Some("go mod download".into()),
                "go build ./...",
                "go test -v ./...".into(),
            )
        }
        Ecosystem::Maven => {
            reasons.push("tests: mvn verify (offline after the fetch)".into());
            recipe(
                Some("mvn -B dependency:go-offline".into()),
                "mvn -B -o package -DskipTests",
                "mvn -B -o verify".into(),
            )
        }
        Ecosystem::Python => python(p, reasons),
        Ecosystem::Make => {
            reasons.push("tests: make test".into());
            recipe(None, "make", "make test".into())
        }
    }
}

fn python(p: &Project, reasons: &mut Vec<String>) -> Recipe {
    let pyproject = p
        .text("pyproject.toml")
        .and_then(|t| t.parse::<toml::Table>().ok());
    let pytest_from = if pyproject
        .as_ref()
        .and_then(|t| t.get("tool")?.get("pytest")?.get("ini_options"))
        .is_some()
    {
        Some("pyproject.toml [tool.pytest.ini_options]")
    } else if p
        .text("setup.cfg")
        .is_some_and(|t| has_section(t, "tool:pytest"))
    {
        Some("setup.cfg [tool:pytest]")
    } else if p.text("tox.ini").is_some_and(|t| has_section(t, "pytest")) {
        Some("tox.ini [pytest]")
    } else if p.has("pytest.ini") {
        Some("pytest.ini")
    } else if p.has("conftest.py") {
        Some("conftest.py")
    } else {
        None
    };
    let extra = pyproject
        .as_ref()
        .and_then(|t| {
            t.get("project")?
                .get("optional-dependencies")?
                .as_table()
                .cloned()
        })
        .and_then(|extras| {
            ["test", "tests", "testing"]
                .into_iter()
                .find(|k| extras.contains_key(*k))
        });
    let mut install: Vec<String> = Vec::new();
    if pytest_from.is_some() {
        install.push("pytest".into());
    }
    if p.has("requirements.txt") {
        install.push("-r requirements.txt".into());
    }
    if p.has("pyproject.toml") || p.has("setup.py") || p.has("setup.cfg") {
        match extra {
            Some(e) => {
                reasons.push(format!(
                    "fetch: the project with its `{e}` extra (pyproject.toml)"
                ));
                install.push(format!("'.[{e}]'"));
            }
            None => install.push(".".into()),
        }
    }
    let unit = match pytest_from {
        Some(from) => {
            reasons.push(format!(
                "tests: pytest, configured in {from}; pytest is installed in the fetch stage, and writes JUnit XML to {RESULTS_DIR}/ for the evidence"
            ));
            format!(
                "PYTHONPATH=.deps python3 -m pytest -p no:cacheprovider --junitxml={RESULTS_DIR}/junit.xml"
            )
        }
        None => {
            reasons.push("tests: no pytest configuration found, so unittest".into());
            "PYTHONPATH=.deps python3 -m unittest discover -v".to_owned()
        }
    };
    Recipe {
        ecosystem: Ecosystem::Python,
        fetch: Some(format!(
            "python3 -m pip install --target .deps {}",
            install.join(" ")
        )),
        build: "python3 -m compileall -q .".into(),
        unit,
    }
}

/// Whether an INI text has `[name]`.
fn has_section(text: &str, name: &str) -> bool {
    text.lines()
        .any(|l| l.trim().strip_prefix('[').and_then(|r| r.strip_suffix(']')) == Some(name))
}

/// A Dockerfile's first EXPOSE port, last CMD (exec or shell form) and FROM.
pub fn dockerfile(text: &str) -> ImageProposal {
    let mut out = ImageProposal::default();
    for line in text.lines().take(10_000) {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            "FROM" => out.from = rest.split_whitespace().next().map(printable),
            "EXPOSE" if out.port.is_none() => {
                out.port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok());
            }
            "CMD" => {
                out.cmd = match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(v) => Some(v),
                    Err(_) if !rest.is_empty() => {
                        Some(vec!["/bin/sh".into(), "-c".into(), rest.to_owned()])
                    }
                    Err(_) => None,
                }
            }
            _ => {}
        }
    }
    out
}

/// Detects the ecosystem from the file names at the app's root alone (every
/// lockfile present counted as committed). The first match in
/// [`PREFERENCE`] order wins.
pub fn detect<'a>(files: impl IntoIterator<Item = &'a str>) -> Option<Recipe> {
    let names: Vec<String> = files.into_iter().map(str::to_owned).collect();
    let p = Project {
        committed: names.clone(),
        names,
        ..Project::default()
    };
    detect_project(&p, None).map(|d| d.recipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(files: &[&str], expect: Option<(Ecosystem, &str)>) {
        let got = detect(files.iter().copied()).map(|r| (r.ecosystem, r.unit));
        assert_eq!(
            got,
            expect.map(|(e, u)| (e, u.to_owned())),
            "files: {files:?}"
        );
    }

    #[test]
    fn detects() {
        check(
            &["Cargo.toml", "src"],
            Some((Ecosystem::Cargo, "cargo test --offline")),
        );
        check(&["package.json"], Some((Ecosystem::Npm, "npm test")));
        check(
            &["go.mod", "go.sum"],
            Some((Ecosystem::Go, "go test -v ./...")),
        );
        check(
            &["requirements.txt"],
            Some((
                Ecosystem::Python,
                "PYTHONPATH=.deps python3 -m unittest discover -v",
            )),
        );
        check(
            &["pyproject.toml"],
            Some((
                Ecosystem::Python,
                "PYTHONPATH=.deps python3 -m unittest discover -v",
            )),
        );
        check(
            &["Makefile", "hello.c"],
            Some((Ecosystem::Make, "make test")),
        );
        check(&["README.md"], None);
        check(&[], None);
    }

    #[test]
    fn lockfiles_pin_the_fetch() {
        let r = detect(["Cargo.toml", "Cargo.lock"]).and_then(|r| r.fetch);
        assert_eq!(r.as_deref(), Some("cargo fetch --locked"));
        let r = detect(["package.json", "package-lock.json"]).and_then(|r| r.fetch);
        assert_eq!(r.as_deref(), Some("npm ci --ignore-scripts"));
    }

    #[test]
    fn cargo_wins_over_make() {
        check(
            &["Makefile", "Cargo.toml"],
            Some((Ecosystem::Cargo, "cargo test --offline")),
        );
    }

    #[test]
    fn dockerfiles() {
        let check = |text: &str, port: Option<u16>, cmd: Option<&[&str]>| {
            let d = dockerfile(text);
            assert_eq!(d.port, port, "{text}");
            assert_eq!(
                d.cmd,
                cmd.map(|c| c.iter().map(std::string::ToString::to_string).collect()),
                "{text}"
            );
        };
        check(
            "FROM x\nEXPOSE 80/tcp 443\nCMD [\"a\", \"b\"]\n",
            Some(80),
            Some(&["a", "b"]),
        );
        check(
            "from x\nexpose 3000\ncmd node server.js\n",
            Some(3000),
            Some(&["/bin/sh", "-c", "node server.js"]),
        );
        check("FROM x\nEXPOSE $PORT\n", None, None);
        check("", None, None);
    }

    #[test]
    fn reasons_quote_the_project_printably() {
        let p = Project {
            names: vec!["package.json".into()],
            texts: [(
                "package.json".to_owned(),
                format!(
                    "{{\"scripts\":{{\"test\":\"a\\u001b[31m\\nb{}\"}}}}",
                    "x".repeat(1000)
                ),
            )]
            .into(),
            ..Project::default()
        };
        let d = detect_project(&p, None).unwrap();
        for r in &d.reasons {
            assert!(!r.chars().any(char::is_control), "{r:?}");
            assert!(r.chars().count() <= MAX_REASON_CHARS + 1, "{r:?}");
        }
    }
}

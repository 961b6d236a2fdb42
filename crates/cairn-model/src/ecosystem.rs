//! Which ecosystem an app is written in, from the names of the files at its root,
//! and the commands `cairn init` writes for it.

/// The ecosystems `cairn init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    Cargo,
    Npm,
    Python,
    Go,
    /// A `Makefile` with `all` and `test` targets (C and friends).
    Make,
}

impl Ecosystem {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cargo => "cargo",
            Self::Npm => "npm",
            Self::Python => "python",
            Self::Go => "go",
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

/// Detects the ecosystem from the file names at the app's root. The first match in
/// this order wins: Cargo, npm, Go, Python, Make.
pub fn detect<'a>(files: impl IntoIterator<Item = &'a str>) -> Option<Recipe> {
    let files: Vec<&str> = files.into_iter().collect();
    let has = |name: &str| files.contains(&name);
    let recipe = |ecosystem, fetch: Option<&str>, build: &str, unit: &str| Recipe {
        ecosystem,
        fetch: fetch.map(str::to_owned),
        build: build.to_owned(),
        unit: unit.to_owned(),
    };
    if has("Cargo.toml") {
        let fetch = if has("Cargo.lock") {
            "cargo fetch --locked"
        } else {
            "cargo fetch"
        };
        return Some(recipe(
            Ecosystem::Cargo,
            Some(fetch),
            "cargo build --release --offline",
            "cargo test --offline",
        ));
    }
    if has("package.json") {
        let fetch = if has("package-lock.json") {
            "npm ci --ignore-scripts"
        } else {
            "npm install --ignore-scripts"
        };
        return Some(recipe(
            Ecosystem::Npm,
            Some(fetch),
            "npm run build --if-present",
            "npm test",
        ));
    }
    if has("go.mod") {
        return Some(recipe(
            Ecosystem::Go,
            Some("go mod download"),
            "go build ./...",
            "go test ./...",
        ));
    }
    if has("pyproject.toml") || has("requirements.txt") || has("setup.py") {
        let fetch = if has("requirements.txt") {
            "python3 -m pip install --target .deps -r requirements.txt"
        } else {
            "python3 -m pip install --target .deps ."
        };
        return Some(recipe(
            Ecosystem::Python,
            Some(fetch),
            "python3 -m compileall -q .",
            "PYTHONPATH=.deps python3 -m unittest discover -v",
        ));
    }
    if has("Makefile") || has("makefile") || has("GNUmakefile") {
        return Some(recipe(Ecosystem::Make, None, "make", "make test"));
    }
    None
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
            Some((Ecosystem::Go, "go test ./...")),
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
}

//! The user's config file (`$XDG_CONFIG_HOME/cairn/config.toml`, else
//! `~/.config/cairn/config.toml`) layered under environment variables and
//! flags, as uv layers its own: flag > env > file > default; unknown keys,
//! relative paths and a token file others may read are refused, named.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{Run, token};

/// `cairn ARGS` in `cwd` (outside any git repository) with nothing of the
/// test's own cairn settings, `HOME` at `home`, plus `env`.
fn cairn(cwd: &Path, home: &Path, env: &[(&str, &Path)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CAIRN_HOME")
        .env_remove("CAIRN_NO_CONFIG")
        .env_remove("CAIRN_PLATFORM_DIR")
        .env_remove("CAIRN_TOKEN")
        .env_remove("CAIRN_SERVER")
        .env_remove("CAIRN_DATABASE_URL")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn flag_beats_env_beats_the_file_beats_the_default() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cwd = t.join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let home = t.join("home");
    let (file_dir, env_dir, flag_dir) =
        (t.join("from-file"), t.join("from-env"), t.join("from-flag"));
    write(
        &home.join(".config/cairn/config.toml"),
        &format!("data_dir = \"{}\"\noutput = \"json\"\n", file_dir.display()),
    );
    let runs = |env: &[(&str, &Path)], extra: &[&str]| {
        let mut args = extra.to_vec();
        args.push("runs");
        let r = cairn(&cwd, &home, env, &args);
        assert_eq!(r.code, 0, "{r:?}");
        r
    };
    // The file (in ~/.config): its data directory, and JSON output.
    let r = runs(&[], &[]);
    assert_eq!(r.stdout.trim(), "[]", "output = \"json\": {r:?}");
    assert!(file_dir.join("store.db").exists() || file_dir.is_dir());
    // The environment beats the file.
    runs(&[("CAIRN_HOME", &env_dir)], &[]);
    assert!(env_dir.is_dir());
    // A flag beats both.
    let flag = flag_dir.display().to_string();
    runs(&[("CAIRN_HOME", &env_dir)], &["--cairn-home", &flag]);
    assert!(flag_dir.is_dir());
    // XDG_CONFIG_HOME is honoured over ~/.config.
    let xdg = t.join("xdg");
    let xdg_dir = t.join("from-xdg");
    write(
        &xdg.join("cairn/config.toml"),
        &format!("data_dir = \"{}\"\n", xdg_dir.display()),
    );
    let r = runs(&[("XDG_CONFIG_HOME", &xdg)], &[]);
    assert!(xdg_dir.is_dir());
    assert!(r.stdout.contains("no runs yet"), "text by default: {r:?}");
    // No file (CAIRN_NO_CONFIG): the default, .cairn in the working directory.
    runs(&[("CAIRN_NO_CONFIG", Path::new("1"))], &[]);
    assert!(cwd.join(".cairn").is_dir());
    println!(
        "file → {}, env → {}, flag → {}, xdg → {}, default → .cairn",
        file_dir.display(),
        env_dir.display(),
        flag_dir.display(),
        xdg_dir.display()
    );
}

#[test]
fn unknown_keys_relative_paths_and_a_token_others_may_read_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let home = t.join("home");
    let config = home.join(".config/cairn/config.toml");
    for (text, says) in [
        (
            "data_dir = \"/srv/cairn\"\ncolour = \"always\"\n",
            "unknown field `colour`",
        ),
        (
            "data_dir = \"relative/dir\"\n",
            "`data_dir` must be an absolute path",
        ),
        ("output = \"yaml\"\n", "`output` is `text` or `json`"),
        ("server = \"ftp://x\"\n", "`server` must be an http(s) URL"),
        (
            "database = \"mysql://root:hunter2@db/cairn\"\n",
            "`database` must be a sqlite:// or postgres:// URL",
        ),
    ] {
        write(&config, text);
        let r = cairn(t, &home, &[], &["runs"]);
        println!("{text:?} → {}", r.stderr.trim());
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains(says), "{text}: {r:?}");
        assert!(r.stderr.contains("config.toml"), "{r:?}");
    }

    // token_file: a 0600 file stands in for CAIRN_TOKEN; a looser one is refused.
    let f = common::Fixture::new();
    let admin = token(&f, None, "admin@example.org");
    let token_file = t.join("token");
    std::fs::write(&token_file, format!("{admin}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    write(
        &config,
        &format!(
            "data_dir = \"{}\"\ntoken_file = \"{}\"\n",
            f.data.display(),
            token_file.display()
        ),
    );
    let r = cairn(t, &home, &[], &["identity", "whoami"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("admin@example.org"), "{r:?}");
    assert!(!r.stdout.contains(&admin) && !r.stderr.contains(&admin));
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = cairn(t, &home, &[], &["identity", "whoami"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("chmod 600"), "{r:?}");
}

#[test]
fn the_database_url_comes_from_the_file_under_the_environment_and_is_never_repeated() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let home = t.join("home");
    // Nothing listens on port 1: the command fails to connect, naming the
    // database it tried without its password.
    write(
        &home.join(".config/cairn/config.toml"),
        "database = \"postgres://cairn:hunter2@127.0.0.1:1/cairn\"\n",
    );
    let r = cairn(t, &home, &[], &["runs"]);
    println!("from the file → {}", r.stderr.trim());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("PostgreSQL"), "{r:?}");
    assert!(
        !r.stderr.contains("hunter2") && !r.stdout.contains("hunter2"),
        "{r:?}"
    );
    // The environment wins over the file: a SQLite database there works.
    let db = t.join("env.db");
    let url = format!("sqlite://{}", db.display());
    let r = cairn(
        t,
        &home,
        &[("CAIRN_DATABASE_URL", Path::new(&url))],
        &["runs"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        db.exists(),
        "the environment's database was not used: {r:?}"
    );
}

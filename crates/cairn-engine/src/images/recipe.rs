//! Bases cairn makes itself (`cairn base create`), from a recipe kept with the
//! catalog entry so the base can be made again (`cairn base refresh`): `tiny`
//! from a few files, `debian` with `mmdebstrap` from Debian's packages — a
//! minbase or a toolchain (`--include rustc,cargo`, `python3,python3-pip`, …).
//!
//! Reproducible: the same recipe against the same archive gives the same
//! digest. `SOURCE_DATE_EPOCH` (recorded in the recipe) goes to mmdebstrap,
//! which then clamps mtimes, sorts the tarball and removes its volatile files
//! (dpkg/apt/alternatives logs, ldconfig's aux-cache, machine ids) and to
//! every maintainer script (shadow's last-change days); the host's
//! `/etc/hostname` and `/etc/resolv.conf`, which mmdebstrap copies in, are
//! replaced with fixed text; the import normalises the tarball again
//! ([`cairn_oci::import_rootfs`]: sorted, mtimes clamped to the epoch, numeric
//! owners, fixed gzip header), so the result does not depend on mmdebstrap
//! having done so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cairn_model::{BaseRecipe, DebianRecipe};

use crate::EngineError;

/// Where apt keeps the host's Release files.
const APT_LISTS: &str = "/var/lib/apt/lists";
/// The hostname and resolver every Debian base carries (not the host's).
const HOSTNAME: &str = "localhost\n";
const RESOLV_CONF: &str = "# cairn: a base has no resolver of its own\n";

/// `SOURCE_DATE_EPOCH` for a Debian suite: the newest `Date:` of the Release
/// files apt holds on this host for the suite and its `-updates` and
/// `-security` suites (what the archive was when apt last looked). The
/// same archive state gives the same epoch; `--source-date-epoch` overrides it.
pub fn debian_epoch(suite: &str) -> Result<u64, EngineError> {
    debian_epoch_in(Path::new(APT_LISTS), suite)
}

fn debian_epoch_in(lists: &Path, suite: &str) -> Result<u64, EngineError> {
    let failed = |why: String| EngineError::RecipeFailed {
        recipe: format!("debian {suite}"),
        why,
    };
    let suffixes: Vec<String> = ["", "-updates", "-security"]
        .iter()
        .flat_map(|s| {
            [
                format!("_dists_{suite}{s}_InRelease"),
                format!("_dists_{suite}{s}_Release"),
            ]
        })
        .collect();
    let entries = std::fs::read_dir(lists)
        .map_err(|e| failed(format!("cannot list {}: {e}", lists.display())))?;
    let mut newest: Option<u64> = None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !suffixes.iter().any(|s| name.ends_with(s.as_str())) {
            continue;
        }
        // Root's own apt state, not an untrusted tree; still bounded.
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() || meta.len() > 16 << 20 {
            continue;
        }
        let text = std::fs::read(&path)
            .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
        let text = String::from_utf8_lossy(&text[..text.len().min(64 << 10)]).into_owned();
        if let Some(date) = text
            .lines()
            .find_map(|l| l.strip_prefix("Date:"))
            .and_then(|d| parse_release_date(d.trim()))
        {
            newest = Some(newest.map_or(date, |n| n.max(date)));
        }
    }
    newest.ok_or_else(|| {
        failed(format!(
            "apt on this host holds no Release file of `{suite}` in {} to take SOURCE_DATE_EPOCH from; run `apt-get update`, or pass --source-date-epoch",
            lists.display()
        ))
    })
}

/// A Release file's date (RFC 2822 as Debian writes it, UTC):
/// `Sat, 11 Jul 2026 10:16:37 UTC` → seconds since the epoch.
pub fn parse_release_date(text: &str) -> Option<u64> {
    let rest = text.split_once(", ").map_or(text, |(_, r)| r);
    let mut parts = rest.split_ascii_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let (h, m, s): (u32, u32, u32) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    if !matches!(parts.next(), Some("UTC" | "GMT" | "+0000")) || hms.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    if year < 1970 {
        return None;
    }
    let secs = cairn_model::time::unix_seconds(year, month, day, h, m, s)?;
    u64::try_from(secs).ok()
}

/// Makes the root filesystem `recipe` describes under `work` (a fresh
/// directory of the caller's) and returns its path: a directory (`tiny`) or a
/// tarball (`debian`), ready for [`cairn_oci::import_rootfs`] with the
/// recipe's epoch.
pub fn run_recipe(recipe: &BaseRecipe, work: &Path) -> Result<PathBuf, EngineError> {
    match recipe {
        BaseRecipe::Tiny => {
            let root = work.join("rootfs");
            make_tiny(&root)?;
            Ok(root)
        }
        BaseRecipe::Debian(d) => {
            let tar = work.join("rootfs.tar");
            mmdebstrap(d, &tar, None)?;
            Ok(tar)
        }
        BaseRecipe::Rust(r) => {
            // The toolchain's files, checked and copied first: a refused
            // toolchain costs no mmdebstrap run and imports nothing.
            let staged = work.join("toolchain");
            std::fs::create_dir_all(&staged).map_err(EngineError::io("create", &staged))?;
            super::toolchain::pack(r, &staged)?;
            let tar = work.join("rootfs.tar");
            mmdebstrap(&r.system, &tar, Some(&staged))?;
            Ok(tar)
        }
    }
}

/// The `mmdebstrap` command line of a recipe (each argument checked by
/// [`DebianRecipe::new`]: no option can be smuggled in as a package or suite).
pub fn mmdebstrap_args(d: &DebianRecipe, out: &Path) -> Vec<std::ffi::OsString> {
    mmdebstrap_args_with(d, out, None)
}

/// [`mmdebstrap_args`], and `usr_local`'s contents (a staged toolchain)
/// synchronised into the base's `/usr/local` before it is packed.
fn mmdebstrap_args_with(
    d: &DebianRecipe,
    out: &Path,
    usr_local: Option<&Path>,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        format!("--variant={}", d.variant).into(),
        "--quiet".into(),
        "--format=tar".into(),
    ];
    if !d.include.is_empty() {
        args.push(format!("--include={}", d.include.join(",")).into());
    }
    // The host's hostname and resolver are not the base's.
    args.push(
        format!(
            "--customize-hook=printf '{}' > \"$1/etc/hostname\"",
            HOSTNAME.replace('\n', "\\n")
        )
        .into(),
    );
    args.push(
        format!(
            "--customize-hook=printf '{}' > \"$1/etc/resolv.conf\"",
            RESOLV_CONF.replace('\n', "\\n")
        )
        .into(),
    );
    if let Some(dir) = usr_local {
        let mut hook = std::ffi::OsString::from("--customize-hook=sync-in ");
        hook.push(dir.as_os_str());
        hook.push(" /usr/local");
        args.push(hook);
    }
    args.push(d.suite.clone().into());
    args.push(out.as_os_str().to_owned());
    args
}

fn mmdebstrap(d: &DebianRecipe, out: &Path, usr_local: Option<&Path>) -> Result<(), EngineError> {
    let recipe = BaseRecipe::Debian(d.clone()).describe();
    if let Some(dir) = usr_local {
        // mmdebstrap splits a special hook's arguments at white space.
        let plain = dir
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'\\'));
        if !plain {
            return Err(EngineError::RecipeFailed {
                recipe,
                why: format!(
                    "the working directory {} has white space or quotes in its path; set TMPDIR to a plain one",
                    dir.display()
                ),
            });
        }
    }
    let output = Command::new("mmdebstrap")
        .args(mmdebstrap_args_with(d, out, usr_local))
        .env("SOURCE_DATE_EPOCH", d.source_date_epoch.to_string())
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| EngineError::RecipeFailed {
            recipe: recipe.clone(),
            why: format!("cannot run mmdebstrap ({e}); install it: apt-get install mmdebstrap"),
        })?;
    if !output.status.success() {
        // With --quiet, apt does not say which package it could not find: ask
        // the host's apt about each one named, so a typo is said as such.
        let unknown: Vec<String> = d
            .include
            .iter()
            .filter(|p| !apt_knows(p))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(EngineError::RecipeUnknownPackages {
                recipe,
                packages: unknown.join(", "),
            });
        }
        // The end of what it said names the cause (an unknown package, the
        // mirror unreachable); bounded.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: String = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        let tail: String = tail
            .chars()
            .filter(|c| *c == '\n' || !c.is_control())
            .take(2000)
            .collect();
        return Err(EngineError::RecipeFailed {
            recipe,
            why: format!("mmdebstrap exited with {}:\n{tail}", output.status),
        });
    }
    Ok(())
}

/// Whether the host's apt knows a (non-virtual) package of this name
/// (`apt-cache show`; the name was checked, so it is no option).
fn apt_knows(package: &str) -> bool {
    Command::new("apt-cache")
        .args(["show", "--no-all-versions", "--", package])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

/// A root filesystem with just enough for a static binary: users, groups, a
/// writable /tmp, and an os-release that says what it is.
fn make_tiny(root: &Path) -> Result<(), EngineError> {
    let write = |rel: &str, text: &str| -> Result<(), EngineError> {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(EngineError::io("create", parent))?;
        }
        std::fs::write(&path, text).map_err(EngineError::io("write", &path))
    };
    write(
        "etc/passwd",
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
    )?;
    write("etc/group", "root:x:0:\nnogroup:x:65534:\n")?;
    write(
        "etc/nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files\n",
    )?;
    write("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n")?;
    write(
        "etc/os-release",
        "NAME=\"cairn tiny\"\nID=cairn-tiny\nPRETTY_NAME=\"cairn tiny base (static binaries only)\"\n",
    )?;
    for dir in ["tmp", "app"] {
        let path = root.join(dir);
        std::fs::create_dir_all(&path).map_err(EngineError::io("create", &path))?;
    }
    Ok(())
}

/// `name=version` of every OS package in an SBOM's components (sorted), the
/// package list a catalog entry keeps.
pub fn package_list(components: &[cairn_sbom::Component]) -> Vec<String> {
    let mut list: Vec<String> = components
        .iter()
        .filter(|c| {
            matches!(
                c.ecosystem,
                cairn_sbom::Ecosystem::Debian | cairn_sbom::Ecosystem::Alpine
            )
        })
        .map(|c| format!("{}={}", c.full_name(), c.version))
        .collect();
    list.sort();
    list.dedup();
    list
}

/// What changed between two package lists: `(added, removed, changed)` as
/// `name=version`, `name=version` and `name old → new`.
pub fn compare_packages(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let split = |list: &[String]| -> std::collections::BTreeMap<String, String> {
        list.iter()
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (p.clone(), String::new()),
            })
            .collect()
    };
    let (old, new) = (split(old), split(new));
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for (name, version) in &new {
        match old.get(name) {
            None => added.push(format!("{name}={version}")),
            Some(before) if before != version => {
                changed.push(format!("{name} {before} → {version}"));
            }
            Some(_) => {}
        }
    }
    for (name, version) in &old {
        if !new.contains_key(name) {
            removed.push(format!("{name}={version}"));
        }
    }
    (added, removed, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_dates_parse_as_debian_writes_them() {
        assert_eq!(
            parse_release_date("Sat, 11 Jul 2026 10:16:37 UTC"),
            Some(1_783_764_997)
        );
        assert_eq!(parse_release_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_release_date("Tue, 29 Feb 2000 00:00:00 UTC"),
            Some(951_782_400)
        );
        for bad in [
            "Sat, 11 Jul 2026 10:16:37 CEST",
            "Sat, 11 Foo 2026 10:16:37 UTC",
            "Sat, 32 Jul 2026 10:16:37 UTC",
            "Fri, 29 Feb 2100 00:00:00 UTC",
            "Sat, 31 Jun 2026 00:00:00 UTC",
            "11 Jul 2026",
            "",
        ] {
            assert_eq!(parse_release_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_epoch_is_the_newest_release_date_of_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, date: &str| {
            std::fs::write(
                dir.path().join(name),
                format!("Origin: Debian\nDate: {date}\n"),
            )
            .unwrap();
        };
        write(
            "m_debian_dists_bookworm_InRelease",
            "Sat, 10 May 2025 08:47:52 UTC",
        );
        write(
            "m_debian-security_dists_bookworm-security_InRelease",
            "Sat, 11 Jul 2026 10:16:37 UTC",
        );
        write(
            "m_debian_dists_trixie_InRelease",
            "Sun, 12 Jul 2026 10:16:37 UTC",
        );
        assert_eq!(
            debian_epoch_in(dir.path(), "bookworm").unwrap(),
            1_783_764_997
        );
        let err = debian_epoch_in(dir.path(), "sid").unwrap_err().to_string();
        assert!(err.contains("--source-date-epoch"), "{err}");
    }

    #[test]
    fn package_lists_compare_by_name() {
        let old = ["a=1".to_owned(), "b=1".to_owned(), "c=1".to_owned()];
        let new = ["a=1".to_owned(), "b=2".to_owned(), "d=1".to_owned()];
        assert_eq!(
            compare_packages(&old, &new),
            (
                vec!["d=1".to_owned()],
                vec!["c=1".to_owned()],
                vec!["b 1 → 2".to_owned()]
            )
        );
    }
}

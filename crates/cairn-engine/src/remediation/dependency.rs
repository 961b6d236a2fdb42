//! A dependency finding's remediation: the lowest fixed version, the
//! ecosystem's own tool (npm, cargo, uv, pip, pip-compile) in the sandbox with
//! network on the commit's tree, in the workload's build image, the changed
//! lockfile committed on a branch and its chain run; then it waits for review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cairn_model::RunStatus;
use cairn_store::Store;

use super::*;

impl Remediator<'_> {
    /// A dependency finding: the lowest fixed version, the ecosystem's tool
    /// in the sandbox with network on the commit's tree, the lockfile (and
    /// manifest) committed on a new branch, the chain run for it; then it
    /// waits for review.
    pub(super) fn bump_dependency(
        &self,
        run: &mut Running<'_, '_>,
        note: &mut dyn FnMut(&str),
    ) -> Result<Ending, Failed> {
        let plan = run.outcome.plan.clone();
        let store = &*self.store;
        let commit = plan
            .commit
            .clone()
            .ok_or_else(|| Failed::at("plan", "the image's commit is not known".to_owned()))?;
        // One package at a time: the first one's exposures.
        let package = plan.exposures[0].1.clone();
        let advisories: BTreeSet<String> = plan
            .exposures
            .iter()
            .filter(|(_, p)| *p == package)
            .map(|(a, _)| a.clone())
            .collect();
        let (kind, name, installed) = parse_purl(&package).ok_or_else(|| {
            Failed::at(
                "plan",
                format!("{package} is not a package URL cairn reads"),
            )
        })?;
        // The ecosystem's tool and the lockfiles it keeps, in preference order.
        let (ecosystem, lockfiles, manifest): (&str, &[&str], &str) = match kind.as_str() {
            "npm" => ("npm", &["package-lock.json"], "package.json"),
            "cargo" => ("crates.io", &["Cargo.lock"], "Cargo.toml"),
            "pypi" => ("PyPI", &["uv.lock", "requirements.txt"], "pyproject.toml"),
            other => {
                return Err(Failed::at(
                    "plan",
                    format!("no dependency tool for {other} packages yet ({package})"),
                ));
            }
        };
        let fixed = lowest_fixed(
            store, self.data, self.org, &plan, &package, ecosystem, &installed,
        )
        .map_err(|why| Failed::at("plan", why))?;
        let workload = store
            .workload(&plan.workload)
            .map_err(|e| Failed::at("bump", e.to_string()))?
            .ok_or_else(|| {
                Failed::at(
                    "bump",
                    format!("workload {} is not onboarded", plan.workload),
                )
            })?;
        let dir = Path::new(&workload.repo);
        let top = crate::git::top_level(dir).map_err(Failed::of("bump"))?;
        let prefix = crate::git::prefix(dir).map_err(Failed::of("bump"))?;
        let loaded = load_workload(dir, &commit, self.platform_dir).map_err(Failed::of("bump"))?;
        let engine = Engine::new(
            self.store.clone(),
            self.data.clone(),
            self.platform_dir.map(Path::to_path_buf),
        )
        .with_actor(Some(self.actor_name()));
        // The tool runs in the workload's build image, resolved and checked as
        // a run of the commit does (`[build] image`, org.toml
        // `[build.images]`): the tool's version is the build's.
        let build_image = engine.build_image(&loaded).map_err(Failed::of("bump"))?;
        let scratch = crate::images::rebase::scratch_dir(self.data).map_err(Failed::of("bump"))?;
        let ws = scratch.path().join("ws");
        std::fs::create_dir_all(&ws).map_err(|e| Failed::at("bump", e.to_string()))?;
        crate::git::materialise(&top, &commit, &prefix, &ws).map_err(Failed::of("bump"))?;
        // The lockfile that names the package (the first kind the ecosystem
        // prefers, then the first in path order).
        let tree = crate::inventory::Tree::walk(&ws).map_err(Failed::of("bump"))?;
        let lock_rel = lockfiles
            .iter()
            .find_map(|lockfile| {
                tree.files
                    .iter()
                    .filter(|f| *f == lockfile || f.ends_with(&format!("/{lockfile}")))
                    .find(|f| {
                        tree.read(f, 64 << 20)
                            .is_ok_and(|b| lockfile_names(lockfile, &b, &name))
                    })
                    .cloned()
            })
            .ok_or_else(|| {
                Failed::at(
                    "bump",
                    format!(
                        "no {} at commit {commit} names {name}",
                        lockfiles.join(" or ")
                    ),
                )
            })?;
        let (lock_dir, lockfile) = lock_rel
            .rsplit_once('/')
            .map_or((String::new(), lock_rel.as_str()), |(d, f)| {
                (d.to_owned(), f)
            });
        let lockfile = lockfile.to_owned();
        let in_dir = |file: &str| {
            if lock_dir.is_empty() {
                file.to_owned()
            } else {
                format!("{lock_dir}/{file}")
            }
        };
        // What the files hold before the tool runs (the tree reads the files
        // as they are when asked).
        let before: Vec<(String, Option<Vec<u8>>)> = [lock_rel.clone(), in_dir(manifest)]
            .into_iter()
            .map(|rel| {
                let bytes = tree.read(&rel, 64 << 20).ok();
                (rel, bytes)
            })
            .collect();
        // The name comes from the repository's lockfile and the version from
        // an advisory: both are checked, and passed as arguments, never
        // through a shell's parsing.
        let plain = |t: &str, extra: &[char]| {
            !t.is_empty()
                && t.len() <= 214
                && !t.starts_with('-')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-+~".contains(c) || extra.contains(&c))
        };
        if !plain(&name, &['@', '/']) || !plain(&fixed, &[]) {
            return Err(Failed::at(
                "bump",
                format!(
                    "refusing to hand {name:?} at {fixed:?} to a tool: not a plain package name and version"
                ),
            ));
        }
        // A pinned requirements.txt is rewritten here, exactly (the pin's
        // version, nothing else), and the tool only proves the version is
        // on the index; one pinned with hashes would need new hashes:
        // refused. One compiled from a requirements.in beside it is compiled
        // again by pip-compile, upgrading only the package.
        let compiled =
            lockfile == "requirements.txt" && tree.files.contains(&in_dir("requirements.in"));
        let rewritten = if lockfile == "requirements.txt" && !compiled {
            let text = tree
                .read(&lock_rel, 64 << 20)
                .map_err(|why| Failed::at("bump", format!("{lock_rel}: {why}")))?;
            let text = String::from_utf8(text)
                .map_err(|_| Failed::at("bump", format!("{lock_rel} is not UTF-8")))?;
            Some(
                repin_requirement(&text, &name, &fixed)
                    .map_err(|why| Failed::at("bump", format!("{lock_rel}: {why}")))?,
            )
        } else {
            None
        };
        let argv = tool_argv(&lockfile, compiled, &name, &fixed);
        let system = match &build_image {
            Some(b) => format!("build image {} {}, {}", b.name, b.digest, b.why),
            None => "the host's /usr".to_owned(),
        };
        let tool = run_tool(
            &Tool {
                loaded: &loaded,
                ws: &ws,
                lock_dir: &lock_dir,
                ecosystem,
                commit: &commit,
                system_root: build_image.as_ref().map(|b| b.rootfs.clone()),
                system: &system,
            },
            argv,
            note,
        )?;
        // What the files hold now: the ones the tool wrote, or the rewritten
        // pin; what changed is committed.
        let bumped = crate::inventory::Tree::walk(&ws).map_err(Failed::of("bump"))?;
        let mut after = Vec::new();
        let mut files = Vec::new();
        for (rel, was) in &before {
            let now = match (&rewritten, *rel == lock_rel) {
                (Some(text), true) => text.clone().into_bytes(),
                _ => match bumped.read(rel, 64 << 20) {
                    Ok(now) => now,
                    Err(_) => continue,
                },
            };
            if was.as_deref() != Some(now.as_slice()) {
                files.push((format!("{prefix}{rel}"), now.clone()));
            }
            after.push((rel.clone(), now));
        }
        if files.is_empty() {
            return Err(Failed::at(
                "bump",
                format!("`{tool}` changed nothing in {lock_rel}"),
            ));
        }
        findings_left_after(
            store,
            &scratch.path().join("check"),
            &after,
            &lock_dir,
            &advisories,
            &tool,
        )?;
        run.step(
            "bumped",
            None,
            &format!(
                "{name} {installed} → {fixed} in {lock_rel} by `{tool}` in the sandbox ({system})"
            ),
            note,
        )
        .map_err(Failed::of("bump"))?;
        let first = advisories.iter().next().cloned().unwrap_or_default();
        let branch = format!(
            "cairn/remediate-{}-{}",
            first
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                })
                .collect::<String>(),
            now_ms()
        );
        let message = format!(
            "Bump {name} from {installed} to {fixed} ({})\n\nMade by cairn remediate with `{tool}`.",
            advisories.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        let new_commit = crate::git::commit_files_on_branch(
            &top,
            &scratch.path().join("index"),
            &commit,
            &files,
            &branch,
            (ACTOR, "cairn-remediation@cairn.invalid"),
            &message,
        )
        .map_err(Failed::of("commit"))?;
        run.step(
            "committed",
            None,
            &format!(
                "commit {new_commit} on branch {branch} of {}",
                top.display()
            ),
            note,
        )
        .map_err(Failed::of("commit"))?;
        let ran = engine
            .run(
                &crate::RunRequest {
                    dir: dir.to_path_buf(),
                    rev: new_commit.clone(),
                    keep_workspace: false,
                },
                &mut Quiet,
            )
            .map_err(Failed::of("test"))?;
        if ran.status != RunStatus::Succeeded {
            return Err(Failed::at(
                "test",
                format!(
                    "run {} of commit {new_commit} failed: {} (`cairn logs {}`)",
                    ran.id,
                    ran.reason.as_deref().unwrap_or("no reason recorded"),
                    ran.id
                ),
            ));
        }
        let digest = store
            .images(Some(&plan.workload), None, 50)
            .map_err(|e| Failed::at("test", e.to_string()))?
            .into_iter()
            .find(|i| i.run == Some(ran.id))
            .map(|i| i.digest);
        run.step(
            "tested",
            digest.as_deref(),
            &format!("run {} of commit {new_commit} passed", ran.id),
            note,
        )
        .map_err(Failed::of("test"))?;
        let image = digest.clone().unwrap_or_else(|| "<image>".to_owned());
        Ok(Ending::WaitingForReview {
            command: format!(
                "a maintainer who is not its author: `cairn review approve {new_commit}`; then `cairn promote {} {image} --to {}`",
                plan.workload,
                self.org
                    .promotion_path
                    .first()
                    .map_or("staging", String::as_str)
            ),
            commit: new_commit,
            branch,
            digest,
        })
    }
}

/// The bumped files (`after`, relative to the tree) must not have the
/// `advisories` any more: written into `check`, a directory of cairn's own, and
/// read as cairn reads any lockfile from the lockfile's directory.
fn findings_left_after(
    store: &dyn Store,
    check: &Path,
    after: &[(String, Vec<u8>)],
    lock_dir: &str,
    advisories: &BTreeSet<String>,
    tool: &str,
) -> Result<(), Failed> {
    // The bumped lockfile must not have the findings any more: read as
    // cairn reads any lockfile, from a directory of cairn's own holding
    // the lockfile and manifest as they are now.
    for (rel, bytes) in after {
        let path = check.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Failed::at("bump", e.to_string()))?;
        }
        write_new(&path, bytes).map_err(Failed::of("bump"))?;
    }
    let collected = crate::inventory::collect(&check.join(lock_dir)).map_err(Failed::of("bump"))?;
    let evaluation = crate::inventory::evaluate(store, &collected).map_err(Failed::of("bump"))?;
    let left: Vec<String> = evaluation
        .report
        .vulnerabilities
        .iter()
        .filter(|v| advisories.contains(&v.advisory_id))
        .map(|v| format!("{} in {} {}", v.advisory_id, v.package, v.installed_version))
        .collect();
    if !left.is_empty() {
        return Err(Failed::at(
            "bump",
            format!("after `{tool}` the tree still has {}", left.join(", ")),
        ));
    }
    Ok(())
}

/// The ecosystem tool's command line that bumps `name` to `fixed` in
/// `lockfile` (`compiled`: a requirements.txt made from a requirements.in);
/// the name and version are arguments, never parsed by a shell.
fn tool_argv(lockfile: &str, compiled: bool, name: &str, fixed: &str) -> Vec<String> {
    match lockfile {
        "package-lock.json" => [
            "npm",
            "install",
            "--package-lock-only",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("{name}@{fixed}")])
        .collect(),
        "uv.lock" => ["uv", "lock", "--upgrade-package"]
            .into_iter()
            .map(str::to_owned)
            .chain([format!("{name}=={fixed}")])
            .collect(),
        "requirements.txt" if compiled => [
            "pip-compile",
            "--quiet",
            "--output-file",
            "requirements.txt",
            "--upgrade-package",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("{name}=={fixed}"), "requirements.in".to_owned()])
        .collect(),
        "requirements.txt" => [
            "python3",
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            "/tmp/cairn-pip-download",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("{name}=={fixed}")])
        .collect(),
        _ => ["cargo", "update", "-p", name, "--precise", fixed]
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// Where and how a dependency tool runs: the workspace holding the commit's
/// tree, the lockfile's directory in it, the system (the build image's root, or
/// the host's `/usr`) and its description for the log.
struct Tool<'a> {
    loaded: &'a crate::LoadedWorkload,
    ws: &'a Path,
    lock_dir: &'a str,
    ecosystem: &'a str,
    commit: &'a str,
    system_root: Option<PathBuf>,
    system: &'a str,
}

/// Runs `argv` in the sandbox with user-mode network on `t`'s workspace, in the
/// lockfile's directory; `Ok` is the command as the log and commit name it.
/// A failure says the tool's first error line and its cause, and where to put
/// a tool that is missing.
fn run_tool(t: &Tool<'_>, argv: Vec<String>, note: &mut dyn FnMut(&str)) -> Result<String, Failed> {
    let tool = argv.join(" ");
    let home = t.ws.join(".home");
    std::fs::create_dir_all(&home).map_err(|e| Failed::at("bump", e.to_string()))?;
    cairn_sandbox::prepare_workspace(t.ws).map_err(|e| Failed::at("bump", e.to_string()))?;
    let policy = &t.loaded.chain.sandbox;
    let mut path: Vec<String> = policy.tools.iter().filter_map(|t| t.bin.clone()).collect();
    path.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(str::to_owned));
    let dir_in_ws = if t.lock_dir.is_empty() {
        ".".to_owned()
    } else {
        t.lock_dir.to_owned()
    };
    note(&format!(
        "$ (in {dir_in_ws}) {tool}   [sandbox: network user-mode, {}, on commit {}'s tree]",
        t.system, t.commit
    ));
    let mut sh = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        "cd -- \"$1\" && shift && exec \"$@\"".to_owned(),
        "sh".to_owned(),
        dir_in_ws,
    ];
    sh.extend(argv);
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), path.join(":")),
        ("HOME".into(), "/workspace/.home".into()),
        ("TMPDIR".into(), "/tmp".into()),
    ];
    if t.ecosystem == "PyPI" {
        // The interpreter and the trust store are the sandbox's system's
        // (the build image's Python, the curated /etc's certificates):
        // never a Python downloaded from elsewhere.
        env.extend(
            [
                ("UV_PYTHON_DOWNLOADS", "never"),
                ("UV_PYTHON_PREFERENCE", "only-system"),
                ("UV_SYSTEM_CERTS", "1"),
                ("UV_NATIVE_TLS", "1"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        // pip reads its own bundle unless told; the sandbox's /etc is the
        // curated copy of the host's, so the host's bundle is there.
        const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
        if Path::new(BUNDLE).is_file() {
            env.push(("PIP_CERT".into(), BUNDLE.into()));
        }
    }
    let mut output = String::new();
    let outcome = cairn_sandbox::run(
        &cairn_sandbox::SandboxSpec {
            workspace: t.ws.to_path_buf(),
            argv: sh,
            env,
            network: true,
            system_root: t.system_root.clone(),
            read_only_binds: policy
                .tools
                .iter()
                .map(|t| (PathBuf::from(&t.host), PathBuf::from(&t.at)))
                .collect(),
            limits: cairn_sandbox::Limits {
                wall_clock: std::time::Duration::from_secs(600),
                memory_bytes: policy.memory_bytes,
                max_processes: policy.processes,
                max_line_bytes: 64 << 10,
            },
        },
        &mut |_, bytes| {
            if output.len() < 4096 {
                output.push_str(&String::from_utf8_lossy(bytes));
                output.push('\n');
            }
        },
    )
    .map_err(|e| Failed::at("bump", e.to_string()))?;
    if !matches!(outcome.exit, cairn_sandbox::Exit::Code(0)) {
        // The tool's first error line and what follows it (the cause,
        // as uv and pip print it), else its last lines, say why.
        let all: Vec<&str> = output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = match all
            .iter()
            .position(|l| l.to_ascii_lowercase().contains("error"))
        {
            Some(at) => all[at..all.len().min(at + 4)].join(" | "),
            None => all[all.len().saturating_sub(5)..].join(" | "),
        };
        let hint = if matches!(outcome.exit, cairn_sandbox::Exit::Code(127)) {
            format!(
                "; `{}` is not in {}: put it in the workload's build image ([build] image, or org.toml [build.images]) or the chain's [sandbox] tools",
                tool.split(' ').next().unwrap_or_default(),
                t.system
            )
        } else {
            String::new()
        };
        return Err(Failed::at(
            "bump",
            format!(
                "`{tool}` ended {:?} (in {}): {tail}{hint}",
                outcome.exit, t.system
            ),
        ));
    }
    Ok(tool)
}

/// `(type, name, version)` of a purl (`pkg:npm/%40scope/name@1.0.0?…`), read
/// by the one purl codec; the name carries its namespace as npm writes it
/// (`@scope/name`).
pub(super) fn parse_purl(purl: &str) -> Option<(String, String, String)> {
    let p = cairn_model::purl::Purl::parse(purl).ok()?;
    let version = p.version.filter(|v| !v.is_empty())?;
    let name = if p.namespace.is_empty() {
        p.name
    } else {
        format!("{}/{}", p.namespace, p.name)
    };
    Some((p.ty, name, version))
}

/// Whether lockfile `kind`'s `bytes` name package `name` (a PyPI name
/// normalised, as purls carry it).
pub(super) fn lockfile_names(kind: &str, bytes: &[u8], name: &str) -> bool {
    let text = String::from_utf8_lossy(bytes);
    if kind == "requirements.txt" {
        return text
            .lines()
            .any(|l| pinned(l).is_some_and(|(n, _)| n == name));
    }
    text.contains(&format!("\"{name}\""))
}

/// A requirements line's pinned `(normalised name, version)`:
/// `name[extras]==version [; markers]`, or `None`.
fn pinned(line: &str) -> Option<(String, &str)> {
    let code = line.split(" #").next()?.trim();
    let req = code.split(';').next()?.trim();
    let (name, version) = req.split_once("==")?;
    let version = version.trim_start_matches('=').split_whitespace().next()?;
    let name = name.split('[').next()?.trim();
    if name.is_empty() || version.is_empty() {
        return None;
    }
    let mut normal = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !normal.ends_with('-') {
                normal.push('-');
            }
        } else {
            normal.push(c.to_ascii_lowercase());
        }
    }
    Some((normal, version))
}

/// `text` with every pin of `name` set to `fixed`, byte for byte otherwise;
/// refused when a pin carries hashes (they would not match the new version),
/// spans lines, or there is none.
pub(super) fn repin_requirement(text: &str, name: &str, fixed: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut found = false;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let continued = i > 0 && lines[i - 1].trim_end().ends_with('\\');
        match pinned(line) {
            Some((n, version)) if n == name && !continued => {
                if line.contains("--hash") || line.trim_end().ends_with('\\') {
                    return Err(format!(
                        "the pin of {name} carries hashes (line {}): they would not match {fixed}; compile the requirements again with pip-compile --generate-hashes",
                        i + 1
                    ));
                }
                let at = line.find("==").unwrap_or_default();
                let start = line[at..].find(version).map_or(at + 2, |j| at + j);
                out.push_str(&line[..start]);
                out.push_str(fixed);
                out.push_str(&line[start + version.len()..]);
                found = true;
            }
            _ => out.push_str(line),
        }
    }
    if found {
        Ok(out)
    } else {
        Err(format!("no line pins {name} with =="))
    }
}

/// Writes `bytes` to a new file `path` (never over an existing one, never
/// through a symlink).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(EngineError::io("create", path))?;
    f.write_all(bytes).map_err(EngineError::io("write", path))
}

/// The lowest version that fixes every advisory of `package` in `plan`:
/// for each, its lowest fixed version above the installed one; the highest
/// of those.
fn lowest_fixed(
    store: &dyn Store,
    data: &DataDir,
    org: &OrgConfig,
    plan: &Plan,
    package: &str,
    ecosystem: &str,
    installed: &str,
) -> Result<String, String> {
    let scheme = cairn_vuln::Scheme::for_ecosystem(ecosystem)
        .ok_or_else(|| format!("no version ordering for {ecosystem}"))?;
    let parse = |v: &str| cairn_vuln::Version::parse(scheme, v).map_err(|e| format!("{v}: {e}"));
    let installed_v = parse(installed)?;
    let list = exposures::list(store, data, org, &ExposureFilter::default(), now_ms())
        .map_err(|e| e.to_string())?;
    let mut needed: Option<cairn_vuln::Version> = None;
    for (advisory, _) in plan.exposures.iter().filter(|(_, p)| p == package) {
        let fixes = list
            .iter()
            .find(|e| e.advisory == *advisory && e.package == package)
            .map(|e| e.fixed_versions.clone())
            .unwrap_or_default();
        let mut lowest: Option<cairn_vuln::Version> = None;
        for f in &fixes {
            let v = parse(f)?;
            if v.compare(&installed_v) == Some(std::cmp::Ordering::Greater)
                && lowest
                    .as_ref()
                    .is_none_or(|l| v.compare(l) == Some(std::cmp::Ordering::Less))
            {
                lowest = Some(v);
            }
        }
        let lowest = lowest.ok_or_else(|| {
            format!("no fixed version of {package} above {installed} is known for {advisory}")
        })?;
        if needed
            .as_ref()
            .is_none_or(|n| lowest.compare(n) == Some(std::cmp::Ordering::Greater))
        {
            needed = Some(lowest);
        }
    }
    needed
        .map(|v| v.as_str().to_owned())
        .ok_or_else(|| format!("no advisory of {package} to fix"))
}

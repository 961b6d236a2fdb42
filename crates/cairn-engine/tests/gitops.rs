//! The `gitops` deploy target against real git repositories: the digest-pinned
//! manifest and kustomization in a commit with cairn's trailers, a new commit per
//! change, rollback as a new commit, an undeploy's removal of cairn's files, refusals
//! that leave HEAD where it was, and
//! kustomize (kubectl's) rendering what cairn wrote.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_engine::EngineError;
use cairn_engine::deploy::gitops::{
    ChangeKind, GitopsChange, KUSTOMIZATION_FILE, MANIFEST_FILE, Trailers, current, deploy,
};

const DIR: &str = "envs/staging/hello";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn image(n: u8) -> String {
    format!("registry.example.invalid/apps/hello@{}", digest(n))
}

use cairn_testkit::git;

fn head(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// A repository with one commit (a README).
fn repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("gitops");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "environments\n").unwrap();
    git(&repo, &["add", "README.md"]);
    git(&repo, &["commit", "-q", "-m", "start"]);
    (tmp, repo)
}

fn change(repo: &Path, n: u8, kind: ChangeKind, log_index: u64) -> GitopsChange {
    GitopsChange {
        repo: repo.to_path_buf(),
        dir: DIR.into(),
        workload: "hello".into(),
        environment: "staging".into(),
        image: image(n),
        port: 8080,
        trailers: Trailers {
            run: format!("run-{n}"),
            log_index,
            change: kind,
            actor: "Rel Manager <rm@example.invalid>".into(),
        },
    }
}

fn trailers(repo: &Path, rev: &str) -> String {
    let message = git(repo, &["log", "-1", "--format=%B", rev]);
    let out = Command::new("git")
        .args(["interpret-trailers", "--parse"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(message.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_deploy_commits_the_pinned_manifest_with_the_trailers() {
    let (_tmp, repo) = repo();
    let before = head(&repo);
    let done = deploy(&change(&repo, 1, ChangeKind::Deploy, 7)).unwrap();

    assert_eq!(done.previous.as_deref(), Some(before.as_str()));
    assert_eq!(done.commit, head(&repo));
    assert_eq!(done.digest, digest(1));
    assert_eq!(done.image, image(1));
    assert_eq!(
        done.files,
        [
            format!("{DIR}/{MANIFEST_FILE}"),
            format!("{DIR}/{KUSTOMIZATION_FILE}")
        ]
    );
    assert_eq!(git(&repo, &["rev-parse", "HEAD^"]).trim(), before);

    let manifest = git(&repo, &["show", &format!("HEAD:{DIR}/{MANIFEST_FILE}")]);
    assert!(
        manifest.contains(&format!("image: \"{}\"", image(1))),
        "{manifest}"
    );
    assert!(manifest.contains("kind: Deployment") && manifest.contains("kind: Service"));
    assert!(manifest.contains("containerPort: 8080"), "{manifest}");
    let kustomization = git(
        &repo,
        &["show", &format!("HEAD:{DIR}/{KUSTOMIZATION_FILE}")],
    );
    assert!(
        kustomization.contains(&format!(
            "images:\n  - name: \"registry.example.invalid/apps/hello\"\n    newName: \"registry.example.invalid/apps/hello\"\n    digest: \"{}\"\n",
            digest(1)
        )),
        "{kustomization}"
    );

    let message = git(&repo, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with(&format!("deploy hello to staging: {}\n\n", digest(1))),
        "{message}"
    );
    assert_eq!(
        trailers(&repo, "HEAD"),
        "Cairn-Run: run-1\nCairn-Log-Index: 7\nCairn-Change: deploy\nCairn-Actor: Rel Manager <rm@example.invalid>\n"
    );
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%G?"]).trim(),
        "cairn <cairn@localhost>|cairn <cairn@localhost>|N"
    );
    // Only the environment's files changed; the work tree and index match HEAD.
    assert_eq!(
        git(
            &repo,
            &["diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"]
        ),
        format!("{DIR}/{KUSTOMIZATION_FILE}\n{DIR}/{MANIFEST_FILE}\n")
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(repo.join(DIR).join(MANIFEST_FILE)).unwrap(),
        manifest
    );
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(1)));
}

#[test]
fn each_change_is_a_new_commit_and_rollback_pins_the_earlier_digest() {
    let (_tmp, repo) = repo();
    assert_eq!(current(&repo, DIR).unwrap(), None);
    let first = deploy(&change(&repo, 1, ChangeKind::Deploy, 1)).unwrap();
    let second = deploy(&change(&repo, 2, ChangeKind::Deploy, 2)).unwrap();
    assert_ne!(first.commit, second.commit);
    assert_eq!(second.previous.as_deref(), Some(first.commit.as_str()));
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(2)));

    let back = deploy(&change(&repo, 1, ChangeKind::Rollback, 3)).unwrap();
    assert_eq!(back.previous.as_deref(), Some(second.commit.as_str()));
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(1)));
    // History is kept: start, deploy 1, deploy 2, rollback to 1.
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]).trim(), "4");
    assert_eq!(
        git(&repo, &["log", "--format=%s"]),
        format!(
            "rollback hello in staging: {}\ndeploy hello to staging: {}\ndeploy hello to staging: {}\nstart\n",
            digest(1),
            digest(2),
            digest(1)
        )
    );
    assert!(trailers(&repo, "HEAD").contains("Cairn-Change: rollback\n"));
    assert!(trailers(&repo, "HEAD").contains("Cairn-Log-Index: 3\n"));
    // The rollback's files are exactly the first deploy's.
    assert_eq!(
        git(&repo, &["rev-parse", &format!("HEAD:{DIR}")]),
        git(&repo, &["rev-parse", &format!("{}:{DIR}", first.commit)])
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}

#[test]
fn kustomize_renders_the_pinned_image() {
    let (_tmp, repo) = repo();
    deploy(&change(&repo, 3, ChangeKind::Deploy, 1)).unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(repo.join(DIR))
        .output()
        .expect("kubectl (kustomize) must be installed to judge the kustomization");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8(out.stdout).unwrap();
    assert!(
        rendered.contains(&format!("image: {}", image(3))),
        "{rendered}"
    );
    assert!(rendered.contains("kind: Deployment") && rendered.contains("kind: Service"));
    assert!(rendered.contains("runAsUser: 65534"), "{rendered}");
}

fn refused(repo: &Path, c: &GitopsChange) -> String {
    let before = head(repo);
    let err = deploy(c).expect_err("must be refused");
    assert_eq!(head(repo), before, "HEAD moved on a refused deploy: {err}");
    err.to_string()
}

#[test]
fn a_tag_or_docker_hub_image_is_refused() {
    let (_tmp, repo) = repo();
    for (text, why) in [
        (
            "registry.example.invalid/apps/hello:1.0",
            "not pinned by digest",
        ),
        (
            "registry.example.invalid/apps/hello",
            "not pinned by digest",
        ),
        (
            "hello@sha256:0101010101010101010101010101010101010101010101010101010101010101",
            "Docker Hub",
        ),
        (
            "docker.io/library/hello@sha256:0101010101010101010101010101010101010101010101010101010101010101",
            "Docker Hub",
        ),
        ("registry.example.invalid/apps/hello@sha256:short", "digest"),
    ] {
        let mut c = change(&repo, 1, ChangeKind::Deploy, 1);
        c.image = text.into();
        let err = refused(&repo, &c);
        assert!(err.contains(why), "{text}: {err}");
    }
    assert!(!repo.join("envs").exists());
}

#[test]
fn directories_outside_the_repository_are_refused() {
    let (tmp, repo) = repo();
    for dir in [
        "../outside",
        "envs/../../outside",
        "/tmp/outside",
        "",
        ".git/hooks",
        "envs/./x",
    ] {
        let mut c = change(&repo, 1, ChangeKind::Deploy, 1);
        c.dir = dir.into();
        let err = refused(&repo, &c);
        assert!(err.contains("refused"), "{dir}: {err}");
    }
    // A committed symlink that points out of the repository.
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, repo.join("envs")).unwrap();
    let c = change(&repo, 1, ChangeKind::Deploy, 1);
    let err = refused(&repo, &c);
    assert!(err.contains("symlink"), "{err}");
    git(&repo, &["add", "envs"]);
    git(&repo, &["commit", "-q", "-m", "a symlink"]);
    let err = refused(&repo, &c);
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(current(&repo, "../outside").is_err());
}

#[test]
fn bad_names_and_trailers_are_refused() {
    let (_tmp, repo) = repo();
    type Edit = (&'static str, fn(&mut GitopsChange));
    let edits: [Edit; 7] = [
        ("workload", |c| c.workload = "Hello".into()),
        ("environment", |c| c.environment = "prod-".into()),
        ("actor", |c| {
            c.trailers.actor = "eve\nCairn-Change: deploy".into();
        }),
        ("actor", |c| c.trailers.actor = String::new()),
        ("run id", |c| c.trailers.run = " 1".into()),
        ("run id", |c| c.trailers.run = "x".repeat(300)),
        ("port", |c| c.port = 0),
    ];
    for (what, edit) in edits {
        let mut c = change(&repo, 1, ChangeKind::Deploy, 1);
        edit(&mut c);
        let err = refused(&repo, &c);
        assert!(err.contains(what), "{what}: {err}");
    }
}

#[test]
fn a_missing_or_foreign_repository_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = change(&tmp.path().join("nowhere"), 1, ChangeKind::Deploy, 1);
    let err = deploy(&c).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");

    c.repo = tmp.path().to_path_buf();
    let err = deploy(&c).unwrap_err();
    assert!(matches!(err, EngineError::NotAGitRepo { .. }), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    // A subdirectory of a repository is not its top level.
    let (_tmp2, repo) = repo();
    std::fs::create_dir(repo.join("sub")).unwrap();
    c.repo = repo.join("sub");
    let err = refused(&repo, &c);
    assert!(err.contains("top level"), "{err}");
}

#[test]
fn uncommitted_changes_in_the_directory_are_refused() {
    let (_tmp, repo) = repo();
    deploy(&change(&repo, 1, ChangeKind::Deploy, 1)).unwrap();
    let manifest = repo.join(DIR).join(MANIFEST_FILE);
    let original = std::fs::read_to_string(&manifest).unwrap();

    std::fs::write(&manifest, format!("{original}# hand edit\n")).unwrap();
    let err = refused(&repo, &change(&repo, 2, ChangeKind::Deploy, 2));
    assert!(err.contains("modified"), "{err}");
    git(&repo, &["add", "."]);
    let err = refused(&repo, &change(&repo, 2, ChangeKind::Deploy, 2));
    assert!(err.contains("staged"), "{err}");
    // The hand edit is still there, untouched.
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .ends_with("# hand edit\n")
    );
    git(&repo, &["reset", "-q", "--hard"]);

    std::fs::write(repo.join(DIR).join("extra.yaml"), "x: 1\n").unwrap();
    let err = refused(&repo, &change(&repo, 2, ChangeKind::Deploy, 2));
    assert!(err.contains("untracked"), "{err}");
    std::fs::remove_file(repo.join(DIR).join("extra.yaml")).unwrap();

    // A merely touched file is not a change.
    std::fs::write(&manifest, &original).unwrap();
    deploy(&change(&repo, 2, ChangeKind::Deploy, 2)).unwrap();
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(2)));
}

#[test]
fn changes_elsewhere_in_the_repository_are_kept() {
    let (_tmp, repo) = repo();
    std::fs::write(repo.join("README.md"), "edited, not committed\n").unwrap();
    std::fs::write(repo.join("notes.txt"), "untracked\n").unwrap();
    deploy(&change(&repo, 1, ChangeKind::Deploy, 1)).unwrap();
    assert_eq!(
        std::fs::read_to_string(repo.join("README.md")).unwrap(),
        "edited, not committed\n"
    );
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        " M README.md\n?? notes.txt\n"
    );
    assert_eq!(git(&repo, &["show", "HEAD:README.md"]), "environments\n");
}

#[test]
fn a_commit_that_fails_leaves_head_and_the_work_tree_unchanged() {
    let (_tmp, repo) = repo();
    deploy(&change(&repo, 1, ChangeKind::Deploy, 1)).unwrap();
    // Another git process holds the branch's lock: the ref cannot move.
    let lock = repo.join(".git/refs/heads/main.lock");
    std::fs::write(&lock, "").unwrap();
    let err = refused(&repo, &change(&repo, 2, ChangeKind::Deploy, 2));
    assert!(err.contains("HEAD") && err.contains("lock"), "{err}");
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(1)));
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    let on_disk = std::fs::read_to_string(repo.join(DIR).join(KUSTOMIZATION_FILE)).unwrap();
    assert!(on_disk.contains(&digest(1)), "{on_disk}");
    // And once the lock is gone, the same change goes through.
    deploy(&change(&repo, 2, ChangeKind::Deploy, 2)).unwrap();
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(2)));
}

#[test]
fn hooks_and_signing_config_of_the_repository_are_not_used() {
    let (_tmp, repo) = repo();
    let marker = repo.join("hook-ran");
    for hook in [
        "pre-commit",
        "commit-msg",
        "post-commit",
        "reference-transaction",
        "post-checkout",
    ] {
        let path = repo.join(".git/hooks").join(hook);
        std::fs::write(&path, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&path, mode).unwrap();
    }
    git(&repo, &["config", "commit.gpgsign", "true"]);
    git(&repo, &["config", "user.signingkey", "NOPE"]);
    deploy(&change(&repo, 1, ChangeKind::Deploy, 1)).unwrap();
    assert!(!marker.exists(), "a repository hook ran");
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(1)));
}

#[test]
fn an_empty_repository_and_a_bare_one_work() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    git(&empty, &["init", "-q", "-b", "main"]);
    let done = deploy(&change(&empty, 1, ChangeKind::Deploy, 1)).unwrap();
    assert_eq!(done.previous, None);
    assert_eq!(head(&empty), done.commit);
    assert_eq!(git(&empty, &["status", "--porcelain"]), "");
    assert_eq!(current(&empty, DIR).unwrap(), Some(digest(1)));

    let bare = tmp.path().join("bare.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            empty.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    deploy(&change(&bare, 2, ChangeKind::Deploy, 2)).unwrap();
    assert_eq!(current(&bare, DIR).unwrap(), Some(digest(2)));
    assert_eq!(git(&bare, &["rev-list", "--count", "HEAD"]).trim(), "2");
}

#[test]
fn current_refuses_files_that_disagree() {
    let (_tmp, repo) = repo();
    deploy(&change(&repo, 1, ChangeKind::Deploy, 1)).unwrap();
    let kustomization = repo.join(DIR).join(KUSTOMIZATION_FILE);
    let text = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(&kustomization, text.replace(&digest(1), &digest(9))).unwrap();
    git(&repo, &["commit", "-q", "-am", "hand edit"]);
    let err = current(&repo, DIR).unwrap_err().to_string();
    assert!(err.contains("edited") && err.contains("pins"), "{err}");

    std::fs::remove_file(&kustomization).unwrap();
    git(&repo, &["commit", "-q", "-am", "remove the kustomization"]);
    let err = current(&repo, DIR).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    // Deploying again repairs it.
    deploy(&change(&repo, 2, ChangeKind::Deploy, 2)).unwrap();
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(2)));
}

#[test]
fn concurrent_deploys_to_one_repository_take_turns() {
    let (_tmp, repo) = repo();
    let threads: Vec<_> = (1..=4u8)
        .map(|n| {
            let mut c = change(&repo, n, ChangeKind::Deploy, u64::from(n));
            c.dir = format!("envs/e{n}/hello");
            std::thread::spawn(move || deploy(&c))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]).trim(), "5");
    for n in 1..=4u8 {
        assert_eq!(
            current(&repo, &format!("envs/e{n}/hello")).unwrap(),
            Some(digest(n))
        );
    }
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}

/// Reconciliation reads the environment's newest change from the repository:
/// cairn's newest commit for the directory and its log index, also when a
/// redeploy of the same digest changed no file, or someone else's later commit.
#[test]
fn the_head_change_of_a_directory_names_its_log_entry() {
    use cairn_engine::deploy::gitops::head_change;
    let (_tmp, repo) = repo();
    assert_eq!(head_change(&repo, DIR).unwrap(), None);
    let first = deploy(&change(&repo, 1, ChangeKind::Deploy, 7)).unwrap();
    assert_eq!(
        head_change(&repo, DIR).unwrap(),
        Some((first.commit.clone(), Some(7)))
    );
    // The same digest again: no file changes, the change is still the newest.
    let again = deploy(&change(&repo, 1, ChangeKind::Deploy, 9)).unwrap();
    assert_eq!(
        head_change(&repo, DIR).unwrap(),
        Some((again.commit, Some(9)))
    );
    // Someone else edits the directory: not cairn's, no log index.
    std::fs::write(repo.join(DIR).join(MANIFEST_FILE), "edited\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "hand edit"]);
    assert_eq!(head_change(&repo, DIR).unwrap(), Some((head(&repo), None)));
}

/// A cairn killed after moving HEAD but before updating the work tree leaves
/// HEAD at the new commit with the old index and files; `complete` brings them
/// along (and touches nothing when there is nothing to complete).
#[test]
fn a_commit_whose_work_tree_was_not_updated_is_completed() {
    use cairn_engine::deploy::gitops::complete;
    let (_tmp, repo) = repo();
    let first = deploy(&change(&repo, 1, ChangeKind::Deploy, 1)).unwrap();
    let second = deploy(&change(&repo, 2, ChangeKind::Deploy, 2)).unwrap();
    assert!(!complete(&repo, &second.commit).unwrap(), "nothing to do");
    git(&repo, &["reset", "-q", "--hard", &first.commit]);
    git(&repo, &["update-ref", "HEAD", &second.commit]);
    assert!(!git(&repo, &["status", "--porcelain"]).trim().is_empty());
    assert!(complete(&repo, &second.commit).unwrap());
    assert_eq!(git(&repo, &["status", "--porcelain"]).trim(), "");
    assert_eq!(current(&repo, DIR).unwrap(), Some(digest(2)));
    // An index with other changes is left alone.
    git(&repo, &["reset", "-q", "--hard", &first.commit]);
    git(&repo, &["update-ref", "HEAD", &second.commit]);
    std::fs::write(repo.join("README.md"), "mine\n").unwrap();
    git(&repo, &["add", "README.md"]);
    assert!(!complete(&repo, &second.commit).unwrap());
    // Another commit than HEAD is not completed.
    assert!(!complete(&repo, &first.commit).unwrap());
}

fn removal(repo: &Path, log_index: u64) -> cairn_engine::deploy::gitops::GitopsRemoval {
    cairn_engine::deploy::gitops::GitopsRemoval {
        repo: repo.to_path_buf(),
        dir: DIR.into(),
        workload: "hello".into(),
        environment: "staging".into(),
        log_index,
        actor: "Rel Manager <rm@example.invalid>".into(),
    }
}

/// An undeploy removes cairn's two files in a commit naming its log entry
/// (which reconciliation reads as cairn's change), keeps everything else,
/// refuses a directory with nothing of cairn's or with uncommitted edits, and
/// leaves HEAD where it was when it refuses.
#[test]
fn remove_commits_the_removal_of_cairns_files_only() {
    use cairn_engine::deploy::gitops::{head_change, remove};
    let (_tmp, repo) = repo();
    let refused_removal = |log_index: u64| {
        let before = head(&repo);
        let err = remove(&removal(&repo, log_index)).unwrap_err().to_string();
        assert_eq!(head(&repo), before, "HEAD moved: {err}");
        err
    };
    // Nothing deployed yet.
    let err = refused_removal(3);
    assert!(err.contains("holds no manifests of cairn's"), "{err}");

    deploy(&change(&repo, 1, ChangeKind::Deploy, 4)).unwrap();
    // Someone's own file in the directory, committed.
    std::fs::write(repo.join(DIR).join("notes.txt"), "keep me\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "notes"]);
    // A hand edit of cairn's manifest: refused, the edit kept.
    let manifest = repo.join(DIR).join(MANIFEST_FILE);
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{original}# hand edit\n")).unwrap();
    let err = refused_removal(5);
    assert!(err.contains("modified"), "{err}");
    std::fs::write(&manifest, &original).unwrap();

    let removed = remove(&removal(&repo, 6)).unwrap();
    assert_eq!(removed.digest, digest(1));
    assert_eq!(head(&repo), removed.commit);
    assert!(!manifest.exists());
    assert!(!repo.join(DIR).join(KUSTOMIZATION_FILE).exists());
    assert!(repo.join(DIR).join("notes.txt").exists());
    assert!(repo.join("README.md").exists());
    let t = trailers(&repo, "HEAD");
    assert!(t.contains("Cairn-Log-Index: 6"), "{t}");
    assert!(t.contains("Cairn-Change: undeploy"), "{t}");
    assert_eq!(
        head_change(&repo, DIR).unwrap(),
        Some((removed.commit.clone(), Some(6)))
    );
    assert_eq!(current(&repo, DIR).unwrap(), None);
    assert!(git(&repo, &["status", "--porcelain"]).is_empty());
    // Removed already: nothing of cairn's is left to remove.
    let err = refused_removal(7);
    assert!(err.contains("holds no manifests of cairn's"), "{err}");

    // With nothing else in it, the directory goes too (and its empty parents).
    git(&repo, &["rm", "-q", &format!("{DIR}/notes.txt")]);
    git(&repo, &["commit", "-q", "-m", "no notes"]);
    deploy(&change(&repo, 2, ChangeKind::Deploy, 8)).unwrap();
    remove(&removal(&repo, 9)).unwrap();
    let tree = git(&repo, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert_eq!(tree.trim(), "README.md", "{tree}");
    assert!(!repo.join("envs").exists());
}

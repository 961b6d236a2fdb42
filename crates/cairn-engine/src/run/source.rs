//! The source stage: the exact commit's tree (never the work tree) materialised
//! into the workspace and digested, and the change the commit is — its commits
//! since what runs in the last environment, each with its verified signer.

use std::path::Path;

use cairn_evidence::Subject;
use cairn_model::config::WORKLOAD_FILE;

use super::Engine;
use super::log_sink::LogSink;
use super::stages::{RunFacts, StageEnd};
use super::tree_hash::{tree_digest, tree_size};

use crate::workload_source::LoadedWorkload;
use crate::{EngineError, git};

/// The most commits of a change that are attributed (newest first).
const MAX_CHANGE_COMMITS: usize = 256;

impl Engine {
    /// The source stage: the exact commit's tree, never the work tree.
    pub(super) fn source_stage(
        &self,
        loaded: &LoadedWorkload,
        workspace: &Path,
        facts: &mut RunFacts<'_>,
        sink: &mut LogSink<'_>,
    ) -> Result<StageEnd, EngineError> {
        // The commit's own facts come with the change's (one `rev-list`), read
        // while the tree is written (each is a git process of its own).
        let (changed, written) = std::thread::scope(|scope| {
            let change = scope.spawn(|| self.change_of(loaded));
            let written = self.write_tree(loaded, workspace);
            (change.join(), written)
        });
        let (info, change) = changed.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        written?;
        facts.source_date_epoch = info.time;
        sink.system(&format!("commit {} (tree {})", loaded.commit, info.tree));
        sink.system(&format!(
            "author {}, committer {}",
            info.author, info.committer
        ));
        sink.system(&format!("subject: {}", info.subject));
        facts.change = change;
        let signed = facts
            .change
            .iter()
            .filter(|c| c.signed_by.is_some())
            .count();
        sink.system(&format!(
            "the change: {} commit(s) not yet in the last environment, {signed} with a verified signature of a registered key{}",
            facts.change.len(),
            facts
                .change
                .iter()
                .filter_map(|c| Some(format!("{} by {}", &c.commit[..12.min(c.commit.len())], c.signed_by.as_ref()?)))
                .map(|s| format!("; {s}"))
                .collect::<String>()
        ));
        if loaded.uncommitted_config {
            sink.system(
                &format!("note: the work tree's {WORKLOAD_FILE} has uncommitted changes; this run uses the committed file"),
            );
        }
        let source = tree_digest(&cairn_fs::Dir::open(workspace)?)?;
        sink.system(&format!("source tree digest {source}"));
        facts.source = Some(Subject::sha256(
            format!("{}@{}", loaded.workload.name, loaded.commit),
            source,
        ));
        let home = workspace.join(".home");
        std::fs::create_dir_all(&home).map_err(EngineError::io("create", &home))?;
        cairn_sandbox::prepare_workspace(workspace)?;
        let (files, bytes) = tree_size(&cairn_fs::Dir::open(workspace)?)?;
        let from = if loaded.prefix.is_empty() {
            "/".to_owned()
        } else {
            loaded.prefix.clone()
        };
        sink.system(&format!(
            "materialised {files} files ({bytes} bytes) from {from} at the commit"
        ));
        Ok(StageEnd::passed(None))
    }

    /// The exact commit's tree (never the work tree) in a fresh `workspace`.
    fn write_tree(&self, loaded: &LoadedWorkload, workspace: &Path) -> Result<(), EngineError> {
        self.data.prepare_sandbox_dir()?;
        if workspace.exists() {
            std::fs::remove_dir_all(workspace).map_err(EngineError::io("clear", workspace))?;
        }
        {
            use std::os::unix::fs::DirBuilderExt;
            // Traversable, not listable: other users can't browse workspaces.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(workspace)
                .map_err(EngineError::io("create", workspace))?;
        }
        git::materialise(&loaded.repo, &loaded.commit, &loaded.prefix, workspace)
    }

    /// The commits of the change `loaded.commit` is: reachable from it and not
    /// from the commit of what runs in the promotion path's last environment
    /// (read from that digest's *verified* provenance; the deployment row only
    /// says which digest to look at), at most [`MAX_CHANGE_COMMITS`], and
    /// never fewer than the commit itself. Each with its SSH signer, when the
    /// signature verifies against a key registered to an active identity
    /// (`git verify-commit` with an allowed-signers file cairn writes).
    fn change_of(
        &self,
        loaded: &LoadedWorkload,
    ) -> Result<(git::CommitInfo, Vec<cairn_evidence::ChangeCommit>), EngineError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let store = &*self.store;
        let workload = &loaded.workload.name;
        let org = crate::load_org(self.platform_dir.as_deref())?;
        let mut bases = Vec::new();
        if let Some(last) = org.promotion_path.last()
            && let Some(d) = store.current_deployment(workload, last)?
        {
            let (trust, _) = crate::verified::Trust::load(&self.data)?;
            let builder = crate::audit::gate_builder_id(&self.data, org.builder_id.as_deref())?;
            let (checked, _) = crate::verified::about_artifact(store, &trust, &d.digest, workload)?;
            bases.extend(
                checked
                    .iter()
                    .filter(|c| c.facts.builder.as_deref() == Some(builder.as_str()))
                    .filter_map(|c| c.facts.commit.clone()),
            );
        }
        let mut entries =
            git::change_entries(&loaded.repo, &loaded.commit, &bases, MAX_CHANGE_COMMITS)?;
        let info = match entries.iter().find(|e| e.commit == loaded.commit) {
            Some(own) => own.info(),
            None => {
                // Already in the last environment: asked for on its own.
                let info = git::commit_info(&loaded.repo, &loaded.commit)?;
                entries.insert(
                    0,
                    git::ChangeEntry {
                        commit: loaded.commit.clone(),
                        author: info.author.clone(),
                        committer: info.committer.clone(),
                        subject: info.subject.clone(),
                        time: info.time,
                        tree: info.tree.clone(),
                    },
                );
                info
            }
        };
        let tag = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let signers = crate::access::write_allowed_signers(store, &self.data, &tag)?;
        let mut change = Vec::with_capacity(entries.len());
        let verified = (|| {
            for e in entries {
                let signed_by = match &signers {
                    Some(file) => git::verified_signer(&loaded.repo, &e.commit, file)?,
                    None => None,
                };
                change.push(cairn_evidence::ChangeCommit {
                    commit: e.commit,
                    author: e.author,
                    committer: e.committer,
                    signed_by,
                });
            }
            Ok::<(), EngineError>(())
        })();
        if let Some(file) = &signers {
            let _ = std::fs::remove_file(file);
        }
        verified?;
        Ok((info, change))
    }
}

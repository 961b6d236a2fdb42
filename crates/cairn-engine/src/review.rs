//! Reviews: an authenticated identity approves (or asks for changes to) one exact
//! commit. cairn signs the review statement — it vouches that it authenticated
//! the reviewer — records it in the audit log, and keeps it as evidence about the
//! commit (subject: the commit, see `cairn_evidence::review`). A new commit has no
//! reviews: approvals never carry over.
//!
//! Four-eyes is the gate's rule: the reviewer must be none of the change's
//! authenticated authors (who queued or ran it, who signed its commits — see
//! the gate input's `authors`); the commit's git author e-mail, compared with
//! identity names, only adds to that. Recording one's own approval is allowed
//! and said to be useless.

use std::path::Path;

use cairn_evidence::Statement;
use cairn_evidence::review::{ReviewFacts, Verdict, commit_subject_digest};
use cairn_policy::{Action, Identity, Scope};
use cairn_store::Store;

use crate::audit::{AuditLog, LOCK_WAIT};
use crate::certify::{Filed, sign_and_keep};
use crate::host::now_ms;
use crate::keys::KeyStore;
use crate::{DataDir, EngineError, git};

/// What was recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub commit: String,
    pub author: String,
    pub evidence: i64,
    pub log_index: u64,
    /// The reviewer is the commit's author: the approval does not count for four-eyes.
    pub own_commit: bool,
}

/// Records `actor`'s `verdict` on `rev` of the repository at `dir`, for `workload`.
#[allow(clippy::too_many_arguments)]
pub fn record(
    data: &DataDir,
    store: &dyn Store,
    actor: &Identity,
    dir: &Path,
    workload: &str,
    rev: &str,
    verdict: Verdict,
    comment: Option<String>,
) -> Result<Recorded, EngineError> {
    let scope = Scope {
        workload: Some(workload.to_owned()),
        environment: None,
    };
    crate::access::authorize(store, actor, Action::Approve, &scope)?;
    let top = git::top_level(dir)?;
    let commit = git::resolve_commit(&top, rev)?;
    let info = git::commit_info(&top, &commit)?;
    let facts = ReviewFacts {
        repository: format!("git+file://{}", top.display()),
        commit: commit.clone(),
        verdict,
        reviewer: actor.name.clone(),
        author: info.author.clone(),
        reviewed_at_ms: now_ms(),
        comment,
    };
    let statement = Statement::review(&facts)?;
    let own_commit = statement.predicate.author_email() == Some(actor.name.as_str());
    let key = {
        let audit = AuditLog::open_waiting(data, LOCK_WAIT)?;
        KeyStore::new(data).load_or_create(&audit)?.0
    };
    let (evidence, log_index) = sign_and_keep(
        data,
        store,
        &key,
        &statement,
        Filed {
            run: None,
            stage: None,
            subject_name: &format!("{workload}@{commit}"),
            subject_digest: &commit_subject_digest(&commit).to_string(),
        },
    )?;
    Ok(Recorded {
        commit,
        author: info.author,
        evidence,
        log_index,
        own_commit,
    })
}

/// A review of a commit whose signature and log entry verify against cairn's
/// keys (what the web UI lists beside a commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReview {
    pub reviewer: String,
    pub verdict: Verdict,
    /// RFC 3339, UTC, as signed.
    pub reviewed_at: String,
}

/// The reviews of `commit` that verify (read only: creates no key or log);
/// a bundle that does not verify, or is not a review of this commit, is left
/// out — the gate reads the same statements and names such failures.
pub fn verified_reviews(
    data: &DataDir,
    store: &dyn Store,
    commit: &str,
) -> Result<Vec<VerifiedReview>, EngineError> {
    let trust = crate::verified::Trust::read_only(data)?;
    let mut reviews = Vec::new();
    for e in store.evidence_for_subject(&commit_subject_digest(commit).to_string())? {
        let Ok((statement, _)) = trust.statement(&e.bundle) else {
            continue;
        };
        let Ok(text) = serde_json::to_vec(&statement) else {
            continue;
        };
        let Ok(review) = cairn_evidence::review::Review::from_statement_json(&text) else {
            continue;
        };
        let r = review.predicate;
        if r.commit == commit {
            reviews.push(VerifiedReview {
                reviewer: r.reviewer,
                verdict: r.verdict,
                reviewed_at: r.reviewed_at,
            });
        }
    }
    Ok(reviews)
}

/// `Name <e-mail>` of the author of `commit` in the repository at `dir`.
pub fn commit_author(dir: &Path, commit: &str) -> Result<String, EngineError> {
    Ok(git::commit_info(&git::top_level(dir)?, commit)?.author)
}

//! cairn's review predicate: a signed statement that one identity reviewed one
//! exact commit of one repository and approved it or asked for changes.
//!
//! Predicate type [`REVIEW_PREDICATE_TYPE`] (`urn:cairn:predicate:review:v1`, see
//! [`crate::types`] and `docs/evidence/review-v1.md`). Schema, all fields
//! required unless marked:
//!
//! ```jsonc
//! "predicate": {
//!   "repository": "<where the commit lives: URL or path>",
//!   "commit": "<full lowercase hex git object id, 40 or 64 digits>",
//!   "verdict": "approve" | "request-changes",
//!   "reviewer": "<the reviewing identity, as cairn knows it>",
//!   "author": "<the commit's author as git recorded it: `Name <email>`>",
//!   "reviewedAt": "<RFC 3339 UTC, milliseconds>",
//!   "comment": "<optional, at most 4096 bytes>"
//! }
//! ```
//!
//! The subject names the commit. cairn's [`Statement`] requires every subject to
//! carry a well-formed `sha256` (evidence is indexed and looked up by it), so a
//! review's subject is `{gitCommit: <sha>, sha256: SHA-256("git-commit:<sha>")}`
//! ([`commit_subject`]): the `gitCommit` entry is the in-toto DigestSet name for a
//! commit, and the `sha256` entry is derived from it alone, so anyone can
//! recompute it, it names that commit and nothing else (the `git-commit:` prefix
//! keeps it apart from the digest of any file whose content is the bare id), and
//! the subject check of every other statement stays as strict as it is. Reading a
//! review ([`Review::check_statement`]) refuses a subject whose two digests
//! disagree, or that names another commit than the predicate.
//!
//! The predicate records facts; whether they are enough (four eyes, how many
//! approvals) is for the gate's policy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dsse::check_size;
use crate::statement::{MAX_STATEMENT_BYTES, Predicate, Statement, Subject};
use crate::{
    Bundle, Digest, EvidenceError, IN_TOTO_PAYLOAD_TYPE, VerifyingKey, rfc3339_utc_ms, sha256,
};

/// `predicateType` of a cairn review.
pub const REVIEW_PREDICATE_TYPE: &str = crate::types::REVIEW_V1;
/// The longest review comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 4096;
/// The longest identity (reviewer or author) or repository, in bytes.
pub const MAX_IDENTITY_BYTES: usize = 512;
/// What is hashed before the commit id to make a review subject's `sha256`.
pub const COMMIT_SUBJECT_PREFIX: &str = "git-commit:";

/// What the reviewer said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Approve,
    RequestChanges,
}

impl Verdict {
    /// The wire name: `approve` or `request-changes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::RequestChanges => "request-changes",
        }
    }
}

/// The review predicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Review {
    pub repository: String,
    pub commit: String,
    pub verdict: Verdict,
    pub reviewer: String,
    pub author: String,
    /// RFC 3339, UTC.
    pub reviewed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Predicate for Review {
    const PREDICATE_TYPE: &'static str = REVIEW_PREDICATE_TYPE;
}

/// The facts of one review, as the engine has them: the commit resolved from
/// the repository, its author read from git, the reviewer's authenticated
/// identity, and the engine's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewFacts {
    pub repository: String,
    pub commit: String,
    pub verdict: Verdict,
    pub reviewer: String,
    pub author: String,
    /// Unix milliseconds.
    pub reviewed_at_ms: i64,
    pub comment: Option<String>,
}

/// The `sha256` of a review subject: SHA-256 of `git-commit:<commit>`.
pub fn commit_subject_digest(commit: &str) -> Digest {
    let mut bytes = Vec::with_capacity(COMMIT_SUBJECT_PREFIX.len() + commit.len());
    bytes.extend_from_slice(COMMIT_SUBJECT_PREFIX.as_bytes());
    bytes.extend_from_slice(commit.as_bytes());
    sha256(&bytes)
}

/// The subject of a review of `commit` in `repository`: named by the
/// repository, with the `gitCommit` and the derived `sha256` digests.
pub fn commit_subject(repository: &str, commit: &str) -> Result<Subject, EvidenceError> {
    check_commit(commit)?;
    check_text("review repository", repository, MAX_IDENTITY_BYTES, false)?;
    Ok(Subject {
        name: repository.to_owned(),
        digest: BTreeMap::from([
            ("gitCommit".to_owned(), commit.to_owned()),
            ("sha256".to_owned(), commit_subject_digest(commit).hex()),
        ]),
    })
}

impl Review {
    /// The predicate from `facts`, checked: a full commit id, non-empty
    /// single-line identities and repository of at most [`MAX_IDENTITY_BYTES`],
    /// a comment of at most [`MAX_COMMENT_BYTES`] without control characters
    /// other than newline and tab, and a time inside the years 0001-9999.
    pub fn from_facts(facts: &ReviewFacts) -> Result<Self, EvidenceError> {
        let review = Review {
            repository: facts.repository.clone(),
            commit: facts.commit.clone(),
            verdict: facts.verdict,
            reviewer: facts.reviewer.clone(),
            author: facts.author.clone(),
            reviewed_at: rfc3339_utc_ms(facts.reviewed_at_ms)?,
            comment: facts.comment.clone(),
        };
        review.check()?;
        Ok(review)
    }

    /// The e-mail address of the commit's author, from git's `Name <email>`
    /// form (what a four-eyes rule compares with the reviewer's addresses).
    pub fn author_email(&self) -> Option<&str> {
        let (_, rest) = self.author.rsplit_once('<')?;
        let email = rest.strip_suffix('>')?.trim();
        (!email.is_empty()).then_some(email)
    }

    /// The checks of [`Review::from_facts`], on a predicate however it was made.
    pub fn check(&self) -> Result<(), EvidenceError> {
        check_commit(&self.commit)?;
        check_text(
            "review repository",
            &self.repository,
            MAX_IDENTITY_BYTES,
            false,
        )?;
        check_text(
            "reviewer identity",
            &self.reviewer,
            MAX_IDENTITY_BYTES,
            false,
        )?;
        check_text("commit author", &self.author, MAX_IDENTITY_BYTES, false)?;
        check_text("review time", &self.reviewed_at, 64, false)?;
        if let Some(comment) = &self.comment {
            check_text("review comment", comment, MAX_COMMENT_BYTES, true)?;
        }
        Ok(())
    }

    /// Checks a statement carrying a review: the predicate as [`Review::check`]
    /// does, and exactly one subject, which is [`commit_subject`] of the
    /// predicate's repository and commit (so its `sha256` is the derived one).
    pub fn check_statement(statement: &Statement<Review>) -> Result<(), EvidenceError> {
        let review = &statement.predicate;
        review.check()?;
        let [subject] = statement.subject.as_slice() else {
            return Err(EvidenceError::Invalid {
                what: "review statement",
                reason: "it must have exactly one subject, the reviewed commit",
            });
        };
        if *subject != commit_subject(&review.repository, &review.commit)? {
            return Err(EvidenceError::Invalid {
                what: "review statement",
                reason: "its subject is not the reviewed commit (gitCommit and the derived sha256 must name the predicate's commit)",
            });
        }
        Ok(())
    }

    /// Parses a statement JSON (the DSSE payload) strictly as a review: other
    /// predicate types, unknown fields and inconsistent subjects are refused.
    /// This does not verify a signature: see [`Review::verify_bundle`].
    pub fn from_statement_json(bytes: &[u8]) -> Result<Statement<Review>, EvidenceError> {
        check_predicate_type(bytes, REVIEW_PREDICATE_TYPE)?;
        let statement = Statement::<Review>::from_json(bytes)?;
        Review::check_statement(&statement)?;
        Ok(statement)
    }

    /// Verifies `bundle`'s signature with `key`, then reads its statement as
    /// [`Review::from_statement_json`] does.
    /// A bundle that carries transparency log entries is refused here (see
    /// [`Bundle::verify`]): verify it with [`Bundle::verify_with_log`] and read
    /// the returned payload with `from_statement_json`.
    pub fn verify_bundle(
        bundle: &Bundle,
        key: &VerifyingKey,
    ) -> Result<Statement<Review>, EvidenceError> {
        Review::from_statement_json(verified_in_toto_payload(bundle, key)?)
    }
}

impl Statement<Review> {
    /// The review statement about the commit named in `facts`.
    pub fn review(facts: &ReviewFacts) -> Result<Self, EvidenceError> {
        let review = Review::from_facts(facts)?;
        let subject = commit_subject(&review.repository, &review.commit)?;
        Statement::new(vec![subject], review)
    }
}

/// Reads only `predicateType` (after the size bound) and refuses any other than
/// `expected`, so a statement of another type is refused as such, not as a
/// predicate that failed to parse.
pub(crate) fn check_predicate_type(
    bytes: &[u8],
    expected: &'static str,
) -> Result<(), EvidenceError> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "predicateType")]
        predicate_type: String,
    }
    check_size("an in-toto statement", bytes.len(), MAX_STATEMENT_BYTES)?;
    let head: Head =
        serde_json::from_slice(bytes).map_err(EvidenceError::json("in-toto statement"))?;
    if head.predicate_type != expected {
        return Err(EvidenceError::Unexpected {
            what: "the predicateType",
            expected,
            found: head.predicate_type.chars().take(80).collect(),
        });
    }
    Ok(())
}

/// Verifies `bundle`'s signature with `key` (as [`Bundle::verify`]: no log
/// entries) and returns its payload, which must be an in-toto statement.
pub(crate) fn verified_in_toto_payload<'b>(
    bundle: &'b Bundle,
    key: &VerifyingKey,
) -> Result<&'b [u8], EvidenceError> {
    let payload = bundle.verify(key)?;
    if bundle.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(EvidenceError::Unexpected {
            what: "the DSSE payloadType",
            expected: IN_TOTO_PAYLOAD_TYPE,
            found: bundle.envelope.payload_type.chars().take(80).collect(),
        });
    }
    Ok(payload)
}

/// A full git object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn check_commit(commit: &str) -> Result<(), EvidenceError> {
    let c = commit.as_bytes();
    let hex = c
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    if hex && (c.len() == 40 || c.len() == 64) {
        Ok(())
    } else {
        Err(EvidenceError::Invalid {
            what: "reviewed commit",
            reason: "it is not a full lowercase hex git object id (40 or 64 digits)",
        })
    }
}

/// Non-empty, at most `limit` bytes, no control characters (a multi-line text
/// may hold newlines and tabs).
fn check_text(
    what: &'static str,
    text: &str,
    limit: usize,
    multi_line: bool,
) -> Result<(), EvidenceError> {
    if text.trim().is_empty() {
        return Err(EvidenceError::Invalid {
            what,
            reason: "it is empty",
        });
    }
    if text.len() > limit {
        return Err(EvidenceError::TooLarge {
            what,
            size: text.len(),
            limit,
        });
    }
    let allowed = |c: char| multi_line && (c == '\n' || c == '\t');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(EvidenceError::Invalid {
            what,
            reason: "it contains control characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_digest_is_derived_from_the_commit_alone() {
        let commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        assert_eq!(
            commit_subject_digest(commit),
            sha256(format!("git-commit:{commit}").as_bytes())
        );
        assert_ne!(commit_subject_digest(commit), sha256(commit.as_bytes()));
    }

    #[test]
    fn the_author_email_comes_from_the_git_ident() {
        let mut review = Review {
            repository: "r".into(),
            commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
            verdict: Verdict::Approve,
            reviewer: "bob".into(),
            author: "Alice <Alice@Example.invalid>".into(),
            reviewed_at: "2025-11-25T12:00:00.000Z".into(),
            comment: None,
        };
        assert_eq!(review.author_email(), Some("Alice@Example.invalid"));
        for ident in ["Alice", "Alice <>", "Alice <a@b"] {
            review.author = ident.into();
            assert_eq!(review.author_email(), None, "{ident}");
        }
    }

    #[test]
    fn verdicts_have_their_wire_names() {
        for (v, name) in [
            (Verdict::Approve, "approve"),
            (Verdict::RequestChanges, "request-changes"),
        ] {
            assert_eq!(v.as_str(), name);
            assert_eq!(
                serde_json::to_value(v).expect("serialises"),
                serde_json::Value::String(name.to_owned())
            );
        }
    }
}

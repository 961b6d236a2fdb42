//! C2SP checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed
//! statement of a log's size and root, carried as a signed note.
//!
//! Body: the origin line, the tree size in decimal, the root hash in
//! standard base64, then optional non-empty extension lines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::merkle::Hash;
use crate::note::{self, Note, NoteError, Verifier};

/// The most extension lines accepted after the root line.
pub const MAX_EXTENSION_LINES: usize = 64;
/// The longest line accepted in a checkpoint body.
pub const MAX_LINE: usize = 1024;

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint body: {0}")]
    Malformed(&'static str),
    #[error("the checkpoint's origin is `{found}`, expected `{expected}`")]
    WrongOrigin { expected: String, found: String },
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// A checkpoint body (tlog-checkpoint §Note text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a checkpoint body (the note text), strictly.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        note::check_text(text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("does not end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() || origin.len() > MAX_LINE {
            return Err(CheckpointError::Malformed("empty or overlong origin line"));
        }
        let size = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing size line"))?;
        let size = parse_decimal(size).ok_or(CheckpointError::Malformed(
            "the size is not a canonical decimal number",
        ))?;
        let root = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing root line"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(CheckpointError::Malformed(
                "the root is not 32 bytes of standard base64",
            ))?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() || line.len() > MAX_LINE {
                return Err(CheckpointError::Malformed(
                    "empty or overlong extension line",
                ));
            }
            if extensions.len() == MAX_EXTENSION_LINES {
                return Err(CheckpointError::Malformed("too many extension lines"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The body as note text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for ext in &self.extensions {
            out.push_str(ext);
            out.push('\n');
        }
        out
    }
}

/// A verified checkpoint and the names of the keys that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signed_by: Vec<String>,
}

/// Parses a signed checkpoint, checks its origin, and verifies it against
/// `verifiers` (at least one must have signed).
pub fn open(
    signed: &[u8],
    origin: &str,
    verifiers: &[Verifier],
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note = Note::parse(signed)?;
    let checkpoint = Checkpoint::parse(note.text())?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin {
            expected: origin.to_owned(),
            found: checkpoint.origin,
        });
    }
    let signed_by = note
        .verify(verifiers)?
        .into_iter()
        .map(|v| v.name().to_owned())
        .collect();
    Ok(VerifiedCheckpoint {
        checkpoint,
        signed_by,
    })
}

/// A canonical decimal u64: digits only, no sign, no leading zeros.
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty()
        || text.len() > 20
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

//! Content digests (`sha256:<hex>`, OCI image-spec "Digests"): cairn's one
//! [`Digest`] type, and a streaming hasher over cairn's one SHA-256
//! ([`cairn_evidence::Sha256Hasher`]) that also counts bytes.

use std::fmt;

pub use cairn_model::Digest;
use cairn_model::DigestError;

use crate::Error;

impl From<DigestError> for Error {
    fn from(e: DigestError) -> Error {
        Error::InvalidDigest { value: e.text }
    }
}

/// A streaming sha256 hasher that also counts bytes.
pub struct Sha256 {
    hasher: cairn_evidence::Sha256Hasher,
    len: u64,
}

impl Sha256 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self {
            hasher: cairn_evidence::Sha256Hasher::new(),
            len: 0,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes were fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        self.hasher.finish()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sha256").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_hashes() {
        let mut h = Sha256::new();
        assert!(h.is_empty());
        h.update(b"{");
        h.update(b"}");
        assert_eq!(h.len(), 2);
        assert_eq!(
            h.finish().to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let err = Error::from(Digest::parse("sha512:00").unwrap_err());
        assert!(err.to_string().contains("invalid digest"), "{err}");
    }
}

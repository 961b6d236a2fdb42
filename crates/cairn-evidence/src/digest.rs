//! SHA-256 (FIPS 180-4 via AWS-LC): THE hasher of cairn, yielding the one
//! digest type, [`cairn_model::Digest`] (whose hex alone is the `sha256` entry of
//! an in-toto `DigestSet`). `cairn-oci` and `cairn-registry` hash through it.

use std::fmt;

pub use cairn_model::Digest;

/// The SHA-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    let mut hasher = Sha256Hasher::new();
    hasher.update(bytes);
    hasher.finish()
}

/// Incremental SHA-256: logs the engine sees line by line, blobs streamed to
/// and from disk and registries.
pub struct Sha256Hasher(aws_lc_rs::digest::Context);

impl fmt::Debug for Sha256Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Hasher")
    }
}

impl Default for Sha256Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256Hasher {
    pub fn new() -> Self {
        Sha256Hasher(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        let digest = self.0.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Digest::from_bytes(out)
    }
}

/// The digest of a step log given as its lines (without their newline): the
/// SHA-256 of every line followed by `\n`, which is the log as a text file. This is
/// the digest cairn puts in provenance `byproducts`.
pub fn hash_log_lines<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Digest {
    let mut hasher = Sha256Hasher::new();
    for line in lines {
        hasher.update(line);
        hasher.update(b"\n");
    }
    hasher.finish()
}

#[cfg(test)]
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_fips_180_2() {
        assert_eq!(
            sha256(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256(b"{}").to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut hasher = Sha256Hasher::new();
        for part in [&b"ab"[..], b"", b"c"] {
            hasher.update(part);
        }
        assert_eq!(hasher.finish(), sha256(b"abc"));
    }

    #[test]
    fn log_lines_hash_as_a_text_file() {
        let lines: [&[u8]; 2] = [b"compiling", b"done"];
        assert_eq!(hash_log_lines(lines), sha256(b"compiling\ndone\n"));
        assert_eq!(hash_log_lines(std::iter::empty()), sha256(b""));
    }
}

//! Content digests in the OCI form `sha256:<hex>` (image-spec 1.1
//! `descriptor.md#digests`): cairn's one [`Digest`] type, hashed with cairn's one
//! SHA-256 ([`cairn_evidence::Sha256Hasher`]) while streaming, and converted to
//! and from oci-spec's descriptor digests.

use std::io::{self, Read, Write};
use std::str::FromStr;

pub use cairn_model::Digest;
use cairn_model::DigestError;

use crate::OciError;

pub(crate) use cairn_evidence::Sha256Hasher as Hasher;

impl From<DigestError> for OciError {
    fn from(e: DigestError) -> OciError {
        OciError::InvalidDigest { text: e.text }
    }
}

/// The same digest as oci-spec's type, for descriptors.
pub(crate) fn to_oci(digest: Digest) -> Result<oci_spec::image::Digest, OciError> {
    oci_spec::image::Sha256Digest::from_str(&digest.hex())
        .map(Into::into)
        .map_err(|_| OciError::InvalidDigest {
            text: digest.to_string(),
        })
}

/// Parses an oci-spec digest strictly (sha256 only).
pub(crate) fn from_oci(digest: &oci_spec::image::Digest) -> Result<Digest, OciError> {
    Ok(Digest::parse(digest.as_ref())?)
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashWriter<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Hasher,
    pub(crate) count: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through it.
pub(crate) struct HashReader<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Hasher,
    pub(crate) count: u64,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_spec_digests_round_trip_and_stay_strict() {
        let d = cairn_evidence::sha256(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(from_oci(&to_oci(d).expect("oci")).expect("round trip"), d);
        let upper = format!("sha256:{}", d.hex().to_uppercase());
        let err = OciError::from(Digest::parse(&upper).unwrap_err());
        assert!(err.to_string().contains("invalid digest"), "{err}");
    }
}

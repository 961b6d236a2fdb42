//! SHA-256 content digests in the OCI form `sha256:<hex>` (image-spec 1.1
//! `descriptor.md#digests`), and a hasher to compute them while streaming.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use crate::OciError;

/// A SHA-256 digest; displays as `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Strictly parses `sha256:<64 lowercase hex digits>`; any other algorithm,
    /// case or length is an error.
    pub fn parse(text: &str) -> Result<Digest, OciError> {
        let bad = || OciError::InvalidDigest {
            text: text.chars().take(80).collect(),
        };
        let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
        Digest::from_hex(hex).ok_or_else(bad)
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new();
        hasher.update(bytes);
        hasher.finish()
    }

    /// The 64 lowercase hex digits (the blob's file name under `blobs/sha256/`).
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        out
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn from_hex(hex: &str) -> Option<Digest> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
        }
        Some(Digest(out))
    }

    /// The same digest as oci-spec's type, for descriptors.
    pub(crate) fn to_oci(self) -> Result<oci_spec::image::Digest, OciError> {
        oci_spec::image::Sha256Digest::from_str(&self.hex())
            .map(Into::into)
            .map_err(|_| OciError::InvalidDigest {
                text: self.to_string(),
            })
    }

    /// Parses an oci-spec digest strictly (sha256 only).
    pub(crate) fn from_oci(digest: &oci_spec::image::Digest) -> Result<Digest, OciError> {
        Digest::parse(digest.as_ref())
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

/// Incremental SHA-256 (AWS-LC).
pub(crate) struct Hasher(aws_lc_rs::digest::Context);

impl Hasher {
    pub(crate) fn new() -> Hasher {
        Hasher(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub(crate) fn finish(self) -> Digest {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        Digest(out)
    }
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
    fn parse_is_strict() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d = Digest::parse(&format!("sha256:{hex}")).expect("valid");
        assert_eq!(d, Digest::of_bytes(b""));
        assert_eq!(d.hex(), hex);
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        for bad in [
            hex.to_string(),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha512:{hex}"),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{hex}0"),
            format!("SHA256:{hex}"),
            format!(" sha256:{hex}"),
            format!("sha256:{}g", &hex[1..]),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(
            Digest::from_oci(&d.to_oci().expect("oci")).expect("round trip"),
            d
        );
    }
}

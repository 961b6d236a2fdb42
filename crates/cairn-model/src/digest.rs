//! THE content digest of cairn: SHA-256, written `sha256:` and 64 lowercase hex
//! digits (OCI image-spec 1.1 `descriptor.md#digests`; the hex alone is the
//! in-toto `DigestSet` `sha256` entry). Parsing is strict and any other
//! algorithm is refused (fail closed). No hashing here — this floor stays free
//! of crypto crates: `cairn_evidence::digest` hashes and yields this type.

use std::fmt;
use std::str::FromStr;

/// The prefix of a digest's text form.
pub const SHA256_PREFIX: &str = "sha256:";

/// A SHA-256 digest; displays as `sha256:` and 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// A text that is not a digest of the strict form; holds its first 80 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a sha256 digest (`sha256:` and 64 lowercase hex digits)")]
pub struct DigestError {
    pub text: String,
}

impl DigestError {
    fn of(text: &str) -> DigestError {
        DigestError {
            text: text.chars().take(80).collect(),
        }
    }
}

impl Digest {
    /// Strictly parses `sha256:<64 lowercase hex digits>`; any other algorithm,
    /// case, length, or surrounding byte is an error.
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        text.strip_prefix(SHA256_PREFIX)
            .and_then(decode_hex)
            .map(Digest)
            .ok_or_else(|| DigestError::of(text))
    }

    /// Strictly parses the 64 lowercase hex digits alone (an in-toto `DigestSet`
    /// value, a blob's file name under `blobs/sha256/`).
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        decode_hex(hex)
            .map(Digest)
            .ok_or_else(|| DigestError::of(hex))
    }

    /// The digest whose raw 32 bytes these are (a hasher's output).
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without `sha256:`.
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        out
    }

    /// Whether `text` is a digest of the strict form.
    pub fn is_valid(text: &str) -> bool {
        Digest::parse(text).is_ok()
    }
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
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
        write!(f, "{SHA256_PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SHA256_PREFIX}{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays_the_strict_form() {
        let d = Digest::parse(&format!("sha256:{EMPTY}")).expect("valid");
        assert_eq!(d.hex(), EMPTY);
        assert_eq!(d.to_string(), format!("sha256:{EMPTY}"));
        assert_eq!(format!("{d:?}"), format!("sha256:{EMPTY}"));
        assert_eq!(Digest::from_hex(EMPTY).expect("hex"), d);
        assert_eq!(d.as_bytes()[..4], [0xe3, 0xb0, 0xc4, 0x42]);
        assert_eq!(Digest::from_bytes(*d.as_bytes()), d);
        let json = serde_json::to_string(&d).expect("serialises");
        assert_eq!(json, format!("\"sha256:{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).expect("reads"), d);
        assert!(serde_json::from_str::<Digest>(&format!("\"{EMPTY}\"")).is_err());
    }

    #[test]
    fn refuses_every_other_form() {
        for bad in [
            String::new(),
            "sha256:".to_owned(),
            EMPTY.to_owned(),
            format!("sha256:{}", EMPTY.to_uppercase()),
            format!("sha512:{EMPTY}"),
            format!("SHA256:{EMPTY}"),
            format!("sha256:{}", &EMPTY[1..]),
            format!("sha256:{EMPTY}0"),
            format!(" sha256:{EMPTY}"),
            format!("sha256:{EMPTY}/"),
            format!("sha256:{}g", &EMPTY[1..]),
            format!("sha256:{}\u{e9}", &EMPTY[2..]),
        ] {
            let err = Digest::parse(&bad).expect_err(&bad);
            assert!(err.to_string().contains("not a sha256 digest"), "{err}");
            assert!(!Digest::is_valid(&bad));
        }
        for bad in [
            "",
            "abc",
            &EMPTY[1..],
            &EMPTY.to_uppercase(),
            &"g".repeat(64),
        ] {
            assert!(Digest::from_hex(bad).is_err(), "{bad}");
        }
        // An error never carries more than 80 characters of what it was given.
        let long = "x".repeat(10_000);
        assert_eq!(Digest::parse(&long).unwrap_err().text.len(), 80);
    }

    #[test]
    fn orders_as_its_text() {
        let a = Digest::from_bytes([0; 32]);
        let b = Digest::from_bytes([0xff; 32]);
        assert!(a < b && a.to_string() < b.to_string());
    }
}

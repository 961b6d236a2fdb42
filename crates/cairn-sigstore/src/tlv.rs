//! A minimal, bounded DER TLV reader and writer, for the few places where the
//! raw bytes matter: a certificate's signed TBS, the precertificate TBS an SCT
//! signs (RFC 6962 §3.2), and the RFC 3161 / CMS (RFC 5652) structures.
//! Typed X.509 parsing is `x509-cert`'s job; this only splits and re-joins bytes.

use crate::error::VerifyError;

/// One DER element: its tag byte, its content, and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

fn malformed(what: &'static str) -> VerifyError {
    VerifyError::Der { what }
}

/// Reads one element from the front of `input`; returns it and the rest.
/// Only single-byte tags and definite lengths (DER) are accepted.
pub(crate) fn read<'a>(
    input: &'a [u8],
    what: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), VerifyError> {
    let (&tag, rest) = input.split_first().ok_or_else(|| malformed(what))?;
    if tag & 0x1f == 0x1f {
        return Err(malformed(what));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(|| malformed(what))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(malformed(what));
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(malformed(what));
    }
    let header = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            content,
            raw: &input[..header + len],
        },
        after,
    ))
}

/// Reads one element that must have `tag`.
pub(crate) fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), VerifyError> {
    let (tlv, rest) = read(input, what)?;
    if tlv.tag != tag {
        return Err(malformed(what));
    }
    Ok((tlv, rest))
}

/// All elements of a constructed value's content, at most `max` of them.
pub(crate) fn children<'a>(
    mut content: &'a [u8],
    max: usize,
    what: &'static str,
) -> Result<Vec<Tlv<'a>>, VerifyError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        if out.len() >= max {
            return Err(malformed(what));
        }
        let (tlv, rest) = read(content, what)?;
        out.push(tlv);
        content = rest;
    }
    Ok(out)
}

/// Encodes a DER header and content.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let enc = encode(SEQUENCE, &content);
            let (tlv, rest) = read(&enc, "t").expect("reads back");
            assert_eq!(tlv.tag, SEQUENCE);
            assert_eq!(tlv.content.len(), len);
            assert_eq!(tlv.raw.len(), enc.len());
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn rejects_truncated_and_indefinite() {
        assert!(read(&[0x30], "t").is_err());
        assert!(read(&[0x30, 0x05, 1, 2], "t").is_err());
        assert!(read(&[0x30, 0x80, 0, 0], "t").is_err());
        assert!(read(&[0x1f, 0x01, 0], "t").is_err());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1], "t").is_err());
        assert!(expect(&[0x31, 0x00], SEQUENCE, "t").is_err());
    }
}

//! The trusted root (protobuf-specs `TrustedRoot` v0.1): transparency logs,
//! Fulcio CAs, CT logs and timestamp authorities, each with a validity window.

use crate::crypto::{PublicKey, sha256};
use crate::error::VerifyError;
use crate::time::parse_rfc3339;
use crate::wire;
use crate::x509::Pool;

/// The most bytes a trusted root may have.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 4 << 20;
const MAX_ENTRIES: usize = 256;

/// A validity window in Unix seconds, both ends inclusive. A window without a
/// start is never valid (a trust root must say since when it trusts a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        match self.start {
            Some(start) => t >= start && self.end.is_none_or(|end| t <= end),
            None => false,
        }
    }

    fn parse(v: Option<&wire::ValidFor>) -> Result<Window, VerifyError> {
        let Some(v) = v else {
            return Ok(Window {
                start: None,
                end: None,
            });
        };
        let parse = |s: &Option<String>| -> Result<Option<i64>, VerifyError> {
            s.as_deref()
                .map(|s| {
                    parse_rfc3339(s).ok_or(VerifyError::TrustedRoot {
                        what: "a validFor time is not RFC 3339",
                    })
                })
                .transpose()
        };
        Ok(Window {
            start: parse(&v.start)?,
            end: parse(&v.end)?,
        })
    }
}

/// A transparency log (Rekor) or a certificate transparency log.
#[derive(Debug, Clone)]
pub struct Log {
    pub base_url: String,
    pub key: PublicKey,
    /// The log id: SHA-256 of the key's DER SubjectPublicKeyInfo (as listed).
    pub key_id: Vec<u8>,
    pub valid: Window,
}

impl Log {
    /// The host part of `base_url` (`https://rekor.sigstore.dev` → `rekor.sigstore.dev`).
    pub fn host(&self) -> &str {
        let s = self.base_url.as_str();
        let s = s.split_once("://").map_or(s, |(_, rest)| rest);
        s.trim_end_matches('/')
    }

    /// The 4-byte signed-note key hint: the first bytes of SHA-256 of the DER key.
    pub fn key_hint(&self) -> [u8; 4] {
        let h = sha256(self.key.spki_der());
        [h[0], h[1], h[2], h[3]]
    }
}

/// A certificate authority (Fulcio) or timestamp authority: its chain, leaf
/// (or intermediate) first and root last, in DER.
#[derive(Debug, Clone)]
pub struct Authority {
    chain: Vec<Vec<u8>>,
    pub valid: Window,
    /// The chain parsed, with its internal signatures checked once; `None`
    /// when a certificate in it does not parse (verification then reports
    /// why, at the time it needs this authority). Private, and built with the
    /// chain, so it can never describe another chain.
    prepared: Option<Pool>,
}

impl Authority {
    pub fn new(chain: Vec<Vec<u8>>, valid: Window) -> Authority {
        let prepared = Pool::new(&chain).ok();
        Authority {
            chain,
            valid,
            prepared,
        }
    }

    /// The chain, leaf (or intermediate) first and root last, in DER.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The prepared chain, or why it cannot be used.
    pub(crate) fn pool(&self) -> Result<&Pool, VerifyError> {
        match &self.prepared {
            Some(pool) => Ok(pool),
            // Parse again only to say what is wrong (the error is not `Clone`).
            None => Err(Pool::new(&self.chain)
                .err()
                .unwrap_or(VerifyError::TrustedRoot {
                    what: "an authority's chain does not parse",
                })),
        }
    }
}

/// What the verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoot {
    pub tlogs: Vec<Log>,
    pub certificate_authorities: Vec<Authority>,
    pub ctlogs: Vec<Log>,
    pub timestamp_authorities: Vec<Authority>,
}

impl TrustedRoot {
    /// Parses `trusted_root.json`.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, VerifyError> {
        if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(VerifyError::TooLarge {
                what: "the trusted root",
                size: bytes.len(),
                max: MAX_TRUSTED_ROOT_BYTES,
            });
        }
        let json: wire::TrustedRootJson =
            serde_json::from_slice(bytes).map_err(|source| VerifyError::Json {
                what: "the trusted root",
                source,
            })?;
        if json.tlogs.len() + json.ctlogs.len() > MAX_ENTRIES
            || json.certificate_authorities.len() + json.timestamp_authorities.len() > MAX_ENTRIES
        {
            return Err(VerifyError::TrustedRoot {
                what: "too many entries",
            });
        }
        Ok(TrustedRoot {
            tlogs: json.tlogs.iter().map(log).collect::<Result<_, _>>()?,
            certificate_authorities: json
                .certificate_authorities
                .iter()
                .map(authority)
                .collect::<Result<_, _>>()?,
            ctlogs: json.ctlogs.iter().map(log).collect::<Result<_, _>>()?,
            timestamp_authorities: json
                .timestamp_authorities
                .iter()
                .map(authority)
                .collect::<Result<_, _>>()?,
        })
    }

    /// An empty root: only key-based verification without log checks is possible.
    pub fn empty() -> TrustedRoot {
        TrustedRoot::default()
    }
}

fn log(l: &wire::LogJson) -> Result<Log, VerifyError> {
    let der_key = crate::b64(&l.public_key.raw_bytes, "a trusted log key")?;
    Ok(Log {
        base_url: l.base_url.clone(),
        key: if l.public_key.key_details.starts_with("PKCS1_RSA") {
            PublicKey::from_pkcs1_rsa(&der_key)?
        } else {
            PublicKey::from_spki_der(&der_key)?
        },
        key_id: crate::b64(&l.log_id.key_id, "a trusted log id")?,
        valid: Window::parse(l.public_key.valid_for.as_ref())?,
    })
}

fn authority(a: &wire::CaJson) -> Result<Authority, VerifyError> {
    if a.cert_chain.certificates.is_empty() || a.cert_chain.certificates.len() > crate::MAX_CHAIN {
        return Err(VerifyError::TrustedRoot {
            what: "an authority's chain is empty or too long",
        });
    }
    Ok(Authority::new(
        a.cert_chain
            .certificates
            .iter()
            .map(|c| crate::b64(&c.raw_bytes, "a trusted certificate"))
            .collect::<Result<_, _>>()?,
        Window::parse(a.valid_for.as_ref())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_needs_a_start_and_is_inclusive() {
        let w = Window {
            start: Some(10),
            end: Some(20),
        };
        assert!(!w.contains(9));
        assert!(w.contains(10));
        assert!(w.contains(20));
        assert!(!w.contains(21));
        let open = Window {
            start: Some(10),
            end: None,
        };
        assert!(open.contains(i64::MAX));
        let no_start = Window {
            start: None,
            end: Some(20),
        };
        assert!(!no_start.contains(15));
    }

    #[test]
    fn rejects_bad_roots() {
        assert!(TrustedRoot::from_json(b"{").is_err());
        assert!(
            TrustedRoot::from_json(
                br#"{"tlogs":[{"publicKey":{"rawBytes":"!!"},"logId":{"keyId":""}}]}"#
            )
            .is_err()
        );
        let empty = TrustedRoot::from_json(b"{}").expect("an empty root parses");
        assert!(empty.tlogs.is_empty());
    }
}

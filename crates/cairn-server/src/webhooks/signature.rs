//! Authenticating a delivery over its raw body, before anything parses it.
//! GitHub and Gitea sign the body with HMAC-SHA256 (RFC 2104, FIPS 180-4) under
//! the shared secret and send the tag in hex; GitLab sends the secret itself.
//! Every comparison is constant-time (`aws_lc_rs::hmac::verify`,
//! [`Secret::matches`]).

use aws_lc_rs::hmac;

use crate::secret::Secret;

/// Why a delivery is not authentic (never says what the right value was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadSignature {
    /// The server has no secret: nothing can be authenticated.
    NoSecret,
    Missing,
    /// Not `sha256=` + 64 hex digits (or 64 hex digits, for Gitea).
    Malformed,
    Mismatch,
    /// The token is not the secret (GitLab).
    WrongToken,
}

impl BadSignature {
    pub fn detail(self, header: &str) -> String {
        match self {
            BadSignature::NoSecret => "the server has no webhook secret".to_owned(),
            BadSignature::Missing => format!("the delivery has no `{header}` header"),
            BadSignature::Malformed => {
                format!("the `{header}` header is not a SHA-256 HMAC in hex")
            }
            BadSignature::Mismatch => {
                format!("the `{header}` header does not match the body under the webhook secret")
            }
            BadSignature::WrongToken => format!("the `{header}` header is not the webhook secret"),
        }
    }
}

/// Checks `hex_tag` (HMAC-SHA256 of `body` under `secret`, lowercase or
/// uppercase hex) in constant time.
pub fn verify_hmac_sha256(
    secret: &Secret,
    body: &[u8],
    hex_tag: Option<&str>,
) -> Result<(), BadSignature> {
    if secret.expose().is_empty() {
        return Err(BadSignature::NoSecret);
    }
    let hex_tag = hex_tag.ok_or(BadSignature::Missing)?;
    let tag = decode_hex(hex_tag.trim()).ok_or(BadSignature::Malformed)?;
    if tag.len() != 32 {
        return Err(BadSignature::Malformed);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose());
    hmac::verify(&key, body, &tag).map_err(|_| BadSignature::Mismatch)
}

/// GitHub's `X-Hub-Signature-256: sha256=<hex>`.
pub fn verify_github(
    secret: &Secret,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), BadSignature> {
    match header {
        None => verify_hmac_sha256(secret, body, None),
        Some(value) => match value.trim().strip_prefix("sha256=") {
            Some(hex_tag) => verify_hmac_sha256(secret, body, Some(hex_tag)),
            None if secret.expose().is_empty() => Err(BadSignature::NoSecret),
            None => Err(BadSignature::Malformed),
        },
    }
}

/// GitLab's `X-Gitlab-Token: <secret>`, compared in constant time.
pub fn verify_token(secret: &Secret, header: Option<&str>) -> Result<(), BadSignature> {
    if secret.expose().is_empty() {
        return Err(BadSignature::NoSecret);
    }
    let token = header.ok_or(BadSignature::Missing)?;
    if secret.matches(token.as_bytes()) {
        Ok(())
    } else {
        Err(BadSignature::WrongToken)
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// HMAC-SHA256 of `body` under `secret`, lowercase hex (what a forge sends).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    crate::secret::hex(hmac::sign(&key, body).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"It's a Secret to Everybody".to_vec())
    }

    /// GitHub's documented example ("Validating webhook deliveries").
    #[test]
    fn github_documented_vector() {
        let body = b"Hello, World!";
        let tag = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret().expose(), body), tag);
        assert_eq!(
            verify_github(&secret(), body, Some(&format!("sha256={tag}"))),
            Ok(())
        );
        assert_eq!(
            verify_github(
                &secret(),
                body,
                Some(&format!("sha256={}", tag.to_uppercase()))
            ),
            Ok(())
        );
    }

    #[test]
    fn refusals() {
        let s = secret();
        let body = b"{}";
        let good = sign(s.expose(), body);
        let cases: &[(Option<&str>, BadSignature)] = &[
            (None, BadSignature::Missing),
            (Some(""), BadSignature::Malformed),
            (Some("zz"), BadSignature::Malformed),
            (Some("abc"), BadSignature::Malformed),
            (Some("00"), BadSignature::Malformed),
            (Some(&good[..62]), BadSignature::Malformed),
            (
                Some("0000000000000000000000000000000000000000000000000000000000000000"),
                BadSignature::Mismatch,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                verify_hmac_sha256(&s, body, *header),
                Err(*want),
                "{header:?}"
            );
        }
        assert_eq!(verify_hmac_sha256(&s, body, Some(&good)), Ok(()));
        assert_eq!(
            verify_hmac_sha256(&s, b"{} ", Some(&good)),
            Err(BadSignature::Mismatch)
        );
        assert_eq!(
            verify_github(&s, body, Some(&good)),
            Err(BadSignature::Malformed)
        );
        let empty = Secret::new(Vec::new());
        assert_eq!(
            verify_hmac_sha256(&empty, body, Some(&sign(b"", body))),
            Err(BadSignature::NoSecret)
        );
        assert_eq!(verify_token(&empty, Some("")), Err(BadSignature::NoSecret));
        assert_eq!(verify_token(&s, Some("It's a Secret to Everybody")), Ok(()));
        assert_eq!(
            verify_token(&s, Some("It's a Secret to Everybod")),
            Err(BadSignature::WrongToken)
        );
        assert_eq!(verify_token(&s, None), Err(BadSignature::Missing));
    }
}

//! JSON Web Tokens as OpenID Connect uses them (RFC 7515/7519, compact form
//! only), parsed by hand with serde_json and verified with aws-lc-rs against a
//! key of the provider's JWKS (RFC 7517).
//!
//! Why by hand: the JWT crates either bring their own crypto backend (ring,
//! RustCrypto, OpenSSL) besides aws-lc-rs, or accept more than OIDC needs
//! (`alg` chosen by the token, HMAC with a public key as secret). What OIDC
//! needs is small: split three base64url parts, read two JSON objects, verify
//! one signature with an allow-listed algorithm. Every rule is here:
//!
//! - Only RS256/384/512, PS256/384/512, ES256 and ES384; `none` and the HMAC
//!   algorithms are refused by name; a `crit` header is refused (no extension
//!   is understood).
//! - The key comes from the JWKS only (never from the token's `jwk`, `jku`,
//!   `x5u` or `x5c`): by `kid`, or the one key of the algorithm's type when
//!   the token names none. Its `kty` (and `crv`) must fit the algorithm, its
//!   `alg` (when given) must be the token's, its `use` (when given) `sig`; RSA
//!   keys of at least 2048 bits.
//! - Bounded: a token of at most [`MAX_TOKEN`] bytes, a JWKS of at most
//!   [`MAX_KEYS`] keys.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use serde_json::{Map, Value};

/// The longest token read.
pub const MAX_TOKEN: usize = 16 * 1024;
/// The most keys kept from a JWKS.
pub const MAX_KEYS: usize = 64;

/// Why a token was refused. The message never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the token is not a signed JWT (three base64url parts)")]
    Malformed,
    #[error(
        "the token's algorithm `{0}` is refused (only RS256/384/512, PS256/384/512, ES256, ES384)"
    )]
    Algorithm(String),
    #[error(
        "the token's header marks extensions critical (`crit`), which cairn does not understand"
    )]
    Critical,
    #[error("the token's key (kid `{0}`) is not in the provider's JWKS")]
    UnknownKey(String),
    #[error("the token's signature does not verify with the provider's key")]
    BadSignature,
    #[error("the token's issuer `{found}` is not the configured issuer `{expected}`")]
    Issuer { found: String, expected: String },
    #[error("the token's audience {found} is not {expected}")]
    Audience { found: String, expected: String },
    #[error("the token expired {0}s ago")]
    Expired(i64),
    #[error("the token is not valid yet (nbf is {0}s ahead)")]
    NotYetValid(i64),
    #[error("the token has no `{0}` claim")]
    Missing(&'static str),
    #[error("the ID token's nonce is not the one this login sent")]
    Nonce,
    #[error("the ID token's authorized party (azp) is not this client")]
    AuthorizedParty,
}

/// A key of the provider's JWKS.
#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub key: KeyMaterial,
}

#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed point (`04 || x || y`) on `crv`.
    Ec { crv: String, point: Vec<u8> },
}

/// The keys of a JWKS document that cairn can use to verify (signing keys of
/// a supported type); others are skipped. Garbage is an error.
pub fn parse_jwks(bytes: &[u8]) -> Result<Vec<Jwk>, String> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|_| "the JWKS is not JSON".to_owned())?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the JWKS has no `keys` array".to_owned())?;
    let mut out = Vec::new();
    for key in keys.iter().take(MAX_KEYS * 4) {
        let s = |name: &str| key.get(name).and_then(Value::as_str);
        if s("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let b = |name: &str| s(name).and_then(|v| b64(v).ok());
        let material = match s("kty") {
            Some("RSA") => match (b("n"), b("e")) {
                (Some(n), Some(e)) => KeyMaterial::Rsa {
                    n: strip_zeros(n),
                    e: strip_zeros(e),
                },
                _ => continue,
            },
            Some("EC") => match (s("crv"), b("x"), b("y")) {
                (Some(crv @ ("P-256" | "P-384")), Some(x), Some(y)) => {
                    let len = if crv == "P-256" { 32 } else { 48 };
                    if x.len() != len || y.len() != len {
                        continue;
                    }
                    let mut point = vec![4u8];
                    point.extend(x);
                    point.extend(y);
                    KeyMaterial::Ec {
                        crv: crv.to_owned(),
                        point,
                    }
                }
                _ => continue,
            },
            _ => continue,
        };
        out.push(Jwk {
            kid: s("kid").map(|k| k.chars().take(256).collect()),
            alg: s("alg").map(str::to_owned),
            key: material,
        });
        if out.len() == MAX_KEYS {
            break;
        }
    }
    Ok(out)
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros.min(v.len().saturating_sub(1)));
    v
}

fn b64(s: &str) -> Result<Vec<u8>, Refused> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Refused::Malformed)
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct Unverified<'t> {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    signed: &'t str,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS; refuses a refused algorithm or a
/// critical header before anything else.
pub fn decode(token: &str) -> Result<Unverified<'_>, Refused> {
    if token.len() > MAX_TOKEN {
        return Err(Refused::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed);
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&b64(h)?).map_err(|_| Refused::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Refused::Malformed)?
        .to_owned();
    if algorithm(&alg).is_none() {
        return Err(Refused::Algorithm(alg.chars().take(32).collect()));
    }
    if header.contains_key("crit") {
        return Err(Refused::Critical);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.chars().take(256).collect()),
        Some(_) => return Err(Refused::Malformed),
    };
    let claims: Map<String, Value> =
        serde_json::from_slice(&b64(p)?).map_err(|_| Refused::Malformed)?;
    let signature = b64(sig)?;
    if signature.is_empty() {
        return Err(Refused::Algorithm(alg));
    }
    Ok(Unverified {
        alg,
        kid,
        claims,
        signed: &token[..h.len() + 1 + p.len()],
        signature,
    })
}

/// The verification algorithm of a JWS `alg` cairn accepts, and the key type
/// (and curve) it needs.
fn algorithm(alg: &str) -> Option<(&'static dyn VerificationAlgorithm, &'static str)> {
    Some(match alg {
        "RS256" => (&signature::RSA_PKCS1_2048_8192_SHA256, "RSA"),
        "RS384" => (&signature::RSA_PKCS1_2048_8192_SHA384, "RSA"),
        "RS512" => (&signature::RSA_PKCS1_2048_8192_SHA512, "RSA"),
        "PS256" => (&signature::RSA_PSS_2048_8192_SHA256, "RSA"),
        "PS384" => (&signature::RSA_PSS_2048_8192_SHA384, "RSA"),
        "PS512" => (&signature::RSA_PSS_2048_8192_SHA512, "RSA"),
        "ES256" => (&signature::ECDSA_P256_SHA256_FIXED, "P-256"),
        "ES384" => (&signature::ECDSA_P384_SHA384_FIXED, "P-384"),
        _ => return None,
    })
}

impl Unverified<'_> {
    /// The JWKS key this token names: by `kid`, or the only key fitting its
    /// algorithm when it names none. `None`: not in the JWKS.
    pub fn key<'k>(&self, keys: &'k [Jwk]) -> Option<&'k Jwk> {
        let (_, needs) = algorithm(&self.alg)?;
        let fits = |k: &&Jwk| {
            k.alg.as_deref().is_none_or(|a| a == self.alg)
                && match &k.key {
                    KeyMaterial::Rsa { .. } => needs == "RSA",
                    KeyMaterial::Ec { crv, .. } => needs == crv,
                }
        };
        match &self.kid {
            Some(kid) => keys
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid.as_str())),
            None => {
                let mut fitting = keys.iter().filter(fits);
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    /// Verifies the signature with `key`.
    pub fn verify(&self, key: &Jwk) -> Result<(), Refused> {
        let (alg, _) = algorithm(&self.alg).ok_or_else(|| Refused::Algorithm(self.alg.clone()))?;
        let msg = self.signed.as_bytes();
        let ok = match &key.key {
            KeyMaterial::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(
                    alg_rsa(&self.alg).ok_or(Refused::BadSignature)?,
                    msg,
                    &self.signature,
                )
                .is_ok(),
            KeyMaterial::Ec { point, .. } => UnparsedPublicKey::new(alg, point)
                .verify(msg, &self.signature)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(Refused::BadSignature)
        }
    }
}

fn alg_rsa(alg: &str) -> Option<&'static signature::RsaParameters> {
    Some(match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// Allowed clock difference for `exp`, `nbf` and `iat`.
pub const SKEW_S: i64 = 60;

/// What the claims of a verified token must say.
#[derive(Debug)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    /// One of these must be in `aud`.
    pub audiences: &'a [String],
    /// Login ID tokens: the nonce the login sent, and the client id `azp`
    /// must name when `aud` has several values.
    pub nonce: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub now_s: i64,
}

/// Checks issuer, audience, expiry, not-before (and, for a login, nonce and
/// authorized party) of verified claims.
pub fn check_claims(claims: &Map<String, Value>, expect: &Expect<'_>) -> Result<(), Refused> {
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(Refused::Missing("iss"))?;
    if iss != expect.issuer {
        return Err(Refused::Issuer {
            found: iss.chars().take(256).collect(),
            expected: expect.issuer.to_owned(),
        });
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).take(32).collect(),
        _ => return Err(Refused::Missing("aud")),
    };
    if !aud.iter().any(|a| expect.audiences.iter().any(|e| e == a)) {
        let found: Vec<String> = aud.iter().map(|a| a.chars().take(128).collect()).collect();
        return Err(Refused::Audience {
            found: format!("{found:?}"),
            expected: if expect.audiences.len() == 1 {
                format!("`{}`", expect.audiences[0])
            } else {
                format!("one of {:?}", expect.audiences)
            },
        });
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(Refused::Missing("exp"))?;
    if exp.saturating_add(SKEW_S) <= expect.now_s {
        return Err(Refused::Expired(expect.now_s - exp));
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or(Refused::Missing("nbf"))?;
        if nbf > expect.now_s.saturating_add(SKEW_S) {
            return Err(Refused::NotYetValid(nbf - expect.now_s));
        }
    }
    if let Some(nonce) = expect.nonce {
        claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(Refused::Missing("iat"))?;
        let given = claims
            .get("nonce")
            .and_then(Value::as_str)
            .ok_or(Refused::Missing("nonce"))?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), nonce.as_bytes())
            .is_err()
        {
            return Err(Refused::Nonce);
        }
    }
    if let Some(client) = expect.client_id {
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != client => return Err(Refused::AuthorizedParty),
            None if aud.len() > 1 => return Err(Refused::AuthorizedParty),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.{}", b(header), b(r#"{"iss":"i"}"#), b("sig"))
    }

    #[test]
    fn headers_cairn_does_not_understand_are_refused() {
        for (header, refused) in [
            (r#"{"alg":"none"}"#, Refused::Algorithm("none".into())),
            (r#"{"alg":"HS256"}"#, Refused::Algorithm("HS256".into())),
            (r#"{"alg":"EdDSA"}"#, Refused::Algorithm("EdDSA".into())),
            (r#"{"alg":"RS256","crit":["b64"]}"#, Refused::Critical),
            (r#"{"alg":"RS256","kid":7}"#, Refused::Malformed),
            (r#"{"kid":"a"}"#, Refused::Malformed),
        ] {
            assert_eq!(decode(&token(header)).unwrap_err(), refused, "{header}");
        }
        assert_eq!(decode("a.b").unwrap_err(), Refused::Malformed);
        assert_eq!(decode("a.b.c.d").unwrap_err(), Refused::Malformed);
        let huge = format!(
            "{}.{}.{}",
            b(r#"{"alg":"RS256"}"#),
            "e".repeat(MAX_TOKEN),
            "s"
        );
        assert_eq!(decode(&huge).unwrap_err(), Refused::Malformed);
        let empty_sig = format!("{}.{}.", b(r#"{"alg":"ES256"}"#), b("{}"));
        assert!(matches!(decode(&empty_sig), Err(Refused::Algorithm(_))));
    }

    #[test]
    fn the_key_comes_from_the_jwks_and_fits_the_algorithm() {
        let point = b(&"A".repeat(32));
        let jwks = format!(
            r#"{{"keys":[
                {{"kty":"EC","crv":"P-256","kid":"e1","x":"{point}","y":"{point}"}},
                {{"kty":"EC","crv":"P-256","kid":"e2","x":"{point}","y":"{point}","alg":"ES256"}},
                {{"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"{point}","y":"{point}"}},
                {{"kty":"oct","kid":"h","k":"c2VjcmV0"}},
                {{"kty":"RSA","kid":"r1","n":"AQAB","e":"AQAB","alg":"RS256"}}
            ]}}"#
        );
        let keys = parse_jwks(jwks.as_bytes()).unwrap();
        let kids: Vec<_> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, ["e1", "e2", "r1"], "no encryption or symmetric keys");
        let es = |h: &str| decode(&token(h)).unwrap().key(&keys).map(|k| k.kid.clone());
        assert_eq!(es(r#"{"alg":"ES256","kid":"e2"}"#), Some(Some("e2".into())));
        // An RSA kid for an EC algorithm, an unknown kid, two candidates: none.
        assert_eq!(es(r#"{"alg":"ES256","kid":"r1"}"#), None);
        assert_eq!(es(r#"{"alg":"ES256","kid":"x"}"#), None);
        assert_eq!(es(r#"{"alg":"ES256"}"#), None);
        // A key whose alg is RS256 is not used for PS256.
        assert_eq!(es(r#"{"alg":"PS256","kid":"r1"}"#), None);
        // A small RSA key never verifies.
        let t = token(r#"{"alg":"RS256","kid":"r1"}"#);
        let u = decode(&t).unwrap();
        assert_eq!(u.verify(u.key(&keys).unwrap()), Err(Refused::BadSignature));
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(b"{}").is_err());
    }

    #[test]
    fn claims_are_checked_with_a_small_skew() {
        let audiences = ["cairn".to_owned()];
        let expect = |nonce| Expect {
            issuer: "https://idp",
            audiences: &audiences,
            nonce,
            client_id: Some("cairn"),
            now_s: 1_000_000,
        };
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        let ok = claims(
            serde_json::json!({"iss":"https://idp","aud":"cairn","exp":1_000_000 - 30,"iat":1,"nonce":"n"}),
        );
        assert_eq!(check_claims(&ok, &expect(Some("n"))), Ok(()));
        assert_eq!(check_claims(&ok, &expect(Some("m"))), Err(Refused::Nonce));
        let late =
            claims(serde_json::json!({"iss":"https://idp","aud":"cairn","exp":1_000_000 - 61}));
        assert_eq!(
            check_claims(&late, &expect(None)),
            Err(Refused::Expired(61))
        );
        let early = claims(
            serde_json::json!({"iss":"https://idp","aud":"cairn","exp":2_000_000,"nbf":1_000_100}),
        );
        assert_eq!(
            check_claims(&early, &expect(None)),
            Err(Refused::NotYetValid(100))
        );
        let two = claims(
            serde_json::json!({"iss":"https://idp","aud":["cairn","other"],"exp":2_000_000}),
        );
        assert_eq!(
            check_claims(&two, &expect(None)),
            Err(Refused::AuthorizedParty)
        );
        let no_exp = claims(serde_json::json!({"iss":"https://idp","aud":"cairn"}));
        assert_eq!(
            check_claims(&no_exp, &expect(None)),
            Err(Refused::Missing("exp"))
        );
    }
}

//! Single sign-on with the organisation's OpenID Connect provider (`[sso]` in
//! org.toml): the provider's discovery document and keys, ID-token and
//! bearer-token validation, and the mapping of a verified claim to a cairn
//! identity. The browser login (authorization code flow with PKCE) is in
//! `crate::ui`'s `sso`; bearer tokens are taken in `crate::auth`.
//!
//! - Discovery: `<issuer>/.well-known/openid-configuration`, whose `issuer`
//!   must be the configured one exactly, and whose endpoints must be https
//!   (http only on loopback, for tests). Fetched with a bounded body and
//!   bounded time, no redirects; kept for [`DISCOVERY_TTL`].
//! - Keys (JWKS): fetched from the discovery's `jwks_uri`; a token naming a
//!   `kid` not in them makes cairn fetch them again (key rotation), at most
//!   once per `refetch_interval`, so tokens with made-up kids cannot make
//!   cairn hammer the provider.
//! - Several issuers: the login's, and `[[sso.issuers]]` whose tokens are
//!   bearer tokens only (a CI system's workload identity), each a [`Provider`]
//!   with its own keys, audiences and mappings; [`Sso::bearer_provider`]
//!   picks by the token's `iss`, exactly.
//! - A token is refused with its reason ([`jwt::Refused`]); no token, code or
//!   secret is ever in a message or a log line.
//! - Mapping ([`map_claims`]): the first `[[sso.map]]` whose claim matches
//!   names the identity; `email` only when `email_verified` is true. Without
//!   `roles` the identity must exist and be active in the store: its roles are
//!   its bindings. With `roles` ([`mapped_identity`]) org.toml declares it:
//!   made on first sign-on, its bindings kept exactly the declared ones, each
//!   change audited. Nobody matching → no identity, so no role.

pub mod jwt;

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_model::config::{Claim, ClaimMap, SsoConfig, is_oidc_url};
use serde_json::{Map, Value};

/// The longest discovery document or JWKS read.
const MAX_DOCUMENT: u64 = 256 * 1024;
/// The longest token endpoint answer read.
const MAX_TOKEN_ANSWER: u64 = 64 * 1024;
/// How long a discovery document is kept.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long keys are kept before they are fetched again anyway.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// The fewest seconds between two JWKS fetches caused by an unknown `kid`.
pub const JWKS_REFETCH: Duration = Duration::from_secs(30);
/// Time for one request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the provider's discovery document says cairn needs.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// Why single sign-on could not be done (the provider, not the user's token).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("single sign-on is not configured ([sso] in org.toml)")]
    NotConfigured,
    #[error("{0}")]
    Broken(String),
    #[error("org.toml: {0}")]
    Config(String),
    #[error("the identity provider at {url} could not be reached: {why}")]
    Unreachable { url: String, why: String },
    #[error("the identity provider at {url} answered {status}")]
    Status { url: String, status: u16 },
    /// A failure of moments ago, answered again without asking.
    #[error("{0} (moments ago; retried after a few seconds)")]
    Again(String),
    #[error("the identity provider's {what} at {url} is not usable: {why}")]
    Garbage {
        what: &'static str,
        url: String,
        why: String,
    },
}

/// A verified token's identity, or why there is none.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Refused(#[from] jwt::Refused),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

#[derive(Debug, Default)]
struct Cache {
    discovery: Option<(Discovery, Instant)>,
    keys: Option<(Vec<jwt::Jwk>, Instant)>,
    /// When keys were last fetched because a token named an unknown kid.
    last_refetch: Option<Instant>,
    /// The last failure to fetch the discovery document, answered again for
    /// [`RETRY_AFTER`] instead of asking the provider again.
    failed: Option<(String, Instant)>,
    /// The same for the JWKS.
    keys_failed: Option<(String, Instant)>,
}

/// How long a failure to reach the provider is answered from memory: requests
/// carrying JWT-shaped tokens cannot make cairn flood a provider that is down.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The organisation's provider: its configuration and what was fetched from it.
#[derive(Debug)]
pub struct Provider {
    pub config: SsoConfig,
    /// An issuer of bearer tokens only (`[[sso.issuers]]`): no login, so its
    /// discovery document needs no authorization or token endpoint.
    bearer_only: bool,
    refetch_interval: Duration,
    agent: ureq::Agent,
    cache: Mutex<Cache>,
}

/// The server's single sign-on: configured, misconfigured, or off.
#[derive(Debug)]
pub enum Sso {
    Off,
    Broken(String),
    /// The login's provider, and the issuers of bearer tokens only.
    On(Box<Provider>, Vec<Provider>),
}

impl Sso {
    /// From org.toml in the platform directory.
    pub fn load(platform_dir: Option<&std::path::Path>, refetch_interval: Duration) -> Sso {
        match cairn_engine::load_org(platform_dir) {
            Ok(org) => match org.sso {
                None => Sso::Off,
                Some(config) => {
                    let bearer = config
                        .issuers
                        .iter()
                        .map(|i| Provider {
                            bearer_only: true,
                            ..Provider::new(
                                SsoConfig {
                                    issuer: i.issuer.clone(),
                                    audiences: i.audiences.clone(),
                                    map: i.map.clone(),
                                    issuers: Vec::new(),
                                    ..config.clone()
                                },
                                refetch_interval,
                            )
                        })
                        .collect();
                    Sso::On(Box::new(Provider::new(config, refetch_interval)), bearer)
                }
            },
            Err(e) => {
                // For the operator; callers are told only that it is broken.
                eprintln!(
                    "cairn up: single sign-on is unusable: {}",
                    cairn_model::error_chain(&e)
                );
                Sso::Broken(
                    "single sign-on is misconfigured: org.toml has an error (the server's log says which)"
                        .to_owned(),
                )
            }
        }
    }

    pub fn provider(&self) -> Result<&Provider, ProviderError> {
        match self {
            Sso::Off => Err(ProviderError::NotConfigured),
            Sso::Broken(e) => Err(ProviderError::Broken(e.clone())),
            Sso::On(p, _) => Ok(p),
        }
    }

    /// The provider a bearer token names by its (not yet verified) `iss`: the
    /// login's or one of `[[sso.issuers]]`, compared exactly. The token is
    /// then verified with that provider's keys, issuer and audiences only, so
    /// a token never validates against another issuer's keys.
    pub fn bearer_provider(&self, token: &str) -> Result<&Provider, TokenError> {
        let login = self.provider()?;
        let Sso::On(_, bearer) = self else {
            return Ok(login);
        };
        let unverified = jwt::decode(token)?;
        let iss = unverified.claims.get("iss").and_then(Value::as_str);
        std::iter::once(login)
            .chain(bearer)
            .find(|p| Some(p.config.issuer.as_str()) == iss)
            .ok_or_else(|| {
                let found = iss
                    .unwrap_or("(none)")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(256)
                    .collect();
                let expected = std::iter::once(login)
                    .chain(bearer)
                    .map(|p| p.config.issuer.as_str())
                    .collect::<Vec<_>>()
                    .join("` or `");
                TokenError::Refused(jwt::Refused::Issuer { found, expected })
            })
    }

    /// Configured in org.toml (also when wrongly: the login page then offers
    /// single sign-on and says what is wrong, and a JWT is refused saying so).
    pub fn is_on(&self) -> bool {
        !matches!(self, Sso::Off)
    }
}

fn now_s() -> i64 {
    cairn_engine::now_ms() / 1000
}

impl Provider {
    pub fn new(config: SsoConfig, refetch_interval: Duration) -> Provider {
        Provider {
            config,
            bearer_only: false,
            refetch_interval,
            agent: cairn_registry::http::agent("cairn-oidc", Some(HTTP_TIMEOUT)),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Where org.toml keeps this issuer's mappings, for messages.
    pub fn map_table(&self) -> &'static str {
        if self.bearer_only {
            "[[sso.issuers.map]] of its issuer"
        } else {
            "[[sso.map]]"
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A bounded GET of a JSON document.
    fn get_json(&self, what: &'static str, url: &str) -> Result<Value, ProviderError> {
        let response = self
            .agent
            .get(url)
            .header("accept", "application/json")
            .call()
            .map_err(|e| ProviderError::Unreachable {
                url: url.to_owned(),
                why: e.to_string(),
            })?;
        read_json(what, url, response, MAX_DOCUMENT)
    }

    /// The provider's discovery document (kept for [`DISCOVERY_TTL`]).
    pub fn discovery(&self) -> Result<Discovery, ProviderError> {
        {
            let cache = self.cache();
            if let Some((d, at)) = &cache.discovery
                && at.elapsed() < DISCOVERY_TTL
            {
                return Ok(d.clone());
            }
            if let Some((why, at)) = &cache.failed
                && at.elapsed() < RETRY_AFTER
            {
                return Err(ProviderError::Again(why.clone()));
            }
        }
        let result = self.fetch_discovery();
        let mut cache = self.cache();
        match &result {
            Ok(d) => {
                cache.discovery = Some((d.clone(), Instant::now()));
                cache.failed = None;
            }
            Err(e) => cache.failed = Some((e.to_string(), Instant::now())),
        }
        result
    }

    fn fetch_discovery(&self) -> Result<Discovery, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let doc = self.get_json("discovery document", &url)?;
        let garbage = |why: String| ProviderError::Garbage {
            what: "discovery document",
            url: url.clone(),
            why,
        };
        let field = |name: &'static str| -> Result<String, ProviderError> {
            doc.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| garbage(format!("it has no `{name}`")))
        };
        let issuer = field("issuer")?;
        if issuer != self.config.issuer {
            return Err(garbage(format!(
                "it names issuer `{}`, not the configured `{}`",
                issuer.chars().take(256).collect::<String>(),
                self.config.issuer
            )));
        }
        // An issuer of bearer tokens only (a CI system's) may have no login
        // endpoints; they are never used for it.
        let login_field = |name: &'static str| {
            if self.bearer_only {
                Ok(String::new())
            } else {
                field(name)
            }
        };
        let discovery = Discovery {
            authorization_endpoint: login_field("authorization_endpoint")?,
            token_endpoint: login_field("token_endpoint")?,
            jwks_uri: field("jwks_uri")?,
        };
        for u in [
            &discovery.authorization_endpoint,
            &discovery.token_endpoint,
            &discovery.jwks_uri,
        ] {
            if u.is_empty() && self.bearer_only {
                continue;
            }
            // A query is allowed on the endpoints (not on the issuer).
            let bare = u.split('?').next().unwrap_or_default();
            if !is_oidc_url(bare) {
                return Err(garbage(format!(
                    "endpoint `{}` is not https",
                    u.chars().take(256).collect::<String>()
                )));
            }
        }
        if let Some(methods) = doc
            .get("code_challenge_methods_supported")
            .and_then(Value::as_array)
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(garbage("it does not support PKCE with S256".into()));
        }
        Ok(discovery)
    }

    fn fetch_keys(&self) -> Result<Vec<jwt::Jwk>, ProviderError> {
        if let Some((why, at)) = &self.cache().keys_failed
            && at.elapsed() < RETRY_AFTER
        {
            return Err(ProviderError::Again(why.clone()));
        }
        let result = self.fetch_keys_now();
        let mut cache = self.cache();
        match &result {
            Ok(keys) => {
                cache.keys = Some((keys.clone(), Instant::now()));
                cache.keys_failed = None;
            }
            Err(e) => cache.keys_failed = Some((e.to_string(), Instant::now())),
        }
        result
    }

    fn fetch_keys_now(&self) -> Result<Vec<jwt::Jwk>, ProviderError> {
        let url = self.discovery()?.jwks_uri;
        let doc = self.get_json("JWKS", &url)?;
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let keys = jwt::parse_jwks(&bytes).map_err(|why| ProviderError::Garbage {
            what: "JWKS",
            url: url.clone(),
            why,
        })?;
        Ok(keys)
    }

    /// Verifies a token's signature with the provider's keys, fetching them
    /// again (rate-limited) when the token names a key not among them.
    fn verify(&self, token: &jwt::Unverified<'_>) -> Result<(), TokenError> {
        let cached = match &self.cache().keys {
            Some((keys, at)) if at.elapsed() < JWKS_TTL => Some(keys.clone()),
            _ => None,
        };
        let keys = match cached {
            Some(keys) => keys,
            None => self.fetch_keys()?,
        };
        if let Some(key) = token.key(&keys) {
            return Ok(token.verify(key)?);
        }
        // Perhaps the provider rotated its keys: fetch them again, at most
        // once per refetch interval.
        let may = {
            let mut cache = self.cache();
            let may = cache
                .last_refetch
                .is_none_or(|at| at.elapsed() >= self.refetch_interval);
            if may {
                cache.last_refetch = Some(Instant::now());
            }
            may
        };
        let unknown =
            || jwt::Refused::UnknownKey(token.kid.clone().unwrap_or_else(|| "none".into()));
        if !may {
            return Err(unknown().into());
        }
        let keys = self.fetch_keys()?;
        let key = token.key(&keys).ok_or_else(unknown)?;
        Ok(token.verify(key)?)
    }

    /// The claims of a bearer token (an access token or ID token in JWT form)
    /// from the configured issuer for one of the configured audiences.
    pub fn bearer_claims(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        let unverified = jwt::decode(token)?;
        self.verify(&unverified)?;
        jwt::check_claims(
            &unverified.claims,
            &jwt::Expect {
                issuer: &self.config.issuer,
                audiences: &self.config.audiences,
                nonce: None,
                client_id: None,
                now_s: now_s(),
            },
        )?;
        Ok(unverified.claims)
    }

    /// The claims of a login's ID token: for this client, with this nonce.
    pub fn id_token_claims(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, TokenError> {
        let unverified = jwt::decode(token)?;
        self.verify(&unverified)?;
        let audiences = [self.config.client_id.clone()];
        jwt::check_claims(
            &unverified.claims,
            &jwt::Expect {
                issuer: &self.config.issuer,
                audiences: &audiences,
                nonce: Some(nonce),
                client_id: Some(&self.config.client_id),
                now_s: now_s(),
            },
        )?;
        Ok(unverified.claims)
    }

    /// Exchanges an authorization code (with its PKCE verifier) for the ID
    /// token, at the token endpoint. The client secret, when configured, is
    /// read from its 0600 file and sent as HTTP Basic credentials.
    pub fn exchange_code(&self, code: &str, verifier: &str) -> Result<String, ProviderError> {
        let url = self.discovery()?.token_endpoint;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let secret = match &self.config.client_secret_file {
            Some(path) => Some(read_client_secret(path)?),
            None => None,
        };
        if secret.is_none() {
            form.push(("client_id", self.config.client_id.as_str()));
        }
        let mut request = self.agent.post(&url).header("accept", "application/json");
        if let Some(secret) = &secret {
            use base64::Engine as _;
            // RFC 6749 2.3.1: both form-urlencoded before the Basic encoding.
            let pair = format!(
                "{}:{}",
                form_encode(&self.config.client_id),
                form_encode(&String::from_utf8_lossy(secret.expose()))
            );
            request = request.header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            );
        }
        let response = request
            .send_form(form)
            .map_err(|e| ProviderError::Unreachable {
                url: url.clone(),
                why: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let doc = read_json("token answer", &url, response, MAX_TOKEN_ANSWER);
        if status != 200 {
            // The provider's error code (RFC 6749 5.2) helps; its description
            // may echo input, so only the code is kept.
            let code = doc
                .ok()
                .and_then(|d| d.get("error").and_then(Value::as_str).map(str::to_owned))
                .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()));
            return Err(ProviderError::Garbage {
                what: "token endpoint",
                url,
                why: format!(
                    "it answered {status}{}",
                    code.map(|c| format!(" ({c})")).unwrap_or_default()
                ),
            });
        }
        doc?.get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Garbage {
                what: "token answer",
                url,
                why: "it has no id_token".into(),
            })
    }
}

/// A JSON object from a response: status 200, at most `max` bytes.
fn read_json(
    what: &'static str,
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
    max: u64,
) -> Result<Value, ProviderError> {
    let status = response.status().as_u16();
    let garbage = |why: &str| ProviderError::Garbage {
        what,
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ProviderError::Unreachable {
            url: url.to_owned(),
            why: e.to_string(),
        })?;
    if status != 200 && what != "token answer" {
        return Err(ProviderError::Status {
            url: url.to_owned(),
            status,
        });
    }
    if bytes.len() as u64 > max {
        return Err(garbage(&format!("it is larger than {max} bytes")));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(garbage("it is not a JSON object")),
    }
}

/// `application/x-www-form-urlencoded` of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The client secret from its file (mode 0600, at most 4 KiB, trimmed).
fn read_client_secret(path: &str) -> Result<crate::secret::Secret, ProviderError> {
    let bad =
        |why: String| ProviderError::Config(format!("[sso] client_secret_file {path}: {why}"));
    let bytes =
        crate::secret::read_private(std::path::Path::new(path)).map_err(|e| bad(e.to_string()))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("it is not UTF-8".into()))?;
    let text = text.trim();
    if text.is_empty() || text.len() > 4096 {
        return Err(bad("it must hold 1 to 4096 bytes".into()));
    }
    Ok(crate::secret::Secret::new(text.as_bytes().to_vec()))
}

/// The claim a mapping names, for messages: `email alice@…`, never a token.
#[derive(Debug, Clone)]
pub struct Who {
    pub sub: String,
    pub email: Option<String>,
}

impl Who {
    pub fn of(claims: &Map<String, Value>) -> Who {
        let s = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .map(|v| v.chars().take(128).collect::<String>())
        };
        Who {
            sub: s("sub").unwrap_or_default(),
            email: s("email"),
        }
    }

    pub fn describe(&self) -> String {
        match &self.email {
            Some(e) => format!("{e} (sub {})", self.sub),
            None => format!("sub {}", self.sub),
        }
    }
}

/// The first `[[sso.map]]` that matches (it names the cairn identity, and
/// perhaps declares its roles); `None` when none matches (the user gets no
/// role).
pub fn map_claims<'c>(config: &'c SsoConfig, claims: &Map<String, Value>) -> Option<&'c ClaimMap> {
    let verified_email = claims.get("email_verified") == Some(&Value::Bool(true));
    for m in &config.map {
        let matches = match m.claim {
            Claim::Email => {
                verified_email
                    && claims.get("email").and_then(Value::as_str) == Some(m.value.as_str())
            }
            Claim::Sub => claims.get("sub").and_then(Value::as_str) == Some(m.value.as_str()),
            Claim::Groups => claims
                .get("groups")
                .and_then(Value::as_array)
                .is_some_and(|g| g.iter().take(1024).any(|v| v.as_str() == Some(&m.value))),
        };
        if matches {
            return Some(m);
        }
    }
    None
}

/// The active cairn identity a matching mapping names: as the store has it, or
/// as org.toml declares it (`roles`: made and its bindings kept exactly so,
/// through `cairn_engine::access::declared_identity`, audited).
pub fn mapped_identity(
    store: &dyn cairn_store::Store,
    data: &cairn_engine::DataDir,
    m: &ClaimMap,
) -> Result<cairn_policy::Identity, cairn_engine::EngineError> {
    match &m.declared {
        None => cairn_engine::access::active_identity(store, &m.identity),
        Some(declared) => {
            cairn_engine::access::declared_identity(store, data, &m.identity, declared)
        }
    }
}

//! The [`Registry`] client: transport, authentication (basic and the Bearer
//! token flow of the distribution "token authentication" spec, tokens cached
//! per scope), bounded responses and error mapping.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::{self, Response};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::auth::{Challenge, Credentials, Secret, parse_challenge};
use crate::error::{Context, RegistryErrors};
use crate::reference::{check_repository, encode_query};
use crate::{Error, Result};

/// Token service responses are read up to this size.
pub(crate) const MAX_TOKEN_BYTES: u64 = 64 * 1024;
/// Error bodies are read up to this size.
pub(crate) const MAX_ERROR_BYTES: u64 = 64 * 1024;

/// How to reach the registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheme {
    /// TLS, verified against the Mozilla roots or [`RegistryOptions::ca_pem`].
    #[default]
    Https,
    /// Plain HTTP, accepted only when the host is loopback (`127.0.0.0/8`,
    /// `::1`, `localhost`).
    HttpLoopback,
    /// Plain HTTP to any host: explicitly insecure.
    InsecureHttp,
}

/// Options for [`Registry::with_options`].
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// `host[:port]`.
    pub host: String,
    /// Transport.
    pub scheme: Scheme,
    /// Who cairn is.
    pub credentials: Credentials,
    /// PEM roots that replace the Mozilla roots (a private registry's CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Blobs larger than this are pushed in chunks; smaller ones in one PUT.
    pub chunk_threshold: u64,
    /// The size of each PATCH when pushing in chunks.
    pub chunk_size: u64,
    /// The first PATCH of a one-pass upload
    /// ([`Registry::push_blob_streaming`]); each next one is twice the last,
    /// up to `chunk_size`, so the registry starts receiving after this many
    /// bytes rather than a whole chunk. Never below the registry's
    /// `OCI-Chunk-Min-Length`.
    pub first_stream_chunk: u64,
}

impl RegistryOptions {
    /// Defaults for `host` over HTTPS: chunks of 64 MiB above 256 MiB; a
    /// one-pass upload's chunks 8, 16, 32, then 64 MiB.
    pub fn new(host: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            host: host.into(),
            scheme: Scheme::Https,
            credentials,
            ca_pem: None,
            chunk_threshold: 256 * 1024 * 1024,
            chunk_size: 64 * 1024 * 1024,
            first_stream_chunk: 8 * 1024 * 1024,
        }
    }
}

/// A client for one registry. Cheap to share between threads (`&Registry`).
pub struct Registry {
    pub(crate) host: String,
    pub(crate) base: String,
    agent: ureq::Agent,
    credentials: Credentials,
    allow_http_realm: bool,
    /// The Bearer challenge once the registry has sent one.
    bearer: Mutex<Option<(String, Option<String>)>>,
    /// The registry asked for basic auth.
    basic: AtomicBool,
    tokens: Mutex<HashMap<String, CachedToken>>,
    pub(crate) chunk_threshold: u64,
    pub(crate) chunk_size: u64,
    pub(crate) first_stream_chunk: u64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

struct CachedToken {
    header: Secret,
    expires: Instant,
}

/// A request body: replayable (so a 401 can be answered and retried) or a
/// one-shot stream of a known length.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut dyn Read, u64),
}

impl Body<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(..))
    }
}

/// Yields exactly `remaining` bytes: a reader that ends early is an error
/// (the HTTP client would otherwise wait for bytes that never come).
struct Exact<'a> {
    inner: &'a mut dyn Read,
    remaining: u64,
    failed: bool,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self
            .inner
            .read(&mut buf[..max])
            .inspect_err(|_| self.failed = true)?;
        if n == 0 {
            self.failed = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the content ended {} bytes before its declared size",
                    self.remaining
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// One call to the registry.
pub(crate) struct Call<'a> {
    pub method: http::Method,
    /// Path and query (starting with `/v2/`) or an absolute URL on this registry.
    pub url: String,
    pub context: Context,
    /// Token scopes, e.g. `repository:a/b:pull`.
    pub scopes: Vec<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
}

impl Registry {
    /// A client for `host[:port]` over HTTPS.
    pub fn new(host: &str, credentials: Credentials) -> Result<Self> {
        Self::with_options(RegistryOptions::new(host, credentials))
    }

    /// A client with explicit options.
    pub fn with_options(options: RegistryOptions) -> Result<Self> {
        let host = options.host.trim().to_owned();
        check_host(&host)?;
        let loopback = is_loopback(&host);
        let scheme = match options.scheme {
            Scheme::Https => "https",
            Scheme::HttpLoopback if loopback => "http",
            Scheme::HttpLoopback => {
                return Err(Error::InvalidName {
                    what: "registry",
                    value: host,
                    reason: "plain HTTP is only allowed to a loopback address unless marked insecure",
                });
            }
            Scheme::InsecureHttp => "http",
        };
        if options.chunk_size == 0 {
            return Err(Error::InvalidName {
                what: "chunk size",
                value: "0".into(),
                reason: "chunks must hold at least one byte",
            });
        }
        let roots = match &options.ca_pem {
            None => RootCerts::WebPki,
            Some(pem) => {
                let mut certs = Vec::new();
                for item in ureq::tls::parse_pem(pem) {
                    if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                        certs.push(c);
                    }
                }
                if certs.is_empty() {
                    return Err(Error::InvalidName {
                        what: "CA bundle",
                        value: format!("{} bytes", pem.len()),
                        reason: "no PEM certificate in it",
                    });
                }
                RootCerts::new_with_certs(&certs)
            }
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .root_certs(roots)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(scheme == "https")
            .tls_config(tls)
            .max_redirects(5)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(600)))
            .user_agent("cairn-registry")
            .build()
            .new_agent();
        Ok(Self {
            base: format!("{scheme}://{host}"),
            host,
            agent,
            credentials: options.credentials,
            allow_http_realm: scheme == "http",
            bearer: Mutex::new(None),
            basic: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
            chunk_threshold: options.chunk_threshold,
            chunk_size: options.chunk_size,
            first_stream_chunk: options.first_stream_chunk.clamp(1, options.chunk_size),
        })
    }

    /// `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Checks that the registry speaks the distribution API and that the
    /// credentials are accepted (`GET /v2/`).
    pub fn ping(&self) -> Result<()> {
        let context = self.context("", "ping /v2/");
        let resp = self.send(Call {
            method: http::Method::GET,
            url: "/v2/".into(),
            context: context.clone(),
            scopes: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
        })?;
        self.expect(
            resp,
            &context,
            &[200],
            "the /v2/ endpoint",
            "this is not an OCI registry at that address",
        )?;
        Ok(())
    }

    pub(crate) fn context(&self, repository: &str, operation: &'static str) -> Context {
        Context {
            registry: self.host.clone(),
            repository: repository.to_owned(),
            operation,
        }
    }

    pub(crate) fn repo_context(
        &self,
        repository: &str,
        operation: &'static str,
    ) -> Result<Context> {
        check_repository(repository)?;
        Ok(self.context(repository, operation))
    }

    /// Sends a call, answering one authentication challenge.
    pub(crate) fn send(&self, mut call: Call<'_>) -> Result<Response<ureq::Body>> {
        let url = self.absolute(&call.url, &call.context)?;
        let mut auth = self.auth_header(&call.scopes, &call.context)?;
        let mut retried = false;
        loop {
            let resp = self.dispatch(
                &call.method,
                &url,
                &call.headers,
                auth.as_ref(),
                &mut call.body,
                &call.context,
            )?;
            if resp.status().as_u16() != 401 || retried || !call.body.replayable() {
                return Ok(resp);
            }
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(parse_challenge)
                .collect();
            let bearer = challenges.iter().find_map(|c| match c {
                Challenge::Bearer {
                    realm,
                    service,
                    scope,
                } => Some((realm, service, scope)),
                Challenge::Basic => None,
            });
            if let Some((realm, service, scope)) = bearer {
                if let Ok(mut b) = self.bearer.lock() {
                    *b = Some((realm.clone(), service.clone()));
                }
                let mut scopes = call.scopes.clone();
                if let Some(s) = scope {
                    for one in s.split(' ') {
                        if !one.is_empty() && !scopes.iter().any(|x| x == one) {
                            scopes.push(one.to_owned());
                        }
                    }
                }
                call.scopes = scopes;
                // A token the registry refused is not asked for again from the cache.
                self.forget_token(realm, service.as_deref(), &call.scopes);
                auth = Some(self.fetch_token(
                    realm,
                    service.as_deref(),
                    &call.scopes,
                    &call.context,
                )?);
            } else if challenges.contains(&Challenge::Basic) {
                match self.credentials.basic_header() {
                    Some(h) => {
                        self.basic.store(true, Ordering::Relaxed);
                        auth = Some(h);
                    }
                    None => return Ok(resp),
                }
            } else {
                return Ok(resp);
            }
            retried = true;
        }
    }

    fn dispatch(
        &self,
        method: &http::Method,
        url: &str,
        headers: &[(&'static str, String)],
        auth: Option<&Secret>,
        body: &mut Body<'_>,
        context: &Context,
    ) -> Result<Response<ureq::Body>> {
        let mut builder = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        if let Some(a) = auth {
            builder = builder.header(http::header::AUTHORIZATION, a.expose());
        }
        let invalid = |e: http::Error| Error::InvalidResponse {
            context: context.clone(),
            reason: format!("could not build the request: {e}"),
        };
        let mut local_failure = false;
        let result = match body {
            Body::Empty => {
                if *method == http::Method::GET || *method == http::Method::HEAD {
                    self.agent.run(builder.body(()).map_err(invalid)?)
                } else {
                    let req = builder
                        .header(http::header::CONTENT_LENGTH, "0")
                        .body(&[][..])
                        .map_err(invalid)?;
                    self.agent.run(req)
                }
            }
            Body::Bytes(b) => self.agent.run(builder.body(*b).map_err(invalid)?),
            Body::Stream(reader, len) => {
                let mut exact = Exact {
                    inner: &mut **reader,
                    remaining: *len,
                    failed: false,
                };
                let req = builder
                    .header(http::header::CONTENT_LENGTH, len.to_string())
                    .body(ureq::SendBody::from_reader(&mut exact))
                    .map_err(invalid)?;
                let result = self.agent.run(req);
                local_failure = exact.failed;
                result
            }
        };
        result.map_err(|source| match source {
            // Reading the content being sent failed: a local problem.
            ureq::Error::Io(source) if local_failure => Error::Io {
                context: context.clone(),
                source,
            },
            // TLS spoken to a plain-HTTP server: rustls sees an HTTP answer
            // where a TLS record should be ("received corrupt message").
            source if self.base.starts_with("https://") && speaks_plain_http(&source) => {
                Error::PlainHttp {
                    context: context.clone(),
                    loopback: is_loopback(&self.host),
                }
            }
            source => Error::Transport {
                context: context.clone(),
                source: Box::new(source),
            },
        })
    }

    /// Resolves a path or a Location header against this registry. A location
    /// on another host is refused: credentials only go to the registry.
    pub(crate) fn absolute(&self, url: &str, context: &Context) -> Result<String> {
        if url.starts_with('/') {
            return Ok(format!("{}{url}", self.base));
        }
        let prefix = format!("{}/", self.base);
        if url.starts_with(&prefix) {
            return Ok(url.to_owned());
        }
        Err(Error::InvalidResponse {
            context: context.clone(),
            reason: format!(
                "location `{}` is not on this registry; cairn sends data and credentials only to {}",
                url.chars().take(200).collect::<String>(),
                self.base
            ),
        })
    }

    /// The Authorization header to send first: a cached token for these scopes,
    /// a fresh one if the registry is known to use tokens, or basic auth.
    fn auth_header(&self, scopes: &[String], context: &Context) -> Result<Option<Secret>> {
        let bearer = self.bearer.lock().ok().and_then(|b| b.clone());
        if let Some((realm, service)) = bearer {
            return self
                .fetch_token(&realm, service.as_deref(), scopes, context)
                .map(Some);
        }
        if self.basic.load(Ordering::Relaxed) {
            return Ok(self.credentials.basic_header());
        }
        Ok(None)
    }

    fn forget_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) {
        if let Ok(mut cache) = self.tokens.lock() {
            cache.remove(&token_key(realm, service, scopes));
        }
    }

    /// A token for `scopes` from the cache, or from the realm (with basic
    /// credentials when cairn has them).
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        context: &Context,
    ) -> Result<Secret> {
        let key = token_key(realm, service, scopes);
        if let Ok(cache) = self.tokens.lock()
            && let Some(t) = cache.get(&key)
            && t.expires > Instant::now()
        {
            return Ok(t.header.clone());
        }
        let token_context = Context {
            registry: self.host.clone(),
            repository: context.repository.clone(),
            operation: "fetch a token from the registry's token service",
        };
        let acceptable = realm.starts_with("https://")
            || (self.allow_http_realm && realm.starts_with("http://"));
        if !acceptable {
            return Err(Error::InvalidResponse {
                context: token_context,
                reason: format!(
                    "the token realm `{}` is not https; refusing to send credentials there",
                    realm.chars().take(200).collect::<String>()
                ),
            });
        }
        let mut url = realm.to_owned();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            url.push(sep);
            url.push_str("service=");
            url.push_str(&encode_query(s));
            sep = '&';
        }
        for s in scopes {
            url.push(sep);
            url.push_str("scope=");
            url.push_str(&encode_query(s));
            sep = '&';
        }
        let mut builder = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str());
        if let Some(h) = self.credentials.basic_header() {
            builder = builder.header(http::header::AUTHORIZATION, h.expose());
        }
        let req = builder.body(()).map_err(|e| Error::InvalidResponse {
            context: token_context.clone(),
            reason: format!("invalid token realm: {e}"),
        })?;
        let resp = self.agent.run(req).map_err(|source| Error::Transport {
            context: token_context.clone(),
            source: Box::new(source),
        })?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            let errors = read_errors(resp);
            return Err(Error::Unauthorized {
                context: token_context,
                status,
                errors,
            });
        }
        if status != 200 {
            let errors = read_errors(resp);
            return Err(Error::Status {
                context: token_context,
                status,
                errors,
                hint: "the token service failed; check the registry's auth configuration",
            });
        }
        let bytes = read_bounded(resp, MAX_TOKEN_BYTES, &token_context)?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                context: token_context.clone(),
                what: "token response",
                source,
            })?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| Error::InvalidResponse {
                context: token_context.clone(),
                reason: "the token response holds no token".into(),
            })?;
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidResponse {
                context: token_context,
                reason: "the token holds characters that cannot go in a header".into(),
            });
        }
        let header = Secret::new(format!("Bearer {token}"));
        // The spec's default lifetime is 60 s; renew a little early.
        let life = parsed.expires_in.unwrap_or(60).clamp(10, 24 * 3600);
        if let Ok(mut cache) = self.tokens.lock() {
            cache.insert(
                key,
                CachedToken {
                    header: header.clone(),
                    expires: Instant::now() + Duration::from_secs(life - 5),
                },
            );
        }
        Ok(header)
    }

    /// Maps an unexpected status to an error; passes expected ones through.
    pub(crate) fn expect(
        &self,
        resp: Response<ureq::Body>,
        context: &Context,
        ok: &[u16],
        what: &str,
        hint: &'static str,
    ) -> Result<Response<ureq::Body>> {
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let errors = read_errors(resp);
        Err(match status {
            401 | 403 => Error::Unauthorized {
                context: context.clone(),
                status,
                errors,
            },
            404 => Error::NotFound {
                context: context.clone(),
                what: what.to_owned(),
                errors,
            },
            _ => Error::Status {
                context: context.clone(),
                status,
                errors,
                hint,
            },
        })
    }
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) fn read_bounded(
    resp: Response<ureq::Body>,
    limit: u64,
    context: &Context,
) -> Result<Vec<u8>> {
    if let Some(len) = header(&resp, "content-length").and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(Error::TooLarge {
            context: context.clone(),
            limit,
        });
    }
    let mut out = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| Error::Io {
            context: context.clone(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(Error::TooLarge {
            context: context.clone(),
            limit,
        });
    }
    Ok(out)
}

/// The distribution-spec error codes of a failed response (best effort).
pub(crate) fn read_errors(resp: Response<ureq::Body>) -> RegistryErrors {
    let mut out = Vec::new();
    if resp
        .into_body()
        .into_reader()
        .take(MAX_ERROR_BYTES)
        .read_to_end(&mut out)
        .is_err()
    {
        return RegistryErrors::default();
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let short = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    };
    match serde_json::from_slice::<Body>(&out) {
        Ok(b) => RegistryErrors(
            b.errors
                .iter()
                .take(5)
                .map(|e| (short(&e.code), short(&e.message)))
                .collect(),
        ),
        Err(_) => RegistryErrors::default(),
    }
}

/// A response header as a string.
pub(crate) fn header<'r>(resp: &'r Response<ureq::Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn token_key(realm: &str, service: Option<&str>, scopes: &[String]) -> String {
    format!("{realm}\n{}\n{}", service.unwrap_or(""), scopes.join(" "))
}

fn check_host(host: &str) -> Result<()> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "registry host",
            value: host.chars().take(255).collect(),
            reason: "expected host[:port]",
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    if name == "localhost" {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a failed HTTPS exchange failed because the server answered plain
/// HTTP (its bytes are not a TLS record).
fn speaks_plain_http(error: &ureq::Error) -> bool {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let text = text.to_ascii_lowercase();
    text.contains("corrupt message") || text.contains("invalidcontenttype")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_shareable_between_threads() {
        fn check<T: Send + Sync>() {}
        check::<Registry>();
    }

    #[test]
    fn locations_on_other_hosts_are_refused() {
        let mut o = RegistryOptions::new("127.0.0.1:5000", Credentials::Anonymous);
        o.scheme = Scheme::HttpLoopback;
        let r = Registry::with_options(o).expect("client");
        let c = r.context("a", "test");
        assert_eq!(
            r.absolute("/v2/a/blobs/uploads/1?x=y", &c).expect("path"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/1?x=y"
        );
        assert!(r.absolute("http://127.0.0.1:5000/v2/a", &c).is_ok());
        for bad in [
            "http://127.0.0.1:50001/v2/a",
            "http://127.0.0.1:5000@evil.example/v2/a",
            "https://evil.example/v2/a",
            "v2/a",
        ] {
            assert!(r.absolute(bad, &c).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_never_go_to_a_plain_http_realm_of_an_https_registry() {
        let r = Registry::new(
            "registry.example",
            Credentials::basic("u", "do-not-send-me"),
        )
        .expect("client");
        let err = r
            .fetch_token(
                "http://auth.example/token",
                Some("s"),
                &["repository:a:pull".to_owned()],
                &r.context("a", "test"),
            )
            .expect_err("refused before any request");
        let text = format!("{err} {err:?}");
        assert!(text.contains("not https"), "{text}");
        assert!(!text.contains("do-not-send-me"));
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example:5000"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn http_needs_loopback_or_insecure() {
        let mut o = RegistryOptions::new("registry.example", Credentials::Anonymous);
        o.scheme = Scheme::HttpLoopback;
        assert!(Registry::with_options(o.clone()).is_err());
        o.scheme = Scheme::InsecureHttp;
        assert!(Registry::with_options(o).is_ok());
        assert!(Registry::new("a/b", Credentials::Anonymous).is_err());
    }
}

//! Who is asking, and may they? Every route that is not public takes an
//! [`Actor`] (a bearer token — cairn's own, or an OpenID Connect JWT from the
//! configured issuer —, or a browser session cookie) and asks
//! [`AppState::authorize`], which is `cairn_engine::access::authorize` — the one
//! authorisation function the CLI uses too. No credentials or bad ones → 401;
//! not permitted → 403.

use std::collections::BTreeSet;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use cairn_engine::access;
use cairn_policy::{Action, Identity, Scope};

use crate::problem::ApiError;
use crate::state::{AppState, Shared};

/// The name of the browser session cookie.
pub const SESSION_COOKIE: &str = "cairn_session";
/// The header a browser session's API request that changes something carries
/// its CSRF token in (the page's forms carry it as the `csrf` field instead).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Longest credential read from a cookie.
const MAX_CREDENTIAL: usize = 512;
/// Longest bearer token read (an OpenID Connect JWT is much longer than a
/// cairn token).
const MAX_BEARER: usize = crate::oidc::jwt::MAX_TOKEN;

/// An authenticated identity, and how it authenticated.
#[derive(Debug, Clone)]
pub struct Actor {
    pub identity: Identity,
    pub via: Via,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Token,
    /// A browser session; forms must carry its CSRF token.
    Session {
        token_sha256: String,
        csrf: String,
    },
}

impl Actor {
    /// The session's CSRF token (browser sessions only).
    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Session { csrf, .. } => Some(csrf),
            Via::Token => None,
        }
    }
}

/// The bearer token of a request, if it sends one.
pub fn bearer(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|t| t.len() <= MAX_BEARER + 7)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header is not a token"))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(ApiError::unauthorized(
            "use `Authorization: Bearer <token>`",
        )),
    }
}

/// The value of cookie `name`, if the request sends it.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= MAX_CREDENTIAL)
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let result = authenticate_parts(parts, state).await;
        if let Err(e) = &result
            && e.status == axum::http::StatusCode::UNAUTHORIZED
        {
            state.0.metrics.auth_failure();
        }
        result
    }
}

/// A request's credential, read from its headers but not yet checked against
/// the store: the extractor of a handler whose work is one read
/// ([`AppState::read_as`]) or one blocking call ([`AppState::blocking_as`]),
/// which checks it *in that same call*, so the request hands off to the
/// blocking pool once, not once to authenticate and once more to read (issue
/// 19). The only way from a `Caller` to an [`Actor`] is [`Shared::actor`],
/// which those two call before the work; the work never sees an unchecked
/// caller. No credential at all is refused here (401) without a hand-off.
#[derive(Debug)]
pub struct Caller(Credential);

#[derive(Debug)]
enum Credential {
    /// A cairn token (its SHA-256 is looked up, see [`access::authenticate`]).
    Token(String),
    /// A browser session cookie on a GET, HEAD or OPTIONS request.
    Session(String),
    /// Already checked: an OpenID Connect token (which may need the
    /// provider's keys, so it is not checked in a read's turn) or a session
    /// on a request that may change something (its CSRF token and origin
    /// are checked with the session).
    Checked(Actor),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let result = caller_of_parts(parts, state).await;
        if let Err(e) = &result
            && e.status == axum::http::StatusCode::UNAUTHORIZED
        {
            state.0.metrics.auth_failure();
        }
        result
    }
}

async fn caller_of_parts(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    use axum::http::Method;
    if let Some(token) = bearer(parts)? {
        if is_oidc_bearer(&token, state) {
            let actor = state.blocking(move |s| oidc_bearer(s, &token)).await?;
            return Ok(Caller(Credential::Checked(actor)));
        }
        return Ok(Caller(Credential::Token(token)));
    }
    if let Some(session) = cookie(parts, SESSION_COOKIE) {
        if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(Caller(Credential::Session(session)));
        }
        let actor = authenticate_parts(parts, state).await?;
        return Ok(Caller(Credential::Checked(actor)));
    }
    Err(no_credential())
}

fn no_credential() -> ApiError {
    ApiError::unauthorized("send `Authorization: Bearer <token>` (or log in at /login)")
}

/// An OpenID Connect JWT rather than a cairn token (when single sign-on is on).
fn is_oidc_bearer(token: &str, state: &AppState) -> bool {
    !token.starts_with(access::TOKEN_PREFIX) && token.split('.').count() == 3 && state.0.sso.is_on()
}

impl Shared {
    /// The actor of `caller`, checked now (on a blocking thread): an unknown,
    /// revoked or expired token or session is a 401, counted as an
    /// authentication failure.
    pub fn actor(&self, caller: Caller) -> Result<Actor, ApiError> {
        let result = match caller.0 {
            Credential::Token(token) => access::authenticate(&*self.store, &token)
                .map(|identity| Actor {
                    identity,
                    via: Via::Token,
                })
                .map_err(ApiError::from),
            Credential::Session(session) => crate::session::actor_of_session(self, &session),
            Credential::Checked(actor) => Ok(actor),
        };
        if let Err(e) = &result
            && e.status == axum::http::StatusCode::UNAUTHORIZED
        {
            self.metrics.auth_failure();
        }
        result
    }
}

async fn authenticate_parts(parts: &Parts, state: &AppState) -> Result<Actor, ApiError> {
    if let Some(token) = bearer(parts)? {
        if is_oidc_bearer(&token, state) {
            return state.blocking(move |s| oidc_bearer(s, &token)).await;
        }
        // Reads only: the read lane (an OpenID Connect token above may fetch
        // the provider's keys, so it does not take a read's turn).
        let identity = state
            .read(move |s| Ok(access::authenticate(&*s.store, &token)?))
            .await?;
        return Ok(Actor {
            identity,
            via: Via::Token,
        });
    }
    if let Some(session) = cookie(parts, SESSION_COOKIE) {
        let actor = state
            .read(move |s| crate::session::actor_of_session(s, &session))
            .await?;
        cookie_request_ok(parts, &actor)?;
        return Ok(actor);
    }
    Err(no_credential())
}

/// The actor of an OpenID Connect token (an access token or ID token in JWT
/// form from the configured issuer, for a configured audience): a workload
/// identity of a CI system or a service account. Mapped to a cairn identity as
/// a browser login is; no mapping, no identity.
fn oidc_bearer(s: &Shared, token: &str) -> Result<Actor, ApiError> {
    let provider = match s.sso.bearer_provider(token) {
        Ok(p) => p,
        Err(crate::oidc::TokenError::Refused(why)) => {
            return Err(ApiError::unauthorized(format!(
                "the bearer token was refused: {why}"
            )));
        }
        Err(crate::oidc::TokenError::Provider(e)) => {
            return Err(ApiError::unauthorized(e.to_string()));
        }
    };
    let claims = match provider.bearer_claims(token) {
        Ok(claims) => claims,
        Err(crate::oidc::TokenError::Refused(why)) => {
            return Err(ApiError::unauthorized(format!(
                "the bearer token was refused: {why}"
            )));
        }
        Err(crate::oidc::TokenError::Provider(e)) => {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "identity provider unavailable",
                format!("the bearer token could not be checked: {e}"),
            ));
        }
    };
    let who = crate::oidc::Who::of(&claims);
    let Some(m) = crate::oidc::map_claims(&provider.config, &claims) else {
        s.metrics.forbidden();
        return Err(ApiError::forbidden(format!(
            "the token of {} is valid, but no {} in org.toml maps it to a cairn identity: \
             no role",
            who.describe(),
            provider.map_table()
        )));
    };
    let identity = crate::oidc::mapped_identity(&*s.store, &s.config.data, m)
        .map_err(|e| mapped_identity_refused(&who, &m.identity, e))?;
    Ok(Actor {
        identity,
        via: Via::Token,
    })
}

/// Why a verified, mapped token has no identity: the mapped identity is
/// missing or revoked (401), org.toml's declaration cannot be applied (403,
/// saying why), or the store or log failed (500).
pub fn mapped_identity_refused(
    who: &crate::oidc::Who,
    name: &str,
    e: cairn_engine::EngineError,
) -> ApiError {
    use cairn_engine::EngineError as E;
    match e {
        E::BadToken | E::NoToken => ApiError::unauthorized(format!(
            "org.toml maps {} to the cairn identity {name}, which does not exist or is revoked",
            who.describe()
        )),
        e @ (E::SsoBeforeBootstrap { .. } | E::SsoKindDiffers { .. } | E::LastAdmin) => {
            ApiError::forbidden(format!("{}: {e}", who.describe()))
        }
        e => ApiError::from(e),
    }
}

/// A browser sends its cookie with requests other sites make it send, so a
/// cookie-authenticated request that may change something (any method but
/// GET, HEAD and OPTIONS) must come from this server's own pages: a same-site
/// `Origin` (and `Sec-Fetch-Site`, when sent), and for the JSON API the
/// session's CSRF token in [`CSRF_HEADER`], compared in constant time. The web
/// UI's forms carry the token as a field, which their handlers check.
fn cookie_request_ok(parts: &Parts, actor: &Actor) -> Result<(), ApiError> {
    use axum::http::Method;
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    same_origin(&parts.headers)?;
    if let Some(site) = parts.headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(ApiError::forbidden(
            "cross-site request refused (Sec-Fetch-Site is not same-origin)",
        ));
    }
    if parts.uri.path().starts_with("/api/") {
        let given = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !crate::session::csrf_ok(actor, given) {
            return Err(ApiError::forbidden(format!(
                "a browser session's API request needs the session's CSRF token in {CSRF_HEADER} \
                 (programs: send `Authorization: Bearer <token>` instead of the cookie)"
            )));
        }
    }
    Ok(())
}

/// Refuses a request whose `Origin` (when sent) is not this host.
pub fn same_origin(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
    });
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(ApiError::forbidden(
            "cross-site form submission refused (the Origin is not this server)",
        )),
    }
}

/// Which workloads an actor may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    All,
    Only(BTreeSet<String>),
}

impl Visible {
    pub fn includes(&self, workload: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(set) => set.contains(workload),
        }
    }
}

impl Shared {
    /// May `actor` do `action` at `scope`? Through the roles model's one function.
    pub fn authorize(&self, actor: &Actor, action: Action, scope: &Scope) -> Result<(), ApiError> {
        let result = access::authorize(&*self.store, &actor.identity, action, scope);
        if result.is_err() {
            self.metrics.forbidden();
        }
        Ok(result?)
    }

    /// The workloads `actor` may view: all of them with an organisation-wide
    /// view, else those a binding reaches. Seeing nothing at all is a 403.
    /// The roles model's bindings are read once for all the workloads (the
    /// same decision as [`access::authorize`] per workload, without reading
    /// them again for each).
    pub fn visible(&self, actor: &Actor) -> Result<Visible, ApiError> {
        let bindings = access::bindings(&*self.store)?;
        let may_view = |scope: &Scope| {
            cairn_policy::authorize(&bindings, &actor.identity, Action::View, scope).is_ok()
        };
        if may_view(&Scope::organisation()) {
            return Ok(Visible::All);
        }
        let mut names = BTreeSet::new();
        for workload in self.store.workloads()? {
            if may_view(&Scope::workload(workload.name.clone())) {
                names.insert(workload.name);
            }
        }
        let bound = bindings
            .bindings
            .iter()
            .any(|b| b.identity == actor.identity.name);
        if names.is_empty() && !bound {
            self.metrics.forbidden();
            return Err(ApiError::forbidden(format!(
                "{} may not view anything: no role is bound to them",
                actor.identity.name
            )));
        }
        Ok(Visible::Only(names))
    }
}

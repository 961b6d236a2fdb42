//! Browser sessions: logging in with a token (or through single sign-on,
//! `crate::ui` `sso`) makes a random session id (kept
//! only as its SHA-256 in the store) sent as an HttpOnly, SameSite=Strict
//! cookie, and a CSRF token every form must carry. Sessions expire; logging out
//! removes them; a revoked identity's sessions stop working at once.

use cairn_engine::{access, now_ms};

use crate::auth::{Actor, SESSION_COOKIE, Via};
use crate::problem::ApiError;
use crate::secret::random_hex;
use crate::state::Shared;

/// The actor of a session cookie's value.
pub fn actor_of_session(s: &Shared, value: &str) -> Result<Actor, ApiError> {
    let expired = || ApiError::unauthorized("the session has expired or ended; log in again");
    let token_sha256 = access::token_sha256(value);
    let session = s.store.session(&token_sha256)?.ok_or_else(expired)?;
    if session.expires_at_ms <= now_ms() {
        return Err(expired());
    }
    let identity = access::active_identity(&*s.store, &session.identity).map_err(|_| expired())?;
    Ok(Actor {
        identity,
        via: Via::Session {
            token_sha256,
            csrf: session.csrf,
        },
    })
}

/// A new session for the identity holding `token`: the cookie's value and the
/// session's CSRF token.
pub fn log_in(s: &Shared, token: &str) -> Result<(String, Actor), ApiError> {
    let identity = access::authenticate(&*s.store, token)?;
    start_session(s, identity)
}

/// A new session for the active identity `name` (single sign-on mapped a
/// verified ID token to it); unknown, revoked or expired is a 401.
pub fn log_in_identity(s: &Shared, name: &str) -> Result<(String, Actor), ApiError> {
    let identity = access::active_identity(&*s.store, name)?;
    start_session(s, identity)
}

fn start_session(
    s: &Shared,
    identity: cairn_policy::Identity,
) -> Result<(String, Actor), ApiError> {
    let value = random_hex(32).map_err(|e| ApiError::internal(&e))?;
    let csrf = random_hex(32).map_err(|e| ApiError::internal(&e))?;
    let now = now_ms();
    let token_sha256 = access::token_sha256(&value);
    s.store.prune_sessions(now)?;
    s.store.add_session(&cairn_model::SessionRecord {
        token_sha256: token_sha256.clone(),
        identity: identity.name.clone(),
        csrf: csrf.clone(),
        created_at_ms: now,
        expires_at_ms: now.saturating_add(s.config.session_ttl_ms),
    })?;
    Ok((
        value,
        Actor {
            identity,
            via: Via::Session { token_sha256, csrf },
        },
    ))
}

/// Ends the session of `actor` (if it is one).
pub fn log_out(s: &Shared, actor: &Actor) -> Result<(), ApiError> {
    if let Via::Session { token_sha256, .. } = &actor.via {
        s.store.remove_session(token_sha256)?;
    }
    Ok(())
}

/// The `Set-Cookie` value carrying a session.
pub fn session_cookie(value: &str, ttl_ms: i64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl_ms / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a submitted CSRF token is the session's, compared in constant time.
/// Token-authenticated requests (no cookie) need none: a browser cannot be made
/// to send a bearer header.
pub fn csrf_ok(actor: &Actor, submitted: Option<&str>) -> bool {
    match (&actor.via, submitted) {
        (Via::Token, _) => true,
        (Via::Session { csrf, .. }, Some(given)) => {
            aws_lc_rs::constant_time::verify_slices_are_equal(csrf.as_bytes(), given.as_bytes())
                .is_ok()
        }
        (Via::Session { .. }, None) => false,
    }
}

//! Logging in to the web UI with the organisation's OpenID Connect provider
//! (authorization code flow with PKCE, RFC 7636 S256): `GET /login/oidc`
//! makes a random `state`, `nonce` and code verifier, keeps them in the
//! short-lived `cairn_oidc` cookie (HttpOnly, SameSite=Lax so that the
//! provider's redirect back brings it, Path=/login/oidc, 10 minutes) and sends
//! the browser to the provider. `GET /login/oidc/callback` needs that cookie,
//! the same `state` (compared in constant time), trades the code and the
//! verifier for the ID token, validates it (signature with the provider's
//! key, issuer, audience, expiry, this login's nonce; see `crate::oidc`), maps
//! its claim to a cairn identity and starts the same browser session as a
//! token login (cookie, CSRF token). A user no mapping names gets a page
//! saying so and no session: no identity, no role. The code, the tokens and
//! the client secret are never shown or logged.

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use maud::html;
use serde::Deserialize;

use super::layout::{Nav, page};
use super::{PageError, html, local_path};
use crate::auth::cookie;
use crate::oidc::{self, Who};
use crate::problem::ApiError;
use crate::session::{log_in_identity, session_cookie};
use crate::state::AppState;

/// The cookie binding a login in progress to this browser.
const FLOW_COOKIE: &str = "cairn_oidc";
/// How long a login at the provider may take.
const FLOW_TTL_S: i64 = 600;
/// The longest `next` kept across a login (the flow's cookie stays under the
/// 512 bytes a cookie is read up to; a longer one comes back to `/`).
const MAX_FLOW_NEXT: usize = 256;

#[derive(Debug, Deserialize)]
pub(super) struct StartQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn random_b64(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ApiError::internal(&"the system random generator failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn provider_failed(e: &oidc::ProviderError) -> ApiError {
    match e {
        oidc::ProviderError::NotConfigured => ApiError::not_found(e.to_string()),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "single sign-on failed",
            format!("{e}; log in with a token meanwhile"),
        ),
    }
}

/// `GET /login/oidc`: to the provider, with PKCE, state and nonce.
pub(super) async fn start(
    State(state): State<AppState>,
    query: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let next = query
        .ok()
        .and_then(|Query(q)| q.next)
        .filter(|n| n.len() <= MAX_FLOW_NEXT && local_path(n).is_some())
        .unwrap_or_else(|| "/".to_owned());
    let (discovery, config) = state
        .blocking(|s| {
            let provider = s.sso.provider().map_err(|e| provider_failed(&e))?;
            let discovery = provider.discovery().map_err(|e| provider_failed(&e))?;
            Ok((discovery, provider.config.clone()))
        })
        .await?;
    let flow_state = random_b64(32)?;
    let nonce = random_b64(32)?;
    let verifier = random_b64(32)?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()),
    );
    let issued = cairn_engine::now_ms() / 1000;
    let next_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(next.as_bytes());
    let value = format!("{flow_state}.{nonce}.{verifier}.{issued}.{next_b64}");
    let e = oidc::form_encode;
    let url = format!(
        "{}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        discovery.authorization_endpoint,
        if discovery.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        },
        e(&config.client_id),
        e(&config.redirect_uri),
        e(&config.scopes.join(" ")),
        flow_state,
        nonce,
        challenge,
    );
    let mut response = Redirect::to(&url).into_response();
    let secure = state.0.config.secure_cookies;
    append_cookie(
        &mut response,
        &format!(
            "{FLOW_COOKIE}={value}; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age={FLOW_TTL_S}{}",
            if secure { "; Secure" } else { "" }
        ),
    );
    Ok(response)
}

struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
}

fn flow_of(value: &str) -> Option<Flow> {
    let mut parts = value.split('.');
    let (Some(state), Some(nonce), Some(verifier), Some(issued), Some(next), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let issued: i64 = issued.parse().ok()?;
    let age = cairn_engine::now_ms() / 1000 - issued;
    if !(0..=FLOW_TTL_S).contains(&age) {
        return None;
    }
    let next = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(next)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|n| local_path(n).is_some())?;
    Some(Flow {
        state: state.to_owned(),
        nonce: nonce.to_owned(),
        verifier: verifier.to_owned(),
        next,
    })
}

/// `GET /login/oidc/callback`: the code in, a browser session out.
pub(super) async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let flow = cookie(&parts, FLOW_COOKIE)
        .and_then(|v| flow_of(&v))
        .ok_or_else(|| {
            ApiError::bad_request(
                "this login was not started here, took longer than 10 minutes, or cookies are off: \
                 start again from /login",
            )
        })?;
    if let Some(error) = query.error {
        // The provider's error code only (its description could echo anything).
        let code: String = error
            .chars()
            .take(64)
            .filter(char::is_ascii_graphic)
            .collect();
        return Err(ApiError::forbidden(format!(
            "the identity provider did not log you in ({code})"
        ))
        .into());
    }
    let given = query.state.unwrap_or_default();
    if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), flow.state.as_bytes())
        .is_err()
    {
        return Err(ApiError::forbidden(
            "the login's state does not match this browser's: start again from /login",
        )
        .into());
    }
    let code = query
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| ApiError::bad_request("the identity provider sent no code"))?;
    let Flow {
        nonce,
        verifier,
        next,
        ..
    } = flow;
    let outcome = state
        .blocking(move |s| {
            let provider = s.sso.provider().map_err(|e| provider_failed(&e))?;
            let id_token = provider
                .exchange_code(&code, &verifier)
                .map_err(|e| provider_failed(&e))?;
            let claims = match provider.id_token_claims(&id_token, &nonce) {
                Ok(claims) => claims,
                Err(oidc::TokenError::Provider(e)) => return Err(provider_failed(&e)),
                Err(oidc::TokenError::Refused(why)) => {
                    s.metrics.auth_failure();
                    return Err(ApiError::forbidden(format!(
                        "the identity provider's ID token was refused: {why}"
                    )));
                }
            };
            let who = Who::of(&claims);
            let Some(m) = oidc::map_claims(&provider.config, &claims) else {
                return Ok(Err(who));
            };
            let refused = |e| {
                let e = crate::auth::mapped_identity_refused(&who, &m.identity, e);
                if e.status == StatusCode::UNAUTHORIZED {
                    ApiError::forbidden(format!(
                        "you are {}; org.toml maps you to the cairn identity {}, which does not \
                         exist or is revoked: ask a platform admin",
                        who.describe(),
                        m.identity
                    ))
                } else {
                    e
                }
            };
            let identity = oidc::mapped_identity(&*s.store, &s.config.data, m).map_err(refused)?;
            let (value, actor) = log_in_identity(s, &identity.name).map_err(|e| {
                if e.status == StatusCode::UNAUTHORIZED {
                    ApiError::forbidden(format!(
                        "you are {}; org.toml maps you to the cairn identity {}, which does not \
                         exist or is revoked: ask a platform admin",
                        who.describe(),
                        identity.name
                    ))
                } else {
                    e
                }
            })?;
            Ok(Ok((value, actor)))
        })
        .await?;
    let config = &state.0.config;
    match outcome {
        Ok((value, actor)) => {
            let mut response = html(
                StatusCode::OK,
                page(
                    "Logged in",
                    Nav::None,
                    None,
                    html! {
                        // A same-site navigation onward, so the SameSite=Strict
                        // session cookie goes with it (a redirect would continue
                        // the provider's cross-site navigation).
                        meta http-equiv="refresh" content=(format!("0;url={next}"));
                        h1 { "Logged in" }
                        p { "You are " strong #sso-identity { (actor.identity.name) } ". "
                            a #continue href=(next) { "Continue" } }
                    },
                ),
            );
            append_cookie(
                &mut response,
                &session_cookie(&value, config.session_ttl_ms, config.secure_cookies),
            );
            append_cookie(&mut response, &cleared_flow_cookie());
            Ok(response)
        }
        Err(who) => {
            let mut response = html(
                StatusCode::FORBIDDEN,
                page(
                    "No cairn identity",
                    Nav::None,
                    None,
                    html! {
                        section.error #error data-status="403" {
                            h1 { "Logged in, but with no role" }
                            p #reason {
                                "The identity provider says you are " (who.describe())
                                ", but no [[sso.map]] in org.toml maps you to a cairn identity, \
                                 so you have no role and can do nothing here. Ask a platform admin \
                                 to map your email, subject or group to an identity."
                            }
                        }
                    },
                ),
            );
            append_cookie(&mut response, &cleared_flow_cookie());
            Ok(response)
        }
    }
}

fn cleared_flow_cookie() -> String {
    format!("{FLOW_COOKIE}=; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age=0")
}

fn append_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

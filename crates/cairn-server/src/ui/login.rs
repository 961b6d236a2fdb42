//! Logging in and out of the web UI. The login form has no session yet, so its
//! CSRF protection is a double-submit cookie: `GET /login` sets a random
//! `cairn_login_csrf` cookie (HttpOnly, SameSite=Strict, Path=/login) and puts
//! the same value in the form; `POST /login` needs both to match (compared in
//! constant time) and refuses a cross-site `Origin`. Logging out is a POST
//! carrying the session's own CSRF token.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, page};
use super::{PageError, html, local_path};
use crate::auth::{Actor, cookie};
use crate::problem::ApiError;
use crate::secret::random_hex;
use crate::session::{cleared_cookie, csrf_ok, log_in, log_out, session_cookie};
use crate::state::AppState;

/// The double-submit cookie of the login form.
pub(super) const LOGIN_CSRF_COOKIE: &str = "cairn_login_csrf";
/// How long a login form stays usable.
const LOGIN_FORM_TTL_S: u32 = 3_600;

#[derive(Debug, Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `GET /login`: the form, with a fresh double-submit CSRF value.
pub(super) async fn form(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let next = query.ok().and_then(|Query(q)| q.next);
    let csrf = random_hex(32).map_err(|e| ApiError::internal(&e))?;
    let mut response = html(
        StatusCode::OK,
        login_page(&csrf, next.as_deref(), None, state.0.sso.is_on()),
    );
    set_login_cookie(&mut response, &csrf, state.0.config.secure_cookies);
    Ok(response)
}

/// `POST /login`: a token in, a session cookie out, back to `next` (or `/`).
pub(super) async fn submit(
    State(state): State<AppState>,
    parts: Parts,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&parts.headers)?;
    let Form(form) = form.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let expected = cookie(&parts, LOGIN_CSRF_COOKIE).ok_or_else(|| {
        ApiError::forbidden(
            "the login form expired or cookies are off: reload /login and try again",
        )
    })?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), form.csrf.as_bytes())
        .is_err()
    {
        return Err(ApiError::forbidden(
            "the form's CSRF token does not match: reload /login and try again",
        )
        .into());
    }
    let next = form
        .next
        .as_deref()
        .and_then(local_path)
        .unwrap_or("/")
        .to_owned();
    let token = form.token.trim().to_owned();
    if token.is_empty() || token.len() > 512 {
        return Ok(html(
            StatusCode::UNAUTHORIZED,
            login_page(
                &expected,
                Some(&next),
                Some("Paste your token to log in."),
                state.0.sso.is_on(),
            ),
        ));
    }
    let result = state.blocking(move |s| log_in(s, &token)).await;
    let (value, _actor) = match result {
        Ok(session) => session,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            state.0.metrics.auth_failure();
            return Ok(html(
                StatusCode::UNAUTHORIZED,
                login_page(
                    &expected,
                    Some(&next),
                    Some("That token belongs to no active identity (unknown, expired or revoked)."),
                    state.0.sso.is_on(),
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let config = &state.0.config;
    let mut response = Redirect::to(&next).into_response();
    append_cookie(
        &mut response,
        &session_cookie(&value, config.session_ttl_ms, config.secure_cookies),
    );
    append_cookie(&mut response, &cleared_login_cookie());
    Ok(response)
}

/// `POST /logout`: ends the session (its CSRF token must come with the form).
pub(super) async fn logout(
    State(state): State<AppState>,
    mut parts: Parts,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&parts.headers)?;
    let actor =
        match <Actor as FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await {
            Ok(actor) => actor,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                // No session to end: the browser is logged out already.
                let mut response = Redirect::to("/login").into_response();
                append_cookie(&mut response, &cleared_cookie());
                return Ok(response);
            }
            Err(e) => return Err(e.into()),
        };
    let submitted = form.ok().and_then(|Form(f)| f.csrf);
    if actor.csrf().is_none() || !csrf_ok(&actor, submitted.as_deref()) {
        return Err(ApiError::forbidden(
            "logging out needs the session's CSRF token: use the Log out button",
        )
        .into());
    }
    state.blocking(move |s| log_out(s, &actor)).await?;
    let mut response = Redirect::to("/login").into_response();
    append_cookie(&mut response, &cleared_cookie());
    Ok(response)
}

/// Refuses a request whose `Origin` (when sent) is not this host.
pub(super) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    crate::auth::same_origin(headers)
}

fn set_login_cookie(response: &mut Response, value: &str, secure: bool) {
    append_cookie(
        response,
        &format!(
            "{LOGIN_CSRF_COOKIE}={value}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={LOGIN_FORM_TTL_S}{}",
            if secure { "; Secure" } else { "" }
        ),
    );
}

fn cleared_login_cookie() -> String {
    format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn append_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn login_page(csrf: &str, next: Option<&str>, problem: Option<&str>, sso: bool) -> Markup {
    let next = next.and_then(local_path);
    page(
        "Log in",
        Nav::None,
        None,
        html! {
            h1 { "Log in" }
            @if let Some(problem) = problem {
                p.notice #login-error role="alert" { (problem) }
            }
            @if sso {
                p.sso {
                    a.button #sso href=(match next {
                        Some(next) => format!("/login/oidc?next={}", super::percent_encode(next)),
                        None => "/login/oidc".to_owned(),
                    }) { "Log in with single sign-on" }
                }
                p.muted { "Or with a token:" }
            }
            form.login #login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                @if let Some(next) = next {
                    input type="hidden" name="next" value=(next);
                }
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Log in" }
            }
            p.muted {
                "Use the token of your identity (" code { "cairn identity add" } " prints it once). "
                "The session lasts until you log out or it expires."
            }
        },
    )
}

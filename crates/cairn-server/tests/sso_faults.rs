//! Single sign-on when the identity provider misbehaves, through the router:
//! a provider that is down, answers garbage, names another issuer, serves
//! plain-http endpoints or a huge document, a JWKS without the token's key
//! (refetched once, then rate-limited), a login callback without its cookie or
//! with another state, a client secret others may read. Each is a clear
//! message; no token or secret is ever in one. (The real provider, the
//! browser login and tampered tokens: `crates/cairn-cli/tests/sso.rs`.)

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use cairn_engine::DataDir;
use cairn_server::secret::{Secret, WebhookSecrets};
use cairn_server::{AppState, ServerConfig};
use cairn_store::SqliteStore;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// How a fake provider answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Discovery is not JSON.
    Garbage,
    /// Discovery names another issuer.
    OtherIssuer,
    /// Discovery's jwks_uri is plain http to a remote host.
    PlainHttpJwks,
    /// Discovery is larger than cairn reads.
    Huge,
    /// A good discovery document and a JWKS without the token's key.
    NoKey,
    /// Discovery answers 500.
    Error,
    /// Accepts the connection, reads the request, never answers.
    Hang,
}

/// A loopback HTTP server answering as `mode`; counts JWKS requests.
fn fake_provider(mode: Mode) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let jwks = Arc::new(AtomicUsize::new(0));
    let (iss, count) = (issuer.clone(), jwks.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if matches!(mode, Mode::Hang) {
                std::thread::sleep(std::time::Duration::from_secs(60));
                continue;
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let discovery = |jwks_uri: &str, issuer: &str| {
                serde_json::json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{iss}/auth"),
                    "token_endpoint": format!("{iss}/token"),
                    "jwks_uri": jwks_uri,
                    "code_challenge_methods_supported": ["S256"],
                })
                .to_string()
            };
            let (status, body) = match (mode, path.as_str()) {
                (Mode::Garbage, _) => (200, "<html>an error page</html>".to_owned()),
                (Mode::Error | Mode::Hang, _) => (500, "{}".to_owned()),
                (Mode::OtherIssuer, _) => (
                    200,
                    discovery(&format!("{iss}/jwks"), "https://evil.example"),
                ),
                (Mode::PlainHttpJwks, _) => (200, discovery("http://keys.example.org/jwks", &iss)),
                (Mode::Huge, _) => (200, format!("{{\"pad\": \"{}\"}}", "x".repeat(300 * 1024))),
                (Mode::NoKey, "/jwks") => {
                    count.fetch_add(1, Ordering::SeqCst);
                    (200, r#"{"keys": []}"#.to_owned())
                }
                (Mode::NoKey, _) => (200, discovery(&format!("{iss}/jwks"), &iss)),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (issuer, jwks)
}

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    secret_file: std::path::PathBuf,
    /// A token naming the configured issuer (a token of an issuer nobody
    /// configured is refused before any provider is asked).
    token: String,
}

fn fixture(issuer: &str) -> Fixture {
    fixture_with(issuer, None)
}

/// With `org` as org.toml instead of a good `[sso]`.
fn fixture_with(issuer: &str, org: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let platform = dir.path().join("platform");
    std::fs::create_dir_all(&platform).unwrap();
    let secret_file = platform.join("client.secret");
    std::fs::write(&secret_file, "the-client-secret-3c9d").unwrap();
    let good = format!(
        "[sso]\nissuer = \"{issuer}\"\nclient_id = \"cairn\"\nclient_secret_file = \"{}\"\n\
         redirect_uri = \"http://127.0.0.1:1/login/oidc/callback\"\n",
        secret_file.display()
    );
    std::fs::write(platform.join("org.toml"), org.unwrap_or(&good)).unwrap();
    let state = AppState::new(
        store,
        ServerConfig {
            data,
            platform_dir: Some(platform),
            session_ttl_ms: 3_600_000,
            secure_cookies: false,
        },
        WebhookSecrets {
            github: Secret::new(b"x".to_vec()),
            gitlab: Secret::new(b"y".to_vec()),
            gitea: Secret::new(b"z".to_vec()),
        },
    );
    Fixture {
        _dir: dir,
        app: cairn_server::app(state),
        secret_file,
        token: token(issuer),
    }
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// A JWT-shaped token of `issuer` naming key `k1` (its signature is never
/// reached).
fn token(issuer: &str) -> String {
    let b = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b(r#"{"alg":"ES256","kid":"k1"}"#),
        b(&serde_json::json!({"iss": issuer, "sub": "s", "aud": "cairn", "exp": 9_999_999_999u64})
            .to_string()),
        b("not-a-signature-but-64-bytes-long-enough-to-look-like-one-......")
    )
}

fn bearer(token: &str) -> Request<Body> {
    Request::get("/api/whoami")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn assert_no_secrets(body: &str) {
    assert!(!body.contains("the-client-secret-3c9d"), "{body}");
    assert!(!body.contains("not-a-signature-but-64-bytes"), "{body}");
}

#[tokio::test]
async fn a_provider_that_is_down_is_named_and_the_login_says_use_a_token() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = fixture(&format!("http://127.0.0.1:{port}"));
    let (status, body) = send(&f.app, get("/login/oidc")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.contains(&format!(
            "the identity provider at http://127.0.0.1:{port}/.well-known/openid-configuration could not be reached"
        )),
        "{body}"
    );
    assert!(body.contains("log in with a token meanwhile"), "{body}");
    let (status, body) = send(&f.app, bearer(&f.token)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.contains("the bearer token could not be checked: the identity provider at"),
        "{body}"
    );
    // Answered from memory for a few seconds: tokens cannot make cairn flood
    // a provider that is down.
    assert!(
        body.contains("(moments ago; retried after a few seconds)"),
        "{body}"
    );
    assert_no_secrets(&body);
    println!("provider down: {body}");
}

#[tokio::test]
async fn a_provider_answering_garbage_is_refused_with_what_was_wrong() {
    for (mode, says) in [
        (Mode::Garbage, "discovery document at http://127.0.0.1:"),
        (Mode::Garbage, "is not usable: it is not a JSON object"),
        (
            Mode::Error,
            "/.well-known/openid-configuration answered 500",
        ),
        (
            Mode::OtherIssuer,
            "it names issuer `https://evil.example`, not the configured",
        ),
        (
            Mode::PlainHttpJwks,
            "endpoint `http://keys.example.org/jwks` is not https",
        ),
        (Mode::Huge, "it is larger than 262144 bytes"),
    ] {
        let (issuer, _) = fake_provider(mode);
        let f = fixture(&issuer);
        let (status, body) = send(&f.app, get("/login/oidc")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(body.contains(says), "{says}: {body}");
        let (status, api) = send(&f.app, bearer(&f.token)).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{api}");
        assert!(api.contains(says), "{says}: {api}");
        assert_no_secrets(&api);
        println!("garbage: {api}");
    }
}

#[tokio::test]
async fn a_jwks_without_the_key_is_refetched_once_then_rate_limited() {
    let (issuer, fetches) = fake_provider(Mode::NoKey);
    let f = fixture(&issuer);
    let (status, body) = send(&f.app, bearer(&f.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body.contains(
            "the bearer token was refused: the token's key (kid `k1`) is not in the provider's JWKS"
        ),
        "{body}"
    );
    assert_no_secrets(&body);
    // Fetched, then fetched again for the unknown kid (a rotation?).
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    for _ in 0..5 {
        let (status, _) = send(&f.app, bearer(&f.token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "unknown kids must not make cairn hammer the provider"
    );
    println!("JWKS without the key: {body}");
}

#[tokio::test]
async fn the_login_callback_needs_its_cookie_and_state_and_the_secret_its_mode() {
    let (issuer, _) = fake_provider(Mode::NoKey);
    let f = fixture(&issuer);
    // The login starts: to the provider, with PKCE S256, state and nonce, and
    // the flow's cookie.
    let response = f
        .app
        .clone()
        .oneshot(get("/login/oidc?next=/runs"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with(&format!(
        "{issuer}/auth?response_type=code&client_id=cairn&"
    )));
    for part in [
        "code_challenge_method=S256",
        "&state=",
        "&nonce=",
        "scope=openid%20email%20profile",
    ] {
        assert!(location.contains(part), "{part}: {location}");
    }
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age=600"),
        "{cookie}"
    );
    let state = location
        .split("&state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let flow = cookie.split(';').next().unwrap().to_owned();

    // No cookie: not started here.
    let (status, body) = send(
        &f.app,
        get(&format!("/login/oidc/callback?code=c&state={state}")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("this login was not started here"), "{body}");
    // Another state: refused.
    let request = Request::get("/login/oidc/callback?code=c&state=other")
        .header(header::COOKIE, &flow)
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&f.app, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("the login&#39;s state does not match")
            || body.contains("the login's state does not match"),
        "{body}"
    );
    // The provider refused the login: its error code, not its description.
    let request = Request::get(format!(
        "/login/oidc/callback?error=access_denied&error_description=%3Cscript%3E&state={state}"
    ))
    .header(header::COOKIE, &flow)
    .body(Body::empty())
    .unwrap();
    let (status, body) = send(&f.app, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("the identity provider did not log you in (access_denied)"),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");
    // The right state, but the client secret is readable by others: the code
    // is not sent anywhere, the message names the file, not the secret.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&f.secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let request = Request::get(format!("/login/oidc/callback?code=the-code&state={state}"))
        .header(header::COOKIE, &flow)
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&f.app, request).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.contains("client.secret is readable by other users"),
        "{body}"
    );
    assert_no_secrets(&body);
    assert!(!body.contains("the-code"), "{body}");
}

#[tokio::test]
async fn a_broken_sso_section_is_said_to_be_broken_without_its_details() {
    let f = fixture_with(
        "http://127.0.0.1:1",
        Some(
            "[sso]\nissuer = \"http://idp.example.org\"\nclient_id = \"cairn\"\nredirect_uri = \"https://c/cb\"\n",
        ),
    );
    let (status, page) = send(&f.app, get("/login")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Log in with single sign-on"), "{page}");
    let (status, body) = send(&f.app, get("/login/oidc")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.contains("single sign-on is misconfigured: org.toml has an error"),
        "{body}"
    );
    assert!(!body.contains("idp.example.org"), "{body}");
    let (status, body) = send(&f.app, bearer(&f.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("single sign-on is misconfigured"), "{body}");
    assert!(!body.contains("idp.example.org"), "{body}");
}

#[tokio::test]
async fn a_provider_that_hangs_is_given_up_on_in_bounded_time() {
    let (issuer, _) = fake_provider(Mode::Hang);
    let f = fixture(&issuer);
    let started = std::time::Instant::now();
    let (status, body) = send(&f.app, get("/login/oidc")).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("could not be reached"), "{body}");
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    println!("provider hangs: answered in {took:?}: {body}");
}

//! Single sign-on end to end, against a real OpenID Connect provider started
//! by the test (npm `oidc-provider`, OpenID Certified, on loopback,
//! `tests/oidc/provider.mjs`) and `cairn up` configured by `[sso]` in org.toml:
//!
//! - the browser login (authorization code flow with PKCE, state, nonce)
//!   driven by Playwright in Debian's chromium ends on the runs page as the
//!   mapped identity with its roles; an unmapped account gets no role;
//! - a CI job's access token (client credentials, a JWT for `urn:cairn:api`)
//!   works as `Authorization: Bearer`, mapped by `sub`; cairn's own tokens
//!   keep working;
//! - the provider rotates its keys: cairn fetches them again for the new kid
//!   (once; a second unknown kid right after is refused without a fetch);
//! - tampered tokens (forged with the provider's own keys or the test's):
//!   wrong issuer, wrong audience, expired, `alg: none`, HS256 keyed with a
//!   public key, a key not in the JWKS, a bad signature: each refused with its
//!   reason; none of the tokens or the client secret is ever in cairn's output.
//!
//! `scripts/install-oidc-provider` and `scripts/install-browser-tools` install
//! what these tests drive; without them the tests fail, saying so.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use common::Fixture;
use common::server::{Up, agent};
use serde_json::{Value, json};

const CLIENT_SECRET: &str = "cairn-client-secret-9f1c2e7d";
const CI_SECRET: &str = "ci-bot-secret-5a8b3c1e";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One of the provider's signing keys, as it wrote them.
#[derive(Clone)]
struct ProviderKey {
    kid: String,
    alg: String,
    pkcs8: Vec<u8>,
}

/// `oidc-provider` as a child process on loopback.
struct Idp {
    child: Child,
    issuer: String,
    keys: Vec<ProviderKey>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Idp {
    fn start(dir: &Path, port: u16, redirect: &str, kid_suffix: &str) -> Idp {
        let module = target_dir().join("oidc-tools/node_modules/oidc-provider/lib/index.js");
        assert!(
            module.is_file(),
            "the SSO tests need npm's oidc-provider: run scripts/install-oidc-provider"
        );
        let keys_file = dir.join(format!("idp-keys-{kid_suffix}.json"));
        let mut child = Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs"))
            .env("OIDC_PROVIDER", &module)
            .env("PORT", port.to_string())
            .env("CAIRN_REDIRECT", redirect)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("CI_SECRET", CI_SECRET)
            .env("KEYS_FILE", &keys_file)
            .env("KID_SUFFIX", kid_suffix)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = common::output_lines(&mut child);
        let mut idp = Idp {
            child,
            issuer: String::new(),
            keys: Vec::new(),
            lines,
            seen: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while idp.issuer.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = idp
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("oidc-provider did not start: {:?}", idp.seen));
            if let Some(issuer) = line.strip_prefix("issuer ") {
                idp.issuer = issuer.to_owned();
            }
            idp.seen.push(line);
        }
        let keys: Vec<Value> = serde_json::from_slice(&std::fs::read(&keys_file).unwrap()).unwrap();
        idp.keys = keys
            .iter()
            .map(|k| ProviderKey {
                kid: k["kid"].as_str().unwrap().to_owned(),
                alg: k["alg"].as_str().unwrap().to_owned(),
                pkcs8: base64::engine::general_purpose::STANDARD
                    .decode(k["pkcs8"].as_str().unwrap())
                    .unwrap(),
            })
            .collect();
        idp
    }

    /// How often cairn fetched the provider's JWKS so far.
    fn jwks_fetches(&mut self) -> usize {
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.iter().filter(|l| *l == "jwks fetched").count()
    }

    fn key(&self, alg: &str) -> ProviderKey {
        self.keys.iter().find(|k| k.alg == alg).unwrap().clone()
    }

    /// A CI job's access token: client credentials for `urn:cairn:api`.
    fn ci_token(&self) -> String {
        self.client_token("ci-bot")
    }

    /// The access token of client `client` (`ci-bot` or `release-bot`).
    fn client_token(&self, client: &str) -> String {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{client}:{CI_SECRET}"));
        let mut answer = agent()
            .post(&format!("{}/token", self.issuer))
            .header("authorization", &format!("Basic {basic}"))
            .send_form([
                ("grant_type", "client_credentials"),
                ("scope", "api"),
                ("resource", "urn:cairn:api"),
            ])
            .unwrap();
        let body: Value =
            serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A JWT signed with `key` (`RS256` or `ES256` PKCS#8).
fn sign(header: &Value, claims: &Value, alg: &str, pkcs8: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let rng = SystemRandom::new();
    let signature = match alg {
        "RS256" => {
            let key = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
            let mut sig = vec![0; key.public_modulus_len()];
            key.sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                signed.as_bytes(),
                &mut sig,
            )
            .unwrap();
            sig
        }
        "ES256" => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .unwrap()
            .sign(&rng, signed.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
        other => panic!("{other}"),
    };
    format!("{signed}.{}", b64(&signature))
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A free loopback port (for a server whose address must be known before it
/// starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// cairn with `[sso]` pointing at a fresh provider; identities: alice (user,
/// release-manager), platform-team (maintainer of hello), ci-bot (service
/// account, developer).
struct Setup {
    f: Fixture,
    _platform: tempfile::TempDir,
    idp: Idp,
    up: Up,
    admin: String,
    redirect: String,
    idp_port: u16,
}

fn setup() -> Setup {
    let f = Fixture::new();
    let platform = tempfile::tempdir().unwrap();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/login/oidc/callback");
    let idp_port = free_port();
    let idp = Idp::start(platform.path(), idp_port, &redirect, "1");
    let secret_file = platform.path().join("oidc-client.secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        format!(
            r#"[sso]
issuer = "{issuer}"
client_id = "cairn"
client_secret_file = "{secret}"
redirect_uri = "{redirect}"
audiences = ["cairn", "urn:cairn:api"]
scopes = ["email", "groups"]

[[sso.map]]
claim = "email"
value = "alice@example.org"
identity = "alice@example.org"

[[sso.map]]
claim = "groups"
value = "platform"
identity = "platform-team"

[[sso.map]]
claim = "sub"
value = "ci-bot"
identity = "ci-bot"

[[sso.map]]
claim = "sub"
value = "release-bot"
identity = "release-bot"
kind = "service-account"
roles = [{{ role = "viewer" }}, {{ role = "developer", workload = "hello" }}]
"#,
            issuer = idp.issuer,
            secret = secret_file.display(),
        ),
    )
    .unwrap();
    let up = Up::start_on(
        &format!("127.0.0.1:{port}"),
        &f.data,
        &[],
        Some(platform.path()),
    );
    let admin = up.admin_token();
    for (name, extra, role, scope) in [
        ("alice@example.org", None, "release-manager", None),
        ("platform-team", None, "maintainer", Some("hello")),
        ("ci-bot", Some("--service-account"), "developer", None),
    ] {
        let mut args = vec!["identity", "add", name];
        args.extend(extra);
        f.ok_as(&admin, &args);
        let mut args = vec!["role", "grant", name, role];
        if let Some(w) = scope {
            args.extend(["--workload", w]);
        }
        f.ok_as(&admin, &args);
    }
    Setup {
        f,
        _platform: platform,
        idp,
        up,
        admin,
        redirect,
        idp_port,
    }
}

/// `GET /api/whoami` with `Authorization: Bearer <token>`: status and body.
fn whoami(up: &Up, token: &str) -> (u16, Value) {
    let mut answer = agent()
        .get(&format!("{}/api/whoami", up.url))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = answer.status().as_u16();
    let body: Value = answer
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

#[test]
fn browser_login_through_the_provider_ends_on_runs_as_the_mapped_identity() {
    let playwright = target_dir().join("browser-tools/node_modules/playwright-core");
    assert!(
        playwright.join("package.json").is_file() && Path::new("/usr/bin/chromium").is_file(),
        "the browser tests need chromium and playwright-core: run scripts/install-browser-tools"
    );
    let mut s = setup();
    let shots = target_dir().join("browser-screenshots");
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/sso.mjs"))
        .env("CAIRN_URL", &s.up.url)
        .env("PLAYWRIGHT", &playwright)
        .env("SCREENSHOTS", &shots)
        .env(
            "USERS",
            json!([
                ["alice", "alice@example.org"],
                ["bob", "platform-team"],
                ["mallory", ""]
            ])
            .to_string(),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the SSO browser test failed:\n{stdout}\n{stderr}\nserver:\n{}\nprovider:\n{}",
        s.up.seen.join("\n"),
        s.idp.seen.join("\n")
    );
    assert!(
        stdout.contains(
            "alice: logged in through the provider, on /runs as alice@example.org (via session) with roles release-manager"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("as platform-team (via session) with roles maintainer@hello"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mallory: Logged in, but with no role")
            && stdout.contains("mallory@elsewhere.example")
            && stdout.contains("Then /runs sent it to /login."),
        "{stdout}"
    );
    // The provider really ran the flow: cairn fetched its keys.
    assert!(s.idp.jwks_fetches() >= 1, "{:?}", s.idp.seen);
    assert_eq!(s.up.stop(Duration::from_secs(20)), Some(0));
    let printed = s.up.seen.join("\n");
    assert!(!printed.contains(CLIENT_SECRET), "{printed}");
}

#[test]
fn bearer_tokens_from_the_provider_rotation_and_tampered_tokens() {
    let mut s = setup();
    // A CI job's access token (RS256 JWT for urn:cairn:api), mapped by sub.
    let ci = s.idp.ci_token();
    let (status, body) = whoami(&s.up, &ci);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"], "ci-bot");
    assert_eq!(body["kind"], "service-account");
    assert_eq!(body["roles"][0]["role"], "developer");
    println!(
        "CI access token from the provider: {} ({}) with role {}",
        body["identity"], body["kind"], body["roles"][0]["role"]
    );
    // cairn's own tokens keep working beside it.
    let (status, body) = whoami(&s.up, &s.admin);
    assert_eq!((status, body["identity"].as_str()), (200, Some("admin")));
    assert_eq!(s.idp.jwks_fetches(), 1);

    // An ID token for cairn (aud = client id), ES256 with the provider's key.
    let ec = s.idp.key("ES256");
    let rsa = s.idp.key("RS256");
    let issuer = s.idp.issuer.clone();
    let good_claims = |over: Value| {
        let mut c = json!({
            "iss": issuer, "aud": "cairn", "sub": "ci-bot",
            "iat": now_s(), "exp": now_s() + 300,
        });
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let id_token = sign(
        &json!({"alg": "ES256", "kid": ec.kid, "typ": "JWT"}),
        &good_claims(json!({})),
        "ES256",
        &ec.pkcs8,
    );
    let (status, body) = whoami(&s.up, &id_token);
    assert_eq!(
        (status, body["identity"].as_str()),
        (200, Some("ci-bot")),
        "{body}"
    );

    // Key rotation: the provider restarts with new keys; the new kid makes
    // cairn fetch the JWKS again, once.
    s.idp.stop();
    s.idp = Idp::start(s._platform.path(), s.idp_port, &s.redirect, "2");
    let rotated = s.idp.ci_token();
    assert!(rotated.contains('.'));
    let (status, body) = whoami(&s.up, &rotated);
    assert_eq!(
        (status, body["identity"].as_str()),
        (200, Some("ci-bot")),
        "{body}"
    );
    assert_eq!(
        s.idp.jwks_fetches(),
        1,
        "the rotation's kid fetched the keys once"
    );
    println!(
        "after the provider rotated its keys (kid rsa-1 → rsa-2): accepted, JWKS fetched again once"
    );

    // Tampered tokens, each refused with its reason.
    let rsa2 = s.idp.key("RS256");
    let rogue_pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &SystemRandom::new(),
    )
    .unwrap();
    let rogue_public = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        rogue_pkcs8.as_ref(),
    )
    .unwrap()
    .public_key()
    .as_ref()
    .to_vec();
    let rs = |claims: Value| {
        sign(
            &json!({"alg": "RS256", "kid": rsa2.kid}),
            &claims,
            "RS256",
            &rsa2.pkcs8,
        )
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string().as_bytes()),
        b64(good_claims(json!({})).to_string().as_bytes())
    );
    let hs256 = {
        let signed = format!(
            "{}.{}",
            b64(json!({"alg": "HS256", "kid": rsa2.kid})
                .to_string()
                .as_bytes()),
            b64(good_claims(json!({})).to_string().as_bytes())
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &rogue_public);
        let tag = aws_lc_rs::hmac::sign(&key, signed.as_bytes());
        format!("{signed}.{}", b64(tag.as_ref()))
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            rs(good_claims(json!({"iss": "https://evil.example"}))),
            "the token's issuer `https://evil.example` is not the configured issuer",
        ),
        (
            "wrong audience",
            rs(good_claims(json!({"aud": "someone-else"}))),
            "the token's audience [\"someone-else\"] is not one of",
        ),
        (
            "expired",
            rs(good_claims(
                json!({"exp": now_s() - 3600, "iat": now_s() - 7200}),
            )),
            "the token expired 36",
        ),
        (
            "alg none",
            unsigned,
            "the token's algorithm `none` is refused",
        ),
        (
            "HS256 keyed with a public key",
            hs256,
            "the token's algorithm `HS256` is refused",
        ),
        (
            "key not in the JWKS",
            sign(
                &json!({"alg": "ES256", "kid": "rogue-1"}),
                &good_claims(json!({})),
                "ES256",
                rogue_pkcs8.as_ref(),
            ),
            "the token's key (kid `rogue-1`) is not in the provider's JWKS",
        ),
        (
            "old key after rotation",
            sign(
                &json!({"alg": "RS256", "kid": rsa.kid}),
                &good_claims(json!({})),
                "RS256",
                &rsa.pkcs8,
            ),
            "the token's key (kid `rsa-1`) is not in the provider's JWKS",
        ),
        (
            "bad signature",
            {
                let mut t = rs(good_claims(json!({})));
                // Another identity in the claims, the signature kept.
                let parts: Vec<&str> = t.split('.').collect();
                let forged = b64(good_claims(json!({"sub": "admin-of-everything"}))
                    .to_string()
                    .as_bytes());
                t = format!("{}.{forged}.{}", parts[0], parts[2]);
                t
            },
            "the token's signature does not verify with the provider's key",
        ),
        (
            "signed with the test's key under the provider's kid",
            sign(
                &json!({"alg": "ES256", "kid": s.idp.key("ES256").kid}),
                &good_claims(json!({})),
                "ES256",
                rogue_pkcs8.as_ref(),
            ),
            "the token's signature does not verify with the provider's key",
        ),
    ];
    for (case, token, says) in &cases {
        let (status, body) = whoami(&s.up, token);
        let detail = body["detail"].as_str().unwrap_or_default();
        assert_eq!(status, 401, "{case}: {body}");
        assert!(detail.contains(says), "{case}: {detail}");
        assert!(
            !detail.contains(token.as_str()),
            "{case}: the token is echoed"
        );
        println!("refused ({case}): {detail}");
    }
    // Unknown kids right after the rotation's fetch: refused without another
    // fetch (rate-limited), so made-up kids cannot make cairn hammer the provider.
    assert_eq!(s.idp.jwks_fetches(), 1, "{:?}", s.idp.seen);

    // A valid token nobody is mapped from: no identity, no role.
    let stranger = rs(good_claims(json!({"sub": "stranger"})));
    let (status, body) = whoami(&s.up, &stranger);
    assert_eq!(status, 403, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("no [[sso.map]] in org.toml maps it"),
        "{detail}"
    );
    println!("refused (valid, unmapped): {detail}");

    // The provider goes down: a token the cached keys verify still works.
    s.idp.stop();
    let (status, _) = whoami(&s.up, &rotated);
    assert_eq!(status, 200);

    // The mapped identity is revoked: its provider's tokens stop working at once.
    s.f.ok_as(&s.admin, &["identity", "revoke", "ci-bot"]);
    let (status, body) = whoami(&s.up, &rotated);
    assert_eq!(status, 401, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("org.toml maps sub ci-bot to the cairn identity ci-bot, which does not exist or is revoked"),
        "{detail}"
    );
    println!("refused (mapped identity revoked): {detail}");

    let printed = {
        s.up.stop(Duration::from_secs(20));
        s.up.seen.join("\n")
    };
    for secret in [CLIENT_SECRET, CI_SECRET, ci.as_str(), rotated.as_str()] {
        assert!(
            !printed.contains(secret),
            "cairn printed a secret: {printed}"
        );
    }
}

/// Roles declared in `[[sso.map]]`: the release pipeline's token from the
/// provider (`sub` = `release-bot`, never `cairn identity add`ed) works at once
/// as the service account org.toml declares, with exactly the declared roles;
/// a binding granted by hand is taken back at its next sign-on (org.toml is
/// the source), each change in the audit log by `[[sso.map]]`; revoking the
/// identity wins over org.toml; a valid token nobody maps still has no role.
#[test]
fn roles_declared_in_sso_map_need_no_identity_add() {
    let s = setup();
    let listed = s.f.ok_as(&s.admin, &["identity", "list"]).stdout;
    assert!(!listed.contains("release-bot"), "{listed}");

    let token = s.idp.client_token("release-bot");
    let (status, body) = whoami(&s.up, &token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"], "release-bot");
    assert_eq!(body["kind"], "service-account");
    let roles = |body: &Value| {
        let mut r: Vec<String> = body["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                format!(
                    "{}@{}",
                    b["role"].as_str().unwrap(),
                    b["workload"].as_str().unwrap_or("*")
                )
            })
            .collect();
        r.sort();
        r
    };
    assert_eq!(roles(&body), ["developer@hello", "viewer@*"]);
    println!(
        "declared in [[sso.map]], no identity add: {} ({}) with roles {:?}",
        body["identity"],
        body["kind"],
        roles(&body)
    );
    let listed = s.f.ok_as(&s.admin, &["identity", "list"]).stdout;
    assert!(listed.contains("release-bot"), "{listed}");

    // A role granted by hand is not org.toml's: taken back at the next sign-on.
    s.f.ok_as(
        &s.admin,
        &["role", "grant", "release-bot", "platform-admin"],
    );
    let (status, body) = whoami(&s.up, &token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(roles(&body), ["developer@hello", "viewer@*"]);
    println!(
        "a hand-granted platform-admin is revoked again: {:?}",
        roles(&body)
    );

    // Each change is an audit log entry made by [[sso.map]].
    let size = s.f.json(&["log", "checkpoint"])["size"].as_u64().unwrap();
    let by_map: Vec<Value> = (0..size)
        .map(|i| {
            let shown = s.f.json(&["log", "show", &i.to_string()]);
            serde_json::from_str::<Value>(shown["entry_text"].as_str().unwrap()).unwrap()
        })
        .filter(|e| e["spec"]["actor"] == "[[sso.map]]" && e["spec"]["identity"] == "release-bot")
        .collect();
    let log = &by_map;
    assert!(
        by_map.len() >= 4,
        "identity-add, 2 grants, 1 revoke: {log:?}"
    );
    for action in ["identity-add", "role-grant", "role-revoke"] {
        assert!(
            by_map.iter().any(|e| e["spec"]["action"] == action),
            "{action}: {log:?}"
        );
    }
    println!("audit entries by [[sso.map]]: {}", by_map.len());

    // Revoked stays revoked: org.toml does not bring the identity back.
    s.f.ok_as(&s.admin, &["identity", "revoke", "release-bot"]);
    let (status, body) = whoami(&s.up, &s.idp.client_token("release-bot"));
    assert_eq!(status, 401, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("to the cairn identity release-bot, which does not exist or is revoked"),
        "{detail}"
    );
    println!("refused (declared identity revoked): {detail}");

    // A valid token from the provider that no mapping names: no role.
    let rsa = s.idp.key("RS256");
    let stranger = sign(
        &json!({"alg": "RS256", "typ": "JWT", "kid": rsa.kid}),
        &json!({"iss": s.idp.issuer, "aud": "urn:cairn:api", "sub": "deploy-bot",
                "iat": now_s(), "exp": now_s() + 300}),
        "RS256",
        &rsa.pkcs8,
    );
    let (status, body) = whoami(&s.up, &stranger);
    assert_eq!(status, 403, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("no [[sso.map]] in org.toml maps it"),
        "{detail}"
    );
    println!("refused (unmapped user): {detail}");
}

/// Several issuers: the login's provider and a CI system's workload identity
/// provider (`[[sso.issuers]]`, a second real oidc-provider with its own
/// keys), each with its own audience and mapping. The CI provider's token maps
/// through its own `[[sso.issuers.map]]`, never the login's (the same `sub`
/// names another identity); the login provider's token for the CI audience is
/// refused; a token claiming the CI issuer but signed with the login
/// provider's key never validates, whatever kid it names; an issuer nobody
/// configured is refused by name.
#[test]
fn several_issuers_each_with_its_own_audience_keys_and_mapping() {
    let f = Fixture::new();
    let platform = tempfile::tempdir().unwrap();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/login/oidc/callback");
    let login = Idp::start(platform.path(), free_port(), &redirect, "login");
    let ci = Idp::start(platform.path(), free_port(), &redirect, "ci");
    std::fs::write(
        platform.path().join("org.toml"),
        format!(
            r#"[sso]
issuer = "{login}"
client_id = "cairn"
redirect_uri = "{redirect}"
audiences = ["cairn"]

[[sso.map]]
claim = "sub"
value = "ci-bot"
identity = "admin"

[[sso.issuers]]
issuer = "{ci}"
audiences = ["urn:cairn:api"]

[[sso.issuers.map]]
claim = "sub"
value = "ci-bot"
identity = "ci-runner"
kind = "service-account"
roles = [{{ role = "developer" }}]
"#,
            login = login.issuer,
            ci = ci.issuer,
        ),
    )
    .unwrap();
    let up = Up::start_on(
        &format!("127.0.0.1:{port}"),
        &f.data,
        &[],
        Some(platform.path()),
    );
    let _admin = up.admin_token();

    // The CI provider's own token: its own mapping (not the login's `admin`).
    let token = ci.ci_token();
    let (status, body) = whoami(&up, &token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identity"], "ci-runner");
    assert_eq!(body["roles"][0]["role"], "developer");
    println!(
        "token of the CI issuer: {} ({}) with role {}",
        body["identity"], body["kind"], body["roles"][0]["role"]
    );

    let rsa = login.key("RS256");
    let ci_rsa = ci.key("RS256");
    let claims = |iss: &str| {
        json!({"iss": iss, "aud": "urn:cairn:api", "sub": "ci-bot",
               "iat": now_s(), "exp": now_s() + 300})
    };
    let header = |kid: &str| json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let cases = [
        (
            "the login provider's real token for the CI audience",
            login.ci_token(),
            "the token's audience",
        ),
        (
            "claims the CI issuer, signed with the login provider's key",
            sign(&header(&rsa.kid), &claims(&ci.issuer), "RS256", &rsa.pkcs8),
            "is not in the provider's JWKS",
        ),
        (
            "claims the CI issuer and its kid, signed with the login provider's key",
            sign(
                &header(&ci_rsa.kid),
                &claims(&ci.issuer),
                "RS256",
                &rsa.pkcs8,
            ),
            "does not verify with the provider's key",
        ),
        (
            "an issuer nobody configured",
            sign(
                &header(&ci_rsa.kid),
                &claims("http://127.0.0.1:9/other"),
                "RS256",
                &ci_rsa.pkcs8,
            ),
            "is not the configured issuer",
        ),
    ];
    // A valid token of the CI issuer its own mappings do not name: no role
    // (the login's mappings are not tried).
    let stranger = sign(
        &header(&ci_rsa.kid),
        &json!({"iss": ci.issuer, "aud": "urn:cairn:api", "sub": "stranger",
                "iat": now_s(), "exp": now_s() + 300}),
        "RS256",
        &ci_rsa.pkcs8,
    );
    let (status, body) = whoami(&up, &stranger);
    assert_eq!(status, 403, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("no [[sso.issuers.map]] of its issuer"),
        "{detail}"
    );
    println!("refused (CI issuer, unmapped): {detail}");

    for (case, token, says) in &cases {
        let (status, body) = whoami(&up, token);
        let detail = body["detail"].as_str().unwrap_or_default();
        assert_eq!(status, 401, "{case}: {body}");
        assert!(detail.contains(says), "{case}: {detail}");
        assert!(
            !detail.contains(token.as_str()),
            "{case}: the token is echoed"
        );
        println!("refused ({case}): {detail}");
    }
}

//! Single sign-on (`[sso]` in `org.toml`): the organisation's OpenID Connect
//! provider, cairn's client registration at it, and which claim of a verified
//! token names which cairn identity (whose roles are its bindings).
//!
//! ```toml
//! [sso]
//! issuer = "https://login.example.org"
//! client_id = "cairn"
//! client_secret_file = "/etc/cairn/oidc-client.secret"   # optional, mode 0600
//! redirect_uri = "https://cairn.example.org/login/oidc/callback"
//! audiences = ["cairn", "urn:cairn:api"]   # bearer tokens' `aud`; default [client_id]
//!
//! [[sso.map]]
//! claim = "email"          # email (verified only), sub or groups
//! value = "alice@example.org"
//! identity = "alice@example.org"
//!
//! [[sso.map]]              # roles declared here: no `cairn identity add`
//! claim = "groups"
//! value = "release"
//! identity = "release-team"
//! kind = "user"            # or "service-account" (a CI workload identity)
//! roles = [{ role = "viewer" }, { role = "release-manager", workload = "shop" }]
//! ```
//!
//! A mapping with `roles` makes org.toml the source of that identity's role
//! bindings: at each sign-on cairn creates the identity when it is missing and
//! grants and revokes bindings until they are exactly the declared ones, each
//! change an audit log entry by `[[sso.map]]` before it is made. A revoked
//! identity stays revoked. A mapping without `roles` names an identity made
//! with `cairn identity add`, whose roles are its bindings.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;

/// Most claim mappings.
const MAX_MAPS: usize = 1024;
/// Most roles one mapping declares.
const MAX_ROLES: usize = 64;
/// The roles' names, as cairn-policy's `Role::as_str` spells them (a test in
/// cairn-engine's `access` keeps the two lists equal).
pub const ROLE_NAMES: [&str; 5] = [
    "viewer",
    "developer",
    "maintainer",
    "release-manager",
    "platform-admin",
];

/// The organisation's OpenID Connect provider and the claim mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    /// The issuer, exactly as its tokens' `iss` and its discovery document say.
    pub issuer: String,
    pub client_id: String,
    /// A file (mode 0600) holding the client secret; `None`: a public client
    /// (PKCE only).
    pub client_secret_file: Option<String>,
    /// Where the provider sends the browser back (`…/login/oidc/callback`).
    pub redirect_uri: String,
    /// The `aud` values a bearer token (access or ID token) may carry.
    pub audiences: Vec<String>,
    /// Scopes asked for at login (always including `openid`).
    pub scopes: Vec<String>,
    /// Claim mappings, in file order; the first that matches wins.
    pub map: Vec<ClaimMap>,
    /// More issuers whose tokens cairn takes as bearer tokens only (a CI
    /// system's workload identity), each with its own audiences and mappings
    /// (`[[sso.issuers]]`); never the login issuer, never twice.
    pub issuers: Vec<BearerIssuer>,
}

/// An issuer of bearer tokens besides the login's (`[[sso.issuers]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerIssuer {
    pub issuer: String,
    /// The `aud` values its tokens may carry (at least one).
    pub audiences: Vec<String>,
    /// Its own claim mappings (the login issuer's never apply to it).
    pub map: Vec<ClaimMap>,
}

/// Most extra issuers.
const MAX_ISSUERS: usize = 16;

/// Which claim names the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// `email`, only when `email_verified` is true.
    Email,
    Sub,
    /// One of the strings of `groups`.
    Groups,
}

impl Claim {
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Email => "email",
            Claim::Sub => "sub",
            Claim::Groups => "groups",
        }
    }
}

/// `claim = value` → the cairn identity `identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMap {
    pub claim: Claim,
    pub value: String,
    pub identity: String,
    /// `Some`: the identity's kind and its exact role bindings, declared here
    /// (the identity is made on first sign-on); `None`: an identity made with
    /// `cairn identity add`, with its bindings in the store.
    pub declared: Option<DeclaredRoles>,
}

/// The identity a mapping declares, with its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredRoles {
    pub service_account: bool,
    /// Deduplicated, in file order.
    pub roles: Vec<MappedRole>,
}

/// One role binding a mapping declares: a role at the organisation, a workload
/// or a workload's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRole {
    pub role: String,
    pub workload: Option<String>,
    pub environment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSso {
    issuer: Spanned<String>,
    client_id: Spanned<String>,
    client_secret_file: Option<Spanned<String>>,
    redirect_uri: Spanned<String>,
    #[serde(default)]
    audiences: Vec<Spanned<String>>,
    #[serde(default)]
    scopes: Vec<Spanned<String>>,
    #[serde(default)]
    map: Vec<Spanned<RawMap>>,
    #[serde(default)]
    issuers: Vec<Spanned<RawIssuer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: Spanned<String>,
    audiences: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    map: Vec<Spanned<RawMap>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    claim: Spanned<String>,
    value: Spanned<String>,
    identity: Spanned<String>,
    kind: Option<Spanned<String>>,
    roles: Option<Spanned<Vec<Spanned<RawRole>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    role: Spanned<String>,
    workload: Option<Spanned<String>>,
    environment: Option<Spanned<String>>,
}

/// Whether `u` is a URL cairn may talk OpenID Connect with: `https://`, or
/// `http://` only to a loopback host (`127.0.0.1`, `[::1]`, `localhost`: a
/// provider started by a test); no credentials, query, fragment, whitespace or
/// control characters; at most 2048 bytes.
pub fn is_oidc_url(u: &str) -> bool {
    if u.len() > 2048 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let (rest, https) = match (u.strip_prefix("https://"), u.strip_prefix("http://")) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        _ => return false,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(['@', '?', '#']) || u.contains(['?', '#']) {
        return false;
    }
    https || is_loopback_authority(authority)
}

/// `127.0.0.1[:port]`, `[::1][:port]` or `localhost[:port]`.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
}

pub(super) fn validate(file: &str, text: &str, raw: RawSso) -> Result<SsoConfig, ConfigError> {
    let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
        ConfigError::at(file, text, Some(span), msg, Some(help.to_owned()))
    };
    for (url, what) in [(&raw.issuer, "issuer"), (&raw.redirect_uri, "redirect_uri")] {
        if !is_oidc_url(url.get_ref()) {
            return Err(err(
                url.span(),
                format!("{what} `{}` is not an https URL", url.get_ref()),
                "https://… without credentials, query or fragment (http:// only to 127.0.0.1, [::1] or localhost)",
            ));
        }
    }
    if !printable(raw.client_id.get_ref(), 256) {
        return Err(err(
            raw.client_id.span(),
            "client_id must be 1 to 256 printable ASCII characters".into(),
            "the client id the provider registered cairn under, e.g. \"cairn\"",
        ));
    }
    let client_secret_file = match raw.client_secret_file {
        None => None,
        Some(f) if f.get_ref().starts_with('/') && !f.get_ref().contains('\0') => {
            Some(f.into_inner())
        }
        Some(f) => {
            return Err(err(
                f.span(),
                format!(
                    "client_secret_file `{}` is not an absolute path",
                    f.get_ref()
                ),
                "e.g. client_secret_file = \"/etc/cairn/oidc-client.secret\" (mode 0600)",
            ));
        }
    };
    let mut audiences = Vec::new();
    for a in raw.audiences {
        if !printable(a.get_ref(), 256) {
            return Err(err(
                a.span(),
                "an audience is 1 to 256 printable ASCII characters".into(),
                "e.g. audiences = [\"cairn\", \"urn:cairn:api\"]",
            ));
        }
        audiences.push(a.into_inner());
    }
    if audiences.is_empty() {
        audiences.push(raw.client_id.get_ref().clone());
    }
    let mut scopes = vec!["openid".to_owned()];
    for s in raw.scopes {
        let ok = printable(s.get_ref(), 64)
            && s.get_ref()
                .bytes()
                .all(|b| b != b'"' && b != b'\\' && b != b'&' && b != b'+');
        if !ok {
            return Err(err(
                s.span(),
                format!("`{}` is not a scope", s.get_ref()),
                "e.g. scopes = [\"email\", \"groups\"]",
            ));
        }
        if !scopes.contains(s.get_ref()) {
            scopes.push(s.into_inner());
        }
    }
    if scopes.len() == 1 {
        scopes.extend(["email".to_owned(), "profile".to_owned()]);
    }
    let map = validate_maps(&err, raw.map)?;
    if raw.issuers.len() > MAX_ISSUERS {
        return Err(err(
            raw.issuers[MAX_ISSUERS].span(),
            format!("at most {MAX_ISSUERS} more issuers"),
            "one per CI system or workload identity provider",
        ));
    }
    let mut issuers: Vec<BearerIssuer> = Vec::new();
    for i in raw.issuers {
        let i = i.into_inner();
        if !is_oidc_url(i.issuer.get_ref()) {
            return Err(err(
                i.issuer.span(),
                format!("issuer `{}` is not an https URL", i.issuer.get_ref()),
                "https://… without credentials, query or fragment (http:// only to 127.0.0.1, [::1] or localhost)",
            ));
        }
        if i.issuer.get_ref() == raw.issuer.get_ref()
            || issuers.iter().any(|o| &o.issuer == i.issuer.get_ref())
        {
            return Err(err(
                i.issuer.span(),
                format!("issuer `{}` is configured twice", i.issuer.get_ref()),
                "each issuer once: its audiences and mappings in one place",
            ));
        }
        let audiences_span = i.audiences.span();
        let mut audiences = Vec::new();
        for a in i.audiences.into_inner() {
            if !printable(a.get_ref(), 256) {
                return Err(err(
                    a.span(),
                    "an audience is 1 to 256 printable ASCII characters".into(),
                    "e.g. audiences = [\"urn:cairn:ci\"]",
                ));
            }
            audiences.push(a.into_inner());
        }
        if audiences.is_empty() {
            return Err(err(
                audiences_span,
                "an issuer needs at least one audience".into(),
                "the `aud` its tokens for cairn carry, e.g. audiences = [\"urn:cairn:ci\"]",
            ));
        }
        issuers.push(BearerIssuer {
            issuer: i.issuer.into_inner(),
            audiences,
            map: validate_maps(&err, i.map)?,
        });
    }
    Ok(SsoConfig {
        issuer: raw.issuer.into_inner(),
        client_id: raw.client_id.into_inner(),
        client_secret_file,
        redirect_uri: raw.redirect_uri.into_inner(),
        audiences,
        scopes,
        map,
        issuers,
    })
}

/// Claim mappings: at most [`MAX_MAPS`], known claims, bounded values,
/// identity names as cairn spells them, declared roles checked.
fn validate_maps(
    err: &dyn Fn(std::ops::Range<usize>, String, &str) -> ConfigError,
    raw: Vec<Spanned<RawMap>>,
) -> Result<Vec<ClaimMap>, ConfigError> {
    if raw.len() > MAX_MAPS {
        return Err(err(
            raw[MAX_MAPS].span(),
            format!("at most {MAX_MAPS} claim mappings"),
            "map groups to shared identities instead of every user",
        ));
    }
    let mut map = Vec::new();
    for m in raw {
        let m = m.into_inner();
        let claim = match m.claim.get_ref().as_str() {
            "email" => Claim::Email,
            "sub" => Claim::Sub,
            "groups" => Claim::Groups,
            other => {
                return Err(err(
                    m.claim.span(),
                    format!("unknown claim `{other}`"),
                    "one of email (verified only), sub, groups",
                ));
            }
        };
        if m.value.get_ref().is_empty() || m.value.get_ref().len() > 512 {
            return Err(err(
                m.value.span(),
                "a claim's value is 1 to 512 characters".into(),
                "e.g. value = \"alice@example.org\"",
            ));
        }
        let name = m.identity.get_ref();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if !name_ok {
            return Err(err(
                m.identity.span(),
                format!("`{name}` is not a cairn identity name"),
                "1 to 64 of letters, digits, '.', '_', '-', '@', starting with a letter or digit",
            ));
        }
        let declared = match (m.kind, m.roles) {
            (None, None) => None,
            (Some(kind), None) => {
                return Err(err(
                    kind.span(),
                    "`kind` without `roles`".into(),
                    "declare the identity's roles too, e.g. roles = [{ role = \"developer\" }], \
                     or drop `kind` (an identity made with `cairn identity add` has its own)",
                ));
            }
            (kind, Some(roles)) => Some(validate_roles(&err, kind, roles)?),
        };
        map.push(ClaimMap {
            claim,
            value: m.value.into_inner(),
            identity: m.identity.into_inner(),
            declared,
        });
    }
    Ok(map)
}

/// A mapping's `kind` and `roles`: known roles, bounded names, an
/// environment only with a workload, at most [`MAX_ROLES`].
fn validate_roles(
    err: &dyn Fn(std::ops::Range<usize>, String, &str) -> ConfigError,
    kind: Option<Spanned<String>>,
    roles: Spanned<Vec<Spanned<RawRole>>>,
) -> Result<DeclaredRoles, ConfigError> {
    let service_account = match kind {
        None => false,
        Some(k) => match k.get_ref().as_str() {
            "user" => false,
            "service-account" => true,
            other => {
                return Err(err(
                    k.span(),
                    format!("unknown identity kind `{other}`"),
                    "one of user, service-account",
                ));
            }
        },
    };
    let span = roles.span();
    let roles = roles.into_inner();
    if roles.len() > MAX_ROLES {
        return Err(err(
            span,
            format!("at most {MAX_ROLES} roles per mapping"),
            "bind roles organisation-wide or per workload instead of per environment",
        ));
    }
    let scope_ok =
        |s: &str| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
    let mut out: Vec<MappedRole> = Vec::new();
    for r in roles {
        let r = r.into_inner();
        if !ROLE_NAMES.contains(&r.role.get_ref().as_str()) {
            return Err(err(
                r.role.span(),
                format!("unknown role `{}`", r.role.get_ref()),
                "one of viewer, developer, maintainer, release-manager, platform-admin",
            ));
        }
        for s in [&r.workload, &r.environment].into_iter().flatten() {
            if !scope_ok(s.get_ref()) {
                return Err(err(
                    s.span(),
                    "a workload or environment name is 1 to 128 printable ASCII characters".into(),
                    "e.g. { role = \"developer\", workload = \"shop\" }",
                ));
            }
        }
        if let (None, Some(e)) = (&r.workload, &r.environment) {
            return Err(err(
                e.span(),
                "an environment binding also needs a workload".into(),
                "e.g. { role = \"release-manager\", workload = \"shop\", environment = \"production\" }",
            ));
        }
        let role = MappedRole {
            role: r.role.into_inner(),
            workload: r.workload.map(Spanned::into_inner),
            environment: r.environment.map(Spanned::into_inner),
        };
        if !out.contains(&role) {
            out.push(role);
        }
    }
    Ok(DeclaredRoles {
        service_account,
        roles: out,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_org;
    use super::*;

    #[test]
    fn sso_is_parsed_and_bounded() {
        let org = parse_org(
            "org.toml",
            "[sso]\nissuer = \"https://login.example.org\"\nclient_id = \"cairn\"\n\
             redirect_uri = \"https://cairn.example.org/login/oidc/callback\"\n\
             [[sso.map]]\nclaim = \"groups\"\nvalue = \"platform\"\nidentity = \"platform-team\"\n",
        )
        .unwrap();
        let sso = org.sso.unwrap();
        assert_eq!(sso.audiences, vec!["cairn".to_owned()]);
        assert_eq!(sso.scopes, vec!["openid", "email", "profile"]);
        assert_eq!(sso.map[0].claim, Claim::Groups);
        for (bad, says) in [
            (
                "issuer = \"http://login.example.org\"",
                "is not an https URL",
            ),
            (
                "issuer = \"https://u:p@login.example.org\"",
                "is not an https URL",
            ),
            (
                "issuer = \"https://login.example.org?x\"",
                "is not an https URL",
            ),
        ] {
            let text = format!(
                "[sso]\n{bad}\nclient_id = \"cairn\"\nredirect_uri = \"https://c.example.org/cb\"\n"
            );
            let e = parse_org("org.toml", &text).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let e = parse_org(
            "org.toml",
            "[sso]\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\nredirect_uri = \"http://127.0.0.1:8/cb\"\n\
             [[sso.map]]\nclaim = \"name\"\nvalue = \"x\"\nidentity = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown claim `name`"), "{e}");
        let with = |map: &str| {
            parse_org(
                "org.toml",
                &format!(
                    "[sso]\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\n\
                     redirect_uri = \"http://127.0.0.1:8/cb\"\n[[sso.map]]\nclaim = \"sub\"\n\
                     value = \"x\"\nidentity = \"y\"\n{map}\n"
                ),
            )
        };
        let org = with(
            "kind = \"service-account\"\nroles = [{ role = \"developer\" }, \
             { role = \"release-manager\", workload = \"shop\", environment = \"prod\" }, \
             { role = \"developer\" }]",
        )
        .unwrap();
        let declared = org.sso.unwrap().map[0].declared.clone().unwrap();
        assert!(declared.service_account);
        assert_eq!(declared.roles.len(), 2, "duplicates are dropped");
        assert_eq!(declared.roles[1].environment.as_deref(), Some("prod"));
        let org = with("roles = []").unwrap();
        assert_eq!(
            org.sso.unwrap().map[0].declared,
            Some(DeclaredRoles {
                service_account: false,
                roles: vec![]
            }),
            "an empty list declares an identity with no role"
        );
        assert_eq!(with("").unwrap().sso.unwrap().map[0].declared, None);
        let issuers = |extra: &str| {
            parse_org(
                "org.toml",
                &format!(
                    "[sso]\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\n\
                     redirect_uri = \"http://127.0.0.1:8/cb\"\n{extra}\n"
                ),
            )
        };
        let org = issuers(
            "[[sso.issuers]]\nissuer = \"https://ci.example.org\"\naudiences = [\"urn:cairn:ci\"]\n\
             [[sso.issuers.map]]\nclaim = \"sub\"\nvalue = \"repo:acme/shop\"\nidentity = \"shop-ci\"\n\
             roles = [{ role = \"developer\", workload = \"shop\" }]",
        )
        .unwrap();
        let sso = org.sso.unwrap();
        assert_eq!(sso.issuers[0].audiences, ["urn:cairn:ci"]);
        assert_eq!(sso.issuers[0].map[0].identity, "shop-ci");
        assert!(sso.map.is_empty(), "the mappings stay each issuer's own");
        for (bad, says) in [
            (
                "[[sso.issuers]]\nissuer = \"http://127.0.0.1:9/\"\naudiences = [\"a\"]",
                "is configured twice",
            ),
            (
                "[[sso.issuers]]\nissuer = \"https://ci\"\naudiences = [\"a\"]\n\
                 [[sso.issuers]]\nissuer = \"https://ci\"\naudiences = [\"b\"]",
                "is configured twice",
            ),
            (
                "[[sso.issuers]]\nissuer = \"https://ci\"\naudiences = []",
                "at least one audience",
            ),
            (
                "[[sso.issuers]]\nissuer = \"http://ci.example.org\"\naudiences = [\"a\"]",
                "is not an https URL",
            ),
            (
                "[[sso.issuers]]\nissuer = \"https://ci\"",
                "missing field `audiences`",
            ),
        ] {
            let e = issuers(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        for (bad, says) in [
            ("roles = [{ role = \"root\" }]", "unknown role `root`"),
            (
                "kind = \"robot\"\nroles = []",
                "unknown identity kind `robot`",
            ),
            ("kind = \"user\"", "`kind` without `roles`"),
            (
                "roles = [{ role = \"viewer\", environment = \"prod\" }]",
                "an environment binding also needs a workload",
            ),
            (
                "roles = [{ role = \"viewer\", scope = \"all\" }]",
                "unknown field `scope`",
            ),
            (
                "roles = [{ role = \"viewer\", workload = \"a b\" }]",
                "1 to 128 printable ASCII",
            ),
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(is_oidc_url("http://[::1]:8080/realms/x"));
        assert!(is_oidc_url("http://localhost:1"));
        assert!(!is_oidc_url("http://127.0.0.2/"));
    }
}

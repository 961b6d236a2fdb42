//! Where cairn reports to, besides its own store and log: the forges' commit
//! status APIs (`[forges]`) and notification sinks (`[[notify]]`) in
//! `org.toml`. Parsed strictly, validated here with the file's spans.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;
use super::org::is_feed_url;

/// A forge whose commit status API cairn reports runs and promotions to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ForgeKind {
    Github,
    Gitlab,
    Gitea,
}

impl ForgeKind {
    /// The forge's name, as webhooks and triggers spell it.
    pub fn name(self) -> &'static str {
        match self {
            ForgeKind::Github => "github",
            ForgeKind::Gitlab => "gitlab",
            ForgeKind::Gitea => "gitea",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [ForgeKind::Github, ForgeKind::Gitlab, ForgeKind::Gitea]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// One forge's API: its base URL and the file holding cairn's token for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeApi {
    pub kind: ForgeKind,
    /// The API's base URL (`https://api.github.com`,
    /// `https://gitlab.example.org/api/v4`, `https://gitea.example.org/api/v1`).
    pub api: String,
    /// A file (mode 0600) holding the token; read at each report, never printed.
    pub token_file: String,
    /// GitHub only (`check_runs = true`): each run and promotion is also a
    /// check run (POST, then PATCH as it goes), beside its commit status.
    pub check_runs: bool,
}

/// The forges commit statuses go to (`[forges]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forges {
    /// The cairn server's public URL: a status links to `<link>/runs/<id>`.
    pub link: Option<String>,
    pub apis: Vec<ForgeApi>,
}

impl Forges {
    /// The configured API of forge `kind`.
    pub fn api(&self, kind: ForgeKind) -> Option<&ForgeApi> {
        self.apis.iter().find(|a| a.kind == kind)
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    RunFailed,
    PromotionDenied,
    ProductionChange,
    ExposureOverdue,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::RunFailed,
        NotifyEvent::PromotionDenied,
        NotifyEvent::ProductionChange,
        NotifyEvent::ExposureOverdue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::RunFailed => "run-failed",
            NotifyEvent::PromotionDenied => "promotion-denied",
            NotifyEvent::ProductionChange => "production-change",
            NotifyEvent::ExposureOverdue => "exposure-overdue",
        }
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// A Slack-compatible incoming webhook; its URL is a secret, so it is read
    /// from a 0600 file.
    Slack { url_file: String },
    /// A generic JSON webhook, signed like the change webhook when a secret
    /// file is given (`X-Cairn-Signature-256: sha256=<hex>`).
    Webhook {
        url: String,
        secret_file: Option<String>,
    },
    /// Email over SMTP (`host:port`), STARTTLS when the server offers it
    /// (required unless the server is on loopback).
    Email {
        smtp: String,
        from: String,
        to: Vec<String>,
    },
}

/// One sink (`[[notify]]`): a target and the events it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySink {
    pub target: NotifyTarget,
    pub events: Vec<NotifyEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForges {
    link: Option<Spanned<String>>,
    github: Option<Spanned<RawForge>>,
    gitlab: Option<Spanned<RawForge>>,
    gitea: Option<Spanned<RawForge>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForge {
    api: Option<Spanned<String>>,
    token_file: Spanned<String>,
    check_runs: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    kind: Spanned<String>,
    events: Option<Vec<Spanned<String>>>,
    url: Option<Spanned<String>>,
    url_file: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    smtp: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    #[serde(default)]
    to: Vec<Spanned<String>>,
}

type Span = std::ops::Range<usize>;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Span, message: String, help: &str) -> ConfigError {
        ConfigError::at(
            self.file,
            self.text,
            Some(span),
            message,
            Some(help.to_owned()),
        )
    }

    fn url(&self, u: &Spanned<String>, help: &str) -> Result<String, ConfigError> {
        if is_feed_url(u.get_ref()) {
            Ok(u.get_ref().trim_end_matches('/').to_owned())
        } else {
            Err(self.err(
                u.span(),
                format!("`{}` is not an https:// URL", u.get_ref()),
                &format!("{help} (http:// only to 127.0.0.1; no credentials in the URL)"),
            ))
        }
    }

    fn absolute(&self, p: Spanned<String>, help: &str) -> Result<String, ConfigError> {
        let v = p.get_ref();
        if v.starts_with('/') && v.len() <= 4096 && !v.contains('\0') {
            Ok(p.into_inner())
        } else {
            Err(self.err(p.span(), format!("`{v}` is not an absolute path"), help))
        }
    }
}

pub(super) fn forges(
    file: &str,
    text: &str,
    raw: Option<RawForges>,
) -> Result<Forges, ConfigError> {
    let ctx = Ctx { file, text };
    let Some(raw) = raw else {
        return Ok(Forges::default());
    };
    let link = match &raw.link {
        Some(l) => Some(ctx.url(l, "e.g. link = \"https://cairn.example.org\"")?),
        None => None,
    };
    let mut apis = Vec::new();
    for (kind, forge) in [
        (ForgeKind::Github, raw.github),
        (ForgeKind::Gitlab, raw.gitlab),
        (ForgeKind::Gitea, raw.gitea),
    ] {
        let Some(forge) = forge else { continue };
        let span = forge.span();
        let forge = forge.into_inner();
        let example = match kind {
            ForgeKind::Github => "api = \"https://api.github.com\"",
            ForgeKind::Gitlab => "api = \"https://gitlab.example.org/api/v4\"",
            ForgeKind::Gitea => "api = \"https://gitea.example.org/api/v1\"",
        };
        let api = match (&forge.api, kind) {
            (Some(a), _) => ctx.url(a, example)?,
            (None, ForgeKind::Github) => "https://api.github.com".to_owned(),
            (None, _) => {
                return Err(ctx.err(
                    span,
                    format!("[forges.{}] needs `api`", kind.name()),
                    example,
                ));
            }
        };
        let token_file = ctx.absolute(
            forge.token_file,
            "e.g. token_file = \"/etc/cairn/forge.token\" (mode 0600)",
        )?;
        let check_runs = match (forge.check_runs, kind) {
            (None, _) => false,
            (Some(c), ForgeKind::Github) => c.into_inner(),
            (Some(c), _) => {
                return Err(ctx.err(
                    c.span(),
                    format!("[forges.{}] has no check runs", kind.name()),
                    "check_runs is GitHub's (its Checks API); other forges get commit statuses",
                ));
            }
        };
        apis.push(ForgeApi {
            kind,
            api,
            token_file,
            check_runs,
        });
    }
    if !apis.is_empty() && link.is_none() {
        return Err(ConfigError::at(
            file,
            text,
            None,
            "[forges] needs `link`, the cairn server's URL a commit status links to",
            Some("e.g. link = \"https://cairn.example.org\"".to_owned()),
        ));
    }
    Ok(Forges { link, apis })
}

/// An email address as cairn writes it into SMTP commands and headers: one
/// `local@domain` of printable ASCII without spaces, brackets, commas or quotes.
pub fn is_email_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    a.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && a.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'<' | b'>' | b',' | b'"' | b'(' | b')' | b';' | b'\\')
        })
}

pub(super) fn notify(
    file: &str,
    text: &str,
    raw: Vec<Spanned<RawNotify>>,
) -> Result<Vec<NotifySink>, ConfigError> {
    let ctx = Ctx { file, text };
    const KINDS: &str =
        "kind = \"slack\" (url_file), \"webhook\" (url, secret_file) or \"email\" (smtp, from, to)";
    if raw.len() > 32 {
        return Err(ctx.err(raw[32].span(), "at most 32 [[notify]] sinks".into(), KINDS));
    }
    let mut sinks = Vec::new();
    for sink in raw {
        let span = sink.span();
        let sink = sink.into_inner();
        let missing = |what: &str| {
            ctx.err(
                span.clone(),
                format!("a `{}` sink needs `{what}`", sink.kind.get_ref()),
                KINDS,
            )
        };
        let unused = |what: &Option<Spanned<String>>| -> Result<(), ConfigError> {
            match what {
                Some(s) => Err(ctx.err(
                    s.span(),
                    format!("a `{}` sink takes no such setting", sink.kind.get_ref()),
                    KINDS,
                )),
                None => Ok(()),
            }
        };
        let target = match sink.kind.get_ref().as_str() {
            "slack" => {
                unused(&sink.url)?;
                unused(&sink.secret_file)?;
                unused(&sink.smtp)?;
                unused(&sink.from)?;
                let f = sink.url_file.ok_or_else(|| missing("url_file"))?;
                NotifyTarget::Slack {
                    url_file: ctx.absolute(
                        f,
                        "the incoming webhook's URL is a secret: url_file = \"/etc/cairn/slack.url\" (mode 0600)",
                    )?,
                }
            }
            "webhook" => {
                unused(&sink.url_file)?;
                unused(&sink.smtp)?;
                unused(&sink.from)?;
                let u = sink.url.ok_or_else(|| missing("url"))?;
                let url = ctx.url(&u, "e.g. url = \"https://hooks.example.org/cairn\"")?;
                let secret_file = match sink.secret_file {
                    Some(f) => Some(ctx.absolute(
                        f,
                        "e.g. secret_file = \"/etc/cairn/notify.secret\" (mode 0600)",
                    )?),
                    None => None,
                };
                NotifyTarget::Webhook { url, secret_file }
            }
            "email" => {
                unused(&sink.url)?;
                unused(&sink.url_file)?;
                unused(&sink.secret_file)?;
                let smtp = sink.smtp.ok_or_else(|| missing("smtp"))?;
                let ok = smtp.get_ref().rsplit_once(':').is_some_and(|(h, p)| {
                    !h.is_empty()
                        && h.len() <= 253
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                        && p.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !ok {
                    return Err(ctx.err(
                        smtp.span(),
                        format!("`{}` is not host:port", smtp.get_ref()),
                        "e.g. smtp = \"smtp.example.org:587\"",
                    ));
                }
                let from = sink.from.ok_or_else(|| missing("from"))?;
                if sink.to.is_empty() {
                    return Err(missing("to"));
                }
                for a in std::iter::once(&from).chain(&sink.to) {
                    if !is_email_address(a.get_ref()) {
                        return Err(ctx.err(
                            a.span(),
                            format!("`{}` is not an email address", a.get_ref()),
                            "write local@domain",
                        ));
                    }
                }
                if sink.to.len() > 50 {
                    return Err(ctx.err(span, "at most 50 recipients".into(), KINDS));
                }
                NotifyTarget::Email {
                    smtp: smtp.into_inner(),
                    from: from.into_inner(),
                    to: sink.to.into_iter().map(Spanned::into_inner).collect(),
                }
            }
            other => {
                return Err(ctx.err(
                    sink.kind.span(),
                    format!("unknown notification sink `{other}`"),
                    KINDS,
                ));
            }
        };
        let events = match sink.events {
            None => NotifyEvent::ALL.to_vec(),
            Some(list) => {
                let mut events = Vec::new();
                for e in list {
                    let Some(ev) = NotifyEvent::ALL
                        .into_iter()
                        .find(|k| k.name() == e.get_ref())
                    else {
                        return Err(ctx.err(
                            e.span(),
                            format!("unknown event `{}`", e.get_ref()),
                            "run-failed, promotion-denied, production-change, exposure-overdue",
                        ));
                    };
                    if !events.contains(&ev) {
                        events.push(ev);
                    }
                }
                events
            }
        };
        sinks.push(NotifySink { target, events });
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::super::parse_org;
    use super::*;

    #[test]
    fn forges_and_sinks_parse_and_bad_ones_are_refused_at_their_line() {
        let org = parse_org(
            "org.toml",
            r#"
[forges]
link = "https://cairn.example.org/"
[forges.github]
token_file = "/etc/cairn/gh.token"
[forges.gitlab]
api = "https://gitlab.example.org/api/v4"
token_file = "/etc/cairn/gl.token"

[[notify]]
kind = "slack"
url_file = "/etc/cairn/slack.url"
events = ["promotion-denied"]

[[notify]]
kind = "email"
smtp = "127.0.0.1:2525"
from = "cairn@example.org"
to = ["ops@example.org"]
"#,
        )
        .unwrap();
        assert_eq!(
            org.forges.link.as_deref(),
            Some("https://cairn.example.org")
        );
        assert_eq!(
            org.forges.api(ForgeKind::Github).unwrap().api,
            "https://api.github.com"
        );
        assert_eq!(org.notify.len(), 2);
        assert_eq!(org.notify[0].events, [NotifyEvent::PromotionDenied]);
        assert_eq!(org.notify[1].events, NotifyEvent::ALL);
        for (bad, says) in [
            ("[forges.github]\ntoken_file = \"/t\"\n", "needs `link`"),
            (
                "[forges]\nlink = \"https://c\"\n[forges.gitea]\ntoken_file = \"/t\"\n",
                "needs `api`",
            ),
            (
                "[forges]\nlink = \"http://cairn.example.org\"\n",
                "not an https:// URL",
            ),
            (
                "[forges]\nlink = \"https://c\"\n[forges.github]\ntoken_file = \"t\"\n",
                "not an absolute path",
            ),
            ("[forges.bitbucket]\ntoken_file = \"/t\"\n", "unknown field"),
            (
                "[forges]\nlink = \"https://c\"\n[forges.gitea]\napi = \"https://g\"\ntoken_file = \"/t\"\ncheck_runs = true\n",
                "[forges.gitea] has no check runs",
            ),
            (
                "[[notify]]\nkind = \"pager\"\n",
                "unknown notification sink",
            ),
            ("[[notify]]\nkind = \"slack\"\n", "needs `url_file`"),
            (
                "[[notify]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n",
                "takes no such setting",
            ),
            (
                "[[notify]]\nkind = \"email\"\nsmtp = \"a:25\"\nfrom = \"a@b\"\nto = [\"x@y\\r\\nRCPT TO:<z@w>\"]\n",
                "not an email address",
            ),
            (
                "[[notify]]\nkind = \"webhook\"\nurl = \"https://h/x\"\nevents = [\"everything\"]\n",
                "unknown event",
            ),
        ] {
            let e = parse_org("org.toml", bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}

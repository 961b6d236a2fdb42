//! The organisation's settings (`org.toml` in the platform config directory):
//! which registries images may come from, and what a base image must pass to
//! enter the catalog.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;
use super::parse_toml;
use crate::image_ref::{DOCKER_HUB_HOSTS, NO_DOCKER_HUB_RULE};

/// The file name, in `$CAIRN_PLATFORM_DIR`.
pub const ORG_FILE: &str = "org.toml";

/// Validated organisation settings. The default (no file) allows no registry:
/// bases then come only from OCI layouts and root filesystems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgConfig {
    /// Registry hosts (`host[:port]`) images may be pulled from or pushed to.
    pub registries: Vec<String>,
    /// A base whose scan finds an unfixed vulnerability at or above this severity
    /// (`low`, `medium`, `high`, `critical`) does not enter the catalog.
    pub base_max_severity: Option<String>,
    /// Public keys (PEM files) of the base images' publishers: when any is given,
    /// a base enters the catalog only with a signed statement about its digest
    /// from one of them.
    pub base_signers: Vec<String>,
    /// The promotion path, in order (default: staging, production).
    pub promotion_path: Vec<String>,
    /// Each environment's deploy target (default: `local`).
    pub environments: std::collections::BTreeMap<String, DeployTarget>,
    /// Where change records go besides the store and `<data>/changes.jsonl`.
    pub change_sink: ChangeSink,
    /// Environments that take only changes whose every commit carries an SSH
    /// signature that verifies against a key registered to a cairn identity
    /// (`[review] require_signed_commits = ["production"]`).
    pub require_signed_commits: Vec<String>,
    /// How long an exposure (a finding on a deployed digest) may stay open, per
    /// severity (`[exposures] sla_hours`).
    pub exposure_sla: ExposureSla,
    /// Environments a remediation (a rebased or bumped digest of an already
    /// reviewed commit) is promoted to by cairn itself, through the same gates;
    /// elsewhere it waits for a human (`[remediation] auto_promote`).
    pub remediation_auto_promote: Vec<String>,
    /// The build image of each detected ecosystem (`[build.images]`, e.g.
    /// `cargo = "rust"`): a catalog base name, used when a workload names none.
    pub build_images: std::collections::BTreeMap<String, String>,
    /// Where `cairn up` (and `cairn vulns sync`) fetch OSV advisories from, and
    /// how often (`[advisories] sources`, `interval_minutes`).
    pub advisory_feed: AdvisoryFeed,
    /// The default policy's parameters the organisation set (`[policy.params]`).
    pub policy_params: super::PolicyParams,
    /// The SLSA `builder.id` this installation writes in its provenance and the
    /// gate expects (`[evidence] builder_id`, a URI); `None`: derived from the
    /// installation's log key.
    pub builder_id: Option<String>,
    /// Single sign-on with the organisation's OpenID Connect provider (`[sso]`).
    pub sso: Option<super::SsoConfig>,
    /// The admission webhook's Kubernetes namespace → environment mapping
    /// (`[admission] namespaces`): a namespace not named admits nothing.
    pub admission_namespaces: std::collections::BTreeMap<String, String>,
    /// The forges runs and promotions are reported to as commit statuses (`[forges]`).
    pub forges: super::Forges,
    /// Where notifications go (`[[notify]]`).
    pub notify: Vec<super::NotifySink>,
    /// A queued run whose worker stopped renewing its lease is requeued once
    /// (a copy queued for another worker) instead of ending interrupted; the
    /// copy lost again ends interrupted (`[runs] requeue_interrupted`).
    pub requeue_interrupted: bool,
}

/// The advisory feed (`[advisories]`): sources polled on an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryFeed {
    pub sources: Vec<FeedSource>,
    /// Seconds between polls (`interval_minutes`, 1 to 10080, or
    /// `interval_seconds`, 1 to 604800; default an hour).
    pub interval_seconds: u64,
}

impl Default for AdvisoryFeed {
    fn default() -> Self {
        AdvisoryFeed {
            sources: Vec::new(),
            interval_seconds: 3600,
        }
    }
}

/// One advisory source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedSource {
    /// A directory of OSV `*.json` files (absolute path).
    Dir(String),
    /// An OSV zip archive on disk (absolute path).
    Zip(String),
    /// An OSV zip served over HTTPS (or plain HTTP on the loopback address
    /// `127.0.0.1`, for tests and local mirrors).
    Url(String),
}

impl FeedSource {
    /// The source as written.
    pub fn as_str(&self) -> &str {
        match self {
            FeedSource::Dir(s) | FeedSource::Zip(s) | FeedSource::Url(s) => s,
        }
    }
}

/// Whether `u` is a URL a feed may be fetched from: `https://`, or `http://`
/// only to `127.0.0.1` (a loopback mirror); no credentials, whitespace or
/// control characters, at most 2048 bytes.
pub fn is_feed_url(u: &str) -> bool {
    if u.len() > 2048 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let rest = if let Some(r) = u.strip_prefix("https://") {
        r
    } else if let Some(r) = u.strip_prefix("http://") {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if bare != "127.0.0.1" {
            return false;
        }
        r
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.is_empty() && !authority.contains('@')
}

/// Hours from an exposure's start to its deadline, per severity. An unknown
/// severity gets the critical one (fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposureSla {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl Default for ExposureSla {
    fn default() -> Self {
        ExposureSla {
            critical: 24,
            high: 24,
            medium: 168,
            low: 720,
        }
    }
}

impl ExposureSla {
    /// The hours for `severity` (`low` … `critical`; anything else as critical).
    pub fn hours(&self, severity: &str) -> u64 {
        match severity {
            "low" => self.low,
            "medium" => self.medium,
            "high" => self.high,
            _ => self.critical,
        }
    }
}

/// A change-management system's endpoint for change records (`[changes]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSink {
    /// Each change record is POSTed here as JSON.
    pub webhook: Option<String>,
    /// A file holding the secret the body is signed with (HMAC-SHA256, header
    /// `X-Cairn-Signature-256: sha256=<hex>`).
    pub secret_file: Option<String>,
}

/// Where an environment's deployments go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployTarget {
    /// The image runs on this host in the sandbox, on a loopback port.
    Local,
    /// A digest-pinned manifest committed to a GitOps repository (Argo CD, Flux).
    Gitops {
        /// The repository (a local clone).
        repo: String,
        /// The directory in it, with `{workload}` and `{environment}` filled in.
        dir: String,
        /// Where the image is pushed, e.g. `registry.example.org/apps/{workload}`.
        image_repository: String,
    },
}

impl DeployTarget {
    /// Its kind, as deployment records name it.
    pub fn kind(&self) -> crate::TargetKind {
        match self {
            DeployTarget::Local => crate::TargetKind::Local,
            DeployTarget::Gitops { .. } => crate::TargetKind::Gitops,
        }
    }
}

impl OrgConfig {
    /// The deploy target of `environment`.
    pub fn target(&self, environment: &str) -> DeployTarget {
        self.environments
            .get(environment)
            .cloned()
            .unwrap_or(DeployTarget::Local)
    }

    /// Where `environment` is on the promotion path.
    pub fn position(&self, environment: &str) -> Option<usize> {
        self.promotion_path.iter().position(|e| e == environment)
    }
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            registries: Vec::new(),
            base_max_severity: None,
            base_signers: Vec::new(),
            promotion_path: vec!["staging".to_owned(), "production".to_owned()],
            environments: std::collections::BTreeMap::new(),
            change_sink: ChangeSink::default(),
            require_signed_commits: Vec::new(),
            exposure_sla: ExposureSla::default(),
            remediation_auto_promote: Vec::new(),
            build_images: std::collections::BTreeMap::new(),
            advisory_feed: AdvisoryFeed::default(),
            policy_params: super::PolicyParams::default(),
            builder_id: None,
            sso: None,
            admission_namespaces: std::collections::BTreeMap::new(),
            forges: super::Forges::default(),
            notify: Vec::new(),
            requeue_interrupted: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    registries: Option<RawRegistries>,
    base: Option<RawBase>,
    promotion: Option<RawPromotion>,
    #[serde(default)]
    environments: std::collections::BTreeMap<String, Spanned<RawEnvironment>>,
    changes: Option<RawChanges>,
    review: Option<RawReview>,
    exposures: Option<RawExposures>,
    remediation: Option<RawRemediation>,
    build: Option<RawOrgBuild>,
    advisories: Option<RawAdvisories>,
    policy: Option<super::policy_params::RawPolicy>,
    evidence: Option<RawEvidence>,
    sso: Option<super::sso::RawSso>,
    admission: Option<RawAdmission>,
    forges: Option<super::integrations::RawForges>,
    #[serde(default)]
    notify: Vec<Spanned<super::integrations::RawNotify>>,
    runs: Option<RawRuns>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuns {
    #[serde(default)]
    requeue_interrupted: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmission {
    #[serde(default)]
    namespaces: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    builder_id: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemediation {
    #[serde(default)]
    auto_promote: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrgBuild {
    #[serde(default)]
    images: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdvisories {
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    interval_minutes: Option<Spanned<i64>>,
    interval_seconds: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExposures {
    sla_hours: Option<Spanned<RawSla>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    critical: Option<Spanned<i64>>,
    high: Option<Spanned<i64>>,
    medium: Option<Spanned<i64>>,
    low: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReview {
    #[serde(default)]
    require_signed_commits: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChanges {
    webhook: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPromotion {
    path: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    target: Spanned<String>,
    repo: Option<String>,
    dir: Option<String>,
    image_repository: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistries {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    max_severity: Option<Spanned<String>>,
    #[serde(default)]
    signers: Vec<Spanned<String>>,
}

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Parses and validates `org.toml`; `file` names it in errors.
pub fn parse_org(file: &str, text: &str) -> Result<OrgConfig, ConfigError> {
    let raw: RawOrg = parse_toml(file, text)?;
    let mut registries = Vec::new();
    for host in raw.registries.map(|r| r.allow).unwrap_or_default() {
        let h = host.get_ref().trim().to_ascii_lowercase();
        let bare = h.split(':').next().unwrap_or_default();
        if DOCKER_HUB_HOSTS.contains(&bare) {
            return Err(ConfigError::at(
                file,
                text,
                Some(host.span()),
                format!("`{h}` cannot be allowed: {NO_DOCKER_HUB_RULE}"),
                Some(
                    "allow the organisation's own registry and mirror validated bases into it"
                        .into(),
                ),
            ));
        }
        let ok = !h.is_empty()
            && h.len() <= 260
            && !h.contains('/')
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !ok {
            return Err(ConfigError::at(
                file,
                text,
                Some(host.span()),
                format!("`{}` is not a registry host", host.get_ref()),
                Some(
                    "write host or host:port, e.g. \"registry.example.org\" or \"127.0.0.1:5000\""
                        .into(),
                ),
            ));
        }
        registries.push(h);
    }
    let (base_max_severity, signers) = match raw.base {
        Some(b) => (b.max_severity, b.signers),
        None => (None, Vec::new()),
    };
    let mut base_signers = Vec::new();
    for s in signers {
        if !s.get_ref().starts_with('/') {
            return Err(ConfigError::at(
                file,
                text,
                Some(s.span()),
                format!("signer key `{}` is not an absolute path", s.get_ref()),
                Some(
                    "name the publisher's public key file, e.g. \"/etc/cairn/base-publisher.pub\""
                        .into(),
                ),
            ));
        }
        base_signers.push(s.into_inner());
    }
    let base_max_severity = match base_max_severity {
        None => None,
        Some(s) if SEVERITIES.contains(&s.get_ref().as_str()) => Some(s.into_inner()),
        Some(s) => {
            return Err(ConfigError::at(
                file,
                text,
                Some(s.span()),
                format!("unknown severity `{}`", s.get_ref()),
                Some(format!("one of {}", SEVERITIES.join(", "))),
            ));
        }
    };
    let err = |span: std::ops::Range<usize>, msg: String, help: &str| {
        ConfigError::at(file, text, Some(span), msg, Some(help.to_owned()))
    };
    let mut promotion_path = OrgConfig::default().promotion_path;
    if let Some(p) = raw.promotion {
        if p.path.get_ref().is_empty() {
            return Err(err(
                p.path.span(),
                "the promotion path is empty".into(),
                "e.g. path = [\"staging\", \"production\"]",
            ));
        }
        promotion_path = Vec::new();
        for e in p.path.get_ref() {
            if !super::is_valid_name(e.get_ref()) || promotion_path.contains(e.get_ref()) {
                return Err(err(
                    e.span(),
                    format!(
                        "`{}` is not a valid environment name, or is listed twice",
                        e.get_ref()
                    ),
                    super::NAME_RULE,
                ));
            }
            promotion_path.push(e.get_ref().clone());
        }
    }
    let mut environments = std::collections::BTreeMap::new();
    for (name, env) in raw.environments {
        let span = env.span();
        let env = env.into_inner();
        if !promotion_path.contains(&name) {
            return Err(err(
                span,
                format!(
                    "environment `{name}` is not on the promotion path ({})",
                    promotion_path.join(" → ")
                ),
                "add it to [promotion] path",
            ));
        }
        let target = match crate::TargetKind::parse(env.target.get_ref()) {
            Some(crate::TargetKind::Local) => DeployTarget::Local,
            Some(crate::TargetKind::Gitops) => match (env.repo, env.dir, env.image_repository) {
                (Some(repo), Some(dir), Some(image_repository)) => DeployTarget::Gitops {
                    repo,
                    dir,
                    image_repository,
                },
                _ => {
                    return Err(err(
                        env.target.span(),
                        "a gitops target needs `repo`, `dir` and `image_repository`".into(),
                        "e.g. repo = \"/srv/gitops\", dir = \"envs/{environment}/{workload}\", image_repository = \"registry.example.org/apps/{workload}\"",
                    ));
                }
            },
            None => {
                return Err(err(
                    env.target.span(),
                    format!("unknown deploy target `{}`", env.target.get_ref()),
                    "`local` or `gitops`",
                ));
            }
        };
        environments.insert(name, target);
    }
    let mut change_sink = ChangeSink::default();
    if let Some(changes) = raw.changes {
        if let Some(url) = changes.webhook {
            let u = url.get_ref();
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.len() <= 2048
                && !u.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(err(
                    url.span(),
                    format!("`{u}` is not an http(s) URL"),
                    "e.g. webhook = \"https://change.example.org/hooks/cairn\"",
                ));
            }
            change_sink.webhook = Some(url.into_inner());
        }
        if let Some(f) = changes.secret_file {
            if !f.get_ref().starts_with('/') {
                return Err(err(
                    f.span(),
                    format!("secret file `{}` is not an absolute path", f.get_ref()),
                    "e.g. secret_file = \"/etc/cairn/change-webhook.secret\" (mode 0600)",
                ));
            }
            change_sink.secret_file = Some(f.into_inner());
        }
    }
    let mut require_signed_commits = Vec::new();
    for e in raw
        .review
        .map(|r| r.require_signed_commits)
        .unwrap_or_default()
    {
        if !promotion_path.contains(e.get_ref()) {
            return Err(err(
                e.span(),
                format!(
                    "environment `{}` is not on the promotion path ({})",
                    e.get_ref(),
                    promotion_path.join(" → ")
                ),
                "name environments of [promotion] path",
            ));
        }
        require_signed_commits.push(e.into_inner());
    }
    let mut exposure_sla = ExposureSla::default();
    if let Some(sla) = raw.exposures.and_then(|e| e.sla_hours) {
        let sla = sla.into_inner();
        for (value, slot) in [
            (sla.critical, &mut exposure_sla.critical),
            (sla.high, &mut exposure_sla.high),
            (sla.medium, &mut exposure_sla.medium),
            (sla.low, &mut exposure_sla.low),
        ] {
            let Some(value) = value else { continue };
            // At most ten years: a deadline must be a time cairn can write.
            match u64::try_from(*value.get_ref()) {
                Ok(h) if h <= 87_600 => *slot = h,
                _ => {
                    return Err(err(
                        value.span(),
                        format!(
                            "{} is not a number of hours from 0 to 87600",
                            value.get_ref()
                        ),
                        "e.g. sla_hours = { critical = 24, high = 24, medium = 168, low = 720 }",
                    ));
                }
            }
        }
    }
    let mut remediation_auto_promote = Vec::new();
    for e in raw.remediation.map(|r| r.auto_promote).unwrap_or_default() {
        if !promotion_path.contains(e.get_ref()) {
            return Err(err(
                e.span(),
                format!(
                    "environment `{}` is not on the promotion path ({})",
                    e.get_ref(),
                    promotion_path.join(" → ")
                ),
                "name environments of [promotion] path, e.g. auto_promote = [\"staging\"]",
            ));
        }
        remediation_auto_promote.push(e.into_inner());
    }
    let mut build_images = std::collections::BTreeMap::new();
    for (ecosystem, base) in raw.build.map(|b| b.images).unwrap_or_default() {
        if crate::ecosystem::Ecosystem::from_name(&ecosystem).is_none() {
            return Err(err(
                base.span(),
                format!("`{ecosystem}` is not an ecosystem cairn detects"),
                "one of cargo, npm, python, go, maven, make",
            ));
        }
        if !super::is_valid_name(base.get_ref()) {
            return Err(err(
                base.span(),
                format!("build image `{}` is not a catalog name", base.get_ref()),
                super::NAME_RULE,
            ));
        }
        build_images.insert(ecosystem, base.into_inner());
    }
    let mut advisory_feed = AdvisoryFeed::default();
    if let Some(a) = raw.advisories {
        const HELP: &str = "sources = [\"https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip\", \"/srv/osv/debian-12.zip\", \"/srv/osv/records/\"], interval_minutes = 60";
        if a.sources.len() > 64 {
            return Err(err(
                a.sources[64].span(),
                "at most 64 advisory sources".into(),
                HELP,
            ));
        }
        for s in a.sources {
            let v = s.get_ref();
            let source = if v.starts_with("https://") || v.starts_with("http://") {
                if !is_feed_url(v) {
                    return Err(err(
                        s.span(),
                        format!("`{v}` is not an advisory feed URL"),
                        "an https:// URL without credentials (http:// only to 127.0.0.1)",
                    ));
                }
                FeedSource::Url(v.clone())
            } else if v.starts_with('/') && v.len() <= 4096 && !v.contains('\0') {
                if v.to_ascii_lowercase().ends_with(".zip") {
                    FeedSource::Zip(v.clone())
                } else {
                    FeedSource::Dir(v.clone())
                }
            } else {
                return Err(err(
                    s.span(),
                    format!("advisory source `{v}` is neither an absolute path nor a URL"),
                    HELP,
                ));
            };
            if advisory_feed.sources.contains(&source) {
                return Err(err(
                    s.span(),
                    format!("advisory source `{v}` is listed twice"),
                    HELP,
                ));
            }
            advisory_feed.sources.push(source);
        }
        if let (Some(_), Some(s)) = (&a.interval_minutes, &a.interval_seconds) {
            return Err(err(
                s.span(),
                "give interval_minutes or interval_seconds, not both".into(),
                HELP,
            ));
        }
        for (value, unit, max, scale) in [
            (a.interval_minutes, "minutes", 10_080, 60),
            (a.interval_seconds, "seconds", 604_800, 1),
        ] {
            let Some(i) = value else { continue };
            match u64::try_from(*i.get_ref()) {
                Ok(n) if (1..=max).contains(&n) => advisory_feed.interval_seconds = n * scale,
                _ => {
                    return Err(err(
                        i.span(),
                        format!("{} is not a number of {unit} from 1 to {max}", i.get_ref()),
                        HELP,
                    ));
                }
            }
        }
    }
    let policy_params = super::policy_params::validate(file, text, raw.policy, &promotion_path)?;
    let builder_id = match raw.evidence.and_then(|e| e.builder_id) {
        None => None,
        Some(id) if is_type_uri(id.get_ref()) => Some(id.into_inner()),
        Some(id) => {
            return Err(err(
                id.span(),
                format!("`{}` is not a URI", id.get_ref()),
                "name the installation with an absolute URI of at most 256 printable ASCII characters, e.g. \"https://ci.example.org/cairn/production\" or \"urn:example:cairn:prod\"",
            ));
        }
    };
    let sso = match raw.sso {
        Some(sso) => Some(super::sso::validate(file, text, sso)?),
        None => None,
    };
    let mut admission_namespaces = std::collections::BTreeMap::new();
    for (namespace, env) in raw.admission.map(|a| a.namespaces).unwrap_or_default() {
        if !is_dns_label(&namespace) {
            return Err(err(
                env.span(),
                format!("`{namespace}` is not a Kubernetes namespace name"),
                "a DNS label: 1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
            ));
        }
        if !promotion_path.contains(env.get_ref()) {
            return Err(err(
                env.span(),
                format!(
                    "environment `{}` is not on the promotion path ({})",
                    env.get_ref(),
                    promotion_path.join(" → ")
                ),
                "map each namespace to an environment of [promotion] path, e.g. shop-prod = \"production\"",
            ));
        }
        admission_namespaces.insert(namespace, env.into_inner());
    }
    let forges = super::integrations::forges(file, text, raw.forges)?;
    let notify = super::integrations::notify(file, text, raw.notify)?;
    let requeue_interrupted = raw.runs.is_some_and(|r| r.requeue_interrupted);
    Ok(OrgConfig {
        requeue_interrupted,
        forges,
        notify,
        admission_namespaces,
        sso,
        builder_id,
        policy_params,
        advisory_feed,
        registries,
        base_max_severity,
        base_signers,
        promotion_path,
        environments,
        change_sink,
        require_signed_commits,
        exposure_sla,
        remediation_auto_promote,
        build_images,
    })
}

/// A Kubernetes namespace name: an RFC 1123 DNS label.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// An absolute URI as SLSA's TypeURI wants it: `scheme:rest`, the scheme a
/// letter then letters, digits, `+-.`; printable ASCII without spaces, bounded.
fn is_type_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut scheme_bytes = scheme.bytes();
    s.len() <= 256
        && !rest.is_empty()
        && scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && s.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_maps_namespaces_to_environments_on_the_path() {
        let org = parse_org(
            "org.toml",
            "[admission.namespaces]\nshop-staging = \"staging\"\nshop = \"production\"\n",
        )
        .unwrap();
        assert_eq!(org.admission_namespaces["shop"], "production");
        assert_eq!(org.admission_namespaces["shop-staging"], "staging");
        let e = parse_org("org.toml", "[admission.namespaces]\nshop = \"moon\"\n").unwrap_err();
        assert!(e.to_string().contains("not on the promotion path"), "{e}");
        let e =
            parse_org("org.toml", "[admission.namespaces]\nShop_1 = \"staging\"\n").unwrap_err();
        assert!(e.to_string().contains("not a Kubernetes namespace"), "{e}");
        let e = parse_org("org.toml", "[admission]\nnamespace = {}\n").unwrap_err();
        assert!(e.to_string().contains("namespace"), "{e}");
    }

    #[test]
    fn the_builder_id_is_an_absolute_uri() {
        let org = parse_org(
            "org.toml",
            "[evidence]\nbuilder_id = \"https://ci.example.org/cairn/prod\"\n",
        )
        .unwrap();
        assert_eq!(
            org.builder_id.as_deref(),
            Some("https://ci.example.org/cairn/prod")
        );
        assert_eq!(parse_org("org.toml", "").unwrap().builder_id, None);
        for bad in ["prod", "1x:y", "https:", "urn:a b", "urn:\u{e9}"] {
            let text = format!("[evidence]\nbuilder_id = {bad:?}\n");
            let err = parse_org("org.toml", &text).unwrap_err().to_string();
            assert!(err.contains("is not a URI"), "{bad}: {err}");
            assert!(err.contains("org.toml:2"), "{bad}: {err}");
        }
    }

    #[test]
    fn requeue_interrupted_is_off_unless_asked_for() {
        assert!(!parse_org("org.toml", "").unwrap().requeue_interrupted);
        let on = parse_org("org.toml", "[runs]\nrequeue_interrupted = true\n").unwrap();
        assert!(on.requeue_interrupted);
        let bad = parse_org("org.toml", "[runs]\nrequeue = true\n").unwrap_err();
        assert!(bad.to_string().contains("org.toml:2"), "{bad}");
    }

    #[test]
    fn remediation_auto_promote_names_environments_of_the_path() {
        let org = parse_org("org.toml", "").unwrap();
        assert!(org.remediation_auto_promote.is_empty());
        let org = parse_org(
            "org.toml",
            "[remediation]\nauto_promote = [\"staging\", \"production\"]\n",
        )
        .unwrap();
        assert_eq!(org.remediation_auto_promote, ["staging", "production"]);
        let bad = parse_org("org.toml", "[remediation]\nauto_promote = [\"prod\"]\n")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("`prod` is not on the promotion path"), "{bad}");
    }

    #[test]
    fn build_images_by_ecosystem() {
        let org = parse_org(
            "org.toml",
            "[build.images]\ncargo = \"rust\"\npython = \"py\"\n",
        )
        .unwrap();
        assert_eq!(
            org.build_images.get("cargo").map(String::as_str),
            Some("rust")
        );
        assert_eq!(org.build_images.len(), 2);
        assert!(parse_org("org.toml", "").unwrap().build_images.is_empty());
        for (text, fragment) in [
            (
                "[build.images]\ncobol = \"x\"\n",
                "`cobol` is not an ecosystem cairn detects",
            ),
            (
                "[build.images]\ncargo = \"docker.io/rust\"\n",
                "is not a catalog name",
            ),
            ("[build]\nimage = \"rust\"\n", "unknown field"),
        ] {
            let e = parse_org("org.toml", text).unwrap_err().to_string();
            assert!(e.contains(fragment), "{e}");
        }
    }

    #[test]
    fn exposure_slas_default_and_are_bounded() {
        let org = parse_org("org.toml", "").unwrap();
        assert_eq!(org.exposure_sla, ExposureSla::default());
        assert_eq!(org.exposure_sla.hours("critical"), 24);
        assert_eq!(org.exposure_sla.hours("unknown"), 24);
        let org = parse_org(
            "org.toml",
            "[exposures]\nsla_hours = { critical = 4, low = 0 }\n",
        )
        .unwrap();
        assert_eq!(org.exposure_sla.critical, 4);
        assert_eq!(org.exposure_sla.high, 24);
        assert_eq!(org.exposure_sla.low, 0);
        for bad in [
            "[exposures]\nsla_hours = { critical = -1 }\n",
            "[exposures]\nsla_hours = { high = 100000 }\n",
            "[exposures]\nsla_hours = { urgent = 1 }\n",
        ] {
            assert!(parse_org("org.toml", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn advisory_sources_are_validated() {
        let org = parse_org(
            "org.toml",
            "[advisories]\nsources = [\"https://osv.example.org/Debian/all.zip\", \"http://127.0.0.1:8080/a.zip\", \"/srv/osv/debian.ZIP\", \"/srv/osv/records\"]\ninterval_minutes = 5\n",
        )
        .unwrap();
        assert_eq!(
            org.advisory_feed.sources,
            [
                FeedSource::Url("https://osv.example.org/Debian/all.zip".into()),
                FeedSource::Url("http://127.0.0.1:8080/a.zip".into()),
                FeedSource::Zip("/srv/osv/debian.ZIP".into()),
                FeedSource::Dir("/srv/osv/records".into()),
            ]
        );
        assert_eq!(org.advisory_feed.interval_seconds, 300);
        assert_eq!(
            parse_org("org.toml", "")
                .unwrap()
                .advisory_feed
                .interval_seconds,
            3600
        );
        let org = parse_org("org.toml", "[advisories]\ninterval_seconds = 2\n").unwrap();
        assert_eq!(org.advisory_feed.interval_seconds, 2);
        for (bad, says) in [
            (
                "sources = [\"http://osv.example.org/a.zip\"]",
                "not an advisory feed URL",
            ),
            (
                "sources = [\"http://127.0.0.1.evil.org/a.zip\"]",
                "not an advisory feed URL",
            ),
            (
                "sources = [\"https://user:pw@osv.example.org/a.zip\"]",
                "not an advisory feed URL",
            ),
            (
                "sources = [\"ftp://osv.example.org/a.zip\"]",
                "neither an absolute path",
            ),
            ("sources = [\"relative/dir\"]", "neither an absolute path"),
            ("sources = [\"/a\", \"/a\"]", "listed twice"),
            ("interval_minutes = 0", "minutes from 1"),
            ("interval_minutes = 20000", "minutes from 1"),
            ("interval_seconds = 0", "seconds from 1"),
            ("interval_minutes = 1\ninterval_seconds = 1", "not both"),
            ("interval = 5", "unknown field"),
        ] {
            let e = parse_org("org.toml", &format!("[advisories]\n{bad}\n")).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_and_refuses() {
        let org = parse_org(
            "org.toml",
            "[registries]\nallow = [\"Registry.Example.org\", \"127.0.0.1:5000\"]\n[base]\nmax_severity = \"high\"\n",
        )
        .unwrap();
        assert_eq!(org.registries, ["registry.example.org", "127.0.0.1:5000"]);
        assert_eq!(org.base_max_severity.as_deref(), Some("high"));
        assert_eq!(parse_org("org.toml", "").unwrap(), OrgConfig::default());
        let org = parse_org(
            "org.toml",
            "[promotion]\npath = [\"qa\", \"prod\"]\n[environments.prod]\ntarget = \"gitops\"\nrepo = \"/srv/g\"\ndir = \"envs/{environment}/{workload}\"\nimage_repository = \"r.example.org/{workload}\"\n",
        )
        .unwrap();
        assert_eq!(org.promotion_path, ["qa", "prod"]);
        assert_eq!(org.target("qa"), DeployTarget::Local);
        assert!(matches!(org.target("prod"), DeployTarget::Gitops { .. }));
        assert_eq!(org.position("prod"), Some(1));
        let e = parse_org("org.toml", "[environments.staging]\ntarget = \"ftp\"\n").unwrap_err();
        assert!(e.message.contains("unknown deploy target"), "{e}");
        let e = parse_org("org.toml", "[environments.prod]\ntarget = \"local\"\n").unwrap_err();
        assert!(e.message.contains("not on the promotion path"), "{e}");

        let org = parse_org(
            "org.toml",
            "[changes]\nwebhook = \"https://cm.example.org/h\"\nsecret_file = \"/etc/s\"\n",
        )
        .unwrap();
        assert_eq!(
            org.change_sink.webhook.as_deref(),
            Some("https://cm.example.org/h")
        );
        let e = parse_org("org.toml", "[changes]\nwebhook = \"ftp://x\"\n").unwrap_err();
        assert!(e.message.contains("not an http(s) URL"), "{e}");
        let e = parse_org("org.toml", "[changes]\nsecret_file = \"rel\"\n").unwrap_err();
        assert!(e.message.contains("not an absolute path"), "{e}");

        let e = parse_org("org.toml", "[registries]\nallow = [\"docker.io\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 10));
        assert!(e.message.contains("rule no-docker-hub"), "{e}");
        let e = parse_org("org.toml", "[registries]\nallow = [\"a/b\"]\n").unwrap_err();
        assert!(e.message.contains("not a registry host"), "{e}");
        let e = parse_org("org.toml", "[base]\nmax_severity = \"huge\"\n").unwrap_err();
        assert!(e.message.contains("unknown severity"), "{e}");
        let e = parse_org("org.toml", "[registry]\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }
}

//! The engine's errors: what could not be done, with the context to fix it.

use std::path::PathBuf;

use cairn_model::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{} does not exist", path.display())]
    PathNotFound { path: PathBuf },
    #[error("{} is not inside a git repository", path.display())]
    NotAGitRepo { path: PathBuf },
    #[error("no {file} in {} or any parent up to the repository root; run `cairn init` first", dir.display())]
    NoWorkloadConfig { dir: PathBuf, file: &'static str },
    #[error("unknown commit `{rev}`: git cannot resolve it in {}", repo.display())]
    UnknownCommit { rev: String, repo: PathBuf },
    #[error("{path} is not in commit {commit}: commit it first (git add {path} && git commit)")]
    ConfigNotCommitted { commit: String, path: String },
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("chain `{name}` not found: no {}", looked_for.display())]
    ChainNotFound { name: String, looked_for: PathBuf },
    #[error("{file} already exists; pass --force to overwrite it")]
    AlreadyInitialised { file: PathBuf },
    #[error("cannot tell which ecosystem {} uses (looked for Cargo.toml, package.json, go.mod, pom.xml, pyproject.toml, setup.py, setup.cfg, requirements.txt, Makefile); run `cairn init` in the app's own directory, or write cairn.toml by hand (see the README, \"cairn.toml\")", dir.display())]
    UnknownEcosystem { dir: PathBuf },
    #[error("the data directory {} is inside the git work tree {} and git does not ignore it, so `git add -A` would commit cairn's signing key; add `{entry}` to {}/.gitignore (`cairn init` does) or set CAIRN_HOME to a directory outside the repository", data.display(), top.display(), top.display())]
    DataDirNotIgnored {
        data: PathBuf,
        top: PathBuf,
        entry: String,
    },
    #[error("the project has no {asked} files (found: {found}); pass one of those to --ecosystem")]
    EcosystemNotFound { asked: &'static str, found: String },
    #[error("{} holds more than {max} entries; run `cairn init` in the app's own directory", dir.display())]
    TooManyEntries { dir: PathBuf, max: usize },
    #[error("cannot write {}: {reason}; add the line `.cairn/` to it yourself (or make it a writable regular file) and run `cairn init` again", path.display())]
    GitIgnoreUnwritable { path: PathBuf, reason: String },
    #[error("chain `{chain}`: the [[sandbox.tool]] {} is not usable by the sandbox: {problem}. Fix: install the toolchain where every directory is world-searchable and the tool world-readable (e.g. under /opt, or `RUSTUP_HOME=/opt/rustup`), or `chmod o+x` each directory on the way and `o+rx` the tool; or use a build image that carries it", path.display())]
    ToolUnusable {
        chain: String,
        path: PathBuf,
        blocker: PathBuf,
        problem: String,
    },
    #[error("the sandbox directory {} cannot be used: {problem}. Its workspaces and root filesystems must be out of reach of every other user: use a root-owned directory of mode 0711 or stricter on a root-owned path (set CAIRN_SANDBOX_DIR to choose another)", path.display())]
    SandboxDirRefused { path: PathBuf, problem: String },
    #[error("git {what} failed: {stderr}")]
    Git { what: &'static str, stderr: String },
    #[error("build image `{name}` ({why_used}) is refused: {why}")]
    BuildImageRefused {
        name: String,
        why_used: String,
        why: String,
    },
    #[error("cannot {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {program}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no signing key in {}; `cairn key create` makes one", dir.display())]
    NoSigningKey { dir: PathBuf },
    #[error("a signing key already exists in {}; `cairn key rotate` replaces it (or `cairn key create --force`)", path.display())]
    KeyExists { path: PathBuf },
    /// The signing key's PKCS#11 token could not be used (module missing, token
    /// or key label not found, wrong PIN, ...); never names the PIN itself.
    #[error("{0}")]
    Token(String),
    #[error("both {} and {} exist; remove the one that is not the current key (the last `key-rotation` entry of `cairn log show` names it)", file.display(), token.display())]
    KeysAmbiguous { file: PathBuf, token: PathBuf },
    #[error("{} is readable by other users (mode {mode:o}); `chmod 600` it, and rotate the key if it may have leaked", path.display())]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error("{} is not a signing key cairn can use", path.display())]
    BadKey {
        path: PathBuf,
        #[source]
        source: cairn_evidence::EvidenceError,
    },
    #[error(transparent)]
    Evidence(#[from] cairn_evidence::EvidenceError),
    /// `keys/log.pub`, the audit log's recorded verifier key, is unusable or
    /// disagrees with the key file.
    #[error("the audit log's public key {}: {problem}", path.display())]
    LogPublicKey { path: PathBuf, problem: String },
    /// `keys/signing.pub`, the evidence key's recorded public key, is
    /// unusable or disagrees with the key file.
    #[error("the signing key's public key {}: {problem}", path.display())]
    SigningPublicKey { path: PathBuf, problem: String },
    #[error("cannot load the audit log's key")]
    AuditKey(#[source] cairn_tlog_fs::KeyFileError),
    #[error("cannot open the audit log in {}", dir.display())]
    AuditLog {
        dir: PathBuf,
        #[source]
        source: cairn_tlog_fs::LogError,
    },
    #[error("cannot append to the audit log, so the change was not made")]
    AuditAppend(#[source] cairn_tlog_fs::AppendError),
    #[error("cannot prove audit log entry {index}")]
    AuditProof {
        index: u64,
        #[source]
        source: cairn_tlog_fs::LogError,
    },
    #[error("run {0} not found")]
    RunNotFound(cairn_model::RunId),
    #[error(
        "{workload} has no earlier deployment in {environment} to go back to; name the digest to go back to"
    )]
    NothingToRollBackTo {
        workload: String,
        environment: String,
    },
    #[error("commit {commit} of this repository configures workload `{found}`, not `{expected}`")]
    WrongWorkload {
        expected: String,
        found: String,
        commit: String,
    },
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
    /// A document the user handed in (a VEX document, a licence policy) that
    /// cannot be used; `what` names it (empty when `reason` already does).
    #[error("{what}{}{reason}", if what.is_empty() { "" } else { ": " })]
    BadDocument { what: String, reason: String },
    #[error("{source_name}: {reason}")]
    BadArchive { source_name: String, reason: String },
    #[error("the exposure is not accepted: {0}")]
    AcceptanceRefused(String),
    #[error(transparent)]
    ImportPartial(Box<PartialImport>),
    #[error(transparent)]
    Sandbox(#[from] cairn_sandbox::SandboxError),
    #[error(transparent)]
    Oci(Box<cairn_oci::OciError>),
    /// A path in a workspace or an image's root filesystem was refused (a symlink
    /// on the way, a special file, too large) or could not be read.
    #[error(transparent)]
    Fs(#[from] cairn_fs::FsError),
    #[error(transparent)]
    Registry(Box<cairn_registry::Error>),
    /// A registry auth file or credential helper that cannot be used.
    #[error(transparent)]
    RegistryAuth(#[from] cairn_registry::AuthFileError),
    #[error(transparent)]
    ImageRef(#[from] cairn_model::image_ref::RefError),
    #[error(
        "base `{name}` is not in the organisation's catalog; `cairn base list` shows it, `cairn base import` adds a validated base"
    )]
    BaseNotInCatalog { name: String },
    #[error("`{name}` is not a valid base name (1-63 characters of a-z, 0-9 and '-')")]
    BadBaseName { name: String },
    #[error(transparent)]
    Recipe(#[from] cairn_model::RecipeError),
    #[error("the base recipe ({recipe}) failed: {why}")]
    RecipeFailed { recipe: String, why: String },
    #[error(
        "the toolchain directory {dir} cannot be packed into a base: {why}; nothing was imported"
    )]
    Toolchain { dir: String, why: String },
    #[error(
        "the base recipe ({recipe}) failed: apt knows no package {packages} (`apt-cache search NAME` finds the right name; `apt-get update` refreshes what apt knows)"
    )]
    RecipeUnknownPackages { recipe: String, packages: String },
    #[error("image `{reference}` not found: {why}")]
    ImageNotFound { reference: String, why: String },
    #[error("pulling {reference} needs a registry connection")]
    NoRegistryClient { reference: String },
    /// `cairn base refresh` could not make a new version of a base (the user's
    /// input or its recorded recipe says no).
    #[error("cannot refresh base `{name}`: {why}")]
    BaseRefresh { name: String, why: String },
    /// A remediation was refused before it started (another one runs, nothing
    /// to do, no fix known).
    #[error("{why}")]
    Remediation { why: String },
    #[error("{why}")]
    BadDeployTarget { why: String },
    #[error("the deployment failed: {why}")]
    DeployFailed { why: String },
    #[error("nothing of {workload} is deployed in {environment}: {why}")]
    NothingDeployed {
        workload: String,
        environment: String,
        why: String,
    },
    #[error(transparent)]
    Policy(#[from] cairn_policy::PolicyError),
    #[error(
        "no actor: CAIRN_TOKEN is not set; set CAIRN_TOKEN to your identity's token (cairn identity add prints it once)"
    )]
    NoToken,
    #[error(
        "the token in CAIRN_TOKEN belongs to no active identity (unknown, malformed or revoked); ask a platform-admin for a new one (cairn identity add)"
    )]
    BadToken,
    #[error("permission denied: {reason}; `cairn role list` shows who holds which role")]
    Denied {
        action: &'static str,
        reason: String,
    },
    #[error(
        "cairn already has identities, so adding one needs a platform-admin: set CAIRN_TOKEN to its token"
    )]
    AlreadyBootstrapped,
    #[error("identity `{name}` already exists; `cairn identity list` shows identities")]
    IdentityExists { name: String },
    #[error("no identity `{name}`; `cairn identity list` shows identities")]
    UnknownIdentity { name: String },
    #[error("identity `{name}` is revoked; add a new identity instead")]
    IdentityRevoked { name: String },
    #[error(
        "unknown role `{name}`: use viewer, developer, maintainer, release-manager or platform-admin"
    )]
    UnknownRole { name: String },
    #[error("`{value}` is not a valid {what}: {why}")]
    BadName {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(
        "that would leave no active platform-admin for the organisation; grant platform-admin to another identity first"
    )]
    LastAdmin,
    /// `[[sso.map]]` declares an identity while the organisation has none:
    /// single sign-on does not bootstrap an organisation.
    #[error(
        "org.toml's [[sso.map]] declares identity `{name}`, but the organisation has no identity yet: \
         a platform-admin must exist first (cairn identity add)"
    )]
    SsoBeforeBootstrap { name: String },
    /// `[[sso.map]]` declares an identity of another kind than the stored one.
    #[error(
        "org.toml's [[sso.map]] declares identity `{name}` a {declared}, but it exists as a {stored}: \
         fix `kind` in org.toml, or revoke the identity and use another name"
    )]
    SsoKindDiffers {
        name: String,
        stored: &'static str,
        declared: &'static str,
    },
    #[error("cannot generate a token: the system's random number generator failed")]
    NoRandomness,
    #[error(
        "the store {} is {state} but the audit log {} holds {entries} entries: cairn will not \
         start over beside it (runs, identities and change records the log speaks of would \
         vanish); {}",
        db.display(), log.display(), crate::pairing::recovery_hint(db.parent().unwrap_or(db))
    )]
    StoreLost {
        db: PathBuf,
        log: PathBuf,
        entries: u64,
        state: &'static str,
    },
    #[error(
        "the audit log {} holds {entries} entries but the store {} has seen {seen}: the log was \
         truncated or replaced; restore the data directory from a backup (`cairn restore`)",
        log.display(), db.display()
    )]
    LogBehindStore {
        db: PathBuf,
        log: PathBuf,
        seen: u64,
        entries: u64,
    },
    #[error(
        "the first {seen} entries of the audit log {} no longer hash to the root the store {} \
         saw: the log was replaced or rewritten; restore the data directory from a backup \
         (`cairn restore`)",
        log.display(), db.display()
    )]
    LogReplaced {
        db: PathBuf,
        log: PathBuf,
        seen: u64,
    },
    #[error(
        "the store has no identity, but the audit log {} records them (entry {index}: {summary}): \
         cairn will not make a new first admin over them; {hint}",
        log.display()
    )]
    IdentitiesInLog {
        log: PathBuf,
        index: u64,
        summary: String,
        hint: String,
    },
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
}

impl From<cairn_oci::OciError> for EngineError {
    fn from(err: cairn_oci::OciError) -> Self {
        Self::Oci(Box::new(err))
    }
}

impl From<cairn_registry::Error> for EngineError {
    fn from(err: cairn_registry::Error) -> Self {
        Self::Registry(Box::new(err))
    }
}

impl EngineError {
    /// What kind of failure this is; the CLI's exit code (`cairn-cli/src/exit.rs`)
    /// and the server's HTTP status (`cairn-server/src/problem.rs`) follow from it
    /// and from nothing else.
    pub fn kind(&self) -> cairn_model::ErrorKind {
        use cairn_model::ErrorKind;
        match self {
            Self::NoToken | Self::BadToken => ErrorKind::Unauthenticated,
            Self::Denied { .. } => ErrorKind::Forbidden,
            Self::RunNotFound(_)
            | Self::UnknownIdentity { .. }
            | Self::ImageNotFound { .. }
            | Self::PathNotFound { .. } => ErrorKind::NotFound,
            Self::Store(store) => store.kind(),
            _ if self.is_invalid_request() => ErrorKind::Invalid,
            _ => ErrorKind::Internal,
        }
    }

    /// Whether the user's input is at fault (exit 1) rather than cairn or the
    /// machine (exit 2).
    pub fn is_user_error(&self) -> bool {
        self.kind().is_user()
    }

    /// The errors the request's own content causes (beyond the kinds `kind`
    /// names first).
    fn is_invalid_request(&self) -> bool {
        // A path refused in a tree the user named, or one that does not exist.
        let refused =
            |e: &cairn_fs::FsError| !matches!(e, cairn_fs::FsError::Io { .. }) || e.is_not_found();
        match self {
            Self::Fs(e) => return refused(e),
            Self::Oci(e) => {
                if let cairn_oci::OciError::Fs(e) = &**e {
                    return refused(e);
                }
            }
            _ => {}
        }
        matches!(
            self,
            Self::NotAGitRepo { .. }
                | Self::RegistryAuth(_)
                | Self::NoWorkloadConfig { .. }
                | Self::UnknownCommit { .. }
                | Self::ConfigNotCommitted { .. }
                | Self::BadArchive { .. }
                | Self::BadDocument { .. }
                | Self::AcceptanceRefused(_)
                | Self::Config(_)
                | Self::ChainNotFound { .. }
                | Self::AlreadyInitialised { .. }
                | Self::UnknownEcosystem { .. }
                | Self::DataDirNotIgnored { .. }
                | Self::ToolUnusable { .. }
                | Self::EcosystemNotFound { .. }
                | Self::TooManyEntries { .. }
                | Self::GitIgnoreUnwritable { .. }
                | Self::RunNotFound(_)
                | Self::WrongWorkload { .. }
                | Self::NothingToRollBackTo { .. }
                | Self::NoSigningKey { .. }
                | Self::KeyExists { .. }
                | Self::KeyExposed { .. }
                | Self::Token(_)
                | Self::KeysAmbiguous { .. }
                | Self::ImageRef(_)
                | Self::Policy(_)
                | Self::BaseNotInCatalog { .. }
                | Self::BuildImageRefused { .. }
                | Self::BadBaseName { .. }
                | Self::Toolchain { .. }
                | Self::BaseRefresh { .. }
                | Self::Remediation { .. }
                | Self::Recipe(_)
                | Self::RecipeUnknownPackages { .. }
                | Self::ImageNotFound { .. }
                | Self::BadDeployTarget { .. }
                | Self::NothingDeployed { .. }
                | Self::NoToken
                | Self::BadToken
                | Self::Denied { .. }
                | Self::AlreadyBootstrapped
                | Self::IdentityExists { .. }
                | Self::UnknownIdentity { .. }
                | Self::IdentityRevoked { .. }
                | Self::UnknownRole { .. }
                | Self::BadName { .. }
                | Self::LastAdmin
                | Self::SsoBeforeBootstrap { .. }
                | Self::SsoKindDiffers { .. }
                | Self::Backup(_)
        )
    }

    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}

/// An import that stopped half-way: what it stored before the store failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the import is PARTIAL: it stopped after storing {stored} record(s) ({new} new, {updated} \
     updated, {unchanged} unchanged) of the {files} file(s) read so far; this batch of {batch} \
     and everything after it were not stored, and findings were not re-matched; run the \
     import again once the cause is fixed (stored records are kept, unchanged ones are skipped)"
)]
pub struct PartialImport {
    pub stored: usize,
    pub new: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub files: usize,
    pub batch: usize,
    #[source]
    pub source: cairn_store::StoreError,
}

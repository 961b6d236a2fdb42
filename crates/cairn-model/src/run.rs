//! Runs, stages and step logs: the records every store keeps and every front end shows.

use std::fmt;
use std::str::FromStr;

/// The store's identifier of a run; shown to people as a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0.to_string())
    }
}

/// The store's identifier of a stage within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageId(pub i64);

/// A status string in the store did not name a known status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used in the store, the config and `--json` output.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { what: $what, value: s.to_owned() }),
                }
            }
        }
    };
}

named_enum!(
    /// Where a run is in its life. `Interrupted` is set when the process that ran it
    /// died (SIGKILL, power loss) and a later start found it.
    RunStatus, "run status" {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Interrupted => "interrupted",
    }
);

impl RunStatus {
    /// A run in a final state never changes again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Interrupted)
    }
}

named_enum!(
    /// Where a stage is in its life.
    StageStatus, "stage status" {
        Pending => "pending",
        Running => "running",
        Passed => "passed",
        Failed => "failed",
        /// Not run: an earlier stage failed, or the workload declares nothing for it.
        Skipped => "skipped",
        Interrupted => "interrupted",
    }
);

named_enum!(
    /// What a stage does. The engine decides how each kind runs; only `Source` runs
    /// outside the sandbox (it reads git, never user code).
    StageKind, "stage kind" {
        /// Resolve the exact commit and materialise its tree into the workspace.
        Source => "source",
        /// The workload's dependency-fetch command: the only step with network.
        Fetch => "fetch",
        /// The workload's unit tests, on the source.
        UnitTest => "unit-test",
        /// The workload's build command.
        Build => "build",
        /// The workload's acceptance tests on the build output.
        AcceptanceTest => "acceptance-test",
        /// A command the chain itself declares (a linter, a check).
        Command => "command",
    }
);

named_enum!(
    /// Which stream a log line came from. `System` lines are written by cairn itself.
    LogStream, "log stream" {
        Stdout => "stdout",
        Stderr => "stderr",
        System => "cairn",
    }
);

/// A run as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: RunId,
    pub workload: String,
    /// The full 40-hex commit id the run is for.
    pub commit: String,
    /// The ref the user named (`HEAD`, a branch), if any, for display only.
    pub git_ref: Option<String>,
    pub status: RunStatus,
    /// Why the run failed or was interrupted, in one sentence.
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// Who is executing the run (host, pid, process start time); used to find runs
    /// whose process died.
    pub owner: Option<String>,
    /// What asked for the run.
    pub trigger: Trigger,
}

/// A stage as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    pub id: StageId,
    pub run: RunId,
    /// Position in the chain, from 0.
    pub index: u32,
    pub name: String,
    pub kind: StageKind,
    /// The command line run in the sandbox, if any.
    pub command: Option<String>,
    pub status: StageStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// One line of a step's output. `text` is the raw bytes without the line end: steps
/// may print anything, including invalid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Position within the stage's log, from 0, without gaps.
    pub seq: u64,
    pub stream: LogStream,
    pub at_ms: i64,
    pub text: Vec<u8>,
}

impl LogLine {
    /// The line for a terminal: invalid UTF-8 replaced, control characters escaped,
    /// so a step can't move the cursor or retitle the terminal of whoever reads it.
    pub fn display_text(&self) -> String {
        printable(&self.text)
    }
}

/// Bytes as printable text: lossy UTF-8, control characters (except tab) escaped.
pub fn printable(bytes: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(lossy.len());
    for c in lossy.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a store needs to create a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub workload: String,
    pub commit: String,
    pub git_ref: Option<String>,
    pub created_at_ms: i64,
    /// The chain's stages in order; stored as `Pending`.
    pub stages: Vec<NewStage>,
    /// What asks for the run; all but [`Trigger::Cli`] queue it for the server's workers.
    pub trigger: Trigger,
}

/// What asked for a run. Stored as text: `cli`, `api:<actor>`,
/// `webhook:<forge>:<delivery>`; an actor or forge name holds no `:` (a delivery may).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// `cairn run` on this machine: the process that created the run runs it.
    Cli,
    /// The HTTP API, on behalf of an identity.
    Api { actor: String },
    /// A forge's webhook delivery (`github`, `gitlab`, `gitea`) and its id.
    Webhook { forge: String, delivery: String },
    /// A forge's push whose login is linked to a cairn identity (`cairn
    /// identity link`): the identity that pushed, which may not approve it.
    Push {
        pusher: String,
        forge: String,
        delivery: String,
    },
}

impl Trigger {
    /// The stored text (see [`Trigger`]).
    pub fn as_text(&self) -> String {
        match self {
            Trigger::Cli => "cli".to_owned(),
            Trigger::Api { actor } => format!("api:{actor}"),
            Trigger::Webhook { forge, delivery } => format!("webhook:{forge}:{delivery}"),
            Trigger::Push {
                pusher,
                forge,
                delivery,
            } => format!("push:{pusher}:{forge}:{delivery}"),
        }
    }

    /// The trigger [`Trigger::as_text`] wrote. Empty names, and an actor or forge
    /// with a `:`, are refused.
    pub fn parse(text: &str) -> Result<Trigger, UnknownName> {
        let unknown = || UnknownName {
            what: "run trigger",
            value: text.to_owned(),
        };
        if text == "cli" {
            return Ok(Trigger::Cli);
        }
        if let Some(actor) = text.strip_prefix("api:") {
            if actor.is_empty() || actor.contains(':') {
                return Err(unknown());
            }
            return Ok(Trigger::Api {
                actor: actor.to_owned(),
            });
        }
        if let Some(rest) = text.strip_prefix("push:") {
            return match rest.split_once(':').and_then(|(p, r)| {
                let (forge, delivery) = r.split_once(':')?;
                Some((p, forge, delivery))
            }) {
                Some((pusher, forge, delivery))
                    if !pusher.is_empty() && !forge.is_empty() && !delivery.is_empty() =>
                {
                    Ok(Trigger::Push {
                        pusher: pusher.to_owned(),
                        forge: forge.to_owned(),
                        delivery: delivery.to_owned(),
                    })
                }
                _ => Err(unknown()),
            };
        }
        if let Some(rest) = text.strip_prefix("webhook:") {
            return match rest.split_once(':') {
                Some((forge, delivery)) if !forge.is_empty() && !delivery.is_empty() => {
                    Ok(Trigger::Webhook {
                        forge: forge.to_owned(),
                        delivery: delivery.to_owned(),
                    })
                }
                _ => Err(unknown()),
            };
        }
        Err(unknown())
    }

    /// Whether the server's workers run it (everything but [`Trigger::Cli`]).
    pub fn for_worker(&self) -> bool {
        !matches!(self, Trigger::Cli)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.as_text())
    }
}

/// A workload as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRecord {
    pub name: String,
    /// Where its source is (a path or a URL).
    pub repo: String,
    /// The forge's name of its repository (`owner/name`), which webhooks are matched
    /// by; at most one workload has a given one.
    pub forge_repository: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A forge's webhook delivery, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// `github`, `gitlab`, `gitea`.
    pub forge: String,
    /// The forge's id of the delivery (unique per forge).
    pub delivery: String,
    /// The forge's event name (`push`, `pull_request`, …).
    pub event: String,
    pub received_at_ms: i64,
    /// What cairn did with it, in a few words (`queued run`, `ignored: …`).
    pub outcome: String,
}

/// A webhook delivery as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub forge: String,
    pub delivery: String,
    pub event: String,
    pub received_at_ms: i64,
    pub outcome: String,
    /// The run it queued, if any.
    pub run: Option<RunId>,
}

/// A planned stage of a new run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStage {
    pub name: String,
    pub kind: StageKind,
    pub command: Option<String>,
}

/// A signed statement (a Sigstore bundle) about an artifact, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    pub id: i64,
    /// The run that produced it, if any (a promotion decision has none).
    pub run: Option<RunId>,
    pub stage: Option<StageId>,
    /// The in-toto predicate type, e.g. `https://slsa.dev/provenance/v1`.
    pub predicate_type: String,
    pub subject_name: String,
    /// `<algorithm>:<hex>`, e.g. `sha256:…` or `gitCommit:…`.
    pub subject_digest: String,
    /// The bundle JSON, byte for byte as signed.
    pub bundle: Vec<u8>,
    pub created_at_ms: i64,
}

/// What a store needs to keep a piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence {
    pub run: Option<RunId>,
    pub stage: Option<StageId>,
    pub predicate_type: String,
    pub subject_name: String,
    pub subject_digest: String,
    pub bundle: Vec<u8>,
    pub created_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(*s));
        }
        for s in StageStatus::ALL {
            assert_eq!(s.as_str().parse::<StageStatus>(), Ok(*s));
        }
        for s in StageKind::ALL {
            assert_eq!(s.as_str().parse::<StageKind>(), Ok(*s));
        }
        for s in LogStream::ALL {
            assert_eq!(s.as_str().parse::<LogStream>(), Ok(*s));
        }
        assert!("bogus".parse::<RunStatus>().is_err());
    }

    #[test]
    fn printable_escapes_terminal_controls() {
        assert_eq!(printable(b"ok\ttab"), "ok\ttab");
        assert_eq!(printable(b"\x1b]0;owned\x07"), "\\u{1b}]0;owned\\u{7}");
        assert_eq!(printable(b"bad \xff byte"), "bad \u{fffd} byte");
    }

    #[test]
    fn display_honours_width() {
        assert_eq!(
            format!("{:>4}|{:<8}|", RunId(7), RunStatus::Failed),
            "   7|failed  |"
        );
    }

    #[test]
    fn triggers_round_trip() {
        let all = [
            Trigger::Cli,
            Trigger::Api {
                actor: "alice".to_owned(),
            },
            Trigger::Webhook {
                forge: "github".to_owned(),
                delivery: "72d3162e:cc78:11e3".to_owned(),
            },
            Trigger::Push {
                pusher: "alice@example.org".to_owned(),
                forge: "gitea".to_owned(),
                delivery: "72d3162e:cc78:11e3".to_owned(),
            },
        ];
        for t in &all {
            assert_eq!(Trigger::parse(&t.as_text()), Ok(t.clone()));
        }
        assert_eq!(all[0].as_text(), "cli");
        assert_eq!(all[1].as_text(), "api:alice");
        assert!(!all[0].for_worker());
        assert!(all[1].for_worker() && all[2].for_worker());
        for bad in [
            "",
            "CLI",
            "api:",
            "api:a:b",
            "webhook:github",
            "webhook::x",
            "webhook:g:",
        ] {
            assert!(Trigger::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn final_states() {
        assert!(RunStatus::Interrupted.is_final());
        assert!(!RunStatus::Running.is_final());
    }
}

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
    fn final_states() {
        assert!(RunStatus::Interrupted.is_final());
        assert!(!RunStatus::Running.is_final());
    }
}

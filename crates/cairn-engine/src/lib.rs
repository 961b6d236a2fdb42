//! The engine: runs the organisation's chain for one exact commit. It materialises
//! the commit from git, runs each stage in the sandbox, and records status, timing,
//! exit codes and logs in the store; it also finds runs whose process died, onboards
//! apps (`cairn init`) and explains failures. Every change that matters (key
//! rotations, signed evidence, and later deployments) is recorded in the audit
//! log ([`audit`]) before it takes effect.

pub mod acceptance;
pub mod access;
pub mod admission;
pub mod advisories;
pub mod audit;
pub mod backup;
pub mod certify;
pub mod change_sink;
mod crate_archives;
pub mod current;
mod data_dir;
pub mod deploy;
mod error;
pub mod explain;
pub mod exposures;
pub mod feed;
pub mod forge_status;
pub mod gc;
mod git;
mod host;
pub mod hsm;
pub mod images;
pub mod inventory;
mod jsonl;
pub mod keys;
pub mod log_key;
pub mod notify;
pub mod onboard;
pub mod outbox;
pub mod pairing;
pub mod policy_params;
pub mod promotion;
pub mod rebuild;
pub mod recovery;
pub mod remediation;
pub mod review;
pub mod run;
pub mod sarif;
pub mod scan;
pub mod smtp;
pub mod test_reports;
mod verified;
pub mod wire;
mod workload_source;

pub use data_dir::DataDir;
pub use error::{EngineError, PartialImport};
/// The one clock: unix milliseconds now (the floors below take "now" from their caller).
pub use host::{now_ms, process_gone, process_tag};
pub use run::{Engine, LostRun, RunObserver, RunRequest};
/// Checking stored bundles read-only, for pages that show a "verify" result.
pub use verified::{BundleCheck, check_bundles, names_subject};
pub use workload_source::{LoadedWorkload, load_org, load_workload};

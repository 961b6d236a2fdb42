//! The code behind `cairn bench …` and `cairn log bench`: each benchmark
//! measures cairn beside the named peer (a reference tool, or the floor the
//! operation cannot beat), in the same run, and prints both with their ratio.
//! Kept out of the product crates (as uv keeps `uv-bench`): it uses their
//! public APIs only, except the gate benchmark (cairn-policy's `bench`
//! feature). The CLI parses the arguments and calls in here.

pub mod chain_setup;
pub mod exposures;
pub mod log;
pub mod os_match;
pub mod peers;
pub mod push_layer;
pub mod replicas;
pub mod sandbox_noop;
pub mod scan;
pub mod serve;
pub mod synthetic;
pub mod where_;
pub mod workers;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// Exit code for "the user's input said no" (as the CLI's).
pub const USER: u8 = 1;
/// Exit code for "cairn failed" (as the CLI's).
pub const INTERNAL: u8 = 2;

/// How a benchmark prints: JSON (one object on stdout) or text, and the
/// platform directory the serve benchmark's server uses.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub json: bool,
    pub platform_dir: Option<PathBuf>,
}

/// A benchmark that could not run, with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// The user's input is wrong (exit 1).
    pub fn user(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: USER,
            error: error.into(),
        }
    }
}

impl From<cairn_engine::EngineError> for Failure {
    fn from(err: cairn_engine::EngineError) -> Self {
        let code = if err.is_user_error() { USER } else { INTERNAL };
        Failure {
            code,
            error: err.into(),
        }
    }
}

macro_rules! internal {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(err: $t) -> Self {
                Failure { code: INTERNAL, error: err.into() }
            }
        }
    )*};
}

internal!(
    anyhow::Error,
    cairn_store::StoreError,
    std::io::Error,
    cairn_oci::OciError
);

/// One JSON value on stdout.
pub fn print_json(v: &Value) {
    println!("{v}");
}

/// p50/p99/mean/max of a sample, in milliseconds.
pub fn summary(mut xs: Vec<Duration>) -> [f64; 4] {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        let i = ((xs.len() as f64 - 1.0) * q).round() as usize;
        xs.get(i).copied().map_or(f64::NAN, ms)
    };
    let mean = xs.iter().copied().map(ms).sum::<f64>() / xs.len().max(1) as f64;
    [
        at(0.5),
        at(0.99),
        mean,
        xs.last().copied().map_or(f64::NAN, ms),
    ]
}

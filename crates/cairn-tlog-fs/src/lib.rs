//! The transparency log on disk, in exactly the C2SP tlog-tiles HTTP layout
//! (<https://c2sp.org/tlog-tiles>), so that a static file server serving the
//! directory is the log's read API:
//!
//! ```text
//! <dir>/checkpoint                      the latest signed checkpoint (C2SP tlog-checkpoint)
//! <dir>/tile/<L>/<N>[.p/<W>]            hash tiles
//! <dir>/tile/entries/<N>[.p/<W>]        entry bundles (uint16 big-endian length + bytes)
//! <dir>/.lock                           held by the one process that may append
//! <dir>/.checkpoint.tmp                 the next checkpoint, before its atomic rename
//! ```
//!
//! Durability: an append writes its tiles and bundles, fsyncs them and their
//! directories, and only then publishes the checkpoint (write temp, fsync,
//! rename, fsync the directory). An append is acknowledged after that, so
//! every acknowledged entry is covered by a durable checkpoint. Files beyond
//! the published checkpoint (left by a crash) are never read and are
//! rewritten or removed on the next open.

mod appender;
mod keyfile;
mod log;
mod verify;

pub use appender::{AppendError, Appender};
pub use keyfile::{KeyFileError, generate_signer, load_or_create_signer, load_signer};
pub use log::{Log, LogError, MAX_BATCH, ReadError};
pub use verify::{Problem, VerifyReport, verify, verify_against};

//! `--tls-cert FILE --tls-key FILE`, shared by `cairn up` and `cairn serve`:
//! both or neither; loaded (and refused, with the file named) before the
//! server opens anything else.

use anyhow::anyhow;
use std::path::PathBuf;

use crate::exit::Failure;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key: a file only its owner (the user
    /// cairn runs as) may read (0600); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often the certificate and key are re-read (seconds): a rotated
    /// certificate is served without a restart; files that no longer pass
    /// are logged and the previous certificate kept.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub tls_reload_seconds: u64,
}

impl TlsArgs {
    /// How often the files are re-read.
    pub(crate) fn reload(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.tls_reload_seconds)
    }

    /// The server's TLS configuration, or `None` for plain HTTP. A bad file
    /// is the user's input (exit 1).
    pub(crate) fn load(&self) -> Result<Option<cairn_server::tls::TlsConfig>, Failure> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => cairn_server::tls::load(cert, key, cairn_engine::now_ms())
                .map(Some)
                .map_err(|e| Failure::user(anyhow!("{e}"))),
            (None, None) => Ok(None),
            // clap's `requires` refuses half a pair before this.
            _ => Err(Failure::user(anyhow!(
                "give --tls-cert and --tls-key together"
            ))),
        }
    }
}

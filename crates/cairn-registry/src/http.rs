//! A plain HTTP(S) client for cairn's other outbound calls (the change-record
//! webhook sink, `cairn logs --follow` against a server): the same TLS setup as
//! the registry client — rustls on aws-lc-rs, the webpki roots — with bounded
//! connect and response times and HTTP error statuses returned, not raised.

use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

/// An agent for `user_agent`; `read_timeout` bounds waiting for a response
/// (`None` for long-lived streams such as Server-Sent Events).
pub fn agent(user_agent: &'static str, read_timeout: Option<Duration>) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .root_certs(RootCerts::WebPki)
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(read_timeout)
        .timeout_recv_body(read_timeout)
        .user_agent(user_agent)
        .build()
        .new_agent()
}

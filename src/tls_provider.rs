//! The process's one TLS crypto provider: rustls on `ring`.
//!
//! reqwest is built with `rustls-no-provider` and rustls without aws-lc-rs (whose C build
//! was the largest single item of a first build), so reqwest finds no provider of its own:
//! the process installs `ring` as rustls' default before it makes a client. Every HTTP
//! client of the bus starts from [`http_client`]; the TLS listener and lapin's connector
//! take the same provider.

use std::sync::{Arc, Once};

/// The provider every TLS connection of the bus uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Make [`provider`] the process default (reqwest, lapin and the OTLP exporter read it).
/// Idempotent; `main` calls it first thing.
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // An error means another provider was installed first (an embedding program's
        // choice): keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder, the provider installed.
pub fn http_client() -> reqwest::ClientBuilder {
    install();
    reqwest::Client::builder()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_with_tls_can_be_built() {
        let client = super::http_client().https_only(true).build();
        assert!(client.is_ok(), "{:?}", client.err());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}

//! Serving the bus's HTTP listener: axum's router on hyper's connection builder, which
//! (unlike `axum::serve`) can time out a client that sends its request headers too slowly
//! (slow-loris): the connection is closed after `header_read_timeout`. Slow bodies are cut
//! by the ingress itself (`server.body_read_timeout`, answered 408).
//!
//! With `[server.tls]` the listener speaks HTTPS (rustls); a client must finish its TLS
//! handshake within the header read timeout too.
//!
//! Shutdown: once `shutdown` resolves, no connection is accepted any more, and the open
//! ones finish the requests in progress before they close. Each connection's life (the
//! operations reserve past `server.max_connections`, idle connections closed on every
//! protocol) is in [`connection`].

mod body;
pub mod connection;

pub use body::{BodyLimits, LargerBodies, buffer_body};

use axum::Router;
use connection::{Activity, ConnectionService, RESERVED_FOR_OPERATIONS, drive};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The listener's TLS acceptor from `[server.tls]`, or a message naming what is wrong.
pub fn tls_acceptor(
    tls: &crate::config::ListenerTlsConfig,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|it| it.collect())
        .map_err(|e| format!("server.tls.cert_file {}: {e}", tls.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "server.tls.cert_file {}: no certificate in it",
            tls.cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| format!("server.tls.key_file {}: {e}", tls.key_file.display()))?;
    let provider = crate::tls_provider::provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.tls: the key does not fit the certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// How the listener treats connections (`[server]`).
#[derive(Clone, Copy, Debug)]
pub struct Listening {
    /// A request's headers — the first request's too, whatever the protocol — arrive
    /// within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// HTTP/2 without TLS (h2c); off by default: plain connections speak HTTP/1.1 only, so
    /// no protocol sniffing waits, untimed, for a first byte.
    pub h2c: bool,
    /// Connections open at once for any endpoint; past it, [`RESERVED_FOR_OPERATIONS`]
    /// more for the health, metrics and admin endpoints only, and past those a new one is
    /// closed at once (logged), so that a crowd of idle sockets can neither use up the
    /// process's file descriptors nor lock the operators out.
    pub max_connections: usize,
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    listening: Listening,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let header_read_timeout = listening.header_read_timeout;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    // HTTP/1.1 only, or HTTP/2 only: chosen before the first byte (TLS: by ALPN), served by
    // hyper's own connection (the auto builder reads the first bytes to tell the version,
    // with no timer), so the header timer runs from the connection's start.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let http1 = Arc::new(http1);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let http2 = Arc::new(http2);
    let sniffing = Arc::new(builder);
    let open = Arc::new(tokio::sync::Semaphore::new(listening.max_connections));
    let reserve = Arc::new(tokio::sync::Semaphore::new(RESERVED_FOR_OPERATIONS));
    // Tells every connection to finish and close; closed once all of them have.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (slot, reserved) = match Arc::clone(&open).try_acquire_owned() {
            Ok(slot) => (slot, false),
            Err(_) => match Arc::clone(&reserve).try_acquire_owned() {
                Ok(slot) => (slot, true),
                Err(_) => {
                    tracing::warn!(%peer, max = listening.max_connections, "too many open connections: one closed at once (server.max_connections)");
                    drop(stream);
                    continue;
                }
            },
        };
        // The peer's address for handlers that limit per source (`ConnectInfo`).
        let activity = Activity::new();
        let service = ConnectionService {
            inner: TowerToHyperService::new(
                app.clone()
                    .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
            ),
            activity: activity.clone(),
            reserved,
        };
        let (http1, http2, sniffing) = (http1.clone(), http2.clone(), sniffing.clone());
        let stopping = stopping.clone();
        let acceptor = tls.clone();
        // Each connection on its own task: a client that stalls, goes away or times out
        // ends its own connection only.
        tokio::spawn(async move {
            let _slot = slot;
            let idle = header_read_timeout;
            match acceptor {
                None if listening.h2c => {
                    let connection = sniffing
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    drive(connection, activity, idle, stopping).await;
                }
                None => {
                    let connection = http1.serve_connection(TokioIo::new(stream), service);
                    drive(connection, activity, idle, stopping).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(header_read_timeout, acceptor.accept(stream)).await;
                    let Ok(Ok(stream)) = handshake else {
                        tracing::debug!("TLS handshake failed or timed out");
                        return;
                    };
                    let io = TokioIo::new(stream);
                    if io.inner().get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
                        drive(
                            http2.serve_connection(io, service),
                            activity,
                            idle,
                            stopping,
                        )
                        .await;
                    } else {
                        drive(
                            http1.serve_connection(io, service),
                            activity,
                            idle,
                            stopping,
                        )
                        .await;
                    }
                }
            }
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    stop.closed().await;
    Ok(())
}

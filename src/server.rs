//! Serving the bus's HTTP listener: axum's router on hyper's connection builder, which
//! (unlike `axum::serve`) can time out a client that sends its request headers too slowly
//! (slow-loris): the connection is closed after `header_read_timeout`. Slow bodies are cut
//! by the ingress itself (`server.body_read_timeout`, answered 408).
//!
//! With `[server.tls]` the listener speaks HTTPS (rustls); a client must finish its TLS
//! handshake within the header read timeout too.
//!
//! Shutdown: once `shutdown` resolves, no connection is accepted any more, and the open
//! ones finish the requests in progress before they close.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// Limits every request body must keep, whichever endpoint it is for.
#[derive(Clone)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
    /// Routes that take larger bodies (documents), from units whose key checks out.
    pub larger: Option<std::sync::Arc<LargerBodies>>,
}

/// Which requests may send more than `server.max_body_bytes`: those to a route with its own
/// `max_body_bytes` (`POST /api/v1/units/{unit}/events/{flow}` or `…/events?flow=…`, or `/soap/{unit}` for the
/// largest of the unit's SOAP routes), and only with the unit's valid key — checked from
/// the headers before any byte beyond the server's limit is read.
pub struct LargerBodies {
    pub keys: std::sync::Arc<crate::web::UnitKeys>,
    pub router: std::sync::Arc<crate::route::Router>,
    /// Per unit: SOAP operation → flow.
    pub soap_operations:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl LargerBodies {
    /// The limit for this request, if a route allows more than the server's.
    fn limit_for(&self, parts: &axum::http::request::Parts) -> Option<usize> {
        let path = parts.uri.path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (unit, larger) = match segments.as_slice() {
            ["api", "v1", "units", unit, "events", flow] => (
                *unit,
                self.router
                    .largest_body(unit, std::iter::once(&flow.to_string())),
            ),
            ["api", "v1", "units", unit, "events"] => {
                let flow = parts.uri.query().and_then(|q| {
                    q.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(k, _)| *k == "flow")
                        .map(|(_, v)| v.to_string())
                });
                let limit = match &flow {
                    Some(f) => self.router.largest_body(unit, std::iter::once(f)),
                    None => self
                        .router
                        .resolve_for_unit(unit, None)
                        .ok()
                        .and_then(|r| r.max_body_bytes),
                };
                (*unit, limit)
            }
            ["soap", unit] => {
                let flows = self.soap_operations.get(*unit)?;
                (*unit, self.router.largest_body(unit, flows.values()))
            }
            _ => return None,
        };
        let larger = larger?;
        self.keys.authorize(unit, &parts.headers).ok()?;
        Some(larger)
    }
}

/// Middleware: read the whole body within `read_timeout` and `max_bytes` (or a route's
/// larger limit, see [`LargerBodies`]) before any handler runs (408 / 413 with a JSON
/// error otherwise), so no handler waits on a trickling client.
pub async fn buffer_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let max = limits
        .larger
        .as_ref()
        .and_then(|l| l.limit_for(&parts))
        .map_or(limits.max_bytes, |l| l.max(limits.max_bytes));
    let read = crate::ingress::read_body(body, max);
    match tokio::time::timeout(limits.read_timeout, read).await {
        Err(_) => crate::web::ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {}; send it in one go",
                humantime::format_duration(limits.read_timeout)
            ),
        )
        .into_response(),
        Ok(Err(e)) => e.into_response(),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

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
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.tls: the key does not fit the certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = std::sync::Arc::new(builder);
    let graceful = GracefulShutdown::new();
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
        // The peer's address for handlers that limit per source (`ConnectInfo`).
        let service = TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let builder = std::sync::Arc::clone(&builder);
        let watcher = graceful.watcher();
        let acceptor = tls.clone();
        // Each connection on its own task: a client that stalls, goes away or times out
        // ends its own connection only.
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(header_read_timeout, acceptor.accept(stream)).await;
                    let Ok(Ok(stream)) = handshake else {
                        tracing::debug!("TLS handshake failed or timed out");
                        return;
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

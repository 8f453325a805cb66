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
    /// Bytes of request bodies being read at once, in KiB, over every connection: past
    /// it, a request is answered 503 before its body is read.
    pub in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl BodyLimits {
    /// `max_in_flight` bytes of bodies read at once (`server.max_body_bytes_in_flight`).
    pub fn in_flight_budget(max_in_flight: usize) -> std::sync::Arc<tokio::sync::Semaphore> {
        let kib = (max_in_flight / 1024).clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        std::sync::Arc::new(tokio::sync::Semaphore::new(kib))
    }
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
        self.keys.identify(unit, &parts.headers).ok()?;
        Some(larger)
    }

    /// A unit's endpoint taking a body (`POST /api/v1/units/{unit}/…`, `/soap/{unit}`)
    /// without that unit's key: refused before a byte of its body is read (and before an
    /// `Expect: 100-continue` is answered).
    fn refuse_unauthenticated(&self, parts: &axum::http::request::Parts) -> Option<Response> {
        if matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        ) {
            return None;
        }
        let segments: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
        let unit = match segments.as_slice() {
            ["api", "v1", "units", unit, _, ..] | ["soap", unit] => *unit,
            _ => return None,
        };
        if !self.keys.knows(unit) {
            return None; // the handler says the unit is unknown
        }
        let refused = self.keys.identify(unit, &parts.headers).err()?;
        // A SOAP client gets its refusal as a Fault, as from the endpoint itself.
        Some(if segments[0] == "soap" {
            crate::ingress::soap_fault(&refused)
        } else {
            refused.into_response()
        })
    }
}

/// Middleware: read the whole body within `read_timeout` and `max_bytes` (or a route's
/// larger limit, see [`LargerBodies`]) before any handler runs (408 / 413 with a JSON
/// error otherwise), so no handler waits on a trickling client.
pub async fn buffer_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if let Some(refused) = limits
        .larger
        .as_ref()
        .and_then(|l| l.refuse_unauthenticated(&parts))
    {
        return refused;
    }
    let max = limits
        .larger
        .as_ref()
        .and_then(|l| l.limit_for(&parts))
        .map_or(limits.max_bytes, |l| l.max(limits.max_bytes));
    // A declared length over the limit is refused at once, nothing of it read.
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return crate::web::ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {max} bytes, this endpoint's limit"),
        )
        .into_response();
    }
    // What this body may cost while it is read: its declared length, else the limit.
    let cost = declared.map_or(max, |n| n as usize).div_ceil(1024).max(1);
    let Ok(_reading) = u32::try_from(cost)
        .ok()
        .and_then(|kib| limits.in_flight.clone().try_acquire_many_owned(kib).ok())
        .ok_or(())
    else {
        return crate::web::ApiError::busy(
            "the bus is reading as many request bodies as it takes at once; send again shortly",
        )
        .into_response();
    };
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

/// How the listener treats connections (`[server]`).
#[derive(Clone, Copy, Debug)]
pub struct Listening {
    /// A request's headers — the first request's too, whatever the protocol — arrive
    /// within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// HTTP/2 without TLS (h2c); off by default: plain connections speak HTTP/1.1 only, so
    /// no protocol sniffing waits, untimed, for a first byte.
    pub h2c: bool,
    /// Connections open at once; past it a new one is closed at once (logged), so that
    /// a crowd of idle sockets cannot use up the process's file descriptors.
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
    let http1 = std::sync::Arc::new(http1);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let http2 = std::sync::Arc::new(http2);
    let sniffing = std::sync::Arc::new(builder);
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(listening.max_connections));
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
        let Ok(slot) = std::sync::Arc::clone(&open).try_acquire_owned() else {
            tracing::warn!(%peer, max = listening.max_connections, "too many open connections: one closed at once (server.max_connections)");
            drop(stream);
            continue;
        };
        // The peer's address for handlers that limit per source (`ConnectInfo`).
        let service = TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let (http1, http2, sniffing) = (http1.clone(), http2.clone(), sniffing.clone());
        let watcher = graceful.watcher();
        let acceptor = tls.clone();
        // Each connection on its own task: a client that stalls, goes away or times out
        // ends its own connection only.
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None if listening.h2c => {
                    let connection = sniffing
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                }
                None => {
                    let connection = http1.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
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
                        let _ = watcher.watch(http2.serve_connection(io, service)).await;
                    } else {
                        let _ = watcher.watch(http1.serve_connection(io, service)).await;
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

//! One connection's life on the listener: which requests it may carry and when it closes.
//!
//! - **The operations reserve.** Past `server.max_connections`, [`RESERVED_FOR_OPERATIONS`]
//!   more connections are taken, for the health, metrics and admin endpoints only: a crowd
//!   of unit clients (or of idle sockets) can fill the listener, and the IT Center still
//!   sees `/healthz`, `/metrics` and the dashboard. A unit endpoint on a reserved
//!   connection is answered 503 `connections_exhausted`.
//! - **Idle connections close.** A connection with no request open for the header read
//!   timeout is closed gracefully, whatever its protocol: hyper times out HTTP/1's headers
//!   itself, but an HTTP/2 connection answering the server's PINGs would otherwise stay
//!   open for ever without a request.
//! - **Shutdown.** When the listener stops, each connection finishes the requests in
//!   progress and closes; the listener waits for every one ([`Closing`]).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Connections kept past `server.max_connections` for the operations endpoints.
pub const RESERVED_FOR_OPERATIONS: usize = 64;

/// Whether a path is for the people operating the bus (health, metrics, admin API,
/// dashboard) rather than a unit's traffic.
pub fn for_operations(path: &str) -> bool {
    !(path.starts_with("/api/v1/units/")
        || path.starts_with("/soap/")
        || path.starts_with("/callbacks/"))
}

/// When a connection last carried a request, and how many it carries now.
pub struct Activity {
    started: Instant,
    open: AtomicUsize,
    /// Milliseconds since `started` when the last request finished (0: none yet).
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            open: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    /// How long the connection has had no request open (None: one is open now).
    pub fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        Some(self.started.elapsed().saturating_sub(last))
    }
}

/// Counts a request open until it is answered.
struct Open(Arc<Activity>);

impl Drop for Open {
    fn drop(&mut self) {
        let now = self.0.started.elapsed().as_millis() as u64;
        self.0.last_ms.store(now.max(1), Ordering::Release);
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The bus's router as one connection serves it: its requests counted in [`Activity`],
/// and on a reserved connection, unit traffic refused.
#[derive(Clone)]
pub struct ConnectionService {
    pub inner: TowerToHyperService<Router>,
    pub activity: Arc<Activity>,
    pub reserved: bool,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        if self.reserved && !for_operations(req.uri().path()) {
            let refused = crate::web::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "connections_exhausted",
                "the bus has as many connections open as it takes (server.max_connections); \
                 this one is kept for its operators: send again shortly",
            )
            .retry_after(1);
            return Box::pin(
                async move { Ok(axum::response::IntoResponse::into_response(refused)) },
            );
        }
        self.activity.open.fetch_add(1, Ordering::AcqRel);
        let open = Open(self.activity.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await;
            drop(open);
            response
        })
    }
}

/// A connection that can be asked to finish what it has and close (hyper's connections).
pub trait Closing: Future {
    fn close(self: Pin<&mut Self>);
}

impl<I> Closing for hyper::server::conn::http1::Connection<I, ConnectionService>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I> Closing for hyper::server::conn::http2::Connection<I, ConnectionService, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I> Closing
    for hyper_util::server::conn::auto::UpgradeableConnection<
        'static,
        I,
        ConnectionService,
        TokioExecutor,
    >
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Serve `conn` until it ends: closed gracefully when the listener stops (`stop`) or when
/// it has had no request open for `idle`. A connection closed for idleness that has not
/// ended `idle` later (an HTTP/2 client that does not answer the closing PING) is dropped:
/// it has no request open to lose.
pub async fn drive<C: Closing>(
    conn: C,
    activity: Arc<Activity>,
    idle: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tokio::pin!(conn);
    let mut closing = false;
    let mut give_up: Option<tokio::time::Instant> = None;
    loop {
        let wait = match activity.idle_for() {
            Some(for_) => idle.saturating_sub(for_),
            None => idle,
        };
        let give_up_at = give_up.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep(wait.max(Duration::from_millis(50))), if !closing => {
                if activity.idle_for().is_some_and(|for_| for_ >= idle) {
                    conn.as_mut().close();
                    closing = true;
                    give_up = Some(tokio::time::Instant::now() + idle);
                }
            }
            _ = stop.wait_for(|stopped| *stopped), if !closing => {
                conn.as_mut().close();
                closing = true;
            }
            () = tokio::time::sleep_until(give_up_at), if give_up.is_some() => return,
        }
    }
}

//! The accept loop: a cap on connections served at once, a deadline for each
//! request's head, an idle timeout for request bodies, and the peer address of
//! each connection for the login limits.
//!
//! Invariants: at most `http.max_connections` connections are served at once; a
//! connection beyond the cap is not accepted until one closes (it waits in the
//! kernel's listen queue), and reaching the cap is logged once, not per
//! connection (again only after a minute). A request head must arrive within
//! `http.header_timeout`, which also closes a kept-alive connection idle that
//! long; a body that sends nothing for `http.body_idle_timeout` fails
//! (`body_timeout`), and its connection closes with the answer. With HTTPS, the
//! TLS handshake must also finish within `http.header_timeout`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::body_timeout::{StallFlag, with_idle_timeout};
use crate::config::HttpConfig;

/// A connection's byte stream: plain TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Reaching the connection cap is logged at most this often.
const CAP_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// connections finish what they are doing for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // HTTP/2 (offered over TLS) gets receive windows of several MiB: with the
    // default 64 KiB a streamed upload waits for a window update every 64 KiB
    // (measured: 60 MiB/s for 1 GiB over loopback; the adaptive window, which
    // follows its estimate of the bandwidth-delay product, swung from 60 to 250).
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(8 << 20)
        .max_frame_size(1 << 20);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let body_idle = limits.body_idle_timeout;
    let mut cap_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    // Polled once now: a signal handler it installs is in place before the first
    // connection is taken.
    if futures_util::poll!(&mut shutdown).is_ready() {
        return Ok(());
    }
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if cap_logged.is_none_or(|at| at.elapsed() >= CAP_LOG_INTERVAL) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: further connections wait in the listen \
                         queue until one closes (http.max_connections; logged at most once a \
                         minute)"
                    );
                    cap_logged = Some(Instant::now());
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let stalled = StallFlag::default();
            let mut request =
                request.map(|body| with_idle_timeout(body, body_idle, stalled.clone()));
            request.extensions_mut().insert(stalled);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(remote));
            router.clone().oneshot(request)
        });
        // The TLS handshake, if any, runs in the connection's own task: a slow
        // client never holds up the accept loop. Shutdown waits for handshakes
        // under way too, each for at most `header_timeout`.
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let io: Box<dyn Io> = match tls {
                None => Box::new(stream),
                Some(tls) => {
                    match tokio::time::timeout(handshake_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(error)) => {
                            tracing::debug!(%remote, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%remote, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("requests still running after the shutdown grace period; stopping anyway");
        }
    }
    Ok(())
}

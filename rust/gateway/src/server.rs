//! The accept loop: HTTP/1.1 connections served with hyper directly, because
//! `axum::serve` exposes neither a header-read timeout (slow clients) nor a
//! limit on the request head (oversized headers). Upgrades are enabled for
//! WebSocket pass-through.
//!
//! Shutdown: stop accepting, ask every connection to finish its current
//! request and close (idle keep-alive connections close at once), wait up to
//! the drain timeout, then drop whatever is left.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{
    accesslog,
    middleware::{handle, Peer},
    AppState,
};

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time a client may take to send a complete request head.
    pub header_timeout: Duration,
    /// Largest request head in bytes (hyper answers 431 beyond it).
    pub max_header_bytes: usize,
    /// Time in-flight requests get to finish after shutdown starts.
    pub drain_timeout: Duration,
}

/// Serves the gateway on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let _log = accesslog::buffered();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(options.max_header_bytes.max(8192))
        .keep_alive(true);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::error!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let facts = Arc::new(Peer::new(peer));
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let state = state.clone();
            let facts = facts.clone();
            async move { Ok::<_, Infallible>(handle(state, &facts, request).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => log_end(peer, result),
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    log_end(peer, connection.await);
                }
            }
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let in_flight = connections.len();
    if in_flight > 0 {
        tracing::info!(connections = in_flight, "draining connections");
    }
    let drained = tokio::time::timeout(options.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "drain timeout reached, closing the rest"
        );
        connections.shutdown().await;
    }
}

fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        // Timeouts, resets and malformed requests from clients: not our failure.
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

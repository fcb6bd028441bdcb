//! Upstream connections: HTTP/1.1 keep-alive connections driven with hyper's
//! low-level client (`hyper::client::conn::http1`), cached per serving thread.
//!
//! Each serving thread runs its own single-threaded runtime (see `server`), so
//! a connection, its task and every request sent over it stay on one thread:
//! no lock, no cross-thread wake-up, no task spawned per request (hyper's
//! pooled client spawns one per request to return the connection to its pool).
//! A connection goes back to its thread's idle list when the response body has
//! been read to the end ([`Lease`]), and is reused most-recently-used first.
//! Idle connections older than [`IDLE_TIMEOUT`], or closed by the upstream,
//! are dropped when met.

use std::{
    cell::RefCell,
    collections::HashMap,
    io,
    time::Duration,
};

use axum::body::Body;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, time::Instant};

use crate::config::Upstream;

/// Time allowed to establish a TCP connection to one upstream before failing over.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle upstream connection is kept for reuse.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per upstream and thread; more are closed.
const MAX_IDLE: usize = 512;

/// Which upstream a connection belongs to: a pool (by its process-unique id)
/// and the upstream's index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub pool: u64,
    pub index: usize,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

thread_local! {
    static IDLE: RefCell<HashMap<Key, Vec<Idle>>> = RefCell::new(HashMap::new());
}

/// A connection in use. Dropping it closes nothing by itself: hyper closes the
/// connection when a request is abandoned half-way; [`Lease::release`] offers a
/// connection whose exchange is complete for reuse.
#[derive(Debug)]
pub struct Lease {
    pub key: Key,
    pub sender: SendRequest<Body>,
    /// Taken from the idle list (it may have been closed meanwhile).
    pub reused: bool,
}

impl Lease {
    /// Puts the connection back on this thread's idle list.
    pub fn release(self) {
        if self.sender.is_closed() {
            return;
        }
        let idle = Idle {
            sender: self.sender,
            since: Instant::now(),
        };
        // `try_with`: nothing to keep when the thread is shutting down.
        let _ = IDLE.try_with(|cell| {
            if let Ok(mut map) = cell.try_borrow_mut() {
                let list = map.entry(self.key).or_default();
                if list.len() < MAX_IDLE {
                    list.push(idle);
                }
            }
        });
    }
}

/// An idle connection to `key` that is ready for a request, if this thread has one.
pub async fn reuse(key: Key) -> Option<Lease> {
    loop {
        let candidate = IDLE.with(|cell| {
            let mut map = cell.borrow_mut();
            let list = map.get_mut(&key)?;
            let now = Instant::now();
            while let Some(idle) = list.pop() {
                if !idle.sender.is_closed() && now.duration_since(idle.since) < IDLE_TIMEOUT {
                    return Some(idle.sender);
                }
            }
            None
        })?;
        let mut sender = candidate;
        // Usually ready at once; right after the previous response it may take
        // one turn of the connection's task to get there.
        if sender.is_ready() || sender.ready().await.is_ok() {
            return Some(Lease {
                key,
                sender,
                reused: true,
            });
        }
    }
}

/// Opens a new connection to `upstream` (TCP_NODELAY; upgrades allowed).
pub async fn connect(key: Key, upstream: &Upstream) -> io::Result<Lease> {
    let (host, port) = upstream.host_port();
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let (sender, connection) = Builder::new()
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            tracing::debug!(error = %err, "upstream connection ended with an error");
        }
    });
    Ok(Lease {
        key,
        sender,
        reused: false,
    })
}

/// Drops this thread's idle connections (tests and shutdown).
pub fn clear_idle() {
    let _ = IDLE.try_with(|cell| {
        if let Ok(mut map) = cell.try_borrow_mut() {
            map.clear();
        }
    });
}

//! The access log: one line per request on stderr, in the same shape as the
//! gateway's other `tracing` lines (text, or JSON with `LMSD_LOG_FORMAT=json`),
//! under the target `lmsd_gateway::access` so `LMSD_LOG` filters it as before.
//!
//! It is written here rather than through `tracing-subscriber`, because that
//! path (generic field formatting, a timestamp formatted from scratch and one
//! `write` per line) cost about a fifth of the gateway's time per request.
//! Lines are formatted by hand into a per-thread buffer; on a serving thread
//! (a single-threaded runtime, see `server`) the buffer is written with one
//! `write` when it holds [`FLUSH_BYTES`], every [`FLUSH_INTERVAL`], and when
//! serving stops — like nginx's `access_log … buffer=… flush=…`. Elsewhere each
//! line is written at once. Whole buffers are written under stderr's lock, so
//! lines of different threads never interleave.

use std::{
    cell::{Cell, RefCell},
    fmt::Write as _,
    io::Write as _,
    net::IpAddr,
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::http::Method;
use uuid::Uuid;

/// Buffered lines are written once the buffer holds this many bytes.
pub const FLUSH_BYTES: usize = 32 * 1024;
/// ... and at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// `tracing` target of access log lines.
pub const TARGET: &str = "lmsd_gateway::access";

/// One request, as logged.
#[derive(Debug)]
pub struct Entry<'a> {
    pub method: &'a Method,
    /// The path only, never the query (signed media URLs carry secrets there).
    pub path: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub route: &'static str,
    pub client: Option<IpAddr>,
    pub user: Option<Uuid>,
    pub request_id: &'a str,
}

thread_local! {
    static BUFFER: RefCell<String> = RefCell::new(String::with_capacity(FLUSH_BYTES + 1024));
    /// Whether this thread flushes its buffer periodically (see [`buffered`]).
    static BUFFERED: Cell<bool> = const { Cell::new(false) };
    /// The timestamp up to the seconds (`2026-11-25T06:01:36`) and the second it is for.
    static CLOCK: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn json() -> bool {
    static JSON: OnceLock<bool> = OnceLock::new();
    *JSON.get_or_init(|| {
        std::env::var("LMSD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
    })
}

/// True if the installed `tracing` filter lets access lines through.
pub fn enabled() -> bool {
    tracing::enabled!(target: "lmsd_gateway::access", tracing::Level::INFO)
}

/// Logs one request (call only when [`enabled`]).
pub fn log(entry: &Entry<'_>) {
    BUFFER.with(|cell| {
        let Ok(mut buffer) = cell.try_borrow_mut() else {
            return;
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        if json() {
            format_json(&mut buffer, now, entry);
        } else {
            format_text(&mut buffer, now, entry);
        }
        if !BUFFERED.with(Cell::get) || buffer.len() >= FLUSH_BYTES {
            write_out(&mut buffer);
        }
    });
}

/// Writes this thread's buffered lines.
pub fn flush() {
    let _ = BUFFER.try_with(|cell| {
        if let Ok(mut buffer) = cell.try_borrow_mut() {
            write_out(&mut buffer);
        }
    });
}

fn write_out(buffer: &mut String) {
    if buffer.is_empty() {
        return;
    }
    // A full pipe or disk must not take the gateway down; the lines are dropped.
    let _ = std::io::stderr().lock().write_all(buffer.as_bytes());
    buffer.clear();
}

/// Buffers this thread's lines until [`flush`] (or a full buffer) while the
/// returned guard lives, and flushes them every [`FLUSH_INTERVAL`] on the
/// current runtime, which must be single-threaded (else nothing is buffered).
pub fn buffered() -> BufferGuard {
    let single = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
        handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
    });
    if !single || BUFFERED.with(Cell::get) {
        return BufferGuard { flusher: None };
    }
    BUFFERED.with(|b| b.set(true));
    let flusher = tokio::spawn(async {
        let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            flush();
        }
    });
    BufferGuard {
        flusher: Some(flusher),
    }
}

/// Ends buffering (and flushes) when dropped; see [`buffered`].
#[derive(Debug)]
pub struct BufferGuard {
    flusher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for BufferGuard {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            flusher.abort();
            let _ = BUFFERED.try_with(|b| b.set(false));
            flush();
        }
    }
}

/// `2026-11-25T06:01:36.055283Z`, re-deriving the date only when the second changes.
fn timestamp(out: &mut String, now: Duration) {
    let secs = now.as_secs();
    CLOCK.with(|cell| {
        let mut clock = cell.borrow_mut();
        if clock.0 != secs {
            clock.1.clear();
            let (y, m, d) = civil_from_days(secs / 86_400);
            let t = secs % 86_400;
            let _ = write!(
                clock.1,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                t / 3600,
                t / 60 % 60,
                t % 60
            );
            clock.0 = secs;
        }
        out.push_str(&clock.1);
    });
    let _ = write!(out, ".{:06}Z", now.subsec_micros());
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn latency_us(entry: &Entry<'_>) -> u64 {
    u64::try_from(entry.latency.as_micros()).unwrap_or(u64::MAX)
}

/// The `tracing-subscriber` text shape:
/// `<time>  INFO lmsd_gateway::access: request method=GET path=/x status=200 …`.
fn format_text(out: &mut String, now: Duration, e: &Entry<'_>) {
    timestamp(out, now);
    let _ = write!(
        out,
        "  INFO {TARGET}: request method={} path={} status={} latency_us={} route=\"{}\" client=",
        e.method,
        e.path,
        e.status,
        latency_us(e),
        e.route
    );
    if let Some(client) = e.client {
        let _ = write!(out, "{client}");
    }
    out.push_str(" user=");
    if let Some(user) = e.user {
        let _ = write!(out, "{}", user.hyphenated());
    }
    out.push_str(" request_id=");
    out.push_str(e.request_id);
    out.push('\n');
}

/// The `tracing-subscriber` JSON shape:
/// `{"timestamp":…,"level":"INFO","fields":{"message":"request",…},"target":"lmsd_gateway::access"}`.
fn format_json(out: &mut String, now: Duration, e: &Entry<'_>) {
    out.push_str("{\"timestamp\":\"");
    timestamp(out, now);
    out.push_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"request\",\"method\":");
    json_string(out, e.method.as_str());
    out.push_str(",\"path\":");
    json_string(out, e.path);
    let _ = write!(
        out,
        ",\"status\":{},\"latency_us\":{},\"route\":\"{}\",\"client\":\"",
        e.status,
        latency_us(e),
        e.route
    );
    if let Some(client) = e.client {
        let _ = write!(out, "{client}");
    }
    out.push_str("\",\"user\":\"");
    if let Some(user) = e.user {
        let _ = write!(out, "{}", user.hyphenated());
    }
    out.push_str("\",\"request_id\":");
    json_string(out, e.request_id);
    out.push_str("},\"target\":\"");
    out.push_str(TARGET);
    out.push_str("\"}\n");
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        static METHOD: Method = Method::GET;
        Entry {
            method: &METHOD,
            path: "/api/v1/\"me\"",
            status: 200,
            latency: Duration::from_micros(608),
            route: "api",
            client: Some("127.0.0.1".parse().unwrap()),
            user: Some(Uuid::nil()),
            request_id: "abc",
        }
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
        let mut s = String::new();
        timestamp(&mut s, Duration::from_micros(1_795_586_496_055_283));
        assert_eq!(s, "2026-11-25T06:01:36.055283Z");
    }

    #[test]
    fn text_and_json_lines() {
        let now = Duration::from_micros(1_795_586_496_055_283);
        let mut text = String::new();
        format_text(&mut text, now, &entry());
        assert_eq!(
            text,
            "2026-11-25T06:01:36.055283Z  INFO lmsd_gateway::access: request method=GET \
             path=/api/v1/\"me\" status=200 latency_us=608 route=\"api\" client=127.0.0.1 \
             user=00000000-0000-0000-0000-000000000000 request_id=abc\n"
        );
        let mut json = String::new();
        let anonymous = Entry {
            user: None,
            ..entry()
        };
        format_json(&mut json, now, &anonymous);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["fields"]["path"], "/api/v1/\"me\"");
        assert_eq!(value["fields"]["status"], 200);
        assert_eq!(value["fields"]["user"], "");
        assert_eq!(value["target"], TARGET);
        assert_eq!(value["timestamp"], "2026-11-25T06:01:36.055283Z");
    }
}

//! The heartbeat file the runtime's health probe reads (`lmsd/runtime/health.py`
//! `probe_heartbeat`): `{"pid", "time", "version", "detail"}`, rewritten atomically every
//! second while the process's loop runs.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio_util::sync::CancellationToken;

/// Writes the heartbeat every second, with `detail()` as what the process is doing, until
/// `cancel`. `version` is the writing crate's (`env!("CARGO_PKG_VERSION")`).
pub async fn run(
    path: PathBuf,
    version: &'static str,
    detail: impl Fn() -> String,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        if let Err(err) = write(&path, version, &detail()).await {
            if !warned {
                tracing::warn!(path = %path.display(), error = %err, "cannot write the heartbeat file");
                warned = true;
            }
        } else {
            warned = false;
        }
    }
}

/// Writes one heartbeat (temporary file, then rename).
pub async fn write(path: &Path, version: &str, detail: &str) -> std::io::Result<()> {
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let beat = serde_json::json!({
        "pid": std::process::id(),
        "time": time,
        "version": version,
        "detail": detail,
    });
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tokio::fs::write(&tmp, beat.to_string()).await?;
    tokio::fs::rename(&tmp, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_a_beat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.heartbeat");
        write(&path, "1.2.3", "applied 7").await.unwrap();
        let beat: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(beat["pid"], std::process::id());
        assert_eq!(beat["version"], "1.2.3");
        assert_eq!(beat["detail"], "applied 7");
        assert!(beat["time"].as_f64().unwrap() > 1.7e9);
    }
}

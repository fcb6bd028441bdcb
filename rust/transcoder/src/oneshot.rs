//! `lmsd-transcoder run --source FILE --out DIR`: the same ladder as a job, without NATS.
//! Prints a JSON summary (renditions, timings, the ffmpeg command) on stdout.

use std::path::Path;

use anyhow::{bail, Context};
use lmsd_proto::v1::Rendition;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    config::RunConfig,
    output, probe,
    transcode::{self, Request},
};

/// Transcodes `config.source` into `config.out`; returns the summary.
pub async fn run(config: &RunConfig, cancel: &CancellationToken) -> anyhow::Result<Value> {
    let source = std::path::absolute(&config.source).context("bad --source")?;
    let out = std::path::absolute(&config.out).context("bad --out")?;
    if out.exists()
        && std::fs::read_dir(&out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} exists and is not empty", out.display());
    }
    let probe = probe::probe(&config.encode.ffprobe, &source, cancel)
        .await
        .map_err(|e| anyhow::anyhow!("cannot probe {}: {e}", source.display()))?;
    output::remove_partials(&out)?;
    let partial = output::create_partial(&out)?;
    let (progress, _) = watch::channel(0);
    let request = Request {
        source: &source,
        probe: &probe,
        dir: &partial,
        language: None,
    };
    let outcome = match transcode::transcode(&config.encode, request, &progress, cancel).await {
        Ok(outcome) => outcome,
        Err(err) => {
            let _ = output::remove_tree(&partial);
            bail!("{err}");
        }
    };
    output::commit(&partial, &out, None).inspect_err(|_| {
        let _ = output::remove_tree(&partial);
    })?;
    Ok(json!({
        "source": source,
        "out": out,
        "probe": {
            "width": probe.width, "height": probe.height, "rotation": probe.rotation,
            "duration_ms": probe.duration_ms, "video_codec": probe.video_codec,
            "audio_codec": probe.audio_codec, "frame_rate": probe.frame_rate,
        },
        "renditions": outcome.renditions.iter().map(rendition).collect::<Vec<_>>(),
        "audio": outcome.audio.as_ref().map(rendition),
        "remuxed": outcome.renditions.iter().any(|r| r.remuxed),
        "copy_refused": outcome.copy_refused,
        "duration_ms": outcome.duration_ms,
        "encode_ms": outcome.encode_ms,
        "master_playlist": Path::new(crate::encode::MASTER),
        "ffmpeg_argv": outcome.argv,
    }))
}

fn rendition(r: &Rendition) -> Value {
    json!({
        "name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth,
        "average_bandwidth": r.average_bandwidth, "codecs": r.codecs, "playlist": r.playlist,
        "remuxed": r.remuxed,
    })
}

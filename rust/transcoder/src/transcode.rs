//! One video, start to finish, into a directory: plan the renditions, decide whether the top
//! one is copied (reading the source's keyframes first), run ffmpeg once, then read back what
//! it wrote to state the real bitrates and codecs in the master playlist. Used by both `serve`
//! and `run`.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use lmsd_proto::v1::{Rendition, VideoProbe};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    config::EncodeConfig,
    encode::{
        self, Job, AUDIO_NAME, INIT_SEGMENT, MASTER, MEDIA_PLAYLIST, POSTER, SPRITE, SPRITE_VTT,
        THUMBS, THUMB_PATTERN,
    },
    keyframes, ladder,
    ladder::Target,
    mp4,
    playlist::{self, AudioEntry, MediaPlaylist, VariantEntry},
    spawn::{self, RunError},
    sprite::Sprite,
};

/// Input of one transcode.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub source: &'a Path,
    pub probe: &'a VideoProbe,
    /// An empty directory that receives the ladder.
    pub dir: &'a Path,
    /// Spoken language of the audio (BCP 47), for the master playlist.
    pub language: Option<&'a str>,
}

/// A finished ladder.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Video renditions, smallest first; `bandwidth` includes the audio, as in the master.
    pub renditions: Vec<Rendition>,
    pub audio: Option<Rendition>,
    pub duration_ms: u32,
    /// Wall time of the ffmpeg run.
    pub encode_ms: u32,
    /// The ffmpeg command, program first.
    pub argv: Vec<String>,
    /// Why the top rendition was encoded rather than copied.
    pub copy_refused: Option<String>,
}

/// Why a transcode failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The source is missing or has no picture.
    #[error("{0}")]
    Input(String),
    /// ffmpeg failed; its own words.
    #[error("{0}")]
    Ffmpeg(String),
    /// ffmpeg succeeded but its output is unusable, or the disk failed us.
    #[error("{0}")]
    Output(String),
    #[error("stopped")]
    Cancelled,
}

impl From<RunError> for Failure {
    fn from(err: RunError) -> Self {
        match err {
            RunError::Cancelled => Self::Cancelled,
            RunError::Failed { reason, .. } => Self::Ffmpeg(reason),
            spawn @ RunError::Spawn { .. } => Self::Ffmpeg(spawn.to_string()),
        }
    }
}

/// Transcodes `request.source` into `request.dir`; `progress` receives the media time done
/// (microseconds) as ffmpeg reports it.
pub async fn transcode(
    config: &EncodeConfig,
    request: Request<'_>,
    progress: &watch::Sender<u64>,
    cancel: &CancellationToken,
) -> Result<Outcome, Failure> {
    let probe = request.probe;
    match tokio::fs::metadata(request.source).await {
        Ok(meta) if meta.is_file() => {}
        _ => {
            return Err(Failure::Input(format!(
                "source file not found: {}",
                request.source.display()
            )))
        }
    }
    let mut targets = ladder::targets(&config.ladder, probe);
    if targets.is_empty() {
        return Err(Failure::Input("the source has no video stream".to_owned()));
    }
    let (cut_points, copy_refused) = decide_copy(config, &request, &mut targets, cancel).await?;

    let folders = targets
        .iter()
        .map(|t| t.name.as_str())
        .chain(probe.has_audio.then_some(AUDIO_NAME));
    for name in folders.chain([THUMBS]) {
        tokio::fs::create_dir_all(request.dir.join(name))
            .await
            .map_err(|e| Failure::Output(format!("cannot create {name}/: {e}")))?;
    }
    let top = targets.last().expect("not empty");
    let sprite = Sprite::plan(probe.duration_ms, top.width, top.height);
    let job = Job {
        source: request.source,
        dir: request.dir,
        targets: &targets,
        audio: probe.has_audio,
        frame_rate: probe.frame_rate,
        duration_ms: probe.duration_ms,
        cut_points: cut_points.as_deref(),
        sprite: &sprite,
    };
    let args = encode::ffmpeg_args(config, &job);
    let mut argv = vec![config.ffmpeg.display().to_string()];
    argv.extend(args.iter().cloned());

    let started = Instant::now();
    spawn::run(&config.ffmpeg, &args, progress, cancel).await?;
    let encode_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    tile_sprite(config, request.dir, &sprite, cancel).await?;

    let dir = request.dir.to_path_buf();
    let language = request.language.map(str::to_owned);
    let (frame_rate, has_audio, probe_ms) = (probe.frame_rate, probe.has_audio, probe.duration_ms);
    let (renditions, audio, duration_ms) = tokio::task::spawn_blocking(move || {
        finish(&dir, &targets, has_audio, frame_rate, language, &sprite)
    })
    .await
    .map_err(|e| Failure::Output(e.to_string()))??;
    Ok(Outcome {
        renditions,
        audio,
        duration_ms: if duration_ms > 0 {
            duration_ms
        } else {
            probe_ms as u32
        },
        encode_ms,
        argv,
        copy_refused,
    })
}

/// Marks the top rendition as copied when the source allows it, and returns the cut points
/// the encodes must follow; otherwise says why not.
async fn decide_copy(
    config: &EncodeConfig,
    request: &Request<'_>,
    targets: &mut [Target],
    cancel: &CancellationToken,
) -> Result<(Option<Vec<f64>>, Option<String>), Failure> {
    let probe = request.probe;
    let top = targets.last_mut().expect("not empty");
    if let Err(why) = ladder::copy_check(probe, top) {
        return Ok((None, Some(why)));
    }
    let args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-i"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([request.source.display().to_string()])
        .chain(["-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"].map(str::to_owned))
        .collect();
    let text = match spawn::capture(&config.ffmpeg, &args, cancel).await {
        Ok(text) => text,
        Err(RunError::Cancelled) => return Err(Failure::Cancelled),
        Err(err) => return Ok((None, Some(format!("cannot read its keyframes: {err}")))),
    };
    let keyframes = match keyframes::parse_framecrc(&text) {
        Ok(times) if !times.is_empty() => times,
        Ok(_) => return Ok((None, Some("no keyframes found".to_owned()))),
        Err(err) => return Ok((None, Some(format!("cannot read its keyframes: {err}")))),
    };
    let segment = f64::from(config.segment_seconds);
    let cuts = keyframes::cut_points(&keyframes, segment);
    let longest = keyframes::longest_segment(&cuts, probe.duration_ms as f64 / 1000.0);
    if longest > 2.0 * segment {
        return Ok((
            None,
            Some(format!("keyframes too far apart: a {longest:.1} s segment")),
        ));
    }
    top.copy = true;
    top.width = probe.width;
    top.height = probe.height;
    Ok((Some(cuts), None))
}

/// Tiles the thumbnails into the sprite and removes them.
async fn tile_sprite(
    config: &EncodeConfig,
    dir: &Path,
    sprite: &Sprite,
    cancel: &CancellationToken,
) -> Result<(), Failure> {
    let thumbs = dir.join(THUMBS);
    let pattern = thumbs.join(THUMB_PATTERN).display().to_string();
    let args = sprite.tile_args(&pattern, &dir.join(SPRITE).display().to_string());
    spawn::capture(&config.ffmpeg, &args, cancel).await?;
    tokio::fs::remove_dir_all(&thumbs)
        .await
        .map_err(|e| Failure::Output(format!("cannot remove {THUMBS}/: {e}")))
}

/// Reads what ffmpeg wrote and writes the master playlist and the sprite map.
fn finish(
    dir: &Path,
    targets: &[Target],
    has_audio: bool,
    frame_rate: f64,
    language: Option<String>,
    sprite: &Sprite,
) -> Result<(Vec<Rendition>, Option<Rendition>, u32), Failure> {
    let audio = if has_audio {
        let (_, bitrates, codec) = read_rendition(dir, AUDIO_NAME)?;
        Some(AudioEntry {
            uri: format!("{AUDIO_NAME}/{MEDIA_PLAYLIST}"),
            bitrates,
            codec,
            channels: 2,
            language,
        })
    } else {
        None
    };
    let mut variants = Vec::new();
    let mut duration = 0.0f64;
    for target in targets {
        let (media, bitrates, codec) = read_rendition(dir, &target.name)?;
        duration = duration.max(media.duration());
        variants.push(VariantEntry {
            uri: format!("{}/{MEDIA_PLAYLIST}", target.name),
            width: target.width,
            height: target.height,
            bitrates,
            codec,
            frame_rate,
        });
    }
    write(dir, MASTER, &playlist::master(&variants, audio.as_ref()))?;
    write(dir, SPRITE_VTT, &sprite.vtt(SPRITE))?;
    for image in [POSTER, SPRITE] {
        if !dir.join(image).is_file() {
            return Err(Failure::Output(format!("ffmpeg wrote no {image}")));
        }
    }

    let renditions = targets
        .iter()
        .zip(&variants)
        .map(|(target, variant)| {
            let bitrates = playlist::variant_bitrates(variant.bitrates, audio.as_ref());
            Rendition {
                name: target.name.clone(),
                width: target.width,
                height: target.height,
                bandwidth: clamp(bitrates.peak),
                codecs: match &audio {
                    Some(audio) => format!("{},{}", variant.codec, audio.codec),
                    None => variant.codec.clone(),
                },
                playlist: variant.uri.clone(),
                remuxed: target.copy,
                average_bandwidth: clamp(bitrates.average),
            }
        })
        .collect();
    let audio = audio.map(|audio| Rendition {
        name: AUDIO_NAME.to_owned(),
        width: 0,
        height: 0,
        bandwidth: clamp(audio.bitrates.peak),
        codecs: audio.codec,
        playlist: audio.uri,
        remuxed: false,
        average_bandwidth: clamp(audio.bitrates.average),
    });
    Ok((renditions, audio, (duration * 1000.0).round() as u32))
}

/// A rendition's playlist, bitrates and codec string.
fn read_rendition(
    dir: &Path,
    name: &str,
) -> Result<(MediaPlaylist, playlist::Bitrates, String), Failure> {
    let folder: PathBuf = dir.join(name);
    let text = std::fs::read_to_string(folder.join(MEDIA_PLAYLIST))
        .map_err(|e| Failure::Output(format!("{name}/{MEDIA_PLAYLIST}: {e}")))?;
    let media = MediaPlaylist::parse(&text).map_err(|e| Failure::Output(format!("{name}: {e}")))?;
    if media.segments.is_empty() {
        return Err(Failure::Output(format!("{name}: no segments written")));
    }
    let bitrates = media
        .bitrates(&folder)
        .map_err(|e| Failure::Output(format!("{name}: {e}")))?;
    let init = std::fs::read(folder.join(INIT_SEGMENT))
        .map_err(|e| Failure::Output(format!("{name}/{INIT_SEGMENT}: {e}")))?;
    let codec = mp4::codecs(&init)
        .map_err(|e| Failure::Output(format!("{name}/{INIT_SEGMENT}: {e}")))?
        .remove(0);
    Ok((media, bitrates, codec))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), Failure> {
    std::fs::write(dir.join(name), text)
        .map_err(|e| Failure::Output(format!("cannot write {name}: {e}")))
}

fn clamp(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

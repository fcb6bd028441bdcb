//! The one ffmpeg command line of a job: the source is decoded once, and every video
//! rendition, the audio rendition, the poster and the thumbnail sprite come out of the same
//! filter graph.
//!
//! Encoded renditions get keyframes at the same instants (every segment length, by time, with
//! scene-cut keyframes off, or at the copied rendition's cut points), so that all of them are
//! cut into segments at the same times. Video renditions carry no audio: the audio rendition
//! is its own group in the master playlist and is stored once.

use std::path::Path;

use crate::{config::EncodeConfig, keyframes, ladder::Target, sprite::Sprite};

/// Name of the audio rendition's directory.
pub const AUDIO_NAME: &str = "audio";
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
pub const INIT_SEGMENT: &str = "init.mp4";
pub const POSTER: &str = "poster.jpg";
pub const SPRITE: &str = "sprite.jpg";
pub const SPRITE_VTT: &str = "sprite.vtt";
/// Directory of the sprite's thumbnails while the job runs (removed before the commit).
pub const THUMBS: &str = "thumbs";
pub const THUMB_PATTERN: &str = "%03d.png";
pub const MASTER: &str = "master.m3u8";
/// Widest poster.
pub const POSTER_MAX_WIDTH: u32 = 1280;

/// What one job produces, in the directory `dir`.
#[derive(Debug)]
pub struct Job<'a> {
    pub source: &'a Path,
    pub dir: &'a Path,
    /// Smallest first; at most the last one is copied.
    pub targets: &'a [Target],
    pub audio: bool,
    /// Frames per second of the source (0 when unknown).
    pub frame_rate: f64,
    pub duration_ms: u64,
    /// When the top rendition is copied: the times the encodes must have keyframes at.
    pub cut_points: Option<&'a [f64]>,
    pub sprite: &'a Sprite,
}

/// The poster's size: the top rendition's, at most [`POSTER_MAX_WIDTH`] wide.
pub fn poster_size(top: &Target) -> (u32, u32) {
    if top.width <= POSTER_MAX_WIDTH {
        return (top.width, top.height);
    }
    let height = f64::from(POSTER_MAX_WIDTH) * f64::from(top.height) / f64::from(top.width);
    (POSTER_MAX_WIDTH, ((height / 2.0).round() as u32 * 2).max(2))
}

/// ffmpeg's arguments (without the program name).
pub fn ffmpeg_args(config: &EncodeConfig, job: &Job<'_>) -> Vec<String> {
    let threads = (config.ffmpeg_threads > 0).then(|| config.ffmpeg_threads.to_string());
    let mut args: Vec<String> = Vec::new();
    push(
        &mut args,
        &["-hide_banner", "-nostdin", "-loglevel", "error", "-y"],
    );
    if let Some(n) = &threads {
        push(&mut args, &["-threads", n]);
    }
    push(&mut args, &["-i", &job.source.display().to_string()]);
    push(&mut args, &["-filter_complex", &filter_graph(job)]);
    if let Some(n) = &threads {
        push(&mut args, &["-filter_complex_threads", n]);
    }

    let segment = config.segment_seconds.to_string();
    let fps = if job.frame_rate > 0.0 {
        job.frame_rate
    } else {
        25.0
    };
    for (index, target) in job.targets.iter().enumerate() {
        if target.copy {
            push(&mut args, &["-map", "0:v:0", "-c:v", "copy"]);
        } else {
            let kbps = target.kbps;
            push(
                &mut args,
                &[
                    "-map",
                    &format!("[v{index}]"),
                    "-c:v",
                    "libx264",
                    "-preset",
                    &config.preset,
                    "-profile:v",
                    "high",
                    "-b:v",
                    &format!("{kbps}k"),
                    "-maxrate",
                    &format!("{}k", kbps * 107 / 100),
                    "-bufsize",
                    &format!("{}k", kbps * 3 / 2),
                    "-sc_threshold",
                    "0",
                ],
            );
            match job.cut_points {
                // keyframes only where the copied rendition is cut (at most two segments apart)
                Some(cuts) => push(
                    &mut args,
                    &[
                        "-g",
                        &((fps * f64::from(config.segment_seconds) * 3.0).ceil() as u32)
                            .to_string(),
                        "-force_key_frames",
                        &keyframes::force_list(cuts),
                    ],
                ),
                None => {
                    let gop = ((fps * f64::from(config.segment_seconds)).round() as u32)
                        .max(1)
                        .to_string();
                    push(
                        &mut args,
                        &[
                            "-g",
                            &gop,
                            "-keyint_min",
                            &gop,
                            "-force_key_frames",
                            &format!("expr:gte(t,n_forced*{segment})"),
                        ],
                    );
                }
            }
            if let Some(n) = &threads {
                push(&mut args, &["-threads", n]);
            }
        }
        hls_output(&mut args, config, job.dir, &target.name);
    }
    if job.audio {
        let bitrate = format!("{}k", config.audio_kbps);
        push(
            &mut args,
            &[
                "-map", "0:a:0", "-c:a", "aac", "-b:a", &bitrate, "-ac", "2", "-ar", "48000",
            ],
        );
        hls_output(&mut args, config, job.dir, AUDIO_NAME);
    }
    // the poster output gets the first frame at once, then the one at 10 % replaces it (see
    // `filter_graph`); thumbnails are numbered files. Passthrough timing: a constant frame
    // rate would fill the gaps between the selected frames with copies.
    let poster = job.dir.join(POSTER).display().to_string();
    push(
        &mut args,
        &[
            "-map",
            "[poster]",
            "-fps_mode",
            "passthrough",
            "-frames:v",
            "2",
            "-q:v",
            "3",
            "-f",
            "image2",
            "-update",
            "1",
            &poster,
        ],
    );
    let thumbs = job
        .dir
        .join(THUMBS)
        .join(THUMB_PATTERN)
        .display()
        .to_string();
    push(
        &mut args,
        &[
            "-map",
            "[thumbs]",
            "-fps_mode",
            "passthrough",
            "-f",
            "image2",
            "-start_number",
            "1",
            &thumbs,
        ],
    );
    push(&mut args, &["-progress", "pipe:1", "-nostats"]);
    args
}

fn push(args: &mut Vec<String>, items: &[&str]) {
    args.extend(items.iter().map(|s| (*s).to_owned()));
}

/// `[0:v]` → split → one scaler per encoded rendition (`[vN]`), the poster (`[poster]`) and
/// the sprite's thumbnails (`[thumbs]`).
///
/// ffmpeg reports progress only once every output has received its first frame, so no
/// output may wait long for it: the poster branch passes the very first frame and then the
/// one at 10 % of the duration (the image muxer keeps the last), and the thumbnails start
/// at 0 s.
fn filter_graph(job: &Job<'_>) -> String {
    let encoded: Vec<(usize, &Target)> = job
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.copy)
        .collect();
    let mut labels: Vec<String> = encoded.iter().map(|(i, _)| format!("[s{i}]")).collect();
    labels.extend(["[sposter]".to_owned(), "[sthumbs]".to_owned()]);
    let mut chains = vec![format!(
        "[0:v]format=yuv420p,split={}{}",
        labels.len(),
        labels.concat()
    )];
    for (index, target) in encoded {
        chains.push(format!(
            "[s{index}]scale=w={}:h={}[v{index}]",
            target.width, target.height
        ));
    }
    let top = job.targets.last().expect("at least one rendition");
    let (width, height) = poster_size(top);
    let at = job.duration_ms as f64 / 10_000.0; // 10 % of the duration, in seconds
    chains.push(format!(
        "[sposter]select='eq(n,0)+gte(t,{at:.3})',trim=end_frame=2,scale=w={width}:h={height}[poster]"
    ));
    chains.push(format!("[sthumbs]{}[thumbs]", job.sprite.filter()));
    chains.join(";")
}

/// The HLS muxer options of rendition `name`: fMP4 segments in `<dir>/<name>/`.
fn hls_output(args: &mut Vec<String>, config: &EncodeConfig, dir: &Path, name: &str) {
    let folder = dir.join(name);
    // the segment name is a printf pattern: a literal % in the directory must be doubled
    let pattern = format!(
        "{}/seg_%05d.m4s",
        folder.display().to_string().replace('%', "%%")
    );
    push(
        args,
        &[
            "-f",
            "hls",
            "-hls_time",
            &config.segment_seconds.to_string(),
            "-hls_playlist_type",
            "vod",
            "-hls_segment_type",
            "fmp4",
            "-hls_flags",
            "independent_segments",
            "-hls_fmp4_init_filename",
            INIT_SEGMENT,
            "-start_number",
            "1",
            "-hls_segment_filename",
            &pattern,
            &folder.join(MEDIA_PLAYLIST).display().to_string(),
        ],
    );
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::{Cli, Command};

    fn config() -> EncodeConfig {
        let Command::Run(run) =
            Cli::parse_from(["t", "run", "--source", "s", "--out", "o"]).command
        else {
            unreachable!()
        };
        run.encode
    }

    fn target(name: &str, width: u32, height: u32, kbps: u32, copy: bool) -> Target {
        Target {
            name: name.into(),
            width,
            height,
            kbps,
            copy,
        }
    }

    #[test]
    fn one_process_for_everything() {
        let targets = [
            target("240p", 426, 240, 400, false),
            target("720p", 1280, 720, 2800, false),
        ];
        let sprite = Sprite::plan(60_000, 1280, 720);
        let job = Job {
            source: Path::new("/d/src"),
            dir: Path::new("/d/out"),
            targets: &targets,
            audio: true,
            frame_rate: 25.0,
            duration_ms: 60_000,
            cut_points: None,
            sprite: &sprite,
        };
        let args = ffmpeg_args(&config(), &job);
        let line = args.join(" ");
        assert_eq!(args.iter().filter(|a| *a == "-i").count(), 1);
        assert!(line.contains(
            "[0:v]format=yuv420p,split=4[s0][s1][sposter][sthumbs];[s0]scale=w=426:h=240[v0];\
             [s1]scale=w=1280:h=720[v1];[sposter]select='eq(n,0)+gte(t,6.000)',trim=end_frame=2,\
             scale=w=1280:h=720[poster];[sthumbs]select='gte(t,selected_n*1)',scale=160:90[thumbs]"
        ));
        assert!(line.contains("-map [v0] -c:v libx264 -preset veryfast -profile:v high -b:v 400k -maxrate 428k -bufsize 600k -sc_threshold 0 -g 100 -keyint_min 100 -force_key_frames expr:gte(t,n_forced*4)"));
        assert!(
            line.contains("-hls_segment_filename /d/out/720p/seg_%05d.m4s /d/out/720p/index.m3u8")
        );
        assert!(line.contains("-map 0:a:0 -c:a aac -b:a 128k -ac 2 -ar 48000 -f hls"));
        assert!(line.contains("-map [poster] -fps_mode passthrough -frames:v 2 -q:v 3 -f image2 -update 1 /d/out/poster.jpg"));
        assert!(line.contains(
            "-map [thumbs] -fps_mode passthrough -f image2 -start_number 1 /d/out/thumbs/%03d.png"
        ));
        assert!(!line.contains("-threads"));
        assert!(line.ends_with("-progress pipe:1 -nostats"));
    }

    #[test]
    fn copied_top_and_threads() {
        let targets = [
            target("240p", 426, 240, 400, false),
            target("360p", 640, 360, 800, true),
        ];
        let sprite = Sprite::plan(9_000, 640, 360);
        let cuts = [0.0, 4.5];
        let job = Job {
            source: Path::new("/d/src"),
            dir: Path::new("/d/50%/out"),
            targets: &targets,
            audio: false,
            frame_rate: 30.0,
            duration_ms: 9_000,
            cut_points: Some(&cuts),
            sprite: &sprite,
        };
        let mut config = config();
        config.ffmpeg_threads = 2;
        let line = ffmpeg_args(&config, &job).join(" ");
        assert!(line.starts_with("-hide_banner -nostdin -loglevel error -y -threads 2 -i /d/src"));
        assert!(line.contains("split=3[s0][sposter][sthumbs]"));
        assert!(line.contains("-map 0:v:0 -c:v copy -f hls"));
        assert!(line.contains("-g 360 -force_key_frames 0.000000,4.499000 -threads 2"));
        assert!(line.contains("/d/50%%/out/240p/seg_%05d.m4s /d/50%/out/240p/index.m3u8"));
        assert!(!line.contains("0:a:0"));
    }

    #[test]
    fn poster_at_most_1280_wide() {
        assert_eq!(
            poster_size(&target("1080p", 1920, 1080, 1, false)),
            (1280, 720)
        );
        assert_eq!(
            poster_size(&target("1080p", 1080, 1920, 1, false)),
            (1080, 1920)
        );
        assert_eq!(poster_size(&target("360p", 640, 360, 1, false)), (640, 360));
    }
}

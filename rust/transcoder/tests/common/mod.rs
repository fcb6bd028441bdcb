//! Shared helpers of the integration tests: the real ffmpeg/ffprobe (found through
//! `LMSD_TEST_FFMPEG` / `LMSD_TEST_FFPROBE` or PATH; a test fails, never skips, without
//! them), short synthetic clips (testsrc2 + sine, kept in target/tmp), and checks on
//! what the transcoder wrote.
#![allow(dead_code)] // each test file uses a different subset

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
};

use lmsd_transcoder::playlist::MediaPlaylist;

pub mod bus;
pub mod jobs;

/// A binary from `env` or PATH; panics (the test fails) when there is none.
fn tool(env: &str, name: &str, beside: Option<&Path>) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    if let Some(sibling) = beside.and_then(Path::parent).map(|dir| dir.join(name)) {
        if sibling.is_file() {
            return sibling;
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: install it (Debian: apt-get install ffmpeg) or set {env}")
        })
}

pub fn ffmpeg() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| tool("LMSD_TEST_FFMPEG", "ffmpeg", None))
        .clone()
}

pub fn ffprobe() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| tool("LMSD_TEST_FFPROBE", "ffprobe", Some(&ffmpeg())))
        .clone()
}

/// A synthetic test clip.
#[derive(Debug, Clone, Copy)]
pub struct Clip {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub seconds: u32,
    pub audio: bool,
    /// `Some((kbps, gop_frames))`: H.264 as a phone or camera writes it (B-frames, a fixed
    /// GOP, moderate bitrate), so the top rendition can be copied. `None`: a quick
    /// high-bitrate encode that must be re-encoded.
    pub web: Option<(u32, u32)>,
    /// Display rotation written into the MP4 (`rotate` tag), degrees.
    pub rotate: u32,
}

impl Clip {
    pub const fn new(width: u32, height: u32, seconds: u32) -> Self {
        Self {
            width,
            height,
            fps: 25,
            seconds,
            audio: true,
            web: None,
            rotate: 0,
        }
    }
}

/// The clip's file, generated once and kept in cargo's target/tmp for later runs (the
/// settings are deterministic).
pub fn clip(spec: Clip) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lmsd-transcoder-clips");
    std::fs::create_dir_all(&dir).unwrap();
    let web = spec.web.map_or("fast".to_owned(), |(kbps, gop)| {
        format!("web{kbps}k-g{gop}")
    });
    let path = dir.join(format!(
        "{}x{}-{}fps-{}s-{}-{web}-r{}.mp4",
        spec.width,
        spec.height,
        spec.fps,
        spec.seconds,
        if spec.audio { "aac" } else { "silent" },
        spec.rotate
    ));
    if path.is_file() {
        return path;
    }
    let tmp = path.with_extension("tmp.mp4");
    let mut args: Vec<String> = vec![
        "-hide_banner".into(),
        "-loglevel".into(),
        "error".into(),
        "-y".into(),
    ];
    args.extend([
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            spec.width, spec.height, spec.fps, spec.seconds
        ),
    ]);
    if spec.audio {
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!(
                "sine=frequency=440:sample_rate=48000:duration={}",
                spec.seconds
            ),
            "-c:a".into(),
            "aac".into(),
        ]);
    }
    args.extend([
        "-c:v".into(),
        "libx264".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
    ]);
    match spec.web {
        Some((kbps, gop)) => args.extend([
            "-preset".into(),
            "veryfast".into(),
            "-b:v".into(),
            format!("{kbps}k"),
            "-g".into(),
            gop.to_string(),
        ]),
        None => args.extend(["-preset".into(), "ultrafast".into()]),
    }
    let encoded = if spec.rotate == 0 {
        tmp.clone()
    } else {
        path.with_extension("plain.mp4")
    };
    args.push(encoded.display().to_string());
    run_ok(&ffmpeg(), &args);
    if spec.rotate != 0 {
        run_ok(
            &ffmpeg(),
            &[
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                &encoded.display().to_string(),
                "-c",
                "copy",
                "-metadata:s:v:0",
                &format!("rotate={}", spec.rotate),
                &tmp.display().to_string(),
            ]
            .map(str::to_owned),
        );
    }
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// Runs a program, panicking with its stderr when it fails; returns stdout.
pub fn run_ok(program: &Path, args: &[String]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `lmsd-transcoder run` on `source` into `out` with `ladder`; returns its JSON summary.
pub fn transcode_cli(source: &Path, out: &Path, ladder: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lmsd-transcoder"))
        .args(["run", "--source"])
        .arg(source)
        .arg("--out")
        .arg(out)
        .args(["--ladder", ladder])
        .env("LMSD_TRANSCODER_FFMPEG", ffmpeg())
        .env("LMSD_TRANSCODER_FFPROBE", ffprobe())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The media playlist of rendition `name` in `dir`, checked for what players need.
pub fn media(dir: &Path, name: &str) -> MediaPlaylist {
    let text = std::fs::read_to_string(dir.join(name).join("index.m3u8")).unwrap();
    let playlist = MediaPlaylist::parse(&text).unwrap();
    assert!(playlist.ended, "{name}: no #EXT-X-ENDLIST");
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{name}: not VOD");
    assert_eq!(playlist.init.as_deref(), Some("init.mp4"), "{name}");
    assert!(!playlist.segments.is_empty(), "{name}: no segments");
    for (i, segment) in playlist.segments.iter().enumerate() {
        assert_eq!(segment.uri, format!("seg_{:05}.m4s", i + 1));
        assert!(dir.join(name).join(&segment.uri).is_file());
        assert!(
            segment.duration <= f64::from(playlist.target_duration) + 0.5,
            "{name}: {segment:?}"
        );
    }
    playlist
}

/// Start time of every segment of a rendition: the first video packet's time, as ffprobe
/// reads `init.mp4` + segment.
pub fn segment_starts(dir: &Path, name: &str) -> Vec<f64> {
    let folder = dir.join(name);
    let init = std::fs::read(folder.join("init.mp4")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    media(dir, name)
        .segments
        .iter()
        .map(|segment| {
            let mut bytes = init.clone();
            bytes.extend(std::fs::read(folder.join(&segment.uri)).unwrap());
            let joined = scratch.path().join("joined.mp4");
            std::fs::write(&joined, bytes).unwrap();
            let out = run_ok(
                &ffprobe(),
                &[
                    "-v",
                    "error",
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "packet=pts_time,flags",
                    "-of",
                    "csv=p=0",
                    &joined.display().to_string(),
                ]
                .map(str::to_owned),
            );
            let first = out.lines().next().expect("a packet");
            let (time, flags) = first.split_once(',').unwrap();
            assert!(
                flags.starts_with('K'),
                "{name}/{}: does not start with a keyframe",
                segment.uri
            );
            time.parse().unwrap()
        })
        .collect()
}

/// Asserts that every rendition in `names` is cut at the same times (within 1 ms), judged
/// both by the playlists' durations and by the segments' first timestamps.
pub fn assert_aligned(dir: &Path, names: &[&str]) {
    let reference = media(dir, names[0]);
    let starts = segment_starts(dir, names[0]);
    for name in &names[1..] {
        let other = media(dir, name);
        assert_eq!(
            other.segments.len(),
            reference.segments.len(),
            "{name}: segment count"
        );
        // all boundaries but the end (the last segment may differ by a frame)
        let mut a = 0.0;
        let mut b = 0.0;
        for (x, y) in reference
            .segments
            .iter()
            .zip(&other.segments)
            .take(reference.segments.len() - 1)
        {
            a += x.duration;
            b += y.duration;
            assert!(
                (a - b).abs() < 0.001,
                "{name}: boundary {b} vs {a} in {}",
                names[0]
            );
        }
        let other_starts = segment_starts(dir, name);
        for (x, y) in starts.iter().zip(&other_starts) {
            assert!(
                (x - y).abs() < 0.001,
                "{name}: segment starts {other_starts:?} vs {starts:?}"
            );
        }
    }
}

/// Width and height of the first video stream of `file` as ffprobe sees it.
pub fn picture_size(file: &Path) -> (u32, u32) {
    let out = run_ok(
        &ffprobe(),
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
            &file.display().to_string(),
        ]
        .map(str::to_owned),
    );
    let (w, h) = out.trim().split_once(',').unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

/// PSNR (dB) between `image` and the frame of `video` at `seconds` (taken out as PNG first,
/// so both sides are converted from their own colour range).
pub fn psnr(image: &Path, video: &Path, seconds: f64) -> f64 {
    let scratch = tempfile::tempdir().unwrap();
    let frame = scratch.path().join("frame.png");
    run_ok(
        &ffmpeg(),
        &[
            "-v",
            "error",
            "-ss",
            &seconds.to_string(),
            "-i",
            &video.display().to_string(),
            "-frames:v",
            "1",
            &frame.display().to_string(),
        ]
        .map(str::to_owned),
    );
    let out = Command::new(ffmpeg())
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(image)
        .arg("-i")
        .arg(&frame)
        .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let value = log
        .split("average:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in {log}"));
    if value == "inf" {
        f64::INFINITY
    } else {
        value.parse().unwrap()
    }
}

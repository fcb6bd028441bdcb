//! The ladder as ffmpeg really writes it (`lmsd-transcoder run` on synthetic clips): the
//! renditions, valid playlists, segment boundaries aligned across renditions, the copied top
//! rendition, sources without audio, portrait and rotated sources, poster and sprite.

mod common;

use std::path::Path;

use common::{assert_aligned, clip, media, picture_size, transcode_cli, Clip};
use serde_json::Value;

const LADDER: &str = "180p:200,360p:500,720p:1500";

fn names(summary: &Value) -> Vec<String> {
    summary["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

fn size(summary: &Value, index: usize) -> (u64, u64) {
    let r = &summary["renditions"][index];
    (r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap())
}

/// Lines of the master playlist starting with `prefix`.
fn master_lines(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("master.m3u8"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn landscape_ladder_with_audio() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("hls");
    let summary = transcode_cli(&clip(Clip::new(640, 360, 6)), &out, LADDER);

    assert_eq!(names(&summary), ["180p", "360p"]); // nothing above the source
    assert_eq!(
        (size(&summary, 0), size(&summary, 1)),
        ((320, 180), (640, 360))
    );
    assert_eq!(
        summary["remuxed"], false,
        "a quick high-bitrate source is re-encoded"
    );
    let argv: Vec<&str> = summary["ffmpeg_argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(argv.iter().filter(|a| **a == "-i").count(), 1, "one decode");
    // nothing left beside the output
    let siblings: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, ["hls"]);

    assert_aligned(&out, &["180p", "360p"]);
    let audio = media(&out, "audio");
    assert!((audio.duration() - 6.0).abs() < 0.1, "{}", audio.duration());
    assert_eq!(picture_size(&out.join("180p/init.mp4")), (320, 180));

    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert!(master.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"));
    assert_eq!(
        master_lines(&out, "#EXT-X-MEDIA:"),
        ["#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\""]
    );
    let variants = master_lines(&out, "#EXT-X-STREAM-INF:");
    assert_eq!(variants.len(), 2);
    for (variant, rendition) in variants
        .iter()
        .zip(summary["renditions"].as_array().unwrap())
    {
        let bandwidth = rendition["bandwidth"].as_u64().unwrap();
        let average = rendition["average_bandwidth"].as_u64().unwrap();
        assert!(bandwidth >= average && average > 100_000, "{rendition}");
        let codecs = rendition["codecs"].as_str().unwrap();
        assert!(
            codecs.starts_with("avc1.64") && codecs.ends_with(",mp4a.40.2"),
            "{codecs}"
        );
        assert!(variant.contains(&format!(
            "BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={average},"
        )));
        assert!(variant.contains(&format!(
            "CODECS=\"{codecs}\",FRAME-RATE=25.000,AUDIO=\"aud\""
        )));
    }
    // ffprobe follows the master playlist to every rendition
    let streams = common::run_ok(
        &common::ffprobe(),
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height",
            "-of",
            "csv=p=0",
            &out.join("master.m3u8").display().to_string(),
        ]
        .map(str::to_owned),
    );
    assert!(
        streams.contains("video,320,180")
            && streams.contains("video,640,360")
            && streams.contains("audio"),
        "{streams}"
    );

    // poster (10 % in, top rendition size) and a 6-thumbnail sprite with its map
    assert_eq!(picture_size(&out.join("poster.jpg")), (640, 360));
    let source = clip(Clip::new(640, 360, 6));
    let at_10_percent = common::psnr(&out.join("poster.jpg"), &source, 0.6);
    let at_start = common::psnr(&out.join("poster.jpg"), &source, 0.0);
    assert!(
        at_10_percent > 35.0 && at_10_percent > at_start + 10.0,
        "{at_10_percent} / {at_start}"
    );
    assert!(!out.join("thumbs").exists());
    assert_eq!(picture_size(&out.join("sprite.jpg")), (6 * 160, 90));
    let vtt = std::fs::read_to_string(out.join("sprite.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT\n"));
    assert_eq!(vtt.matches("-->").count(), 6);
    assert!(vtt.contains("00:00:05.000 --> 00:00:06.000\nsprite.jpg#xywh=800,0,160,90\n"));
}

#[test]
fn copied_top_rendition_stays_aligned() {
    // phone-like: H.264 with B-frames, 500 kbit/s, a keyframe every 1.5 s (not a multiple of
    // the segment length, so the copy decides where segments start)
    let source = clip(Clip {
        fps: 30,
        web: Some((450, 45)),
        ..Clip::new(640, 360, 9)
    });
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("hls");
    let summary = transcode_cli(&source, &out, LADDER);

    assert_eq!(names(&summary), ["180p", "360p"]);
    assert_eq!(summary["renditions"][1]["remuxed"], true, "{summary}");
    assert_eq!(summary["renditions"][0]["remuxed"], false);
    let argv: Vec<&str> = summary["ffmpeg_argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(argv
        .windows(4)
        .any(|w| w == ["-map", "0:v:0", "-c:v", "copy"]));
    // the encode has keyframes exactly where the copy is cut: 0, 4.5, 9 s would be the cuts
    let forced = argv.iter().position(|a| *a == "-force_key_frames").unwrap();
    assert_eq!(argv[forced + 1], "0.000000,4.499000");

    assert_aligned(&out, &["180p", "360p"]);
    let copied = media(&out, "360p");
    assert_eq!(copied.segments.len(), 2);
    assert!(
        (copied.segments[0].duration - 4.5).abs() < 0.01,
        "{copied:?}"
    );
}

#[test]
fn source_without_audio() {
    let source = clip(Clip {
        audio: false,
        ..Clip::new(426, 240, 5)
    });
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("hls");
    let summary = transcode_cli(&source, &out, LADDER);
    assert_eq!(names(&summary), ["180p"]);
    assert_eq!(summary["audio"], Value::Null);
    assert!(!out.join("audio").exists());
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert!(
        !master.contains("EXT-X-MEDIA") && !master.contains("AUDIO=") && !master.contains("mp4a"),
        "{master}"
    );
    let codecs = summary["renditions"][0]["codecs"].as_str().unwrap();
    assert!(
        codecs.starts_with("avc1.") && !codecs.contains(','),
        "{codecs}"
    );
    media(&out, "180p");
}

#[test]
fn portrait_and_rotated_sources() {
    let work = tempfile::tempdir().unwrap();
    // coded portrait
    let out = work.path().join("portrait");
    let summary = transcode_cli(&clip(Clip::new(360, 640, 4)), &out, LADDER);
    assert_eq!(names(&summary), ["180p", "360p"]);
    assert_eq!(
        (size(&summary, 0), size(&summary, 1)),
        ((180, 320), (360, 640))
    );
    assert_eq!(picture_size(&out.join("360p/init.mp4")), (360, 640));
    assert_eq!(picture_size(&out.join("poster.jpg")), (360, 640));
    assert_aligned(&out, &["180p", "360p"]);

    // coded landscape, displayed portrait (a phone held upright): never copied, turned upright
    let rotated = clip(Clip {
        rotate: 90,
        web: Some((400, 50)),
        ..Clip::new(640, 360, 4)
    });
    let out = work.path().join("rotated");
    let summary = transcode_cli(&rotated, &out, LADDER);
    assert_eq!(
        (size(&summary, 0), size(&summary, 1)),
        ((180, 320), (360, 640))
    );
    assert_eq!(summary["remuxed"], false);
    assert!(
        summary["copy_refused"]
            .as_str()
            .unwrap()
            .contains("rotated"),
        "{summary}"
    );
    assert_eq!(picture_size(&out.join("180p/init.mp4")), (180, 320));
}

#[test]
fn tiny_source_gets_one_rendition_at_its_own_size() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("hls");
    let summary = transcode_cli(&clip(Clip::new(160, 90, 3)), &out, LADDER);
    assert_eq!(names(&summary), ["90p"]);
    assert_eq!(size(&summary, 0), (160, 90));
    assert_eq!(picture_size(&out.join("90p/init.mp4")), (160, 90));
}

#[test]
fn unreadable_source_is_an_error_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("garbage.mp4");
    std::fs::write(&source, b"this is not a video").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lmsd-transcoder"))
        .args(["run", "--source"])
        .arg(&source)
        .arg("--out")
        .arg(work.path().join("hls"))
        .env("LMSD_TRANSCODER_FFMPEG", common::ffmpeg())
        .env("LMSD_TRANSCODER_FFPROBE", common::ffprobe())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Invalid data found when processing input"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["garbage.mp4"]);
}

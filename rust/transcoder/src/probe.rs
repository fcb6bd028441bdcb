//! A [`VideoProbe`] from ffprobe's JSON, for `run` (and for a job that arrives without one).
//! The API builds the same message when a video is uploaded; sizes are the display size,
//! after rotation.

use std::path::Path;

use lmsd_proto::v1::VideoProbe;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::spawn::{self, RunError};

/// Runs `ffprobe` on `source`.
pub async fn probe(
    ffprobe: &Path,
    source: &Path,
    cancel: &CancellationToken,
) -> Result<VideoProbe, String> {
    let args = [
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([source.display().to_string()])
    .collect::<Vec<_>>();
    let text = spawn::capture(ffprobe, &args, cancel)
        .await
        .map_err(|err| match err {
            RunError::Failed { reason, .. } => reason,
            other => other.to_string(),
        })?;
    from_json(&text)
}

/// Parses `ffprobe -print_format json -show_format -show_streams` output.
pub fn from_json(text: &str) -> Result<VideoProbe, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("ffprobe output: {e}"))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .ok_or("no video stream")?;
    let audio = streams.iter().find(|s| s["codec_type"] == "audio");
    let format = &json["format"];

    let rotation = rotation(video);
    let (mut width, mut height) = (
        number(&video["width"]) as u32,
        number(&video["height"]) as u32,
    );
    if rotation % 180 == 90 {
        std::mem::swap(&mut width, &mut height);
    }
    let duration = number(&format["duration"]).max(number(&video["duration"]));
    Ok(VideoProbe {
        width,
        height,
        rotation,
        duration_ms: (duration * 1000.0).round() as u64,
        video_codec: text_of(&video["codec_name"]),
        audio_codec: audio.map(|a| text_of(&a["codec_name"])).unwrap_or_default(),
        pix_fmt: text_of(&video["pix_fmt"]),
        bit_rate: number(&format["bit_rate"]) as u64,
        frame_rate: ratio(&video["avg_frame_rate"])
            .or_else(|| ratio(&video["r_frame_rate"]))
            .unwrap_or(0.0),
        has_audio: audio.is_some(),
        container: text_of(&format["format_name"]),
        video_bit_rate: number(&video["bit_rate"]) as u64,
    })
}

/// Degrees clockwise the player turns the picture: from the display matrix side data
/// (ffprobe reports it counter-clockwise, e.g. -90) or the old `rotate` tag.
fn rotation(video: &Value) -> u32 {
    let from_matrix = video["side_data_list"].as_array().and_then(|list| {
        list.iter()
            .find_map(|d| d.get("rotation").map(|r| -number(r)))
    });
    let degrees = from_matrix.unwrap_or_else(|| number(&video["tags"]["rotate"]));
    (degrees.round() as i64).rem_euclid(360) as u32
}

/// A JSON number or a number in a string ("12.5"); 0 when absent.
fn number(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn text_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// "30000/1001" → 29.97; None for "0/0".
fn ratio(value: &Value) -> Option<f64> {
    let (num, den) = value.as_str()?.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0.0 && den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_video() {
        let json = r#"{
          "streams": [
            {"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
             "pix_fmt": "yuv420p", "avg_frame_rate": "30000/1001", "bit_rate": "8000000",
             "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
             "disposition": {"attached_pic": 0}},
            {"codec_type": "audio", "codec_name": "aac"}
          ],
          "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "12.345", "bit_rate": "8200000"}
        }"#;
        let p = from_json(json).unwrap();
        assert_eq!((p.width, p.height, p.rotation), (1080, 1920, 90));
        assert_eq!(p.duration_ms, 12_345);
        assert!((p.frame_rate - 29.97).abs() < 0.01);
        assert_eq!((p.video_bit_rate, p.bit_rate), (8_000_000, 8_200_000));
        assert!(p.has_audio);
        assert_eq!(p.audio_codec, "aac");
    }

    #[test]
    fn audio_only_is_an_error() {
        let json = r#"{"streams": [{"codec_type": "audio", "codec_name": "mp3"}], "format": {}}"#;
        assert_eq!(from_json(json).unwrap_err(), "no video stream");
        assert!(from_json("nope").is_err());
    }
}

//! The thumbnail sprite for the player's seek bar: one 160-pixel-wide picture every
//! `interval` seconds (at most [`MAX_THUMBNAILS`]), tiled into `sprite.jpg`, and its WebVTT
//! map `sprite.vtt` (one cue per interval pointing at `sprite.jpg#xywh=x,y,w,h`).
//!
//! The thumbnails come out of the job's one ffmpeg process as small PNG files, and a second,
//! tiny ffmpeg run tiles them. Tiling inside the main process would hold back the sprite
//! output until the very end, and ffmpeg reports no progress before every output has
//! started: a job would report 0 % until it is done.

use std::fmt::Write;

/// Most thumbnails in one sprite.
pub const MAX_THUMBNAILS: u32 = 100;
/// Width of one thumbnail in pixels.
pub const THUMB_WIDTH: u32 = 160;
/// Thumbnails per row.
pub const MAX_COLUMNS: u32 = 10;

/// Layout of the sprite of one video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sprite {
    /// Seconds between thumbnails (whole seconds, at least 1).
    pub interval: u32,
    pub count: u32,
    pub columns: u32,
    pub rows: u32,
    pub thumb_width: u32,
    pub thumb_height: u32,
    pub duration_ms: u64,
}

impl Sprite {
    /// The sprite of a `duration_ms` video whose picture is `width` x `height`.
    pub fn plan(duration_ms: u64, width: u32, height: u32) -> Self {
        let duration_ms = duration_ms.max(1);
        let seconds = duration_ms.div_ceil(1000);
        let interval = seconds.div_ceil(u64::from(MAX_THUMBNAILS)).max(1);
        let count = duration_ms.div_ceil(interval * 1000) as u32;
        let columns = count.clamp(1, MAX_COLUMNS);
        let rows = count.div_ceil(columns).max(1);
        let thumb_height = if width == 0 {
            90
        } else {
            let h = f64::from(THUMB_WIDTH) * f64::from(height) / f64::from(width);
            ((h / 2.0).round() as u32 * 2).max(2)
        };
        Self {
            interval: interval as u32,
            count,
            columns,
            rows,
            thumb_width: THUMB_WIDTH,
            thumb_height,
            duration_ms,
        }
    }

    /// The ffmpeg filter chain from decoded frames to thumbnails: the first frame at or after
    /// each multiple of the interval, scaled.
    pub fn filter(&self) -> String {
        format!(
            "select='gte(t,selected_n*{})',scale={}:{}",
            self.interval, self.thumb_width, self.thumb_height
        )
    }

    /// ffmpeg's arguments that tile the thumbnails `pattern` (`…/%03d.png`) into `sprite`.
    pub fn tile_args(&self, pattern: &str, sprite: &str) -> Vec<String> {
        [
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "image2",
            "-i",
            pattern,
            "-vf",
            &format!("tile=layout={}x{}", self.columns, self.rows),
            "-frames:v",
            "1",
            "-q:v",
            "5",
            "-f",
            "image2",
            "-update",
            "1",
            sprite,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The WebVTT map; `image` is the sprite's URL relative to the VTT file.
    pub fn vtt(&self, image: &str) -> String {
        let mut out = String::from("WEBVTT\n");
        let step = u64::from(self.interval) * 1000;
        for i in 0..self.count {
            let start = u64::from(i) * step;
            let end = (start + step).min(self.duration_ms);
            let x = (i % self.columns) * self.thumb_width;
            let y = (i / self.columns) * self.thumb_height;
            let _ = write!(
                out,
                "\n{} --> {}\n{image}#xywh={x},{y},{},{}\n",
                timestamp(start),
                timestamp(end),
                self.thumb_width,
                self.thumb_height
            );
        }
        out
    }
}

/// `hh:mm:ss.mmm`, as WebVTT wants it.
pub fn timestamp(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_video_one_thumbnail_a_second() {
        let s = Sprite::plan(6_500, 1920, 1080);
        assert_eq!((s.interval, s.count, s.columns, s.rows), (1, 7, 7, 1));
        assert_eq!((s.thumb_width, s.thumb_height), (160, 90));
        assert_eq!(
            s.vtt("sprite.jpg"),
            "WEBVTT\n\
             \n00:00:00.000 --> 00:00:01.000\nsprite.jpg#xywh=0,0,160,90\n\
             \n00:00:01.000 --> 00:00:02.000\nsprite.jpg#xywh=160,0,160,90\n\
             \n00:00:02.000 --> 00:00:03.000\nsprite.jpg#xywh=320,0,160,90\n\
             \n00:00:03.000 --> 00:00:04.000\nsprite.jpg#xywh=480,0,160,90\n\
             \n00:00:04.000 --> 00:00:05.000\nsprite.jpg#xywh=640,0,160,90\n\
             \n00:00:05.000 --> 00:00:06.000\nsprite.jpg#xywh=800,0,160,90\n\
             \n00:00:06.000 --> 00:00:06.500\nsprite.jpg#xywh=960,0,160,90\n"
        );
        assert_eq!(s.filter(), "select='gte(t,selected_n*1)',scale=160:90");
        assert!(s.tile_args("/o/t/%03d.png", "/o/sprite.jpg").join(" ").contains(
            "-i /o/t/%03d.png -vf tile=layout=7x1 -frames:v 1 -q:v 5 -f image2 -update 1 /o/sprite.jpg"
        ));
    }

    #[test]
    fn long_video_at_most_a_hundred() {
        let s = Sprite::plan(2 * 3600 * 1000 + 1, 1280, 720);
        assert_eq!(s.interval, 73);
        assert!(s.count <= MAX_THUMBNAILS);
        assert_eq!((s.columns, s.rows), (10, 10));
        let s = Sprite::plan(100_000, 1280, 720);
        assert_eq!((s.interval, s.count), (1, 100));
        let s = Sprite::plan(100_001, 1280, 720);
        assert_eq!((s.interval, s.count), (2, 51));
        let vtt = s.vtt("sprite.jpg");
        assert!(vtt.contains("00:01:40.000 --> 00:01:40.001\nsprite.jpg#xywh=0,450,160,90"));
        assert_eq!(vtt.matches("-->").count(), 51);
    }

    #[test]
    fn portrait_thumbnails_are_tall() {
        let s = Sprite::plan(10_000, 1080, 1920);
        assert_eq!((s.thumb_width, s.thumb_height), (160, 284));
        assert_eq!(timestamp(3_723_004), "01:02:03.004");
    }
}

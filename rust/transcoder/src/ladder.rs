//! Which renditions a source gets, and whether its top one can be copied instead of encoded.
//!
//! Rungs are named by the *shorter* side of the picture, so a portrait phone video (1080x1920)
//! gets the same 240p…1080p ladder as a landscape one, with portrait sizes (the 1080p rendition
//! of 1080x1920 is 1080x1920, the 360p one 360x640): the pixel count, and so the bitrate a rung
//! needs, is the same either way. Nothing is scaled up: a source gets the rungs at or below its
//! shorter side, and a source smaller than the smallest rung gets one rendition at its own size.

use std::{fmt, str::FromStr};

use lmsd_proto::v1::VideoProbe;

/// One step of the configured ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    /// Lines of the shorter side, from the name ("720p" → 720).
    pub height: u32,
    /// Video bitrate, kbit/s.
    pub kbps: u32,
}

/// The configured rungs, smallest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(Vec<Rung>);

impl Ladder {
    pub fn rungs(&self) -> &[Rung] {
        &self.0
    }
}

impl FromStr for Ladder {
    type Err = String;

    /// `"240p:400,360p:800"`: name and kbit/s, any order, at least one.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut rungs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, kbps) = item
                .split_once(':')
                .ok_or_else(|| format!("{item:?}: expected NAME:KBPS, e.g. 720p:2800"))?;
            let height: u32 = name
                .strip_suffix('p')
                .and_then(|h| h.parse().ok())
                .filter(|h| (16..=4320).contains(h) && h % 2 == 0)
                .ok_or_else(|| format!("{name:?}: a rung is named <even height>p, e.g. 720p"))?;
            let kbps: u32 = kbps
                .parse()
                .ok()
                .filter(|k| (50..=100_000).contains(k))
                .ok_or_else(|| format!("{item:?}: bitrate must be 50..100000 kbit/s"))?;
            if rungs.iter().any(|r: &Rung| r.height == height) {
                return Err(format!("{name}: listed twice"));
            }
            rungs.push(Rung {
                name: name.to_owned(),
                height,
                kbps,
            });
        }
        if rungs.is_empty() {
            return Err("the ladder needs at least one rung".to_owned());
        }
        rungs.sort_by_key(|r| r.height);
        Ok(Self(rungs))
    }
}

impl fmt::Display for Ladder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}:{}", r.name, r.kbps))
            .collect();
        f.write_str(&items.join(","))
    }
}

/// A video rendition to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub kbps: u32,
    /// Copied from the source (`-c:v copy`) instead of encoded.
    pub copy: bool,
}

/// The renditions of a source with display size `probe.width` x `probe.height`, smallest
/// first; none when the probe saw no picture.
pub fn targets(ladder: &Ladder, probe: &VideoProbe) -> Vec<Target> {
    let (width, height) = (probe.width, probe.height);
    if width == 0 || height == 0 {
        return Vec::new();
    }
    let short = width.min(height);
    let mut out: Vec<Target> = ladder
        .rungs()
        .iter()
        .filter(|rung| rung.height <= short)
        .map(|rung| sized(&rung.name, rung.height, rung.kbps, width, height))
        .collect();
    if out.is_empty() {
        // Smaller than the smallest rung: one rendition at its own size, with that rung's
        // bitrate scaled down by the pixel count.
        let smallest = &ladder.rungs()[0];
        let own = even_floor(short).max(2);
        let ratio = f64::from(own) / f64::from(smallest.height);
        let kbps = (f64::from(smallest.kbps) * ratio * ratio).ceil() as u32;
        out.push(sized(&format!("{own}p"), own, kbps.max(64), width, height));
    }
    out
}

/// The rendition whose shorter side is `lines`, with the source's aspect ratio (both sides even).
fn sized(name: &str, lines: u32, kbps: u32, width: u32, height: u32) -> Target {
    let short = width.min(height);
    let long = width.max(height);
    let scaled_long = even_round(f64::from(lines) * f64::from(long) / f64::from(short));
    let (width, height) = if width >= height {
        (scaled_long, lines)
    } else {
        (lines, scaled_long)
    };
    Target {
        name: name.to_owned(),
        width,
        height,
        kbps,
        copy: false,
    }
}

fn even_round(value: f64) -> u32 {
    ((value / 2.0).round() as u32 * 2).max(2)
}

fn even_floor(value: u32) -> u32 {
    value & !1
}

/// Why the top rendition `top` of this source cannot simply be copied, or `Ok` when it can:
/// H.264 in yuv420p, in an MP4/MOV file, AAC or no audio, not rotated, already at the top
/// rendition's size and not much above its bitrate (1.5x), so the copy plays everywhere and
/// costs no more to stream than an encode would.
pub fn copy_check(probe: &VideoProbe, top: &Target) -> Result<(), String> {
    if probe.video_codec != "h264" {
        return Err(format!("video codec is {:?}, not h264", probe.video_codec));
    }
    if probe.pix_fmt != "yuv420p" {
        return Err(format!("pixel format is {:?}, not yuv420p", probe.pix_fmt));
    }
    if probe.has_audio && probe.audio_codec != "aac" {
        return Err(format!("audio codec is {:?}, not aac", probe.audio_codec));
    }
    if !probe
        .container
        .split(',')
        .any(|name| name == "mp4" || name == "mov")
    {
        return Err(format!("container is {:?}, not mp4/mov", probe.container));
    }
    if probe.rotation != 0 {
        return Err(format!("rotated by {} degrees", probe.rotation));
    }
    if probe.width.min(probe.height) != top.width.min(top.height) {
        return Err(format!(
            "{}x{} is not the size of a rung",
            probe.width, probe.height
        ));
    }
    let bit_rate = if probe.video_bit_rate > 0 {
        probe.video_bit_rate
    } else {
        probe.bit_rate
    };
    let limit = u64::from(top.kbps) * 1500;
    if bit_rate == 0 {
        return Err("video bitrate unknown".to_owned());
    }
    if bit_rate > limit {
        return Err(format!(
            "video bitrate {} kbit/s is above 1.5x the {} rung ({} kbit/s)",
            bit_rate / 1000,
            top.name,
            top.kbps
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Ladder {
        crate::config::DEFAULT_LADDER.parse().unwrap()
    }

    fn probe(width: u32, height: u32) -> VideoProbe {
        VideoProbe {
            width,
            height,
            duration_ms: 60_000,
            video_codec: "h264".into(),
            audio_codec: "aac".into(),
            pix_fmt: "yuv420p".into(),
            bit_rate: 3_000_000,
            video_bit_rate: 2_800_000,
            frame_rate: 30.0,
            has_audio: true,
            container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            rotation: 0,
        }
    }

    fn sizes(targets: &[Target]) -> Vec<(String, u32, u32)> {
        targets
            .iter()
            .map(|t| (t.name.clone(), t.width, t.height))
            .collect()
    }

    fn s(name: &str, w: u32, h: u32) -> (String, u32, u32) {
        (name.to_owned(), w, h)
    }

    #[test]
    fn parses_and_sorts() {
        let l: Ladder = "720p:2800, 240p:400".parse().unwrap();
        assert_eq!(l.rungs()[0].height, 240);
        assert_eq!(l.to_string(), "240p:400,720p:2800");
        for bad in [
            "",
            "720:100",
            "720p",
            "abcp:100",
            "721p:100",
            "720p:1",
            "720p:1,720p:2",
        ] {
            assert!(bad.parse::<Ladder>().is_err(), "{bad}");
        }
    }

    #[test]
    fn landscape_stops_at_the_source() {
        let t = targets(&ladder(), &probe(1280, 720));
        assert_eq!(
            sizes(&t),
            [
                s("240p", 426, 240),
                s("360p", 640, 360),
                s("480p", 854, 480),
                s("720p", 1280, 720)
            ]
        );
        assert_eq!(t[3].kbps, 2800);
        // between rungs: nothing above the source
        assert_eq!(
            targets(&ladder(), &probe(1600, 900)).last().unwrap().name,
            "720p"
        );
    }

    #[test]
    fn portrait_is_laddered_by_its_shorter_side() {
        let t = targets(&ladder(), &probe(1080, 1920));
        assert_eq!(
            sizes(&t),
            [
                s("240p", 240, 426),
                s("360p", 360, 640),
                s("480p", 480, 854),
                s("720p", 720, 1280),
                s("1080p", 1080, 1920)
            ]
        );
        // a 9:16 clip 1080 lines tall has a 608-pixel short side: up to 480p
        let t = targets(&ladder(), &probe(608, 1080));
        assert_eq!(t.last().unwrap().name, "480p");
        assert!(t.iter().all(|t| t.width % 2 == 0 && t.height % 2 == 0));
    }

    #[test]
    fn uhd_stops_at_the_top_rung() {
        let t = targets(&ladder(), &probe(3840, 2160));
        assert_eq!(t.len(), 5);
        assert_eq!(sizes(&t[4..]), [s("1080p", 1920, 1080)]);
        let cinema = targets(&ladder(), &probe(4096, 1716));
        assert_eq!(sizes(&cinema[4..]), [s("1080p", 2578, 1080)]);
    }

    #[test]
    fn tiny_source_gets_its_own_size() {
        let t = targets(&ladder(), &probe(320, 180));
        assert_eq!(sizes(&t), [s("180p", 320, 180)]);
        assert_eq!(t[0].kbps, 225); // 400 * (180/240)^2
        let odd = targets(&ladder(), &probe(175, 99));
        assert_eq!(sizes(&odd), [s("98p", 174, 98)]);
        assert_eq!(targets(&ladder(), &probe(0, 0)), []);
    }

    #[test]
    fn copy_decision() {
        let top = |p: &VideoProbe| targets(&ladder(), p).pop().unwrap();
        let ok = probe(1280, 720);
        assert_eq!(copy_check(&ok, &top(&ok)), Ok(()));
        // exactly 1.5x the rung is still fine, above is not
        let mut p = probe(1280, 720);
        p.video_bit_rate = 4_200_000;
        assert_eq!(copy_check(&p, &top(&p)), Ok(()));
        p.video_bit_rate = 4_200_001;
        assert!(copy_check(&p, &top(&p)).unwrap_err().contains("bitrate"));
        // the file's bitrate stands in for an unknown video bitrate
        p.video_bit_rate = 0;
        p.bit_rate = 3_000_000;
        assert_eq!(copy_check(&p, &top(&p)), Ok(()));
        p.bit_rate = 0;
        assert!(copy_check(&p, &top(&p)).is_err());

        let changed: [fn(&mut VideoProbe); 7] = [
            |p| p.video_codec = "hevc".into(),
            |p| p.pix_fmt = "yuv420p10le".into(),
            |p| p.audio_codec = "opus".into(),
            |p| p.container = "matroska,webm".into(),
            |p| p.rotation = 90,
            |p| p.width = 1600, // 1600x720 still has a 720 short side: fine; see below
            |p| {
                p.width = 1600;
                p.height = 900; // between rungs: the top rendition is scaled
            },
        ];
        let expect_ok = [false, false, false, false, false, true, false];
        for (change, ok) in changed.iter().zip(expect_ok) {
            let mut p = probe(1280, 720);
            change(&mut p);
            assert_eq!(copy_check(&p, &top(&p)).is_ok(), ok, "{p:?}");
        }
        // no audio at all is fine
        let mut p = probe(640, 360);
        p.has_audio = false;
        p.audio_codec.clear();
        p.video_bit_rate = 700_000;
        assert_eq!(copy_check(&p, &top(&p)), Ok(()));
        // a tiny source's own-size rendition can be copied too
        let mut p = probe(320, 180);
        p.video_bit_rate = 300_000;
        assert_eq!(copy_check(&p, &top(&p)), Ok(()));
    }
}

//! HLS playlists: reading the media playlists ffmpeg wrote (segment durations, for the real
//! bitrates) and writing the master playlist, which the transcoder owns.

use std::{fmt::Write, path::Path};

/// One segment of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub duration: f64,
    pub uri: String,
}

/// What a media playlist lists.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    pub version: u32,
    pub target_duration: u32,
    pub init: Option<String>,
    pub segments: Vec<Segment>,
    pub ended: bool,
}

impl MediaPlaylist {
    /// Parses the tags this pipeline relies on; errors on anything that is not a playlist.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some("#EXTM3U") {
            return Err("not an HLS playlist (no #EXTM3U)".to_owned());
        }
        let mut playlist = Self {
            version: 1,
            target_duration: 0,
            init: None,
            segments: Vec::new(),
            ended: false,
        };
        let mut pending: Option<f64> = None;
        for line in lines {
            if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
                playlist.version = v.parse().map_err(|_| format!("bad {line}"))?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                playlist.target_duration = v.parse().map_err(|_| format!("bad {line}"))?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                playlist.init = attribute(v, "URI");
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                let duration = v.split(',').next().unwrap_or_default();
                pending = Some(duration.parse().map_err(|_| format!("bad {line}"))?);
            } else if line == "#EXT-X-ENDLIST" {
                playlist.ended = true;
            } else if !line.starts_with('#') {
                let duration = pending
                    .take()
                    .ok_or_else(|| format!("{line}: segment without #EXTINF"))?;
                playlist.segments.push(Segment {
                    duration,
                    uri: line.to_owned(),
                });
            }
        }
        Ok(playlist)
    }

    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Peak and average bitrate (bit/s) of the segments in `dir`, from their real sizes.
    pub fn bitrates(&self, dir: &Path) -> std::io::Result<Bitrates> {
        let mut peak = 0.0f64;
        let mut bytes = 0u64;
        for segment in &self.segments {
            let size = std::fs::metadata(dir.join(&segment.uri))?.len();
            bytes += size;
            if segment.duration > 0.0 {
                peak = peak.max(size as f64 * 8.0 / segment.duration);
            }
        }
        let duration = self.duration();
        let average = if duration > 0.0 {
            bytes as f64 * 8.0 / duration
        } else {
            0.0
        };
        Ok(Bitrates {
            peak: peak.ceil() as u64,
            average: average.ceil() as u64,
        })
    }
}

/// Bit/s of a rendition, as the master playlist states them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bitrates {
    pub peak: u64,
    pub average: u64,
}

/// The value of `NAME=` in an attribute list (`URI="init.mp4",BYTERANGE=…`).
fn attribute(list: &str, name: &str) -> Option<String> {
    let start = list.find(&format!("{name}="))? + name.len() + 1;
    let rest = &list[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next().map(str::to_owned)
    } else {
        rest.split(',').next().map(str::to_owned)
    }
}

/// A video rendition as the master playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantEntry {
    pub uri: String,
    pub width: u32,
    pub height: u32,
    /// Peak and average of the video alone.
    pub bitrates: Bitrates,
    /// RFC 6381 string of the video, e.g. `avc1.64001f`.
    pub codec: String,
    pub frame_rate: f64,
}

/// The audio-only rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioEntry {
    pub uri: String,
    pub bitrates: Bitrates,
    pub codec: String,
    pub channels: u32,
    /// BCP 47 tag, when known.
    pub language: Option<String>,
}

/// Group id of the audio rendition.
pub const AUDIO_GROUP: &str = "aud";

/// BANDWIDTH and AVERAGE-BANDWIDTH of `video` as played with `audio`: both peaks and both
/// averages added, since the player fetches the two at once.
pub fn variant_bitrates(video: Bitrates, audio: Option<&AudioEntry>) -> Bitrates {
    let extra = audio.map(|a| a.bitrates).unwrap_or_default();
    Bitrates {
        peak: video.peak + extra.peak,
        average: video.average + extra.average,
    }
}

/// The master playlist: the audio group (when there is audio) and every video rendition,
/// in the order given (smallest first).
pub fn master(variants: &[VariantEntry], audio: Option<&AudioEntry>) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some(audio) = audio {
        let language = audio
            .language
            .as_deref()
            .filter(|l| !l.is_empty())
            .map(|l| format!(",LANGUAGE=\"{l}\""))
            .unwrap_or_default();
        let _ = write!(
            out,
            "\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"Audio\"{language},\
             DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}\"\n",
            audio.channels, audio.uri
        );
    }
    out.push('\n');
    for variant in variants {
        let bitrates = variant_bitrates(variant.bitrates, audio);
        let codecs = match audio {
            Some(audio) => format!("{},{}", variant.codec, audio.codec),
            None => variant.codec.clone(),
        };
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{codecs}\"",
            bitrates.peak, bitrates.average, variant.width, variant.height
        );
        if variant.frame_rate > 0.0 {
            let _ = write!(out, ",FRAME-RATE={:.3}", variant.frame_rate);
        }
        if audio.is_some() {
            let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        let _ = writeln!(out, "\n{}", variant.uri);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n\
        #EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000000,\nseg_00001.m4s\n#EXTINF:2.500000,\n\
        seg_00002.m4s\n#EXT-X-ENDLIST\n";

    #[test]
    fn parses_a_media_playlist() {
        let p = MediaPlaylist::parse(MEDIA).unwrap();
        assert_eq!(p.version, 7);
        assert_eq!(p.target_duration, 4);
        assert_eq!(p.init.as_deref(), Some("init.mp4"));
        assert!(p.ended);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].uri, "seg_00002.m4s");
        assert!((p.duration() - 6.5).abs() < 1e-9);
        assert!(MediaPlaylist::parse("hello").is_err());
        assert!(MediaPlaylist::parse("#EXTM3U\nseg.ts\n").is_err());
    }

    #[test]
    fn bitrates_come_from_the_segment_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seg_00001.m4s"), vec![0u8; 100_000]).unwrap();
        std::fs::write(dir.path().join("seg_00002.m4s"), vec![0u8; 100_000]).unwrap();
        let b = MediaPlaylist::parse(MEDIA)
            .unwrap()
            .bitrates(dir.path())
            .unwrap();
        // 800 kbit over 4 s and over 2.5 s; 1600 kbit over 6.5 s
        assert_eq!(
            b,
            Bitrates {
                peak: 320_000,
                average: 246_154
            }
        );
    }

    #[test]
    fn master_playlist_text() {
        let audio = AudioEntry {
            uri: "audio/index.m3u8".into(),
            bitrates: Bitrates {
                peak: 140_000,
                average: 130_000,
            },
            codec: "mp4a.40.2".into(),
            channels: 2,
            language: Some("en".into()),
        };
        let variants = [
            VariantEntry {
                uri: "240p/index.m3u8".into(),
                width: 426,
                height: 240,
                bitrates: Bitrates {
                    peak: 500_000,
                    average: 400_000,
                },
                codec: "avc1.64000d".into(),
                frame_rate: 25.0,
            },
            VariantEntry {
                uri: "720p/index.m3u8".into(),
                width: 1280,
                height: 720,
                bitrates: Bitrates {
                    peak: 3_000_000,
                    average: 2_800_000,
                },
                codec: "avc1.64001f".into(),
                frame_rate: 29.97,
            },
        ];
        assert_eq!(
            master(&variants, Some(&audio)),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Audio\",LANGUAGE=\"en\",DEFAULT=YES,\
             AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n\n\
             #EXT-X-STREAM-INF:BANDWIDTH=640000,AVERAGE-BANDWIDTH=530000,RESOLUTION=426x240,\
             CODECS=\"avc1.64000d,mp4a.40.2\",FRAME-RATE=25.000,AUDIO=\"aud\"\n240p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3140000,AVERAGE-BANDWIDTH=2930000,RESOLUTION=1280x720,\
             CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=29.970,AUDIO=\"aud\"\n720p/index.m3u8\n"
        );
        assert_eq!(
            master(&variants[..1], None),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n\
             #EXT-X-STREAM-INF:BANDWIDTH=500000,AVERAGE-BANDWIDTH=400000,RESOLUTION=426x240,\
             CODECS=\"avc1.64000d\",FRAME-RATE=25.000\n240p/index.m3u8\n"
        );
    }
}

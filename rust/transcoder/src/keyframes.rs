//! Keyframes of a source whose top rendition is copied, and where HLS segments will start.
//!
//! ffmpeg's HLS muxer starts a new segment at the first keyframe whose time since the first
//! packet reaches `n × hls_time` (n = segments so far); a copied stream can only be cut at its
//! own keyframes. The encoded renditions get keyframes forced at exactly the cut points the
//! muxer will choose for the copy (computed here from the source's keyframe list), so every
//! rendition is cut at the same instants and players can switch between them at any segment.
//! Forcing only the cut points (not every source keyframe) keeps the encodes' GOPs as long as
//! a segment, and the `-force_key_frames` argument short.

/// Keyframe times (seconds, as ffmpeg numbers them after its start-time shift) from the output
/// of `ffmpeg -i SRC -map 0:v:0 -c copy -f framecrc -`: lines `#tb 0: 1/15360` and
/// `0, dts, pts, duration, size, crc[, F=0x…]`, where a packet with only the keyframe flag
/// has no `F=` field.
pub fn parse_framecrc(text: &str) -> Result<Vec<f64>, String> {
    let mut time_base: Option<f64> = None;
    let mut times = Vec::new();
    for line in text.lines() {
        if let Some(tb) = line.strip_prefix("#tb 0:") {
            let (num, den) = tb
                .trim()
                .split_once('/')
                .ok_or_else(|| format!("bad time base line {line:?}"))?;
            let num: f64 = num.trim().parse().map_err(|_| format!("bad {line:?}"))?;
            let den: f64 = den.trim().parse().map_err(|_| format!("bad {line:?}"))?;
            time_base = Some(num / den);
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 6 || fields[0] != "0" {
            continue;
        }
        let flags = fields.get(6).copied().unwrap_or_default();
        if !flags.is_empty() {
            continue; // F=0x0 (not a keyframe) or keyframe plus other flags (e.g. discard)
        }
        let tb = time_base.ok_or("framecrc output without #tb line")?;
        let pts: i64 = fields[2]
            .parse()
            .map_err(|_| format!("bad packet line {line:?}"))?;
        times.push(pts as f64 * tb);
    }
    times.sort_by(f64::total_cmp);
    times.dedup();
    Ok(times)
}

/// Slack for comparing times that went through different time bases (a keyframe "at" a
/// boundary may land a rounding error before it).
const EPSILON: f64 = 0.001;

/// The keyframes at which the HLS muxer will start segments of the copied stream (the first
/// keyframe included).
///
/// The muxer compares exact integer timestamps, and rescaling them to its time base rounds
/// monotonically, so a keyframe at or after a boundary here is at or after it there too. One
/// less than [`EPSILON`] before a boundary may round up onto it and be cut there: it is kept
/// as well (an extra forced keyframe costs the encodes a little bitrate, a missing one would
/// misalign a segment), and since the muxer's segment count then catches up with this one at
/// the next cut, the cuts after it agree again.
pub fn cut_points(keyframes: &[f64], segment_seconds: f64) -> Vec<f64> {
    /// Float noise of `pts × time_base − first`.
    const NOISE: f64 = 1e-9;
    let Some(&first) = keyframes.first() else {
        return Vec::new();
    };
    let mut cuts = vec![first];
    let mut boundary = 1.0;
    for &time in &keyframes[1..] {
        let elapsed = time - first;
        let target = boundary * segment_seconds;
        if elapsed >= target - NOISE {
            cuts.push(time);
            boundary += 1.0;
        } else if elapsed >= target - EPSILON {
            cuts.push(time);
        }
    }
    cuts
}

/// The longest segment the cut points give, up to `end` (the duration).
pub fn longest_segment(cuts: &[f64], end: f64) -> f64 {
    cuts.windows(2)
        .map(|w| w[1] - w[0])
        .chain(cuts.last().map(|last| end - last))
        .fold(0.0, f64::max)
}

/// The `-force_key_frames` value for the cut points: each time a millisecond early, so that a
/// frame whose time rounds to just below the listed value is still the one forced.
pub fn force_list(cuts: &[f64]) -> String {
    cuts.iter()
        .map(|t| format!("{:.6}", (t - EPSILON).max(0.0)))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_framecrc() {
        let text = "#extradata 0:       45, 0x2b590e54\n#tb 0: 1/15360\n#media_type 0: video\n\
            0,      -1024,          0,      512,     6038, 0xaa55697c\n\
            0,       -512,       2048,      512,      100, 0x00000001, F=0x0\n\
            0,      22016,      23040,      512,     8112, 0xb700e2ab\n";
        assert_eq!(parse_framecrc(text).unwrap(), [0.0, 1.5]);
        assert!(parse_framecrc("0, 1, 2, 3, 4, 0x1\n").is_err());
    }

    #[test]
    fn cuts_follow_the_muxer() {
        // keyframes every 1.5 s: the muxer cuts at the first one past 4, 8, 12 s
        let kf: Vec<f64> = (0..10).map(|i| f64::from(i) * 1.5).collect();
        assert_eq!(cut_points(&kf, 4.0), [0.0, 4.5, 9.0, 12.0]);
        // a long GOP pushes a cut late; the next boundary still counts from the start
        let kf = [0.0, 9.0, 9.5, 10.0, 13.0];
        assert_eq!(cut_points(&kf, 4.0), [0.0, 9.0, 9.5, 13.0]);
        assert_eq!(longest_segment(&[0.0, 9.0, 9.5, 13.0], 14.0), 9.0);
        // exactly on a boundary, after a start offset that makes float arithmetic inexact
        let start = 0.066016;
        let kf = [start, start + 2.0, start + 4.0, start + 6.0, start + 8.0];
        assert_eq!(cut_points(&kf, 4.0), [kf[0], kf[2], kf[4]]);
        // just before a boundary: kept, and the next keyframe is the cut
        let kf = [0.0, 3.9996, 4.5, 8.0];
        assert_eq!(cut_points(&kf, 4.0), kf);
        assert_eq!(force_list(&[0.0, 4.5]), "0.000000,4.499000");
        assert_eq!(cut_points(&[], 4.0), Vec::<f64>::new());
    }
}

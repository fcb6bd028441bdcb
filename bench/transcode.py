"""Transcoder benchmark: `lmsd-transcoder run` against the best hand-written ffmpeg command for
the same HLS ladder, side by side in one run.

Run: .venv/bin/python bench/transcode.py [--rounds 3] [--seconds 60] [--binary PATH] [--keep]

The source is a fixed 1080p clip (testsrc2 + a 440 Hz tone, H.264/AAC, generated once with
deterministic settings and cached in the temp directory). Its bitrate is above 1.5x the 1080p
rung, so lmsd encodes all five renditions (nothing is copied) and both commands do the same work:

  lmsd        — `lmsd-transcoder run --source CLIP --out DIR` with the default ladder
                (240p…1080p, 4 s segments, x264 veryfast, AAC 128k). Besides the ladder it probes
                the source, writes a poster and a thumbnail sprite from the same decode, tiles the
                sprite and writes its own master playlist; all of that is in its time.
  hand-written — one ffmpeg command as an expert writes it for a ladder: decode once, split,
                one scaler and one x264 per rung with the same rate control, GOP and keyframe
                settings, one AAC encode, a single HLS muxer with `-var_stream_map` and ffmpeg's
                own master playlist. No poster, no sprite.

With --rounds R the two run R times, alternating in ABBA order (l h h l l h …), and each figure
is the median, so that load from other jobs on a shared machine hits both alike. Printed: both wall times, their
ratio (target ≤ 1.05) and the real-time factor (media seconds per wall second). ffmpeg and
ffprobe come from PATH (Debian's); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# lmsd's defaults (rust/transcoder/src/config.rs), repeated for the hand-written command
LADDER = [("240p", 426, 240, 400), ("360p", 640, 360, 800), ("480p", 854, 480, 1400),
          ("720p", 1280, 720, 2800), ("1080p", 1920, 1080, 5000)]
SEGMENT = 4
FPS = 30
PRESET = "veryfast"
AUDIO_KBPS = 128


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def binary(explicit: str | None) -> Path:
    candidates = [Path(explicit)] if explicit else [ROOT / "target/release/lmsd-transcoder",
                                                    ROOT / "lmsd/_bin/lmsd-transcoder"]
    for path in candidates:
        if path.is_file():
            return path
    sys.exit("lmsd-transcoder not found: cargo build --release -p lmsd-transcoder (or --binary PATH)")


def clip(seconds: int) -> Path:
    """The cached source clip (deterministic: fixed x264 settings and thread count)."""
    cache = Path(tempfile.gettempdir()) / "lmsd-bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"transcode-1080p{FPS}-{seconds}s.mp4"
    if path.is_file():
        return path
    print(f"generating {path} ...", flush=True)
    tmp = path.with_suffix(".tmp.mp4")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={FPS}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-g", str(2 * FPS), "-threads", "2",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", str(tmp)],
        check=True,
    )
    tmp.rename(path)
    return path


def hand_written(source: Path, out: Path) -> list[str]:
    """The expert's single command for the same ladder and settings."""
    n = len(LADDER)
    graph = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) + ";" + ";".join(
        f"[s{i}]scale=w={w}:h={h}[v{i}]" for i, (_, w, h, _) in enumerate(LADDER))
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
            "-filter_complex", graph]
    for i in range(n):
        argv += ["-map", f"[v{i}]"]
    argv += ["-map", "0:a:0", "-c:v", "libx264", "-preset", PRESET, "-profile:v", "high",
             "-sc_threshold", "0", "-g", str(FPS * SEGMENT), "-keyint_min", str(FPS * SEGMENT),
             "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT})"]
    for i, (_, _, _, kbps) in enumerate(LADDER):
        argv += [f"-b:v:{i}", f"{kbps}k", f"-maxrate:v:{i}", f"{kbps * 107 // 100}k",
                 f"-bufsize:v:{i}", f"{kbps * 3 // 2}k"]
    streams = " ".join(f"v:{i},agroup:aud,name:{name}" for i, (name, *_) in enumerate(LADDER))
    argv += ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2", "-ar", "48000",
             "-f", "hls", "-hls_time", str(SEGMENT), "-hls_playlist_type", "vod",
             "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
             "-master_pl_name", "master.m3u8",
             "-var_stream_map", f"{streams} a:0,agroup:aud,name:audio",
             "-hls_segment_filename", str(out / "%v/seg_%05d.m4s"), str(out / "%v/index.m3u8")]
    return argv


def ladder_bytes(out: Path) -> dict[str, int]:
    return {name: sum(p.stat().st_size for p in (out / name).glob("seg_*.m4s"))
            for name in [r[0] for r in LADDER] + ["audio"]}


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Runs argv; returns wall seconds, CPU seconds (user + system of it and its children) and
    stdout. CPU time is the steadier figure when other jobs share the machine."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
        assert child.stdout is not None
        stdout = child.stdout.read().decode()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            sys.exit(f"{argv[0]} failed:\n{err.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians are reported); ≥ 2")
    parser.add_argument("--seconds", type=int, default=60, help="length of the test clip")
    parser.add_argument("--binary", help="lmsd-transcoder to run (default: target/release, then lmsd/_bin)")
    parser.add_argument("--keep", action="store_true", help="keep the outputs of the last round")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2")
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        sys.exit("ffmpeg/ffprobe not on PATH (Debian: apt-get install ffmpeg)")
    lmsd = binary(args.binary)
    source = clip(args.seconds)
    print(f"{os.cpu_count()} CPUs; {lmsd}; source {source.name} ({source.stat().st_size / 1e6:.0f} MB);"
          f" load average {load()}", flush=True)

    walls: dict[str, list[float]] = {"lmsd": [], "hand": []}
    cpus: dict[str, list[float]] = {"lmsd": [], "hand": []}
    encode_ms: list[int] = []
    work = Path(tempfile.mkdtemp(prefix="lmsd-transcode-bench-"))
    env = {**os.environ, "LMSD_LOG": "warn"}
    try:
        for round_no in range(1, args.rounds + 1):
            for name in ("lmsd", "hand") if round_no % 2 else ("hand", "lmsd"):
                out = work / name
                shutil.rmtree(out, ignore_errors=True)
                if name == "lmsd":
                    wall, cpu, stdout = timed([str(lmsd), "run", "--source", str(source), "--out", str(out)], env)
                    summary = json.loads(stdout)
                    encode_ms.append(summary["encode_ms"])
                    remuxed = summary["remuxed"]
                    lmsd_argv = summary["ffmpeg_argv"]
                else:
                    for rung in [r[0] for r in LADDER] + ["audio"]:
                        (out / rung).mkdir(parents=True)
                    wall, cpu, _ = timed(hand_written(source, out))
                walls[name].append(wall)
                cpus[name].append(cpu)
                print(f"  round {round_no}: {name:5} {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
        assert not remuxed, "the clip must be encoded, not copied"
        sizes = {name: ladder_bytes(work / name) for name in ("lmsd", "hand")}
    finally:
        if args.keep:
            print(f"outputs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    lm, hw = statistics.median(walls["lmsd"]), statistics.median(walls["hand"])
    lm_cpu, hw_cpu = statistics.median(cpus["lmsd"]), statistics.median(cpus["hand"])
    ratio = lm / hw
    print()
    print(f"load average at the end: {load()}")
    print(f"| {args.seconds} s 1080p{FPS} clip, 5 renditions + audio | wall (median of {args.rounds}) | CPU (median)"
          " | real-time factor |")
    print("|---|---|---|---|")
    print(f"| lmsd-transcoder run (ladder + poster + sprite) | {lm:.2f} s (ffmpeg {statistics.median(encode_ms) / 1000:.2f} s)"
          f" | {lm_cpu:.2f} s | {args.seconds / lm:.2f}x |")
    print(f"| hand-written ffmpeg (ladder only) | {hw:.2f} s | {hw_cpu:.2f} s | {args.seconds / hw:.2f}x |")
    print(f"ratio lmsd / hand-written: wall {ratio:.3f}, CPU {lm_cpu / hw_cpu:.3f} (target <= 1.05)"
          f" -> {'OK' if ratio <= 1.05 else 'ABOVE TARGET'}")
    print("bytes per rendition (lmsd / hand-written): " + ", ".join(
        f"{k} {sizes['lmsd'][k] / 1e6:.2f}/{sizes['hand'][k] / 1e6:.2f} MB" for k in sizes["lmsd"]))
    print("lmsd's ffmpeg command:", " ".join(lmsd_argv))


if __name__ == "__main__":
    main()

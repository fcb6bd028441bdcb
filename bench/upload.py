"""Upload benchmark: a video file sent with lmsd's resumable upload protocol (tus 1.0) through
lmsd-gateway, side by side with a plain HTTP PUT of the same file to Debian's nginx.

Run: .venv/bin/python bench/upload.py [--size-mb 256] [--chunk-mb 64] [--rounds 3] [--no-warmup]

  (a) nginx   — `curl -T file` PUT to nginx (Debian) with `dav_methods PUT`, `client_max_body_size 0`
                and its body temp dir on the same disk as the campus's data dir: nginx writes the
                body to a temp file and renames it into place; nothing checks or records it.
  (b) lmsd    — `POST /api/v1/uploads` (Upload-Length, Upload-Metadata course_id/filename/filetype),
                then `PATCH` the file in --chunk-mb pieces (the gateway refuses bodies over its
                max_body_bytes, 100 MiB by default) with Upload-Offset, through lmsd-gateway (JWT
                check, rate limit) to an API worker that appends to <data>/uploads/<id>. The last
                PATCH answers 204 with Lmsd-Video-Id only after the server has probed the file
                (ffprobe + a frame decoded at its start and end) and recorded the video.

The client is curl for both, with the same options (`-H 'Expect:'` so that neither waits for a
100 Continue). The PATCHes run in one curl process (`--next`), over one kept-alive connection,
as a tus client would send them. The chunks are cut into files once, before any timing, so each
PATCH is `curl -X PATCH -T chunk-N` — the same read-a-file-and-send path as (a)'s `-T file`
(streaming with dd into `-T -` would add a pipe and a second process to (b) alone). Times are
curl's own `time_total` per request, summed for (b): no process start-up on either side.

"Completion" is what the last PATCH takes beyond moving its bytes: its time minus its size at the
per-byte time of the other PATCHes of the same upload (needs at least two chunks). The probe
alone is also timed directly (lmsd.media.probe on the same file) so the record's share shows.

The campus gets `media.transcoders = 0` before install (`lmsd config set`), so no transcoder
competes for the CPUs with the transfers; the videos stay "uploaded". Each round runs both
targets, in alternating order (a b, b a, …), after `sync` so that one's dirty pages are not the
other's writeback; the figures are medians. The test file is a real H.264/AAC MP4 (ffmpeg
testsrc2, 1080p30, lossless x264 ultrafast ≈ 34 Mbit/s, cut just under --size-mb), cached in
$TMPDIR/lmsd-bench-cache/ for later runs. MB = 10⁶ bytes; --size-mb and --chunk-mb are MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway import load, nginx_binary, start_nginx, wait_http  # noqa: E402
from lmsd.media import tools  # noqa: E402
from lmsd.media.probe import probe  # noqa: E402
from lmsd.settings import GatewaySettings, load_settings  # noqa: E402
from tests import learning  # noqa: E402
from tests.api import PASSWORD  # noqa: E402
from tests.media import _meta, make_clip  # noqa: E402
from tests.support import Campus, free_port_block, new_campus  # noqa: E402

MiB = 1024 * 1024
CACHE = Path(tempfile.gettempdir()) / "lmsd-bench-cache"
# Every request of both targets: no 100-continue round trip, nothing kept but the -w line.
CURL = ["curl", "-sS", "-o", "/dev/null", "-H", "Expect:"]


@dataclass
class Round:
    nginx_s: float
    tus_s: float  # POST + every PATCH, completion included
    completion_s: float | None
    probe_s: float
    video_id: str


def require_tools() -> None:
    missing = [exe for exe in ("curl", "ffmpeg", "ffprobe") if not shutil.which(exe)]
    if not Path(nginx_binary()).exists():
        missing.append("nginx")
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: apt-get install curl ffmpeg nginx")


def test_file(size_mb: int) -> Path:
    """A ~size_mb MiB MP4 (1080p lossless H.264 + AAC), made once and cached."""
    path = CACHE / f"upload-{size_mb}mib.mp4"
    if not path.exists():
        print(f"making the {size_mb} MiB test video with ffmpeg (cached in {CACHE})...", flush=True)
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "0", "-pix_fmt", "yuv420p")
    # ~4.2 MB of video per second at this rate; -fs stops the encoder there and the muxer still
    # finishes the file, adding its index (≈1 % short of the size, so 256 MiB makes 4 chunks of 64).
    seconds = max(10, size_mb // 3)
    limit = str(int(size_mb * MiB * 0.99))
    return make_clip(path, seconds=seconds, size="1920x1080", rate=30, codec=x264, extra=("-fs", limit))


def cut(source: Path, chunk_bytes: int, into: Path) -> list[Path]:
    """The file as chunk files (kernel-side copies), made before anything is timed."""
    into.mkdir()
    chunks, size = [], source.stat().st_size
    with source.open("rb") as src:
        for n, start in enumerate(range(0, size, chunk_bytes)):
            piece = into / f"chunk-{n:04d}"
            with piece.open("wb") as dst:
                left, offset = min(chunk_bytes, size - start), start
                while left:
                    done = os.copy_file_range(src.fileno(), dst.fileno(), left, offset)
                    left, offset = left - done, offset + done
            chunks.append(piece)
    return chunks


def curl(args: list[str], fmt: str) -> list[list[str]]:
    """Run curl; one `|`-separated -w line per request."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"curl failed ({done.returncode}): {done.stderr.strip()}")
    lines = [line.split("|") for line in done.stdout.splitlines() if line]
    if not lines or any(len(line) != fmt.count("|") + 1 for line in lines):
        raise SystemExit(f"unexpected curl output: {done.stdout!r}")
    return lines


def nginx_put(url: str, source: Path) -> float:
    fmt = "%{http_code}|%{time_total}|%{size_upload}"
    [(code, seconds, sent)] = curl([*CURL, "-w", fmt + r"\n", "-T", str(source), url], fmt)
    if code not in ("201", "204") or int(float(sent)) != source.stat().st_size:
        raise SystemExit(f"nginx PUT answered {code} after {sent} bytes")
    return float(seconds)


def tus_upload(
    base: str, token: str, course_id: str, source: Path, chunks: list[Path]
) -> tuple[float, float | None, str]:
    """The whole upload: (seconds, completion seconds or None, video id)."""
    auth = ["-H", f"Authorization: Bearer {token}", "-H", "Tus-Resumable: 1.0.0"]
    size = source.stat().st_size
    meta = _meta(course_id=course_id, filename=source.name, filetype="video/mp4")
    fmt = "%{http_code}|%{time_total}|%header{location}"
    [(code, create_s, location)] = curl(
        [*CURL, *auth, "-w", fmt + r"\n", "-X", "POST", "-H", f"Upload-Length: {size}",
         "-H", f"Upload-Metadata: {meta}", f"{base}/api/v1/uploads"], fmt)
    if code != "201" or not location:
        raise SystemExit(f"POST /api/v1/uploads answered {code}")
    fmt = "%{http_code}|%{time_total}|%{size_upload}|%header{upload-offset}|%header{lmsd-video-id}"
    args, offset = ["curl"], 0
    for n, chunk in enumerate(chunks):
        args += [*([] if n == 0 else ["--next"]), *CURL[1:], *auth, "-w", fmt + r"\n",
                 "-H", "Content-Type: application/offset+octet-stream", "-H", f"Upload-Offset: {offset}",
                 "-X", "PATCH", "-T", str(chunk), base + location]
        offset += chunk.stat().st_size
    answers = curl(args, fmt)
    for n, (code, _, _, reached, _) in enumerate(answers):
        if code != "204":
            raise SystemExit(f"PATCH {n + 1}/{len(chunks)} answered {code} (offset {reached or '?'})")
    video_id = answers[-1][4]
    if not video_id or int(answers[-1][3]) != size:
        raise SystemExit(f"the last PATCH brought no Lmsd-Video-Id (offset {answers[-1][3]} of {size})")
    times = [float(a[1]) for a in answers]
    sizes = [int(float(a[2])) for a in answers]
    completion = None
    if len(answers) > 1:
        per_byte = sum(times[:-1]) / sum(sizes[:-1])
        completion = times[-1] - sizes[-1] * per_byte
    return float(create_s) + sum(times), completion, video_id


def nginx_block(port: int, work: Path) -> str:
    return f"""
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    client_body_temp_path {work}/nginx-body;
    location /put/ {{
      root {work}/nginx-root;
      dav_methods PUT;
      create_full_put_path on;
    }}
  }}"""


def install(work: Path, stack: ExitStack) -> Campus:
    campus = new_campus(work / "campus")
    stack.callback(lambda: campus.lmsd("down", timeout=120))  # whatever install got to start
    # Before install: install merges its answers into the existing config file, so the campus
    # never starts a transcoder (and needs no lmsd-transcoder binary). `config set` does not
    # create the data dir itself.
    campus.data_dir.mkdir()
    done = campus.lmsd("config", "set", "media.transcoders", "0")
    if done.returncode:
        raise SystemExit(f"lmsd config set failed:\n{done.stdout}\n{done.stderr}")
    done = campus.install()
    if done.returncode:
        raise SystemExit(f"install failed:\n{done.stdout}\n{done.stderr}")
    shown = json.loads(campus.lmsd("config", "show", "--json", check=True).stdout)
    if shown["media"]["transcoders"] != 0:
        raise SystemExit("media.transcoders is not 0 on the installed campus")
    return campus


async def teacher_and_course(campus: Campus) -> tuple[str, str]:
    async with learning.client(campus) as c:
        s = await learning.setup(c, learners=0)
    return s.teacher.email, s.course["id"]


def sign_in(campus: Campus, email: str) -> str:
    """A fresh access token for each round (they live 15 minutes)."""
    r = httpx.post(campus.url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


def rate(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def run(args: argparse.Namespace, stack: ExitStack) -> str:
    source = test_file(args.size_mb)
    size = source.stat().st_size
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lmsd-upload-bench-")))
    work.chmod(0o755)
    chunks = cut(source, args.chunk_mb * MiB, work / "chunks")
    (work / "nginx-root").mkdir()
    port = free_port_block(1)
    start_nginx(stack, work, "nginx", nginx_block(port, work), "1")  # one upload: one worker busy
    nginx_url = f"http://127.0.0.1:{port}/put/{source.name}"
    wait_http(f"http://127.0.0.1:{port}/")
    print("installing a campus (media.transcoders = 0)...", flush=True)
    campus = install(work, stack)
    settings = load_settings(campus.data_dir)
    email, course_id = asyncio.run(teacher_and_course(campus))
    same_disk = (work / "nginx-root").stat().st_dev == campus.data_dir.stat().st_dev
    found = probe(tools.ffprobe(settings.media), tools.ffmpeg(settings.media), source)
    curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
    nginx_version = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True).stderr.split("/")[-1]
    print(f"{os.cpu_count()} CPUs, load average {load()}; curl {curl_version}, nginx {nginx_version.strip()};"
          f" nginx body dir and campus data dir on the same filesystem: {same_disk}", flush=True)
    print(f"file: {source} — {size:,} bytes, {found.width}x{found.height}"
          f" {found.video_codec}/{found.audio_codec}, {found.duration_ms / 1000:.1f} s,"
          f" {found.bit_rate / 1e6:.1f} Mbit/s; {len(chunks)} PATCH(es) of ≤ {args.chunk_mb} MiB", flush=True)

    def one_round(n: int, label: str) -> Round:
        token = sign_in(campus, email)
        order = ("nginx", "tus") if n % 2 == 0 else ("tus", "nginx")
        got: dict[str, float] = {}
        completion, video_id = None, ""
        for target in order:
            os.sync()  # the previous transfer's dirty pages are written back outside the clock
            if target == "nginx":
                got["nginx"] = nginx_put(nginx_url, source)
                (work / "nginx-root" / "put" / source.name).unlink()
            else:
                got["tus"], completion, video_id = tus_upload(campus.url, token, course_id, source, chunks)
        started = time.perf_counter()
        probe(tools.ffprobe(settings.media), tools.ffmpeg(settings.media), source)
        r = Round(got["nginx"], got["tus"], completion, time.perf_counter() - started, video_id)
        done = f"{r.completion_s:.3f} s" if r.completion_s is not None else "n/a"
        print(f"  {label}: nginx PUT {rate(size, r.nginx_s):7.1f} MB/s ({r.nginx_s:.2f} s) | lmsd tus"
              f" {rate(size, r.tus_s):7.1f} MB/s ({r.tus_s:.2f} s, completion {done}, probe alone"
              f" {r.probe_s:.3f} s) | {' then '.join(order)} | load {load()}", flush=True)
        return r

    if not args.no_warmup:
        one_round(1, "warm-up")
    rounds = [one_round(n, f"round {n + 1}") for n in range(args.rounds)]
    with httpx.Client(base_url=campus.url, timeout=30) as c:
        h = {"authorization": f"Bearer {sign_in(campus, email)}"}
        video = c.get(f"/api/v1/videos/{rounds[-1].video_id}", headers=h).json()
        listed = c.get(f"/api/v1/courses/{course_id}/videos", headers=h).json()["items"]
    print(f"last video {video['id']}: status {video['status']!r}, {video.get('size_bytes', '?')} bytes;"
          f" {len(listed)} videos in the course", flush=True)
    return report(args, size, len(chunks), rounds)


def report(args: argparse.Namespace, size: int, n_chunks: int, rounds: list[Round]) -> str:
    def row(name: str, seconds: list[float]) -> str:
        median = statistics.median(seconds)
        span = f"{rate(size, max(seconds)):,.0f}–{rate(size, min(seconds)):,.0f}"
        return f"| {name} | {rate(size, median):,.1f} | {median:.2f} | {span} |"

    nginx = [r.nginx_s for r in rounds]
    tus = [r.tus_s for r in rounds]
    separable = all(r.completion_s is not None for r in rounds)
    bytes_only = [r.tus_s - (r.completion_s or 0.0) for r in rounds]
    probe_s = statistics.median(r.probe_s for r in rounds)
    lines = [
        f"### Upload of a {size / MiB:,.1f} MiB H.264 MP4 ({size:,} bytes), medians of {args.rounds} rounds",
        "",
        f"Loopback, curl for both; lmsd in {n_chunks} PATCH(es) of ≤ {args.chunk_mb} MiB through"
        " lmsd-gateway. media.transcoders = 0: no transcoding ran during the run. MB = 10⁶ bytes.",
        "",
        "| target | MB/s | seconds | MB/s range |",
        "|---|---:|---:|---:|",
        row("(a) nginx `PUT` (dav_methods, Debian)", nginx),
        row("(b) lmsd tus through the gateway, completion included", tus),
    ]
    ratio = statistics.median(nginx) / statistics.median(tus)
    if separable:
        lines.append(row("(b) without the completion (bytes only)", bytes_only))
        completion = statistics.median(r.completion_s or 0.0 for r in rounds)
        only = statistics.median(nginx) / statistics.median(bytes_only)
        lines += [
            "",
            f"- ratio (b)/(a): **{ratio:.2f}×** the throughput; bytes only {only:.2f}×",
            f"- completion (probe + record) adds **{completion:.2f} s** to the last PATCH; the probe"
            f" alone (ffprobe + 2 frame decodes, run directly) takes {probe_s:.2f} s",
        ]
    else:
        lines += [
            "",
            f"- ratio (b)/(a): **{ratio:.2f}×** the throughput",
            f"- completion not separable with one chunk; the probe alone takes {probe_s:.2f} s",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="size of the test video in MiB")
    parser.add_argument("--chunk-mb", type=int, default=64, help="tus PATCH size in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both targets (medians are reported)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first round")
    args = parser.parse_args()
    limit = GatewaySettings.model_fields["max_body_bytes"].default
    if not 1 <= args.chunk_mb * MiB <= limit:
        parser.error(f"--chunk-mb must be 1..{limit // MiB}: the gateway refuses larger bodies (413)")
    if args.size_mb < 1 or args.rounds < 1:
        parser.error("--size-mb and --rounds must be at least 1")
    require_tools()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the clean-up below runs
    with ExitStack() as stack:
        out = run(args, stack)
    print()
    print(out)


if __name__ == "__main__":
    main()

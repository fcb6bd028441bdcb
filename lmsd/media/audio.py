"""Audio for speech recognition: extract a 16 kHz mono WAV with ffmpeg, then read it in speech chunks.

Recognisers never hold a whole lecture in memory: :func:`speech_chunks` yields one stretch of speech
at a time (cut at pauses by pocketsphinx's voice activity detector, and at ``max_chunk_s`` at the
latest), so an hour of audio costs no more memory than a minute.
"""

from __future__ import annotations

import re
import subprocess
import wave
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lmsd.errors import Invalid

SAMPLE_RATE = 16_000
SAMPLE_BYTES = 2  # s16le
_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\] ")  # "[mov,mp4,... @ 0x55d6f190c940] "
# ffmpeg's words for a file cut short or damaged. With "partial file" it even exits 0 with the part
# it could read; we refuse rather than publish subtitles for half a lecture.
_TRUNCATED_MARKERS = ("partial file", "truncat", "moov atom not found", "corrupt", "end of file")


class TranscriptionFailed(Invalid):
    """A video could not be transcribed: no audio, an unreadable file, or no model for its language.

    It is an :class:`~lmsd.errors.Invalid` (422): each cause is fixed by changing the input (another
    file, another language) or the configured model, never by retrying the same job.
    """


def _ffmpeg_reason(stderr: str, source: Path) -> str:
    """ffmpeg's own explanation: its last few lines on one line, at most 300 characters, without
    the server's paths or ffmpeg's ``[demuxer @ 0x...]`` prefixes."""
    lines = [
        _LOG_PREFIX.sub("", line.strip()).replace(str(source), source.name)
        for line in stderr.splitlines()
        if line.strip()
    ]
    reason = " / ".join(lines[-3:]) or "no message"
    return reason if len(reason) <= 300 else reason[:297] + "..."


def extract_audio(ffmpeg: str, source: Path, wav: Path) -> None:
    """Write the first audio stream of ``source`` to ``wav`` as 16 kHz mono s16le PCM.

    Raises :class:`TranscriptionFailed` when the file has no audio stream, is truncated or cannot
    be decoded (with ffmpeg's reason), or when ``ffmpeg`` cannot be run. Blocking: it runs ffmpeg
    to completion (a few seconds per hour of video).
    """
    if not source.is_file():
        raise TranscriptionFailed(f"the video file {source.name} does not exist")
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror",
        "-i", str(source), "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav", "-y", str(wav),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    except OSError as exc:
        raise TranscriptionFailed(f"cannot run ffmpeg ({ffmpeg}): {exc.strerror or exc}") from exc
    stderr = done.stderr
    if "matches no streams" in stderr:
        wav.unlink(missing_ok=True)
        raise TranscriptionFailed(f"{source.name} has no audio track, so there is no speech to transcribe")
    if any(marker in stderr.lower() for marker in _TRUNCATED_MARKERS):
        wav.unlink(missing_ok=True)
        raise TranscriptionFailed(f"{source.name} is truncated or damaged: {_ffmpeg_reason(stderr, source)}")
    if done.returncode != 0:
        wav.unlink(missing_ok=True)
        raise TranscriptionFailed(
            f"ffmpeg could not read the audio of {source.name}: {_ffmpeg_reason(stderr, source)}"
        )


def _open_wav(path: Path) -> wave.Wave_read:
    try:
        reader = wave.open(str(path), "rb")  # noqa: SIM115 -- returned to the caller's `with`
    except (OSError, EOFError, wave.Error) as exc:
        raise TranscriptionFailed(f"cannot read {path.name} as WAV: {exc}") from exc
    shape = (reader.getframerate(), reader.getnchannels(), reader.getsampwidth())
    if shape != (SAMPLE_RATE, 1, SAMPLE_BYTES):
        reader.close()
        raise TranscriptionFailed(
            f"{path.name} is {shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit; "
            f"speech recognition needs {SAMPLE_RATE} Hz mono 16-bit (use extract_audio)"
        )
    return reader


def wav_duration(path: Path) -> float:
    """Seconds of audio in a WAV written by :func:`extract_audio`."""
    with _open_wav(path) as reader:
        return reader.getnframes() / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class SpeechChunk:
    """``pcm`` (16 kHz mono s16le) that starts ``start_s`` seconds into the audio."""

    start_s: float
    pcm: bytes

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / (SAMPLE_RATE * SAMPLE_BYTES)


def _quietest_cut(frames: list[bytes], search: int) -> int:
    """Index of the quietest of the last ``search`` frames (never 0): a forced cut just before it
    is the least likely to split a word."""
    best, best_energy = len(frames), -1
    for index in range(max(1, len(frames) - search), len(frames)):
        samples = array("h", frames[index])
        energy = sum(s * s for s in samples[::4])  # a quarter of the samples is enough to compare
        if best_energy < 0 or energy < best_energy:
            best, best_energy = index, energy
    return best


def speech_chunks(path: Path, max_chunk_s: float = 30.0) -> Iterator[SpeechChunk]:
    """The stretches of speech in a 16 kHz mono WAV, in order, silence left out.

    A stretch longer than ``max_chunk_s`` (someone talking without a pause, or music the detector
    takes for speech) is cut at the quietest frame of its last two seconds, so memory stays bounded.
    """
    from pocketsphinx import Endpointer  # the C extension loads only when audio is decoded

    endpointer = Endpointer(sample_rate=SAMPLE_RATE)
    frame_bytes: int = endpointer.frame_bytes
    frame_s = frame_bytes / (SAMPLE_RATE * SAMPLE_BYTES)
    max_frames = max(2, int(max_chunk_s / frame_s))
    search = max(1, int(2.0 / frame_s))
    frames: list[bytes] = []
    start_s = 0.0
    with _open_wav(path) as reader:
        at_end = False
        while not at_end:
            frame = reader.readframes(frame_bytes // SAMPLE_BYTES)
            was_speech = endpointer.in_speech
            if len(frame) == frame_bytes:
                speech = endpointer.process(frame)
            else:
                at_end = True
                if not was_speech:
                    break
                # end_stream needs at least one sample: pad the tail with silence.
                speech = endpointer.end_stream(frame or bytes(frame_bytes))
            if speech is None:
                continue
            if not frames:
                start_s = endpointer.speech_start if not was_speech else start_s
            # end_stream may return several frames at once: keep one frame per item.
            frames.extend(speech[i : i + frame_bytes] for i in range(0, len(speech), frame_bytes))
            while len(frames) >= max_frames:
                cut = _quietest_cut(frames[:max_frames], search)
                head, frames = frames[:cut], frames[cut:]
                chunk = SpeechChunk(start_s, b"".join(head))
                start_s += chunk.duration_s
                yield chunk
            if frames and (not endpointer.in_speech or at_end):
                yield SpeechChunk(start_s, b"".join(frames))
                frames = []
        if frames:
            yield SpeechChunk(start_s, b"".join(frames))


def audio_windows(path: Path, window_s: float = 300.0, search_s: float = 10.0) -> Iterator[SpeechChunk]:
    """The whole audio (silence included) in consecutive windows of at most ``window_s``.

    Each window ends at the quietest 30 ms of its last ``search_s`` seconds, so a word is rarely
    cut in two. For recognisers (whisper.cpp) that do their own silence handling and want long
    context, while memory stays bounded by one window.
    """
    frame_samples = SAMPLE_RATE * 3 // 100
    window_frames = max(2, int(window_s * 100 / 3))
    search = max(1, int(search_s * 100 / 3))
    frames: list[bytes] = []
    start_s = 0.0
    with _open_wav(path) as reader:
        while True:
            frame = reader.readframes(frame_samples)
            if frame:
                frames.append(frame)
            if frames and (not frame or len(frames) >= window_frames):
                cut = len(frames) if not frame else _quietest_cut(frames, search)
                head, frames = frames[:cut], frames[cut:]
                chunk = SpeechChunk(start_s, b"".join(head))
                start_s += chunk.duration_s
                yield chunk
            if not frame:
                return

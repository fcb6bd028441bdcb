"""Offline transcription of lecture videos: audio → words → cues → WebVTT.

Pure library code (no database, no bus); the media worker calls :func:`transcribe` and writes the
result with :func:`~lmsd.media.subtitles.write_webvtt` and
:func:`~lmsd.media.subtitles.write_hls_subtitles`. Everything here blocks and is CPU-bound (about
0.45 s of one core per second of audio with pocketsphinx). PocketSphinx holds the GIL for up to
about 2 s at a time, so from an event loop run it in a process pool (``loop.run_in_executor`` with
a ``ProcessPoolExecutor``; :class:`Transcript` and the errors pickle); ``asyncio.to_thread`` works
but stalls the loop for those seconds.

Module map:

- :mod:`lmsd.media.audio` — ffmpeg extraction to 16 kHz mono WAV, chunked reading, the error type
- :mod:`lmsd.media.recognisers` — the ``Recogniser`` protocol, pocketsphinx and whisper.cpp
- :mod:`lmsd.media.cues` — words to cues (line length, pauses, sentences, display times)
- :mod:`lmsd.media.subtitles` — WebVTT writing, strict parsing, markup sanitising, HLS segments
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lmsd.media.audio import TranscriptionFailed, extract_audio, wav_duration
from lmsd.media.cues import Cue, Word, cues_from_words
from lmsd.media.recognisers import DEFAULT_MODEL, Recogniser, recogniser_for
from lmsd.media.subtitles import (
    InvalidSubtitles,
    parse_webvtt,
    text_of,
    to_webvtt,
    write_hls_subtitles,
    write_webvtt,
)

__all__ = [
    "Cue",
    "InvalidSubtitles",
    "Recogniser",
    "Transcript",
    "TranscriptionFailed",
    "Word",
    "cues_from_words",
    "extract_audio",
    "parse_webvtt",
    "recogniser_for",
    "text_of",
    "to_webvtt",
    "transcribe",
    "write_hls_subtitles",
    "write_webvtt",
]


@dataclass(frozen=True)
class Transcript:
    """What :func:`transcribe` found, with the model that found it and how long each step took."""

    language: str
    model: str
    cues: list[Cue]
    words: list[Word]
    audio_duration_s: float
    extract_s: float
    recognise_s: float

    @property
    def text(self) -> str:
        """The plain transcript, for search."""
        return text_of(self.cues)

    @property
    def real_time_factor(self) -> float:
        """Seconds of recognition per second of audio (below 1: faster than real time)."""
        return self.recognise_s / self.audio_duration_s if self.audio_duration_s > 0 else 0.0


def transcribe(
    ffmpeg: str,
    source: Path,
    language: str,
    model: str | Recogniser = DEFAULT_MODEL,
    *,
    work_dir: Path | None = None,
) -> Transcript:
    """Transcribe the speech of a video (or audio) file into cues.

    ``ffmpeg`` is the ffmpeg executable; ``model`` a model string for :func:`recogniser_for` or a
    recogniser to reuse. The temporary WAV (about 115 MB per hour) goes in ``work_dir``, by
    default the system's temporary folder, and is removed afterwards. Raises
    :class:`TranscriptionFailed` for a file without audio, a damaged file, an unknown model or a
    language the model does not know (checked before any audio is decoded). A video in which no
    speech is found gives a transcript with no cues.
    """
    recogniser = recogniser_for(model) if isinstance(model, str) else model
    recogniser.check_language(language)
    with tempfile.TemporaryDirectory(prefix="lmsd-transcribe-", dir=work_dir) as tmp:
        wav = Path(tmp) / "audio.wav"
        started = time.monotonic()
        extract_audio(ffmpeg, source, wav)
        extracted = time.monotonic()
        duration = wav_duration(wav)
        words = recogniser.recognise(wav, language)
        recognised = time.monotonic()
    limit = math.floor(duration * 1000) / 1000  # cues end with the audio, to the millisecond
    cues = [
        Cue(cue.start_s, min(cue.end_s, limit), cue.text)
        for cue in cues_from_words(words)
        if cue.start_s < limit
    ]
    return Transcript(
        language=language,
        model=recogniser.name,
        cues=cues,
        words=words,
        audio_duration_s=duration,
        extract_s=extracted - started,
        recognise_s=recognised - extracted,
    )

"""Speech recognisers behind one small interface, chosen by a model string.

- ``pocketsphinx`` (the default): CMU PocketSphinx with the US English model bundled in its
  wheel; English only, modest accuracy, no download, about 0.45 s of CPU per second of audio.
- ``whisper:/path/to/ggml-model.bin``: whisper.cpp through the optional ``pywhispercpp`` package
  and a ggml model file the operator downloaded; many languages, much better accuracy.

Both are blocking and CPU-bound. PocketSphinx holds Python's GIL while it computes (measured: up
to about 2 s at a time, at the end of each stretch of speech) and pywhispercpp may as well, so run
them in a separate process (``ProcessPoolExecutor``) for an event loop in the same process to keep
its heartbeat. A recogniser instance serialises its calls with a lock.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from pathlib import Path
from typing import Any, Protocol

from lmsd.media.audio import SAMPLE_RATE, SpeechChunk, TranscriptionFailed, audio_windows, speech_chunks
from lmsd.media.cues import Word

DEFAULT_MODEL = "pocketsphinx"
WHISPER_PREFIX = "whisper:"
WHISPER_HINT = (
    "install a whisper.cpp model: `pip install pywhispercpp`, download a multilingual ggml model "
    "file (e.g. ggml-base.bin or ggml-small.bin from the whisper.cpp project) and set the "
    "transcription model to whisper:/path/to/ggml-base.bin"
)
_BLOCK_BYTES = SAMPLE_RATE * 2  # one second of s16le audio
# Pocketsphinx's markers for silence, breath and noise, not words.
_FILLER = re.compile(r"^(?:<.*>|\[.*\]|\+\+.*\+\+|\(.*\))$")
_ALTERNATE = re.compile(r"\(\d+\)$")  # "the(2)": the second pronunciation of "the"
# whisper.cpp's non-speech annotations: "[BLANK_AUDIO]", "(music)", "[Applause]"...
_WHISPER_NOISE = re.compile(r"^\s*(?:\[[^\]]*\]|\([^)]*\)|\*[^*]*\*)\s*$")


class Recogniser(Protocol):
    """Turns a 16 kHz mono WAV (see :func:`lmsd.media.audio.extract_audio`) into timed words."""

    @property
    def name(self) -> str:
        """Engine and model, recorded with the transcript, e.g. ``pocketsphinx:en-us``."""
        ...

    def check_language(self, language: str) -> None:
        """Raise :class:`TranscriptionFailed` if this recogniser has no model for ``language``."""
        ...

    def recognise(self, wav: Path, language: str) -> list[Word]:
        """The words spoken in ``wav``, in order, with times in seconds from its start."""
        ...


def primary_language(language: str) -> str:
    """``"en"`` for ``"en"``, ``"en-GB"``, ``"EN_us"``; raises on an empty or malformed tag."""
    primary = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    if not re.fullmatch(r"[a-z]{2,3}", primary):
        raise TranscriptionFailed(f"{language!r} is not a language tag (use e.g. 'en' or 'fr')")
    return primary


class PocketSphinxRecogniser:
    """PocketSphinx with its bundled US English model, decoding one stretch of speech at a time.

    The decoder gets a second of audio per call, so that other threads run in between (it holds
    the GIL while it works). Fed that way it normalises the audio with a running estimate that
    starts from a generic value, which costs the first seconds of a recording much of their
    accuracy (0.46 instead of 0.83 on the integration test's lecture); so the opening
    ``warmup_s`` of speech is decoded once to settle the estimate, then again for real. That is a
    fixed extra of a few seconds per video.
    """

    name = "pocketsphinx:en-us"

    def __init__(self, max_chunk_s: float = 30.0, warmup_s: float = 15.0) -> None:
        self._max_chunk_s = max_chunk_s
        self._warmup_s = warmup_s
        self._decoder: Any = None
        self._lock = threading.Lock()

    def check_language(self, language: str) -> None:
        if primary_language(language) != "en":
            raise TranscriptionFailed(f"no speech model for language {language!r}; {WHISPER_HINT}")

    def _load(self) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(loglevel="FATAL")  # the bundled en-us model; no log noise
        return self._decoder

    @staticmethod
    def _decode(decoder: Any, chunk: SpeechChunk, frame_rate: float) -> list[Word]:
        decoder.start_utt()
        for offset in range(0, len(chunk.pcm), _BLOCK_BYTES):
            decoder.process_raw(chunk.pcm[offset : offset + _BLOCK_BYTES])
        decoder.end_utt()
        words = []
        for segment in decoder.seg():
            text = str(segment.word)
            if _FILLER.match(text):
                continue
            start = chunk.start_s + int(segment.start_frame) / frame_rate
            end = chunk.start_s + (int(segment.end_frame) + 1) / frame_rate  # end_frame is inclusive
            words.append(Word(_ALTERNATE.sub("", text), round(start, 3), round(end, 3)))
        return words

    def recognise(self, wav: Path, language: str) -> list[Word]:
        self.check_language(language)
        with self._lock:
            decoder = self._load()
            frame_rate = float(decoder.config["frate"])
            words: list[Word] = []
            opening: list[SpeechChunk] = []  # held back until the normalisation has settled
            settled = False
            for chunk in speech_chunks(wav, self._max_chunk_s):
                if settled:
                    words.extend(self._decode(decoder, chunk, frame_rate))
                    continue
                opening.append(chunk)
                if sum(c.duration_s for c in opening) >= self._warmup_s:
                    words.extend(self._settle_and_decode(decoder, opening, frame_rate))
                    settled = True
            if not settled and opening:
                words.extend(self._settle_and_decode(decoder, opening, frame_rate))
            return words

    def _settle_and_decode(self, decoder: Any, opening: list[SpeechChunk], frame_rate: float) -> list[Word]:
        for chunk in opening:
            self._decode(decoder, chunk, frame_rate)  # only to settle the running estimate
        return [word for chunk in opening for word in self._decode(decoder, chunk, frame_rate)]


def _pywhispercpp_installed() -> bool:
    try:
        return importlib.util.find_spec("pywhispercpp") is not None
    except (ImportError, ValueError):
        return False


class WhisperCppRecogniser:
    """whisper.cpp through ``pywhispercpp``, one word per segment (``max_len=1``, ``split_on_word``).

    The audio goes in windows of ``window_s`` cut at quiet moments (see
    :func:`lmsd.media.audio.audio_windows`), so memory stays bounded for long lectures; whisper.cpp
    itself decodes 30 s at a time with the previous text as context.
    """

    def __init__(self, model_path: Path, window_s: float = 300.0, threads: int | None = None) -> None:
        if not _pywhispercpp_installed():
            raise TranscriptionFailed(
                "the whisper.cpp recogniser needs the pywhispercpp package, which is not installed; "
                + WHISPER_HINT
            )
        if not model_path.is_absolute():
            raise TranscriptionFailed(f"the whisper model path must be absolute, not {str(model_path)!r}")
        if not model_path.is_file():
            raise TranscriptionFailed(f"the whisper model file {model_path} does not exist; {WHISPER_HINT}")
        self.model_path = model_path
        self._window_s = window_s
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"whisper.cpp:{self.model_path.name}"

    @property
    def english_only(self) -> bool:
        """ggml-tiny.en.bin, ggml-base.en-q5_1.bin...: whisper's ``.en`` models know only English."""
        return ".en." in self.model_path.name or ".en-" in self.model_path.name

    def check_language(self, language: str) -> None:
        primary = primary_language(language)
        if self.english_only and primary != "en":
            raise TranscriptionFailed(
                f"no speech model for language {language!r}: {self.model_path.name} is English-only; "
                f"{WHISPER_HINT}"
            )

    def _load(self) -> Any:
        if self._model is None:
            from pywhispercpp.model import Model

            # A path that is a file is loaded as is; pywhispercpp downloads only for model *names*,
            # and __init__ checked that the file exists, so nothing is fetched at run time.
            self._model = Model(
                str(self.model_path), n_threads=self._threads, print_progress=False, print_realtime=False
            )
        return self._model

    def recognise(self, wav: Path, language: str) -> list[Word]:
        self.check_language(language)
        import numpy as np

        primary = primary_language(language)
        with self._lock:
            model = self._load()
            words: list[Word] = []
            for window in audio_windows(wav, self._window_s):
                samples = np.frombuffer(window.pcm, dtype=np.int16).astype(np.float32) / 32768.0
                if samples.size < SAMPLE_RATE // 10:
                    continue  # under 0.1 s: nothing to hear, and whisper.cpp rejects tiny inputs
                segments = model.transcribe(
                    samples, language=primary, token_timestamps=True, max_len=1, split_on_word=True
                )
                for segment in segments:
                    text = str(segment.text).strip()
                    if not text or _WHISPER_NOISE.match(text):
                        continue
                    # whisper.cpp times are in centiseconds from the start of the input.
                    start = window.start_s + int(segment.t0) / 100
                    end = window.start_s + int(segment.t1) / 100
                    words.append(Word(text, round(start, 3), round(max(start, end), 3)))
            return words


def recogniser_for(model: str = DEFAULT_MODEL) -> Recogniser:
    """The recogniser for a model string: ``pocketsphinx`` or ``whisper:/path/to/ggml-model.bin``.

    Raises :class:`TranscriptionFailed` for an unknown model, or when whisper.cpp is asked for and
    pywhispercpp or the model file is missing. Models load on first use, not here.
    """
    spec = model.strip()
    if spec in ("", DEFAULT_MODEL, PocketSphinxRecogniser.name):
        return PocketSphinxRecogniser()
    if spec.startswith(WHISPER_PREFIX):
        return WhisperCppRecogniser(Path(spec.removeprefix(WHISPER_PREFIX)).expanduser())
    raise TranscriptionFailed(
        f"unknown transcription model {model!r}: use 'pocketsphinx' or 'whisper:/path/to/ggml-model.bin'"
    )

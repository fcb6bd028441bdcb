"""From recognised words to subtitle cues.

The rules, in the order they apply (they follow common broadcast subtitling practice):

- a pause of ``gap_s`` or more between two words always starts a new cue;
- a cue holds at most two lines of ``max_chars / 2`` characters and lasts at most
  ``max_duration_s``; when the next word does not fit, the cue ends, and if it holds the end of a
  sentence (``.``, ``?``, ``!``) the break moves back to just after it (unless that leaves under
  ``min_duration_s`` of speech), so a new sentence starts a new cue; a word is never cut, even one
  longer than a line;
- a sentence end also closes a cue that is already half full, rather than starting the next
  sentence at the bottom of it;
- every cue stays on screen for at least ``min_duration_s``, unless the next cue starts earlier:
  cues never overlap.

Times are rounded to the millisecond, the precision of WebVTT. Cue text is WebVTT cue text: lines
joined by ``\\n``, with ``&``, ``<`` and ``>`` escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SENTENCE_END = (".", "?", "!", "…", '."', '?"', '!"')
_MS = 0.001


@dataclass(frozen=True, slots=True)
class Word:
    """A recognised word and when it was spoken, in seconds from the start of the audio."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Cue:
    """A subtitle: ``text`` (WebVTT cue text, lines joined by ``\\n``) shown from start to end."""

    start_s: float
    end_s: float
    text: str


def _normalised(words: Iterable[Word]) -> list[Word]:
    """Words in time order with text, each starting no earlier than the previous one ended."""
    ordered = sorted((w for w in words if w.text.strip()), key=lambda w: (w.start_s, w.end_s))
    result: list[Word] = []
    previous_end = 0.0
    for word in ordered:
        start = max(word.start_s, previous_end, 0.0)
        end = max(word.end_s, start)
        result.append(Word(" ".join(word.text.split()), start, end))
        previous_end = end
    return result


def wrap_lines(tokens: Sequence[str], width: int) -> list[str] | None:
    """``tokens`` on one line, or on two balanced lines of at most ``width``; None if they don't fit.

    A single token longer than ``width`` gets a line of its own rather than being cut.
    """
    text = " ".join(tokens)
    if len(text) <= width or len(tokens) == 1:
        return [text]
    best: tuple[int, int] | None = None  # (longer line, split index)
    for split in range(1, len(tokens)):
        top, bottom = " ".join(tokens[:split]), " ".join(tokens[split:])
        if len(top) <= width and len(bottom) <= width:
            # Balanced lines read best; on a tie the shorter line goes on top.
            key = (max(len(top), len(bottom)), split)
            if best is None or key < best:
                best = key
    if best is None:
        return None
    split = best[1]
    return [" ".join(tokens[:split]), " ".join(tokens[split:])]


def _ends_sentence(word: Word) -> bool:
    return word.text.endswith(SENTENCE_END)


def cues_from_words(
    words: Iterable[Word],
    max_chars: int = 84,
    max_duration_s: float = 6.0,
    min_duration_s: float = 1.0,
    gap_s: float = 1.2,
) -> list[Cue]:
    """Group words into cues following the rules in this module's docstring."""
    if max_chars < 2 or max_duration_s <= 0 or min_duration_s < 0 or gap_s <= 0:
        raise ValueError("max_chars must be at least 2 and the durations positive")
    width = (max_chars + 1) // 2

    def fits(group: Sequence[Word]) -> bool:
        tokens = [w.text for w in group]
        if len(group) == 1:
            return True
        if len(" ".join(tokens)) > max_chars or group[-1].end_s - group[0].start_s > max_duration_s:
            return False
        return wrap_lines(tokens, width) is not None

    def half_full(group: Sequence[Word]) -> bool:
        chars = len(" ".join(w.text for w in group))
        return chars * 2 >= max_chars or (group[-1].end_s - group[0].start_s) * 2 >= max_duration_s

    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in _normalised(words):
        if current and word.start_s - current[-1].end_s >= gap_s:
            groups.append(current)
            current = []
        if current and _ends_sentence(current[-1]) and half_full(current):
            groups.append(current)
            current = []
        while current and not fits([*current, word]):
            # Prefer to end the cue after its last sentence end, unless that leaves a cue too
            # short to read (under min_duration_s of speech).
            cut = len(current)
            for index in range(len(current) - 2, -1, -1):
                if _ends_sentence(current[index]):
                    if current[index].end_s - current[0].start_s >= min_duration_s:
                        cut = index + 1
                    break
            groups.append(current[:cut])
            current = current[cut:]
        current.append(word)
    if current:
        groups.append(current)
    return _timed(groups, width, min_duration_s)


def _timed(groups: list[list[Word]], width: int, min_duration_s: float) -> list[Cue]:
    """Cues with the minimum display time, clipped so that none overlaps the next."""
    starts = [round(group[0].start_s, 3) for group in groups]
    cues: list[Cue] = []
    for index, group in enumerate(groups):
        start = starts[index]
        if cues and start < cues[-1].end_s:
            start = cues[-1].end_s
        end = max(round(group[-1].end_s, 3), round(start + min_duration_s, 3))
        if index + 1 < len(groups):
            end = min(end, starts[index + 1])
        end = max(end, round(start + _MS, 3))  # a cue must end after it starts
        lines = wrap_lines([w.text for w in group], width) or [" ".join(w.text for w in group)]
        text = "\n".join(html.escape(line, quote=False) for line in lines)
        cues.append(Cue(start, end, text))
    return cues

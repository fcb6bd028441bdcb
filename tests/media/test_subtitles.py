"""Cues from words, WebVTT writing and strict parsing, markup sanitising, segmented WebVTT for HLS."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from lmsd.app.errors import CAPABILITY_STATUS
from lmsd.errors import Invalid
from lmsd.media import subtitles
from lmsd.media.cues import Cue, Word, cues_from_words, wrap_lines
from lmsd.media.subtitles import (
    TIMESTAMP_MAP,
    InvalidSubtitles,
    parse_webvtt,
    sanitise_cue_text,
    text_of,
    to_webvtt,
    write_hls_subtitles,
    write_webvtt,
)


def speak(text: str, start: float = 0.0, word_s: float = 0.3, gap_s: float = 0.1) -> list[Word]:
    """Words of ``text`` spoken one after another, each ``word_s`` long with ``gap_s`` between."""
    words = []
    for token in text.split():
        words.append(Word(token, round(start, 3), round(start + word_s, 3)))
        start += word_s + gap_s
    return words


def words_of(cues: Sequence[Cue]) -> list[str]:
    return text_of(cues).split()


def assert_well_formed(cues: Sequence[Cue]) -> None:
    for cue in cues:
        assert cue.end_s > cue.start_s
        lines = cue.text.split("\n")
        assert 1 <= len(lines) <= 2, cue
        assert all(len(line) <= 42 for line in lines), cue
    for before, after in zip(cues, cues[1:], strict=False):
        assert before.end_s <= after.start_s, (before, after)


# -- cues from words --------------------------------------------------------------------------


def test_no_words_no_cues() -> None:
    assert cues_from_words([]) == []
    assert cues_from_words([Word("  ", 0, 1)]) == []


def test_a_long_pause_starts_a_new_cue() -> None:
    words = speak("first part") + speak("second part", start=0.7 + 1.2)
    cues = cues_from_words(words)
    assert [c.text for c in cues] == ["first part", "second part"]
    # A shorter pause keeps the words together.
    assert [c.text for c in cues_from_words(speak("first part") + speak("second part", start=0.7 + 1.0))] == [
        "first part second part"
    ]


def test_long_speech_is_cut_into_cues_of_two_short_lines_and_at_most_six_seconds() -> None:
    text = " ".join(["the water cycle moves water between the ocean the air and the land"] * 12)
    words = speak(text)
    cues = cues_from_words(words)
    assert_well_formed(cues)
    assert words_of(cues) == text.split()  # nothing lost, nothing reordered, no word cut
    assert all(c.end_s - c.start_s <= 6.0 for c in cues)
    assert len(cues) > 10
    assert all(len(c.text.replace("\n", " ")) <= 84 for c in cues)


def test_the_duration_limit_applies_to_slow_speech() -> None:
    cues = cues_from_words(speak("one two three four five six seven eight", word_s=0.9, gap_s=0.2))
    assert all(c.end_s - c.start_s <= 6.0 for c in cues)
    assert len(cues) == 2


def test_lines_are_balanced_and_a_word_is_never_cut() -> None:
    assert wrap_lines(["a", "b", "c", "d"], 42) == ["a b c d"]
    assert wrap_lines(["aaaa", "bbbb", "cccc", "dddd", "eeee"], 15) == ["aaaa bbbb", "cccc dddd eeee"]
    assert wrap_lines(["aaaa", "bbbb", "cccc", "dddd", "eeee"], 12) is None
    assert wrap_lines(["x" * 20, "y" * 20, "z" * 20], 25) is None  # three long words need three lines
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis-and-more"
    cues = cues_from_words(speak(f"a {long_word} b"))
    assert long_word in [line for c in cues for line in c.text.split("\n")]
    assert words_of(cues) == ["a", long_word, "b"]


def test_a_cue_ends_after_a_sentence_rather_than_in_the_middle_of_the_next() -> None:
    text = "Clouds form when the vapour cools down high in the sky. Then the rain falls back to the ground."
    cues = cues_from_words(speak(text))
    assert cues[0].text.replace("\n", " ") == "Clouds form when the vapour cools down high in the sky."
    assert cues[1].text.replace("\n", " ").startswith("Then the rain")
    assert_well_formed(cues)


def test_a_sentence_end_closes_a_half_full_cue() -> None:
    cues = cues_from_words(speak("We start today with evaporation from the warm sea. Next comes rain."))
    assert [c.text.replace("\n", " ") for c in cues] == [
        "We start today with evaporation from the warm sea.",
        "Next comes rain.",
    ]
    # A short sentence does not get a cue of its own.
    assert len(cues_from_words(speak("Yes. We start with evaporation."))) == 1


def test_short_cues_are_shown_for_the_minimum_time_without_overlapping_the_next() -> None:
    alone = cues_from_words([Word("hi", 2.0, 2.2)])
    assert (alone[0].start_s, alone[0].end_s) == (2.0, 3.0)
    # The next cue starts 0.5 s later (a new sentence after a pause): the first stops there.
    cues = cues_from_words([Word("Hi.", 2.0, 2.2), Word("Next", 3.5, 3.8)], gap_s=1.2)
    assert [(c.start_s, c.end_s) for c in cues] == [(2.0, 3.0), (3.5, 4.5)]
    cues = cues_from_words([Word("Hi.", 2.0, 2.2), Word("Next", 3.5, 3.8)], gap_s=1.2, min_duration_s=2.0)
    assert [(c.start_s, c.end_s) for c in cues] == [(2.0, 3.5), (3.5, 5.5)]


def test_overlapping_or_unordered_words_still_give_ordered_cues_that_never_overlap() -> None:
    words = [Word("b", 1.0, 1.6), Word("a", 0.0, 1.5), Word("c", 1.2, 1.3), Word("d", 9.0, 9.0)]
    cues = cues_from_words(words, gap_s=0.5)
    assert words_of(cues) == ["a", "b", "c", "d"]
    assert_well_formed(cues)
    assert cues[-1].end_s == 10.0  # a zero-length word still gets the minimum display time


def test_word_text_is_escaped_for_webvtt() -> None:
    cues = cues_from_words([Word("AT&T", 0, 0.5), Word("<b>", 0.5, 1), Word("-->", 1, 1.5)])
    assert cues[0].text == "AT&amp;T &lt;b&gt; --&gt;"
    assert text_of(cues) == "AT&T <b> -->"


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        cues_from_words(speak("a"), max_duration_s=0)


# -- WebVTT -----------------------------------------------------------------------------------


def test_webvtt_round_trip() -> None:
    cues = cues_from_words(speak("Welcome to the course. " * 20, start=3599.5))
    text = to_webvtt(cues)
    assert text.startswith("WEBVTT\n\n00:59:59.500 --> 01:00:02.600\nWelcome to the course.\n")
    assert parse_webvtt(text) == cues
    assert parse_webvtt(text.encode()) == cues


def test_parse_accepts_what_editors_write() -> None:
    text = (
        "\ufeffWEBVTT - Lecture 1\r\nKind: captions\r\n\r\n"
        "NOTE edited by the instructor\r\n\r\n"
        "STYLE\r\n::cue { color: red }\r\n\r\n"
        "intro\r\n00:01.000 --> 00:02.500 align:start position:10%\r\n<i>Hello</i> &amp; welcome\r\n\r\n\r\n"
        "00:00:02.500 --> 00:00:04.000\r\ntwo\r\nlines\r\n"
    )
    assert parse_webvtt(text) == [Cue(1.0, 2.5, "<i>Hello</i> &amp; welcome"), Cue(2.5, 4.0, "two\nlines")]
    assert parse_webvtt("WEBVTT") == []


CUE = "00:00:01.000 --> 00:00:02.000\ntext\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", 'line 1: missing WEBVTT header: the file must start with the line "WEBVTT"'),
        ("1\n00:00:01.000 --> 00:00:02.000\nhello\n", "line 1: missing WEBVTT header"),
        ("WEBVTTX\n\n" + CUE, "line 1: missing WEBVTT header"),
        ("WEBVTT\n" + CUE, "line 2: a blank line must separate the WEBVTT header from the first cue"),
        (
            "WEBVTT\n\n00:00:1.000 --> 00:00:02.000\nx\n",
            "line 3: bad timestamp '00:00:1.000': write hh:mm:ss.ttt",
        ),
        ("WEBVTT\n\n00:00:01,000 --> 00:00:02,000\nx\n", "line 3: bad timestamp '00:00:01,000'"),
        (
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nx\n\n00:61.000 --> 01:02.000\ny\n",
            "line 6: bad timestamp '00:61.000'",
        ),
        ("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nx\n", "line 3: expected a cue timing line"),
        ("WEBVTT\n\nhello\nworld\n", "line 3: expected a cue timing line like 00:00:01.000 --> 00:00:04.000"),
        ("WEBVTT\n\n00:00:01.000 -->00:00:02.000\nx\n", "line 3: bad cue timing line"),
        (
            "WEBVTT\n\n00:00:02.000 --> 00:00:02.000\nx\n",
            "line 3: the cue ends at or before it starts (00:00:02.000 --> 00:00:02.000)",
        ),
        ("WEBVTT\n\nid\n00:00:03.000 --> 00:00:02.000\nx\n", "line 4: the cue ends at or before it starts"),
        (
            "WEBVTT\n\n" + CUE + "\n00:00:01.500 --> 00:00:03.000\ny\n",
            "line 6: the cue overlaps the cue on line 3, which ends at 00:00:02.000",
        ),
        (
            "WEBVTT\n\n" + CUE + "\n00:00:00.500 --> 00:00:00.900\ny\n",
            "line 6: cues are out of order: this one starts at 00:00:00.500, before the cue on line 3",
        ),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n", "line 3: the cue has no text"),
        (
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<b> </b><script></script>\n",
            "line 3: the cue has no text",
        ),
        (
            "WEBVTT\n\n00:00:00.000 --> 00:02:00.000\nx\n",
            "line 3: the cue lasts 120.000 s; the limit is 60 s",
        ),
        (
            "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n" + "word " * 300 + "\n",
            "line 3: the cue has 1499 characters; the limit is 1000",
        ),
        (
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nx\n00:00:03.000 --> 00:00:04.000\ny\n",
            "line 5: cue text cannot contain '-->'",
        ),
    ],
)
def test_parse_rejects_bad_files_naming_the_line(content: str, message: str) -> None:
    with pytest.raises(InvalidSubtitles) as caught:
        parse_webvtt(content)
    assert str(caught.value).startswith(message), str(caught.value)
    assert isinstance(caught.value, Invalid)
    assert CAPABILITY_STATUS[InvalidSubtitles] == (422, "Invalid subtitles")


def test_parse_rejects_a_file_too_large_or_not_utf8() -> None:
    with pytest.raises(InvalidSubtitles, match=r"the subtitle file is 358 bytes; the limit is 100 bytes"):
        parse_webvtt("WEBVTT\n\n" + CUE * 10, max_bytes=100)
    with pytest.raises(InvalidSubtitles, match="is 4194305 bytes"):
        parse_webvtt(b"WEBVTT\n\n" + b"x" * (4 * 1024 * 1024 - 7))
    with pytest.raises(InvalidSubtitles, match="line 3: the file is not UTF-8 text"):
        parse_webvtt(b"WEBVTT\n\n\xff\xfe\n")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<b>bold</b> <i>it</i> <u>under</u>", "<b>bold</b> <i>it</i> <u>under</u>"),
        ("<script>alert(1)</script>", "alert(1)"),
        ('<img src=x onerror="alert(1)">hi', "hi"),
        ('<a href="javascript:alert(1)">link</a>', "link"),
        ("<v.loud Dr. Ana O'Neil>Hello</v>", "<v.loud Dr. Ana O'Neil>Hello</v>"),
        ('<v Bob" onmouseover="x()>hi', "<v Bob onmouseover x>hi</v>"),
        ("<c.yellow.bg_blue>y</c>", "<c.yellow.bg_blue>y</c>"),
        ("<lang en-GB>colour</lang> <lang x y>z</lang>", "<lang en-GB>colour</lang> <lang>z</lang>"),
        ("<ruby>漢<rt>kan</rt></ruby>", "<ruby>漢<rt>kan</rt></ruby>"),
        ("<B>loud</B>", "<b>loud</b>"),
        ("<b><i>unclosed", "<b><i>unclosed</i></b>"),
        ("</i>stray <b>x</i>", "stray <b>x</b>"),
        ("karaoke <00:00:01.500>time", "karaoke time"),
        ("a < b && c > d, I <3 it", "a &lt; b &amp;&amp; c &gt; d, I &lt;3 it"),
        ("&amp; &lt;b&gt; a&nbsp;b", "&amp; &lt;b&gt; a\xa0b"),
        ("one\n\n  \ntwo\x00\x07", "one\ntwo"),
        ("<b\nunterminated", "<b>\nunterminated</b>"),
    ],
)
def test_markup_outside_webvtt_is_stripped(raw: str, clean: str) -> None:
    assert sanitise_cue_text(raw) == clean
    assert sanitise_cue_text(clean) == clean  # idempotent


def test_parsed_and_written_cues_are_sanitised() -> None:
    cues = parse_webvtt("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>x</script><b>y</b>\n")
    assert cues == [Cue(1.0, 2.0, "x<b>y</b>")]
    written = to_webvtt([Cue(0, 1, "<iframe>a</iframe>\n\nb"), Cue(1, 2, "<img>")])
    assert written == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na\nb\n\n"


def test_text_of_is_the_plain_transcript() -> None:
    cues = [
        Cue(0, 1, "<v Ana>Hello &amp;\nwelcome</v>"),
        Cue(1, 2, "<b></b>"),
        Cue(2, 3, "to  <i>AT&amp;T</i>."),
    ]
    assert text_of(cues) == "Hello & welcome to AT&T."


# -- segmented WebVTT for HLS ------------------------------------------------------------------


def playlist_entries(out: Path) -> list[tuple[float, str]]:
    lines = (out / "index.m3u8").read_text().splitlines()
    return [
        (float(line[8:].rstrip(",")), lines[i + 1])
        for i, line in enumerate(lines)
        if line.startswith("#EXTINF:")
    ]


def test_segmented_webvtt(tmp_path: Path) -> None:
    cues = [
        Cue(0.5, 2.0, "first"),
        Cue(5.0, 7.0, "across the boundary"),
        Cue(12.0, 18.5, "spans two segments"),
        Cue(19.0, 21.0, "runs past the end"),
        Cue(21.0, 22.0, "after the end"),
    ]
    out = tmp_path / "subtitles" / "en"
    write_hls_subtitles(cues, out, duration_s=20.0, segment_s=6.0)
    playlist = (out / "index.m3u8").read_text()
    assert playlist.startswith("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n")
    assert "#EXT-X-PLAYLIST-TYPE:VOD\n" in playlist and playlist.endswith("#EXT-X-ENDLIST\n")
    assert playlist_entries(out) == [
        (6.0, "seg_00001.vtt"),
        (6.0, "seg_00002.vtt"),
        (6.0, "seg_00003.vtt"),
        (2.0, "seg_00004.vtt"),
    ]
    assert sorted(p.name for p in out.iterdir()) == ["index.m3u8", *[f"seg_0000{n}.vtt" for n in range(1, 5)]]
    segments = {n: (out / f"seg_0000{n}.vtt").read_text() for n in range(1, 5)}
    for text in segments.values():
        assert text.startswith(f"WEBVTT\n{TIMESTAMP_MAP}\n\n")
    parsed = {n: [c.text for c in parse_webvtt(text)] for n, text in segments.items()}
    assert parsed == {
        1: ["first", "across the boundary"],  # 0-6 s
        2: ["across the boundary"],  # 6-12 s: the next cue starts at 12, in the next segment
        3: ["spans two segments"],  # 12-18 s
        4: ["spans two segments", "runs past the end"],  # 18-20 s
    }
    # Cue times stay absolute (the timestamp map is 0 ↔ 0) and are clipped to the video's end.
    assert parse_webvtt(segments[4])[-1] == Cue(19.0, 20.0, "runs past the end")


def test_target_duration_covers_the_longest_segment(tmp_path: Path) -> None:
    write_hls_subtitles([], tmp_path / "a", duration_s=4.5, segment_s=4.5)
    assert "#EXT-X-TARGETDURATION:5\n" in (tmp_path / "a" / "index.m3u8").read_text()
    assert playlist_entries(tmp_path / "a") == [(4.5, "seg_00001.vtt")]
    with pytest.raises(ValueError):
        write_hls_subtitles([], tmp_path / "b", duration_s=0, segment_s=6)


def test_rewrite_replaces_the_whole_rendition_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "en"
    write_hls_subtitles([Cue(0, 1, "old")], out, duration_s=30.0, segment_s=6.0)
    write_hls_subtitles([Cue(0, 1, "new")], out, duration_s=10.0, segment_s=6.0)
    assert sorted(p.name for p in out.iterdir()) == ["index.m3u8", "seg_00001.vtt", "seg_00002.vtt"]
    assert "new" in (out / "seg_00001.vtt").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["en"]  # no staging or retired folders left


def test_a_failed_rewrite_keeps_the_old_rendition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "en"
    write_hls_subtitles([Cue(0, 1, "old")], out, duration_s=12.0, segment_s=6.0)
    before = {p.name: p.read_text() for p in out.iterdir()}
    calls = 0
    real_render = subtitles._render

    def failing_render(cues: Sequence[Cue], header: Sequence[str] = ()) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        return real_render(cues, header)

    monkeypatch.setattr(subtitles, "_render", failing_render)
    with pytest.raises(OSError, match="disk full"):
        write_hls_subtitles([Cue(0, 1, "new")], out, duration_s=12.0, segment_s=6.0)
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["en"]


def test_a_reader_never_sees_half_a_playlist(tmp_path: Path) -> None:
    out = tmp_path / "en"
    write_hls_subtitles([Cue(0, 1, "v0")], out, duration_s=60.0, segment_s=2.0)
    stop = threading.Event()

    def rewrite() -> None:
        for version in range(1, 40):
            write_hls_subtitles([Cue(0, 1, f"v{version}")], out, duration_s=60.0 + version, segment_s=2.0)
        stop.set()

    writer = threading.Thread(target=rewrite)
    writer.start()
    seen = 0
    while not stop.is_set():
        try:
            text = (out / "index.m3u8").read_text()
        except FileNotFoundError:
            continue  # the instant between the two renames
        assert text.startswith("#EXTM3U\n") and text.endswith("#EXT-X-ENDLIST\n")
        seen += 1
    writer.join()
    assert seen > 0


def test_write_webvtt_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "subtitles" / "en.vtt"
    write_webvtt([Cue(0, 1, "a")], path)
    write_webvtt([Cue(0, 1, "b")], path)
    assert parse_webvtt(path.read_text()) == [Cue(0, 1, "b")]
    assert [p.name for p in path.parent.iterdir()] == ["en.vtt"]

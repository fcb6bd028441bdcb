"""Wire shapes of the video API (msgspec: validated, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from lmsd.courses.schemas import Lang, Title


class RenditionOut(msgspec.Struct):
    name: str
    width: int
    height: int
    bandwidth: int
    codecs: str
    remuxed: bool


class VideoOut(msgspec.Struct):
    id: uuid.UUID
    course_id: uuid.UUID
    title: str
    filename: str
    size_bytes: int
    language: str  # the spoken language: the video's override, else the course's
    status: str  # uploaded | transcoding | ready | failed
    progress: int  # percent of the transcode
    error: str
    duration_s: float
    width: int
    height: int
    renditions: list[RenditionOut]
    transcript_status: str  # pending | ready | failed | off
    transcript_error: str
    created_at: datetime
    updated_at: datetime


class VideoPage(msgspec.Struct):
    items: list[VideoOut]


class VideoPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    language: Lang | None | msgspec.UnsetType = msgspec.UNSET  # null: the course's language


class SubtitleOut(msgspec.Struct):
    language: str
    label: str
    url: str  # the whole WebVTT file, signed


class PlaybackOut(msgspec.Struct):
    video_id: uuid.UUID
    title: str
    duration_s: float
    master_url: str  # the HLS master playlist, signed; valid until expires_at
    poster_url: str
    thumbnails_url: str  # WebVTT map of the thumbnail sprite ("" when none)
    subtitles: list[SubtitleOut]
    expires_at: datetime


class CueOut(msgspec.Struct):
    start_s: float
    end_s: float
    text: str


class TranscriptOut(msgspec.Struct):
    video_id: uuid.UUID
    language: str
    revision: int
    source: str  # auto | edited
    model: str
    cues: list[CueOut]
    updated_at: datetime


class TranscribeIn(msgspec.Struct, forbid_unknown_fields=True):
    language: Lang | None = None  # default: the video's language


class Accepted(msgspec.Struct):
    video_id: uuid.UUID
    status: str


Json = dict[str, Any]
Seconds = Annotated[float, msgspec.Meta(ge=0)]

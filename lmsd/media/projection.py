"""The ``media`` projection: the transcoder's reports (aggregate ``transcode``) become the state
of the video rows — progress, the finished ladder, or the failure with ffmpeg's reason.

Reports are state, not history: a late progress report never moves a finished video back, and
a redelivered one changes nothing (the consumer claims every event id once).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from google.protobuf.json_format import MessageToDict

from lmsd.events.consumers import Delivered
from lmsd.events.envelope import NewEvent


def _rendition(message: Any) -> dict[str, Any]:
    found = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    return {k: found[k] for k in ("name", "width", "height", "bandwidth", "average_bandwidth", "codecs", "playlist", "remuxed")}


class MediaProjection:
    name = "media"
    tables: tuple[str, ...] = ("videos",)

    async def apply(self, conn: asyncpg.Connection, events: list[Delivered], *, live: bool) -> list[NewEvent]:
        for delivered in events:
            event = delivered.event
            kind = event.WhichOneof("body")
            campus_id, video_id = uuid.UUID(event.campus_id), uuid.UUID(event.aggregate_id)
            if kind == "transcode_progress":
                progress = event.transcode_progress
                await conn.execute(
                    "UPDATE videos SET status = 'transcoding', progress = GREATEST(progress, $3), "
                    "attempts = GREATEST(attempts, $4), updated_at = now() "
                    "WHERE campus_id = $1 AND id = $2 AND status IN ('uploaded', 'transcoding')",
                    campus_id, video_id, min(int(progress.percent), 99), int(progress.attempt),
                )
            elif kind == "video_transcoded":
                body = event.video_transcoded
                audio = _rendition(body.audio) if body.HasField("audio") else None
                renditions = [_rendition(r) for r in body.renditions]
                # the transcoder's folder is relative to the data directory: .../hls
                await conn.execute(
                    "UPDATE videos SET status = 'ready', progress = 100, error = '', renditions = $3::jsonb, "
                    "audio = $4::jsonb, poster = $5, sprite_vtt = $6, duration_ms = $7, "
                    "attempts = GREATEST(attempts, $8), updated_at = now() WHERE campus_id = $1 AND id = $2",
                    campus_id, video_id, renditions, audio,
                    body.poster, body.sprite_vtt, int(body.duration_ms), int(body.attempt),
                )
            elif kind == "transcode_failed":
                failed = event.transcode_failed
                if failed.final:
                    await conn.execute(
                        "UPDATE videos SET status = 'failed', error = $3, attempts = GREATEST(attempts, $4), "
                        "updated_at = now() WHERE campus_id = $1 AND id = $2 AND status <> 'ready'",
                        campus_id, video_id, failed.reason[:2000], int(failed.attempt),
                    )
                else:
                    await conn.execute(
                        "UPDATE videos SET error = $3, attempts = GREATEST(attempts, $4), updated_at = now() "
                        "WHERE campus_id = $1 AND id = $2 AND status <> 'ready'",
                        campus_id, video_id, f"attempt {failed.attempt} failed: {failed.reason}"[:2000], int(failed.attempt),
                    )
        return []

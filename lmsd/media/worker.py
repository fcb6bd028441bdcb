"""The media worker (``python -m lmsd.media.worker``), supervised by the runtime:

- the ``media`` consumer: the transcoder's reports become the videos' state (lmsd.media.projection);
- the ``transcribe`` work queue: a transcoded video (or a request to transcribe it again) is
  transcribed offline into WebVTT subtitles, stored as the next transcript revision and
  published (``transcript_published``) in one transaction;
- unfinished uploads past their expiry are removed.

Transcription runs in a thread while the job is kept alive with in-progress acks. A failure
that will not change by retrying (no audio, no model for the language) marks the transcript
failed at once; others are retried with back-off and dead-lettered after the consumer's attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import asyncpg
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError, ServiceUnavailableError

from lmsd.credentials import Secrets
from lmsd.events import connection, process
from lmsd.events.consumers import ConsumerRunner, Stopping, dead_letter, held, kept_in_progress
from lmsd.events.envelope import Undecodable, decode
from lmsd.events.streams import consumer_spec
from lmsd.media import storage, tools, transcripts
from lmsd.media.projection import MediaProjection
from lmsd.media.transcribe import TranscriptionFailed, transcribe
from lmsd.settings import Settings

log = logging.getLogger("lmsd.media.worker")
TRANSCRIBE = consumer_spec("transcribe")
SWEEP_EVERY_S = 600.0
IDLE = "consuming: media, transcribe"


class Transcriber:
    def __init__(self, js: JetStreamContext, pool: asyncpg.Pool, settings: Settings, beat: process.Heartbeat) -> None:
        self.js = js
        self.pool = pool
        self.settings = settings
        self.beat = beat
        # pocketsphinx holds the GIL while it decodes: in a thread it would stall this loop
        # (heartbeat, the media consumer, in-progress acks) for seconds at a time
        self.processes = self._pool()

    @staticmethod
    def _pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self.js.pull_subscribe_bind(durable=TRANSCRIBE.name, stream=TRANSCRIBE.stream)
        while not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                continue
            except NatsError as exc:
                if not isinstance(exc, NotFoundError | ServiceUnavailableError):
                    log.warning("transcribe: fetch failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            for msg in msgs:
                await self.handle(msg, stop)

    async def handle(self, msg: Msg, stop: asyncio.Event | None = None) -> None:
        try:
            event = decode(msg.data)
        except Undecodable as exc:
            await dead_letter(self.js, TRANSCRIBE.name, msg, str(exc))
            await msg.ack()
            return
        kind = event.WhichOneof("body")
        campus_id, video_id = uuid.UUID(event.campus_id), uuid.UUID(event.aggregate_id)
        requested = event.transcription_requested.language if kind == "transcription_requested" else ""
        try:
            await self._transcribe(msg, event.id, campus_id, video_id, requested, stop)
        except TranscriptionFailed as exc:
            # the same input fails the same way: say so on the video, do not retry
            reason = str(exc)
            with contextlib.suppress(Stopping):
                await held([msg], lambda: self._failed(campus_id, video_id, reason), stop, TRANSCRIBE.name)
                await msg.ack()
        except Stopping:
            pass  # the job comes back to whoever consumes next
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RuntimeError, ValueError) as exc:
            delivered = msg.metadata.num_delivered
            log.warning("transcribe %s: attempt %s failed: %s", video_id, delivered, exc)
            if isinstance(exc, BrokenProcessPool):  # the recogniser process died: a new one
                self.processes = self._pool()
            if delivered >= TRANSCRIBE.max_attempts:
                await dead_letter(self.js, TRANSCRIBE.name, msg, f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(OSError, asyncpg.PostgresError):
                    await self._failed(campus_id, video_id, f"{type(exc).__name__}: {exc}")
                await msg.ack()
            else:
                await msg.nak(delay=min(10.0 * 2 ** (delivered - 1), 120.0))
        finally:
            self.beat.detail = IDLE

    async def _transcribe(
        self, msg: Msg, event_id: str, campus_id: uuid.UUID, video_id: uuid.UUID, requested: str, stop: asyncio.Event | None
    ) -> None:
        """Transcribe one job. Its database steps hold the job while the database is away
        (:func:`lmsd.events.consumers.held`): an outage neither spends attempts nor redoes the
        recognition that came before it."""
        row, done, existing = await held(
            [msg], lambda: self._lookup(event_id, campus_id, video_id, requested), stop, TRANSCRIBE.name
        )
        if row is None:
            await msg.ack()  # the video was deleted
            return
        language = requested or row["language"]
        if done or (not requested and existing is not None):
            # applied already, or a re-delivered/re-run transcode must not replace what exists
            # (an instructor may have edited it); asking again explicitly does
            await msg.ack()
            return
        model = self.settings.media.transcription_model
        if model == "off":
            await held([msg], lambda: self._off(campus_id, video_id), stop, TRANSCRIBE.name)
            await msg.ack()
            return
        source = storage.source_file(self.settings, video_id)
        self.beat.detail = f"transcribing {video_id}"
        work = asyncio.get_running_loop().run_in_executor(
            self.processes, transcribe, tools.ffmpeg(self.settings.media), Path(source), language, model
        )
        async with kept_in_progress([msg], TRANSCRIBE.ack_wait_s / 3):
            result = await work

        async def save() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                claimed = await conn.fetchval(
                    "INSERT INTO consumer_applied (campus_id, consumer, event_id, stream_seq) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT DO NOTHING RETURNING event_id",
                    campus_id, TRANSCRIBE.name, uuid.UUID(event_id), msg.metadata.sequence.stream,
                )
                if claimed is not None:
                    await transcripts.save_transcript(
                        conn, self.settings, campus_id, row["course_id"], video_id, language, result.cues, "auto",
                        result.model, None, row["duration_ms"] / 1000,
                    )

        await held([msg], save, stop, TRANSCRIBE.name)
        await msg.ack()
        log.info("transcribed %s (%s, %d cues)", video_id, language, len(result.cues))

    async def _lookup(
        self, event_id: str, campus_id: uuid.UUID, video_id: uuid.UUID, requested: str
    ) -> tuple[asyncpg.Record | None, bool, str | None]:
        """The video (course, duration, language), whether this job was done, and the source of
        the transcript that exists in its language."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT v.course_id, v.duration_ms, coalesce(v.language, c.language) AS language "
                "FROM videos v JOIN courses c ON c.campus_id = v.campus_id AND c.id = v.course_id "
                "WHERE v.campus_id = $1 AND v.id = $2",
                campus_id, video_id,
            )
            if row is None:
                return None, False, None
            done = await conn.fetchval(
                "SELECT 1 FROM consumer_applied WHERE campus_id = $1 AND consumer = $2 AND event_id = $3",
                campus_id, TRANSCRIBE.name, uuid.UUID(event_id),
            )
            existing = await conn.fetchval(
                "SELECT source FROM video_transcripts WHERE campus_id = $1 AND video_id = $2 AND language = $3",
                campus_id, video_id, requested or row["language"],
            )
        return row, done is not None, existing

    async def _off(self, campus_id: uuid.UUID, video_id: uuid.UUID) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE videos SET transcript_status = 'off' WHERE campus_id = $1 AND id = $2", campus_id, video_id
            )

    async def _failed(self, campus_id: uuid.UUID, video_id: uuid.UUID, reason: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE videos SET transcript_status = 'failed', transcript_error = $3, updated_at = now() "
                "WHERE campus_id = $1 AND id = $2",
                campus_id, video_id, reason[:2000],
            )


async def sweep_uploads(pool: asyncpg.Pool, settings: Settings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                gone = await conn.fetch("DELETE FROM uploads WHERE expires_at < now() RETURNING id")
            await storage.remove(*(storage.upload_file(settings, row["id"]) for row in gone))
            if gone:
                log.info("removed %d expired uploads", len(gone))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("upload sweep skipped: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_EVERY_S)


async def main(settings: Settings, secrets: Secrets, stop: asyncio.Event, beat: process.Heartbeat) -> None:
    pool = await connection.pg_pool(settings, secrets, size=4)
    nc = await connection.nats_service(settings, secrets, "lmsd-media-worker")
    js = nc.jetstream()
    beat.detail = IDLE
    transcriber = Transcriber(js, pool, settings, beat)
    try:
        await asyncio.gather(
            ConsumerRunner(js, pool, consumer_spec("media"), MediaProjection()).run(stop),
            transcriber.run(stop),
            sweep_uploads(pool, settings, stop),
        )
    finally:
        transcriber.processes.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            await nc.close()
        await pool.close()


if __name__ == "__main__":
    raise SystemExit(process.run("lmsd-media-worker", main))

"""Playback: a grant signed for the video's folder, the master playlist a player fetches with it,
and the content steering that orders the origin and the CDN pathways (docs/video.md)."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.credentials import Secrets
from lmsd.db.models import video_transcripts, videos
from lmsd.errors import Conflict, Forbidden, NotFound
from lmsd.media import playlists, signing
from lmsd.media.schemas import PlaybackOut, SubtitleOut
from lmsd.media.videos import load_video
from lmsd.policy import Identity
from lmsd.settings import MediaSettings, Settings


def now() -> float:
    return time.time()


def media_folder(video_id: uuid.UUID) -> str:
    """The video's folder under the media root, as a URL path (a signing scope)."""
    return f"/media/videos/{video_id}/"


def _expiry(media: MediaSettings, now: float) -> int:
    # rounded up to the minute: grants made in the same minute are equal (cache friendly)
    return (int(now) + media.url_ttl_s) // 60 * 60 + 60


async def playback(
    session: AsyncSession, actor: Identity, settings: Settings, secrets: Secrets, video_id: uuid.UUID, now: float
) -> PlaybackOut:
    row, course = await load_video(session, actor, video_id, "video.watch")
    if row.status != "ready":
        detail = f"{row.progress}% transcoded" if row.status in ("uploaded", "transcoding") else row.error
        raise Conflict(f"the video is not ready to play ({row.status}: {detail})")
    expires = _expiry(settings.media, now)
    scope = media_folder(video_id)
    query = signing.scope_query(secrets.media_signing_key, scope, expires)
    languages = await subtitle_languages(session, actor.campus_id, video_id)
    return PlaybackOut(
        video_id=video_id, title=row.title, duration_s=row.duration_ms / 1000,
        master_url=f"/api/v1/media/videos/{video_id}/master.m3u8?{query}",
        poster_url=f"{scope}hls/{row.poster}?{query}" if row.poster else "",
        thumbnails_url=f"{scope}hls/{row.sprite_vtt}?{query}" if row.sprite_vtt else "",
        subtitles=[
            SubtitleOut(language=lang, label=playlists.language_name(lang), url=f"{scope}subtitles/{quote(lang)}.vtt?{query}")
            for lang in languages
        ],
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


async def subtitle_languages(session: AsyncSession, campus_id: uuid.UUID, video_id: uuid.UUID) -> list[str]:
    rows = await session.execute(
        select(video_transcripts.c.language)
        .where(video_transcripts.c.campus_id == campus_id, video_transcripts.c.video_id == video_id)
        .order_by(video_transcripts.c.updated_at)
    )
    return list(rows.scalars().all())


@dataclass(frozen=True)
class Grant:
    """The signed query of a master playlist or steering request: it grants the video's folder."""

    expires: int
    scope: str
    sig: str

    def check(self, secrets: Secrets, video_id: uuid.UUID, now: float) -> None:
        if self.scope != media_folder(video_id):
            raise Forbidden("the signature is for another video")
        if self.expires < now:
            raise Forbidden("the playback link expired; open the video again")
        if not signing.verify_scope(secrets.media_signing_key, self.scope, self.expires, self.sig, now):
            raise Forbidden("invalid media signature")

    def query(self) -> str:
        return f"exp={self.expires}&scope={quote(self.scope, safe='')}&sig={self.sig}"

    @classmethod
    def parse(cls, exp: str | None, scope: str | None, sig: str | None) -> Grant:
        if not exp or not scope or not sig:
            raise Forbidden("media URL is not signed")
        try:
            return cls(int(exp), scope, sig)
        except ValueError:
            raise Forbidden("invalid media signature") from None


@functools.lru_cache(maxsize=32)
def _key_file(path: str) -> str:
    """A pathway's signing key, read once per process (a changed key needs a restart, as config
    does). A few bytes of configuration, read at most once: it stays on the calling thread."""
    return Path(path).read_text().strip()


def routes(settings: Settings, secrets: Secrets, video_id: uuid.UUID, grant: Grant) -> list[playlists.Route]:
    """The origin, then each CDN pathway, with its own signed query for the video's folder."""
    folder = media_folder(video_id)
    found = [playlists.Route("origin", folder, grant.query())]
    for pathway in settings.media.pathways:
        base = pathway.base_url + folder.removeprefix("/media/")
        if pathway.signing == "none":
            query = ""
        else:
            key = _key_file(pathway.key_file) if pathway.key_file else secrets.media_signing_key
            query = signing.scope_query(key, folder, grant.expires)
        found.append(playlists.Route(pathway.id, base, query))
    return found


async def master(
    session: AsyncSession, settings: Settings, secrets: Secrets, video_id: uuid.UUID, grant: Grant, now: float,
    client_ip: str,
) -> str:
    """The master playlist for a signed request (no account: players fetch it by its URL)."""
    grant.check(secrets, video_id, now)
    row = (await session.execute(select(videos).where(videos.c.id == video_id))).one_or_none()
    if row is None or row.status != "ready":
        raise NotFound("no such video")
    languages = await subtitle_languages(session, row.campus_id, video_id)
    found = routes(settings, secrets, video_id, grant)
    steering_uri = None
    if len(found) > 1:
        steering_uri = f"/api/v1/media/steering/{video_id}?{grant.query()}"
        found = _ordered(settings, found, client_ip, set())
    return playlists.master_playlist(
        row.renditions or [], row.audio, languages, found,
        frame_rate=float((row.probe or {}).get("frame_rate", 0) or 0), steering_uri=steering_uri,
    )


def _ordered(settings: Settings, found: list[playlists.Route], client_ip: str, unhealthy: set[str]) -> list[playlists.Route]:
    priority = steering_priority(settings, client_ip, unhealthy)
    return sorted(found, key=lambda r: priority.index(r.pathway))


def steering_priority(settings: Settings, client_ip: str, unhealthy: set[str]) -> list[str]:
    media = settings.media
    region = playlists.region_of(client_ip, media.region_networks) if client_ip else None
    pathways = [("origin", media.origin_regions), *((p.id, p.regions) for p in media.pathways)]
    return playlists.pathway_priority(pathways, region, unhealthy)


def steering(
    settings: Settings, secrets: Secrets, video_id: uuid.UUID, grant: Grant, now: float, client_ip: str,
    unhealthy: set[str],
) -> dict[str, Any]:
    grant.check(secrets, video_id, now)
    return playlists.steering_manifest(
        steering_priority(settings, client_ip, unhealthy), settings.media.steering_ttl_s,
        f"/api/v1/media/steering/{video_id}?{grant.query()}",
    )

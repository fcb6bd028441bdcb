"""HTTP for videos: tus 1.0 uploads, video records, playback grants, playlists, steering,
transcripts (docs/video.md)."""

from __future__ import annotations

import uuid
from datetime import UTC
from email.utils import format_datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, head, patch, post, put, route
from litestar.datastructures import State
from litestar.enums import HttpMethod
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from lmsd.media import playback, transcripts, uploads, videos
from lmsd.media.schemas import (
    Accepted,
    PlaybackOut,
    TranscribeIn,
    TranscriptOut,
    VideoOut,
    VideoPage,
    VideoPatch,
)
from lmsd.media.subtitles import MAX_WEBVTT_BYTES
from lmsd.media.uploads import TUS_EXTENSIONS, TUS_VERSION, UploadState
from lmsd.policy import Identity
from lmsd.server.errors import problem

HLS = "application/vnd.apple.mpegurl"
PROBLEM = "application/problem+json"
NO_STORE = {"Cache-Control": "no-store"}
MAX_PATCH_BYTES = 64 * 1024**3  # the upload's own Upload-Length is the real limit
WHOLE_BYTES = r"^[0-9]{1,18}$"  # Upload-Length, Upload-Offset


def _tus_headers(state: UploadState | None = None, **extra: str) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, **NO_STORE, **extra}
    if state is not None:
        headers["Upload-Offset"] = str(state.offset)
        headers["Upload-Length"] = str(state.length)
        headers["Upload-Expires"] = format_datetime(state.expires_at.astimezone(UTC), usegmt=True)
    return headers


def _tus_version_problem(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Every tus request but OPTIONS names the protocol version (412 otherwise)."""
    if request.headers.get("tus-resumable") == TUS_VERSION:
        return None
    response = problem(412, "Precondition failed", f"this server speaks tus {TUS_VERSION}: send Tus-Resumable: {TUS_VERSION}")
    response.headers.update({"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION})
    return response


class UploadController(Controller):
    """Resumable uploads (tus 1.0: core, creation, termination, checksum, expiration)."""

    path = "/api/v1/uploads"
    tags = ["videos"]

    @route("/", http_method=[HttpMethod.OPTIONS], status_code=204, include_in_schema=False)
    async def capabilities(self, state: State) -> Response[None]:
        """What this tus server supports."""
        return Response(
            None, status_code=204,
            headers={
                "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(state.settings.media.max_upload_mb * 1024 * 1024),
                "Tus-Checksum-Algorithm": ",".join(uploads.CHECKSUMS),
            },
        )

    @post("/", status_code=201, opt={"headers": {"Upload-Length": WHOLE_BYTES}})  # documented by lmsd.server.openapi
    async def create(self, request: Request[Any, Any, State], db: AsyncSession, identity: Identity) -> Response[Any]:
        """Create an upload (tus creation). ``Upload-Length`` is the file's size; ``Upload-Metadata``
        must carry ``course_id`` and ``filename`` and ``filetype``, may carry ``title`` and ``language``.
        The upload's URL is in ``Location``; its id becomes the video's id."""
        if (wrong := _tus_version_problem(request)) is not None:
            return wrong
        state = await uploads.create_upload(
            db, identity, request.app.state.settings, request.headers.get("upload-length"),
            request.headers.get("upload-metadata", ""),
        )
        return Response(
            None, status_code=201, headers=_tus_headers(state, Location=f"/api/v1/uploads/{state.id}")
        )

    @head("/{upload_id:uuid}", status_code=200)
    async def offset(
        self, request: Request[Any, Any, State], db: AsyncSession, identity: Identity, upload_id: uuid.UUID
    ) -> Response[None]:
        """How many bytes the server has (tus core)."""
        if _tus_version_problem(request) is not None:  # HEAD: the problem's headers, no body
            return Response(None, status_code=412, headers={"Tus-Version": TUS_VERSION}, media_type=PROBLEM)
        state = await uploads.upload_state(db, identity, request.app.state.settings, upload_id)
        return Response(None, status_code=200, headers=_tus_headers(state))

    @patch(  # 204 set below; the body documented by lmsd.server.openapi
        "/{upload_id:uuid}", status_code=200, request_max_body_size=MAX_PATCH_BYTES,
        opt={"raw_body": (("application/offset+octet-stream",), MAX_PATCH_BYTES)},
    )
    async def append(
        self, request: Request[Any, Any, State], db: AsyncSession, identity: Identity, upload_id: uuid.UUID,
        upload_offset: Annotated[str, Parameter(header="Upload-Offset", pattern=WHOLE_BYTES)],
    ) -> Response[Any]:
        """Append bytes at ``Upload-Offset`` (``application/offset+octet-stream``; optional
        ``Upload-Checksum: sha1|sha256|md5 <base64>``). When the last byte arrives the file is
        probed: a playable video answers 204 with ``Lmsd-Video-Id``; anything else a 422 that
        says why (the upload is then removed)."""
        if (wrong := _tus_version_problem(request)) is not None:
            return wrong
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
            response = problem(415, "Unsupported media type", "send the bytes as application/offset+octet-stream")
            response.headers.update(_tus_headers())
            return response
        state, video_id = await uploads.append(
            db, identity, request.app.state.settings, upload_id, upload_offset,
            request.headers.get("upload-checksum"), request.stream(),
        )
        extra = {"Lmsd-Video-Id": str(video_id)} if video_id else {}
        return Response(None, status_code=204, headers=_tus_headers(state, **extra))

    @delete("/{upload_id:uuid}", status_code=204)
    async def terminate(
        self, request: Request[Any, Any, State], db: AsyncSession, identity: Identity, upload_id: uuid.UUID
    ) -> Response[None]:  # a problem body when refused
        """Abandon an upload and free its space (tus termination)."""
        if (wrong := _tus_version_problem(request)) is not None:
            return wrong
        await uploads.terminate(db, identity, request.app.state.settings, upload_id)
        return Response(None, status_code=204, headers=_tus_headers())


class VideoController(Controller):
    path = "/api/v1"
    tags = ["videos"]

    @get("/courses/{course_id:uuid}/videos")
    async def list_videos(self, db: AsyncSession, identity: Identity, course_id: uuid.UUID) -> VideoPage:
        """The course's videos with their transcoding and transcription state."""
        return VideoPage(items=await videos.course_videos(db, identity, course_id))

    @get("/videos/{video_id:uuid}")
    async def get_video(self, db: AsyncSession, identity: Identity, video_id: uuid.UUID) -> VideoOut:
        """One video: ``status`` (uploaded, transcoding, ready, failed), ``progress`` in percent."""
        return await videos.get_video(db, identity, video_id)

    @patch("/videos/{video_id:uuid}")
    async def update_video(self, db: AsyncSession, identity: Identity, video_id: uuid.UUID, data: VideoPatch) -> VideoOut:
        """Rename a video or set its spoken language (null: the course's)."""
        return await videos.update_video(db, identity, video_id, data)

    @get("/videos/{video_id:uuid}/playback")
    async def playback(
        self, request: Request[Any, Any, State], db: AsyncSession, identity: Identity, video_id: uuid.UUID
    ) -> Response[PlaybackOut]:
        """Signed, expiring URLs to play the video: the HLS master playlist, poster, thumbnails
        and subtitles (409 while it is still being transcoded)."""
        app_state = request.app.state
        grant = await playback.playback(db, identity, app_state.settings, app_state.secrets, video_id, playback.now())
        return Response(grant, headers={"Cache-Control": "private, no-store"})

    @get("/videos/{video_id:uuid}/transcript")
    async def get_transcript(
        self, db: AsyncSession, identity: Identity, video_id: uuid.UUID,
        language: Annotated[str | None, Parameter(max_length=16)] = None,
    ) -> TranscriptOut:
        """The transcript's cues (the video's language unless ``language`` is given)."""
        return await transcripts.transcript(db, identity, video_id, language)

    @put(
        "/videos/{video_id:uuid}/transcript", request_max_body_size=MAX_WEBVTT_BYTES + 1,
        opt={"raw_body": (("text/vtt", "text/plain"), MAX_WEBVTT_BYTES)},  # documented by lmsd.server.openapi
    )
    async def put_transcript(
        self, request: Request[Any, Any, State], db: AsyncSession, identity: Identity, video_id: uuid.UUID,
        language: Annotated[str | None, Parameter(max_length=16)] = None,
    ) -> Response[Any]:
        """Replace the transcript with an edited WebVTT file (``text/vtt``) and publish it as the
        subtitles (422 with the line of the first problem)."""
        if request.headers.get("content-type", "").split(";")[0].strip() not in ("text/vtt", "text/plain"):
            return problem(415, "Unsupported media type", "send the transcript as text/vtt")
        body = await request.body()
        out = await transcripts.publish_transcript(db, identity, request.app.state.settings, video_id, language, body.decode("utf-8", "replace"))
        return Response(out)

    @post("/videos/{video_id:uuid}/transcribe", status_code=202)
    async def transcribe(
        self, request: Request[Any, Any, State], db: AsyncSession, identity: Identity, video_id: uuid.UUID,
        data: TranscribeIn,
    ) -> Accepted:
        """Transcribe the video again (e.g. after its language was corrected)."""
        await transcripts.request_transcription(db, identity, request.app.state.settings, video_id, data.language)
        return Accepted(video_id=video_id, status="pending")


class MediaPlaylistController(Controller):
    """Fetched by players with the signed query of a playback grant, not with an account."""

    path = "/api/v1/media"
    tags = ["videos"]
    include_in_schema = False

    @get("/videos/{video_id:uuid}/master.m3u8", media_type=HLS)
    async def master(
        self, request: Request[Any, Any, State], db: AsyncSession, video_id: uuid.UUID,
        exp: str | None = None, grant_scope: Annotated[str | None, Parameter(query="scope")] = None,
        sig: str | None = None,
    ) -> Response[str]:
        app_state = request.app.state
        text = await playback.master(
            db, app_state.settings, app_state.secrets, video_id, playback.Grant.parse(exp, grant_scope, sig),
            playback.now(), request.headers.get("x-lmsd-client-ip", ""),
        )
        return Response(text, media_type=HLS, headers={"Cache-Control": "private, max-age=60"})

    @get("/steering/{video_id:uuid}")
    async def steering(
        self, request: Request[Any, Any, State], video_id: uuid.UUID,
        exp: str | None = None, grant_scope: Annotated[str | None, Parameter(query="scope")] = None,
        sig: str | None = None,
    ) -> Response[dict[str, Any]]:
        """HLS content steering: PATHWAY-PRIORITY by the client's region and pathway health."""
        app_state = request.app.state
        manifest = playback.steering(
            app_state.settings, app_state.secrets, video_id, playback.Grant.parse(exp, grant_scope, sig), playback.now(),
            request.headers.get("x-lmsd-client-ip", ""), app_state.pathway_health.unhealthy(),
        )
        return Response(manifest, headers={"Cache-Control": "no-store"})

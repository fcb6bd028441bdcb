"""The portal's static files (``lmsd/portal/static``) at ``/static/``.

A small handler rather than Litestar's static router: it needs exact MIME types (``.js`` is
``text/javascript`` whatever the host's mime.types says), conditional requests answered with
304, a problem+json 404 and an allow-list of file types, so nothing else in the folder leaks.
"""

from __future__ import annotations

import hashlib
import os
import stat
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache
from pathlib import Path

import anyio
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Brotli and gzip copies of the static files, made by `npm run build` (lmsd/portal/web/build.mjs)
COMPRESSED_DIR = Path(__file__).resolve().parent / "static_compressed"
COMPRESSIBLE = {".js", ".mjs", ".css", ".svg", ".json", ".txt", ".vtt", ".ico"}
# Our own scripts minified by the same build (static/min/<name>), served in their place
MINIFIED = "min/"
PREFIX = "/static/"
# Files here are not fingerprinted by name: pages cache-bust with ``?v=`` (see asset_url) and
# the validators below make a revalidation after a day cost one 304.
CACHE_CONTROL = "public, max-age=86400"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def resolve(path: str, root: Path = STATIC_DIR) -> Path | None:
    """The file ``path`` names inside ``root``, or None: no ``..``, no hidden files, no other types."""
    parts = path.strip("/").split("/")
    if not parts or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    if Path(parts[-1]).suffix.lower() not in TYPES:
        return None
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root.resolve()):
        return None  # a symlink pointing out of the folder
    return candidate


def _not_modified(request: Request[object, object, State], etag: str, mtime: float) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:  # RFC 9110 §13.1.2: If-None-Match wins over If-Modified-Since
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return int(mtime) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


@get(f"{PREFIX}{{path:path}}", include_in_schema=False, name="static")
async def static_file(path: str, request: Request[object, object, State]) -> Response[bytes]:
    return await _serve(path, request)


async def _serve(path: str, request: Request[object, object, State]) -> Response[bytes]:
    file = resolve(path)
    if file is None:
        raise NotFoundException("no such file")
    try:
        info = await anyio.Path(file).stat()
    except OSError:
        raise NotFoundException("no such file") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotFoundException("no such file")
    encoding, variant = await _precompressed(file, info, request.headers.get("accept-encoding", ""))
    tag = f"{info.st_mtime_ns:x}-{info.st_size:x}"
    etag = f'"{tag}-{encoding}"' if encoding else f'"{tag}"'
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
        "Last-Modified": formatdate(info.st_mtime, usegmt=True),
        "X-Content-Type-Options": "nosniff",
    }
    if file.suffix.lower() in COMPRESSIBLE:
        headers["Vary"] = "Accept-Encoding"
    if encoding:
        headers["Content-Encoding"] = encoding
    if _not_modified(request, etag, info.st_mtime):
        return Response(b"", status_code=304, headers=headers)
    body = await anyio.Path(variant).read_bytes()
    # Litestar adds "; charset=utf-8" to text/* itself.
    return Response(body, media_type=TYPES[file.suffix.lower()].split(";")[0], headers=headers)


def _accepts(accept_encoding: str, coding: str) -> bool:
    """Whether ``Accept-Encoding`` allows ``coding`` (RFC 9110 §12.5.3; ``q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in (coding, "*"):
            q = params.strip()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


async def _precompressed(file: Path, info: os.stat_result, accept_encoding: str) -> tuple[str, Path]:
    """The Brotli or gzip copy ``npm run build`` made of ``file`` (static_compressed/), when the
    browser takes it and the copy is not older than the file; else the file itself."""
    if file.suffix.lower() not in COMPRESSIBLE:
        return "", file
    relative = file.relative_to(STATIC_DIR.resolve()) if file.is_relative_to(STATIC_DIR.resolve()) else None
    if relative is None:
        return "", file
    for coding, suffix in (("br", ".br"), ("gzip", ".gz")):
        if not _accepts(accept_encoding, coding):
            continue
        variant = COMPRESSED_DIR / f"{relative}{suffix}"
        try:
            if (await anyio.Path(variant).stat()).st_mtime_ns >= info.st_mtime_ns:
                return coding, variant
        except OSError:
            continue
    return "", file


@lru_cache(maxsize=64)
def _fingerprint(name: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``: a new release's file is never taken from a stale cache.
    A script of ours is served minified (``min/<name>``) when the build made a copy that is not
    older than the source (so an edited source is served as it is until the next build)."""
    file = resolve(name)
    if file is None:
        raise ValueError(f"not a static file: {name}")
    try:
        info = file.stat()
    except OSError:
        return PREFIX + name  # not built (vendor/ before `npm run build`): the 404 shows it
    if name.endswith(".js") and "/" not in name:
        try:
            small = (STATIC_DIR / MINIFIED / name).stat()
        except OSError:
            pass
        else:
            if small.st_mtime_ns >= info.st_mtime_ns:
                name, info = MINIFIED + name, small
    return f"{PREFIX}{name}?v={_fingerprint(name, info.st_mtime_ns, info.st_size)}"


@get("/favicon.ico", include_in_schema=False)
async def favicon(request: Request[object, object, State]) -> Response[bytes]:
    """Browsers ask for /favicon.ico on their own; they get the portal's icon (SVG)."""
    return await _serve("favicon.svg", request)

"""Signed media URLs, verified by the gateway without a database call.

A URL for ``/media/<path>`` carries ``exp`` (Unix seconds) and ``sig`` (and ``scope`` when a
whole folder is granted)::

    sig = base64url(HMAC-SHA256(key, f"{exp}\\n{signed}"))   # no padding

``signed`` is the decoded request path, or the scope: a ``/media/.../`` prefix that covers every
file below it. HLS needs the scope form: a player fetches segments relative to the playlist, and
the gateway appends the same ``exp``/``scope``/``sig`` to the relative URIs of a scoped playlist.
The key is ``Secrets.media_signing_key`` (its UTF-8 bytes); the gateway reads it from a 0600 file.
The Rust side (``rust/gateway/src/media.rs``) checks the same test vector as this module's tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

MEDIA_PREFIX = "/media/"


def _signature(key: str | bytes, signed: str, expires_at: int) -> str:
    raw_key = key.encode() if isinstance(key, str) else key
    mac = hmac.new(raw_key, f"{expires_at}\n{signed}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign_media_path(key: str | bytes, path: str, expires_at: int) -> str:
    """The query string that grants ``path`` until ``expires_at`` (Unix seconds).

    ``path`` is the decoded URL path, starting with ``/media/``. A path ending in ``/`` is a
    scope: the query then grants every file below it (use it for an HLS playlist's folder).
    """
    if not path.startswith(MEDIA_PREFIX) or len(path) == len(MEDIA_PREFIX):
        raise ValueError(f"media paths start with {MEDIA_PREFIX} and name something: {path!r}")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError(f"media paths cannot have dot segments: {path!r}")
    if expires_at < 0:
        raise ValueError("expires_at must be a Unix time")
    sig = _signature(key, path, expires_at)
    if path.endswith("/"):
        return f"exp={expires_at}&scope={quote(path, safe='')}&sig={sig}"
    return f"exp={expires_at}&sig={sig}"


def signed_media_url(key: str | bytes, path: str, expires_at: int, file: str = "") -> str:
    """A relative URL for ``path`` (or for ``file`` inside the scope ``path``), signed."""
    target = path + file if path.endswith("/") else path
    return f"{quote(target)}?{sign_media_path(key, path, expires_at)}"


def verify_scope(key: str | bytes, scope: str, expires_at: int, sig: str, now: float) -> bool:
    """Does ``sig`` grant the folder ``scope`` until ``expires_at``, and is that still ahead?"""
    if not scope.startswith(MEDIA_PREFIX) or not scope.endswith("/") or expires_at < now:
        return False
    return hmac.compare_digest(_signature(key, scope, expires_at), sig)


def scope_query(key: str | bytes, scope: str, expires_at: int) -> str:
    """The query string granting the folder ``scope`` (a ``/media/…/`` prefix)."""
    if not scope.endswith("/"):
        raise ValueError(f"a scope ends with /: {scope!r}")
    return sign_media_path(key, scope, expires_at)

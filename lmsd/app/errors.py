"""The HTTP statuses of the capabilities' own error classes, added to the edge's one table
(:data:`lmsd.server.errors.STATUS`) by :func:`lmsd.app.create_app`: the core imports no
capability, so the composition root brings them together."""

from __future__ import annotations

from lmsd.errors import LmsdError
from lmsd.media.audio import TranscriptionFailed
from lmsd.media.errors import BadRequest, ChecksumMismatch, Gone, TooLarge, UnsupportedType
from lmsd.media.subtitles import InvalidSubtitles

CAPABILITY_STATUS: dict[type[LmsdError], tuple[int, str]] = {
    ChecksumMismatch: (460, "Checksum mismatch"),  # the tus checksum extension's status
    TooLarge: (413, "Upload too large"),
    UnsupportedType: (415, "Unsupported media type"),
    BadRequest: (400, "Bad request"),
    Gone: (410, "Gone"),
    TranscriptionFailed: (422, "Transcription failed"),
    InvalidSubtitles: (422, "Invalid subtitles"),
}

__all__ = ["CAPABILITY_STATUS"]

"""What a tus upload can be refused for, beyond the domain's general errors.

No HTTP here: the composition root's table (``lmsd.app.errors``) gives each its status
(``ChecksumMismatch`` is the tus checksum extension's 460).
"""

from __future__ import annotations

from lmsd.errors import LmsdError


class ChecksumMismatch(LmsdError):
    """tus checksum extension: the chunk's checksum does not match; nothing of it was kept."""

    default_code = "upload.checksum_mismatch"


class TooLarge(LmsdError):
    """The upload is longer than a campus accepts, than it declared, or than the disk can hold."""

    default_code = "upload.too_large"


class UnsupportedType(LmsdError):
    """The declared file type is not one the campus accepts."""

    default_code = "upload.unsupported_type"


class BadRequest(LmsdError):
    """A tus header is missing or malformed."""

    default_code = "upload.bad_request"


class Gone(LmsdError):
    """The upload expired."""

    default_code = "upload.expired"

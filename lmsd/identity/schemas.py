"""The identity capability's field types for HTTP bodies (its own and other capabilities'): the
limits are the service's constants (:mod:`lmsd.identity.service`), which checks the same rules
whatever the entry point, so the API document states exactly what is refused."""

from __future__ import annotations

from typing import Annotated

import msgspec

from lmsd.identity.service import DISPLAY_NAME_MAX, EMAIL_MAX, EMAIL_PATTERN, PASSWORD_MAX, PASSWORD_MIN

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=EMAIL_MAX, pattern=EMAIL_PATTERN)]
# a password being checked (sign-in): any length up to the maximum
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=PASSWORD_MAX)]
# a new password (an account, a reset, a campus's first administrator)
NewPassword = Annotated[str, msgspec.Meta(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=DISPLAY_NAME_MAX)]

__all__ = ["DisplayName", "Email", "NewPassword", "Password"]

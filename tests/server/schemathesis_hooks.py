"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in test_schemathesis: tus's chunk body,
``application/offset+octet-stream``, is bytes on the wire like ``application/octet-stream``."""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

"""The composition root: the one place that imports every capability and the portal and wires
them to the core's generic parts (:mod:`lmsd.server`) into the API worker's Litestar app.

Nothing imports this package but the worker's entry point (``python -m lmsd.app``), operator
tools that need the whole app (the OpenAPI document) and tests.
"""

from __future__ import annotations

from lmsd.app.factory import create_app

__all__ = ["create_app"]

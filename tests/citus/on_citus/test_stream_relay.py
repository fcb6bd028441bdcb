"""tests.events.test_stream_relay on Citus (see __init__.py)."""

from tests.events.test_stream_relay import *  # noqa: F403

"""How operator workflows report progress, without knowing about Rich or the terminal."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Protocol


class Reporter(Protocol):
    def step(self, title: str) -> contextlib.AbstractContextManager[None]: ...

    def info(self, message: str) -> None: ...


class SilentReporter:
    """For callers that only want the result (tests, other workflows); keeps the timings."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.messages: list[str] = []

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[title] = time.perf_counter() - start

    def info(self, message: str) -> None:
        self.messages.append(message)

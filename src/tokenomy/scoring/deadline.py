"""A clock and a stop switch for CPU work that runs in a worker thread.

Cancelling the asyncio task that awaits `asyncio.to_thread(...)` does not stop
the thread: a compression of a megabyte prompt would go on for a minute after
its client left. The work checks `check()` at its loop boundaries instead
(embedding batches, trimming rounds); the stage that started it sets a
`Deadline` around the call, and `cancel()`s it when its task is cancelled.
The deadline travels in a context variable, which `asyncio.to_thread` copies
into the thread.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager


class WorkCancelled(Exception):
    """The work's time cap passed, or whoever waited for it went away."""


class Deadline:
    def __init__(self, seconds: float | None):
        self.ends = None if seconds is None else time.monotonic() + seconds
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def check(self) -> None:
        if self.cancelled:
            raise WorkCancelled("cancelled: the request went away")
        if self.ends is not None and time.monotonic() > self.ends:
            raise WorkCancelled("the time cap passed")


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "tokenomy_deadline", default=None)


def check() -> None:
    """Raise WorkCancelled if the current work's deadline passed or it was cancelled."""
    deadline = _current.get()
    if deadline is not None:
        deadline.check()


@contextmanager
def paused() -> Iterator[None]:
    """Time spent inside (loading a model, once per process) does not count against the
    current deadline: a cold start must not make the first request's work give up."""
    found = _current.get()
    began = time.monotonic()
    try:
        yield
    finally:
        if found is not None and found.ends is not None:
            found.ends += time.monotonic() - began


@contextmanager
def deadline(seconds: float | None) -> Iterator[Deadline]:
    """Work started inside (including via `asyncio.to_thread`) stops at `check()` once
    `seconds` have passed or the yielded Deadline is cancelled."""
    found = Deadline(seconds)
    token = _current.set(found)
    try:
        yield found
    finally:
        _current.reset(token)

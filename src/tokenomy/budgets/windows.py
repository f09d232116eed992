"""Budget windows: which window a moment falls in, and when it resets.

Fixed windows (1h, 1d, 7d, 30d) are aligned to the Unix epoch in UTC, so every
replica computes the same boundaries without talking to the others; `month`
is the calendar month in UTC. A window is named by its start (epoch seconds).
"""

from __future__ import annotations

from datetime import UTC, datetime

_FIXED = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def window_bounds(window: str, now: float) -> tuple[int, int]:
    """(start, end) in epoch seconds of the window containing `now`."""
    if window in _FIXED:
        size = _FIXED[window]
        start = int(now // size) * size
        return start, start + size
    if window == "month":
        moment = datetime.fromtimestamp(now, UTC)
        first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        following = datetime(year, month, 1, tzinfo=UTC)
        return int(first.timestamp()), int(following.timestamp())
    raise ValueError(f"unknown budget window {window!r}")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")

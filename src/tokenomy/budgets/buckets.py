"""Time buckets for charts: hours or UTC days, computed in SQL on both databases.

A bucket is named by its start (epoch seconds, a multiple of its size), so
SQLite and PostgreSQL group alike and every replica draws the same axis.
Empty buckets are filled in, so a chart's x axis is time, not "the hours that
had traffic".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Integer, cast, func

Bucket = Literal["hour", "day"]
SIZE = {"hour": 3600, "day": 86400}
MAX_BUCKETS = 400  # past this many, an axis is unreadable and the query pointless


def choose(since: float | None, until: float, first: float | None) -> Bucket:
    """Hours for a period up to two days long, days beyond."""
    start = since if since is not None else first
    if start is None:
        return "day"
    return "hour" if until - start <= 2 * 86400 else "day"


def expression(column: Any, bucket: Bucket, dialect: str) -> Any:
    """The SQL for `floor(column / size)`: the bucket's index since the epoch."""
    size = SIZE[bucket]
    if dialect == "postgresql":
        return func.floor(column / size)
    return cast(column / size, Integer)  # SQLite truncates; times are positive


def label(start: float, bucket: Bucket) -> str:
    moment = datetime.fromtimestamp(start, UTC)
    return moment.strftime("%Y-%m-%d") if bucket == "day" else moment.strftime("%m-%d %H:00")


def starts(first: float, last: float, bucket: Bucket) -> list[float]:
    """Every bucket start from the one holding `first` to the one holding `last`."""
    size = SIZE[bucket]
    begin, end = int(first // size), int(last // size)
    begin = max(begin, end - MAX_BUCKETS + 1)
    return [float(i * size) for i in range(begin, end + 1)]

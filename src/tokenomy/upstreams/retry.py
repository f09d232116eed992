"""When and how long to wait before trying a backend again."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime

# 529: Anthropic's "overloaded" (its SDK retries it too).
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER = 10.0


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter; a server's Retry-After wins, capped."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return min(0.2 * (2**attempt), 4.0) * (0.5 + random.random() / 2)

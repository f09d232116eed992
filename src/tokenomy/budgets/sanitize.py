"""Make a request row storable: what the database cannot hold is cleaned, never a failure.

A client chooses its `step`, `user`, `tags` and model name, and an upstream
its usage figures. PostgreSQL refuses a NUL byte, a lone UTF-16 surrogate, a
string longer than its column and an integer past its column's range; one such
row used to fail its settle, keep its reservation held and then fail every
reconciliation after it. So before anything is written:

- text loses NUL, control characters (newlines and tabs survive in `error`
  only) and lone surrogates, and is cut to its column's length, ending in `…`;
- counts and money that are negative, not finite or past the column's range
  are clamped (negative usage is never credited) and logged;
- a row that was changed says so in its tags (`tokenomy.sanitized`: the
  fields), so a report can tell a cleaned value from a sent one.

`minimal_row` is the last resort when even a cleaned row is refused: the
figures and identity the budget needs, nothing a client wrote.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import unicodedata
from typing import Any

from sqlalchemy import BigInteger, Integer, String

from tokenomy.budgets import schema
from tokenomy.budgets.rows import RequestRow, Saving, UsageTotals

log = logging.getLogger(__name__)

MARKER = "tokenomy.sanitized"
CUT = "…"
ERROR_CHARS = 4000  # an upstream's error page does not belong in the ledger whole
TAG_CHARS = 256
MAX_TAGS = 64
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
# Plausible request times: after 2001 and before 2100 (a bad `ts` breaks `day`).
_TS_RANGE = (1e9, 4.1e9)


def _limits() -> tuple[dict[str, int], dict[str, int]]:
    text: dict[str, int] = {}
    ints: dict[str, int] = {}
    for column in schema.requests.columns:
        kind = column.type
        if isinstance(kind, String) and kind.length:
            text[column.name] = kind.length
        elif isinstance(kind, BigInteger):
            ints[column.name] = _INT64
        elif isinstance(kind, Integer):
            ints[column.name] = _INT32
    text["error"] = ERROR_CHARS
    return text, ints


_TEXT, _INTS = _limits()
_TEXT_FIELDS = [name for name in _TEXT if name in RequestRow.model_fields]
_COUNTS = [name for name, info in UsageTotals.model_fields.items() if info.annotation is int]
_MONEY = [name for name, info in UsageTotals.model_fields.items() if info.annotation is float]


def clean_text(value: str, limit: int, *, multiline: bool = False) -> str:
    """`value` without NUL, control characters or lone surrogates, at most `limit` long."""
    if not value.isprintable():
        value = "".join(
            ch
            for ch in value
            if unicodedata.category(ch) not in ("Cc", "Cs") or (multiline and ch in "\n\t")
        )
    if len(value) > limit:
        value = value[: limit - 1] + CUT
    return value


def _request_id(value: str) -> str:
    cleaned = clean_text(value, 10**6)
    if cleaned == value and len(value) <= _TEXT["request_id"]:
        return value
    # Deterministic, so a retried or replayed settle still finds the same row.
    return "tk-h-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _count(value: int, name: str) -> int:
    return min(max(0, value), _INTS.get(name, _INT32))


def _money(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


_TEXT_ITEMS = [(name, _TEXT[name]) for name in _TEXT_FIELDS]
_COUNT_ITEMS = [(name, _INTS.get(name, _INT32)) for name in _COUNTS]
_MONEY_FIELDS = [*_MONEY, "latency_ms"]


def _storable(row: RequestRow) -> bool:
    """The hot path: True when nothing needs cleaning (checked without copying)."""
    d = row.__dict__
    for name, limit in _TEXT_ITEMS:
        value = d[name]
        if value is not None and (len(value) > limit or not value.isprintable()):
            return False
    for name, top in _COUNT_ITEMS:
        if not 0 <= d[name] <= top:
            return False
    for name in _MONEY_FIELDS:
        if not 0 <= d[name] < math.inf:  # NaN fails this too
            return False
    if not (_TS_RANGE[0] <= row.ts <= _TS_RANGE[1] and 0 <= row.status <= 999):
        return False
    tags = row.tags
    if len(tags) > MAX_TAGS:
        return False
    return all(
        len(k) <= TAG_CHARS and len(v) <= TAG_CHARS and k.isprintable() and v.isprintable()
        for k, v in tags.items()
    )


def clean_row(row: RequestRow) -> RequestRow:
    """The row as the database can store it; logs what it had to change."""
    if _storable(row):
        return row
    updates: dict[str, Any] = {}
    changed: list[str] = []
    for name in _TEXT_FIELDS:
        value = getattr(row, name)
        if not isinstance(value, str):
            continue
        fixed = (
            _request_id(value)
            if name == "request_id"
            else clean_text(value, _TEXT[name], multiline=name == "error")
        )
        if fixed != value:
            updates[name] = fixed
            changed.append(name)
    absurd: list[str] = []
    for name in _COUNTS:
        value = getattr(row, name)
        if _count(value, name) != value:
            updates[name] = _count(value, name)
            absurd.append(f"{name}={value}")
    for name in [*_MONEY, "latency_ms"]:
        value = getattr(row, name)
        if _money(value) != value and value != 0:
            updates[name] = _money(value)
            absurd.append(f"{name}={value}")
    if not _TS_RANGE[0] <= row.ts <= _TS_RANGE[1]:
        updates["ts"] = time.time()
        absurd.append(f"ts={row.ts}")
    if not 0 <= row.status <= 999:
        updates["status"] = 0
        absurd.append(f"status={row.status}")
    tags = _clean_tags(row.tags)
    if tags != row.tags:
        changed.append("tags")
    if absurd:
        # Negative or impossible figures from a backend are clamped, never credited.
        log.warning(
            "ledger: request %s: clamped absurd figures %s", row.request_id, ", ".join(absurd)
        )
        changed.extend(a.split("=", 1)[0] for a in absurd)
    if not changed:
        return row
    log.warning(
        "ledger: request %s: sanitised %s before storing", row.request_id, ", ".join(changed)
    )
    tags[MARKER] = ",".join(changed)[:TAG_CHARS]
    updates["tags"] = tags
    return row.model_copy(update=updates)


def _clean_tags(tags: dict[str, str]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for key, value in list(tags.items())[:MAX_TAGS]:
        cleaned[clean_text(str(key), TAG_CHARS)] = clean_text(str(value), TAG_CHARS)
    return cleaned


def clean_savings(request_id: str, savings: list[Saving]) -> list[Saving]:
    """Savings as storable: a technique name fits its column, tokens are never negative.

    Money may be negative (caching can cost more than it saved in one
    request: a write premium), but it must be a number.
    """
    out: list[Saving] = []
    for s in savings:
        technique = clean_text(s.technique, 64) or "unknown"
        tokens = _count(s.tokens, "tokens_saved")
        usd = s.usd if math.isfinite(s.usd) else 0.0
        if (technique, tokens, usd) != (s.technique, s.tokens, s.usd):
            log.warning("ledger: request %s: clamped saving %s", request_id, s.model_dump())
        out.append(Saving(technique=technique, tokens=tokens, usd=usd))
    return out


def minimal_row(row: RequestRow, reason: BaseException | str) -> RequestRow:
    """Only the figures and the identity the budget needs, in plain ASCII."""

    def ascii_(value: str | None, limit: int) -> str | None:
        if value is None:
            return None
        return clean_text(value.encode("ascii", "ignore").decode(), limit) or None

    keep = {name: getattr(row, name) for name in UsageTotals.model_fields}
    return RequestRow(
        request_id=_request_id(row.request_id),
        ts=row.ts if _TS_RANGE[0] <= row.ts <= _TS_RANGE[1] else time.time(),
        team=ascii_(row.team, _TEXT["team"]) or "unknown",
        key_id=ascii_(row.key_id, _TEXT["key_id"]),
        status=row.status if 0 <= row.status <= 999 else 0,
        outcome=row.outcome if row.outcome.isascii() and len(row.outcome) <= 16 else "error",
        error=ascii_(f"the row could not be stored as sent: {reason}", 500),
        stream=row.stream,
        estimated=row.estimated,
        tags={MARKER: "row"},
        **keep,
    )

"""Anything else: repeats, progress and look-alike runs fold, a very long output keeps
its head and tail; query items and error lines stay wherever they are."""

from __future__ import annotations

from tokenomy.compressors.tool_outputs import fold
from tokenomy.compressors.tool_outputs.plan import Plan
from tokenomy.compressors.tool_outputs.query import QueryItems


def plan_generic(lines: list[str], query: QueryItems, *, errors: bool = True) -> Plan:
    plan = Plan(lines)
    fold.protect(plan, query, errors=errors)
    fold.standard(plan)
    return plan


def plan_large(lines: list[str], query: QueryItems) -> Plan:
    """Past `MAX_STRUCTURED_CHARS`: only the cheap line-local rules (protection, long
    lines, repeats, head and tail), so a megabyte costs about a second, not more."""
    plan = Plan(lines)
    fold.protect(plan, query)
    fold.long_lines(plan)
    fold.repeats(plan)
    fold.head_tail(plan)
    return plan

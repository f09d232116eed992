"""What a budget says about a reservation: soft-limit hits and hard refusals.

A refusal names the scope, the limit, what is spent and reserved, what this
request needed and when the window resets: the message a caller needs to act.
"""

from __future__ import annotations

import time
from typing import Any

from tokenomy.budgets.rows import Scope, SoftHit
from tokenomy.budgets.windows import iso
from tokenomy.errors import BudgetExceeded


def soft_hit(scope: Scope, values: dict[str, Any]) -> SoftHit | None:
    fractions = []
    if scope.spec.tokens:
        fractions.append((values["spent_tokens"] + values["reserved_tokens"]) / scope.spec.tokens)
    if scope.spec.usd:
        fractions.append((values["spent_usd"] + values["reserved_usd"]) / scope.spec.usd)
    used = max(fractions, default=0.0)
    if used >= scope.spec.soft_limit:
        return SoftHit(
            kind=scope.kind, id=scope.id, action=scope.spec.soft_action, used_fraction=used
        )
    return None


def refusal(
    scope: Scope, current: dict[str, Any], tokens: int, usd: float, end: int
) -> BudgetExceeded:
    spent_t, held_t = int(current["spent_tokens"]), int(current["reserved_tokens"])
    spent_u, held_u = float(current["spent_usd"]), float(current["reserved_usd"])
    spec = scope.spec
    parts = []
    if spec.tokens is not None and spent_t + held_t + tokens > spec.tokens:
        parts.append(
            f"limit {spec.tokens} tokens per {spec.window}, {spent_t} spent and {held_t} reserved, "
            f"this request needs up to {tokens}"
        )
    if spec.usd is not None and spent_u + held_u + usd > spec.usd:
        parts.append(
            f"limit ${spec.usd:.4f} per {spec.window}, ${spent_u:.4f} spent and ${held_u:.4f} "
            f"reserved, this request needs up to ${usd:.4f}"
        )
    resets = iso(end)
    message = (
        f"Budget exceeded for {scope.kind} '{scope.id}': {'; '.join(parts)}. "
        f"The window resets at {resets}."
    )
    retry_after = max(1, int(end - time.time()))
    return BudgetExceeded(
        message,
        headers={"retry-after": str(retry_after)},
        extra={
            "scope": scope.kind,
            "scope_id": scope.id,
            "window": spec.window,
            "limit_tokens": spec.tokens,
            "limit_usd": spec.usd,
            "spent_tokens": spent_t,
            "reserved_tokens": held_t,
            "spent_usd": round(spent_u, 6),
            "reserved_usd": round(held_u, 6),
            "requested_tokens": tokens,
            "resets_at": resets,
        },
    )

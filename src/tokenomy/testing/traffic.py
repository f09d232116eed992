"""A ledger seeded with realistic traffic, for the dashboard's tests and screenshots.

Several teams with named API keys (created through the key store), models,
agent steps, a working-hours rhythm over several days, compression savings,
provider prompt-cache reads, response-cache hits, budget refusals, upstream
errors and cancellations, each row with the stage events a real request
leaves. Deterministic for a given seed; rows go through `Ledger.record`, the
path a settle takes.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from tokenomy.budgets.rows import RequestRow, Saving
from tokenomy.budgets.service import Budgets

TEAMS: dict[str, dict[str, Any]] = {
    # team: (share of traffic, key names, budget)
    "research": {"share": 0.34, "keys": ["notebook-ana", "eval-runner"],
                 "budget": {"tokens": 1_500_000, "window": "7d", "soft_limit": 0.8}},
    "support": {"share": 0.30, "keys": ["support-web", "support-bot"],
                "budget": {"tokens": 400_000, "window": "1d", "soft_limit": 0.8,
                           "soft_action": "warn"}},
    "platform": {"share": 0.22, "keys": ["ci-agent", "code-review"],
                 "budget": {"usd": 6.0, "window": "month"}},
    "growth": {"share": 0.14, "keys": ["<b>campaign & co</b>"], "budget": None},
}
MODELS = {  # model: (input $/token, cache read $/token, output $/token, weight)
    "gpt-4o-mini": (1.5e-7, 7.5e-8, 6e-7, 0.45),
    "gpt-4o": (2.5e-6, 1.25e-6, 1e-5, 0.25),
    "claude-sonnet-4": (3e-6, 3e-7, 1.5e-5, 0.2),
    "local": (0.0, 0.0, 0.0, 0.1),
}
STEPS = {"retrieve": 0.25, "plan": 0.15, "answer": 0.3, "summarize": 0.1, "tool-call": 0.1,
         None: 0.1}


@dataclass
class Seeded:
    rows: list[tuple[RequestRow, list[Saving]]] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # key name -> plaintext key
    key_ids: dict[str, str] = field(default_factory=dict)  # key name -> key id

    def count(self, **match: Any) -> int:
        return sum(1 for row, _ in self.rows
                   if all(getattr(row, k) == v for k, v in match.items()))


def team_config() -> dict[str, Any]:
    """The `[teams]` table matching the seeded traffic (budgets for three teams)."""
    return {team: dict(spec["budget"] or {}) for team, spec in TEAMS.items()}


def _pick(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), list(weights.values()))[0]


def seed_traffic(budgets: Budgets, *, requests: int = 2400, days: float = 7.0,
                 now: float | None = None, seed: int = 15) -> Seeded:
    rng = random.Random(seed)
    now = time.time() if now is None else now
    out = Seeded()
    for team, spec in TEAMS.items():
        for name in spec["keys"]:
            info, key = budgets.keys.create(team, name=name)
            out.keys[name], out.key_ids[name] = key, info.key_id
    for i in range(requests):
        team = _pick(rng, {t: s["share"] for t, s in TEAMS.items()})
        ts = _moment(rng, now, days)
        row, savings = _request(rng, i, team, ts, out)
        budgets.ledger.record(row, savings)
        out.rows.append((row, savings))
    return out


def _moment(rng: random.Random, now: float, days: float) -> float:
    """A time in the last `days`, busier in (UTC) working hours and on weekdays."""
    while True:
        ts = now - rng.uniform(0, days * 86400)
        hour = (ts % 86400) / 3600
        weekday = int(ts // 86400 + 4) % 7  # 0 = Monday
        rhythm = 0.25 + 0.75 * math.exp(-((hour - 14) / 4.5) ** 2)
        if weekday >= 5:
            rhythm *= 0.4
        if rng.random() < rhythm:
            return ts


def _request(rng: random.Random, i: int, team: str, ts: float,
             seeded: Seeded) -> tuple[RequestRow, list[Saving]]:
    model = _pick(rng, {m: v[3] for m, v in MODELS.items()})
    price_in, price_read, price_out, _ = MODELS[model]
    step = _pick(rng, STEPS)
    key_name = rng.choice(TEAMS[team]["keys"])
    original = int(rng.lognormvariate(7.3, 0.8))  # ~1.5k tokens, long tail
    outcome = _pick(rng, {"ok": 0.86, "refused": 0.04, "error": 0.04, "cancelled": 0.01,
                          "cached": 0.05})
    events: list[dict[str, Any]] = [
        {"stage": "identify", "technique": None, "tokens_before": None, "tokens_after": None,
         "ms": round(rng.uniform(0.05, 0.4), 3), "detail": {}},
        {"stage": "budget", "technique": None, "tokens_before": None, "tokens_after": None,
         "ms": round(rng.uniform(0.3, 2.5), 3),
         "detail": {"estimate_tokens": original + 1024, "scopes": 1}},
    ]
    row: dict[str, Any] = {
        "request_id": f"tk-seed{i:05d}{rng.getrandbits(32):08x}", "ts": ts, "team": team,
        "key_id": seeded.key_ids[key_name], "step": step, "model": model,
        "upstream_model": model if model != "local" else "SmolLM2-135M-Instruct",
        "backend": "local" if model == "local" else "openai" if "gpt" in model else "anthropic",
        "prompt_tokens_original": original, "stream": rng.random() < 0.4,
        "user": rng.choice(["ana", "bo", "chen", None]),
    }
    if outcome == "refused":
        row.update(status=429, outcome="refused", latency_ms=rng.uniform(1, 6),
                   error=f"team '{team}' is over its budget")
        return RequestRow(**row, events=events), []
    savings: list[Saving] = []
    sent = original
    if rng.random() < 0.7:
        method = _pick(rng, {"extractive": 0.5, "tool_outputs": 0.3, "lossless": 0.2})
        ratio = {"extractive": rng.uniform(0.3, 0.7), "tool_outputs": rng.uniform(0.2, 0.6),
                 "lossless": rng.uniform(0.85, 0.97)}[method]
        sent = max(20, int(original * ratio))
        events.append({"stage": "compress", "technique": method, "tokens_before": original,
                       "tokens_after": sent, "ms": round(rng.uniform(2, 60), 3),
                       "detail": {"method": method, "parts": rng.randint(1, 6)}})
        savings.append(Saving(technique=method, tokens=original - sent,
                              usd=(original - sent) * price_in))
    mode = _pick(rng, {"direct": 0.6, "brief": 0.25, "think": 0.15})
    events.append({"stage": "plan", "technique": "reasoning", "tokens_before": sent,
                   "tokens_after": sent, "ms": round(rng.uniform(0.5, 8), 3),
                   "detail": {"mode": mode, "difficulty": round(rng.random(), 3)}})
    completion = int(rng.lognormvariate(5.3, 0.7))
    reasoning = int(completion * rng.uniform(0.2, 0.6)) if mode == "think" else 0
    if outcome == "cached":
        events.append({"stage": "response_cache", "technique": "response_cache",
                       "tokens_before": None, "tokens_after": None,
                       "ms": round(rng.uniform(0.4, 3), 3),
                       "detail": {"cache": "hit", "store": "ledger",
                                  "saved_tokens": sent + completion}})
        savings.append(Saving(technique="response_cache", tokens=sent + completion,
                              usd=sent * price_in + completion * price_out))
        row.update(status=200, outcome="ok", from_cache=True, mode=mode,
                   latency_ms=rng.uniform(2, 12))
        return _with_totals(row, savings, events), savings
    read = int(sent * rng.uniform(0.3, 0.8)) if rng.random() < 0.45 else 0
    cost = (sent - read) * price_in + read * price_read + completion * price_out
    if read:
        savings.append(Saving(technique="cache", tokens=0, usd=read * (price_in - price_read)))
    events.append({"stage": "upstream", "technique": None, "tokens_before": sent,
                   "tokens_after": sent, "ms": round(rng.uniform(200, 4000), 3),
                   "detail": {"backend": row["backend"]}})
    latency = rng.lognormvariate(6.6, 0.6) + (reasoning * 8)
    if outcome in ("error", "cancelled"):
        status = 502 if outcome == "error" else 499
        row.update(status=status, outcome=outcome, latency_ms=latency, mode=mode,
                   error="upstream answered 502 Bad Gateway" if outcome == "error"
                   else "the client went away")
        return RequestRow(**row, events=events), []
    row.update(status=200, outcome="ok", mode=mode, latency_ms=latency,
               prompt_tokens=sent, uncached_tokens=sent - read, cached_tokens=read,
               completion_tokens=completion, reasoning_tokens=reasoning,
               total_tokens=sent + completion, cost_usd=cost)
    return _with_totals(row, savings, events), savings


def _with_totals(row: dict[str, Any], savings: list[Saving],
                 events: list[dict[str, Any]]) -> RequestRow:
    return RequestRow(**row, saved_tokens=sum(s.tokens for s in savings),
                      saved_usd=sum(s.usd for s in savings), events=events)

"""The `budget` stage: reserve before the call, settle after it, one row always.

Before `next`: estimate the call (budgets/allowance.py: prompt + media + n x
output cap, at the dearest route), reserve it against the team's and the
key's budgets, and apply soft-limit actions (`degrade` sets `call.degrade`;
`warn` adds the `x-tokenomy-budget-warning` header). A hard limit raises
BudgetExceeded (429). The call carries the reservation as its allowance:
every upstream call it makes draws on it and grows it first when it must.
After `next`: settle with the real usage (at the end of a stream, including a
client that went away), or release and record the error with what the
upstream calls that did answer consumed. A long stream checkpoints what it
delivered into its reservation, so a process that dies mid-stream leaves a
row with those tokens, not zero. Every request ends as exactly one ledger
row, refused ones included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tokenomy.budgets.allowance import RequestAllowance
from tokenomy.budgets.rows import RequestRow, Reservation, Saving, stage_events, usage_columns
from tokenomy.budgets.service import Budgets
from tokenomy.call import Call, Chunk, Result, Usage
from tokenomy.errors import BudgetExceeded, LedgerUnavailable, TokenomyError
from tokenomy.pipeline import Next
from tokenomy.tokenizers import count_text

log = logging.getLogger(__name__)

RESPONSE_CACHE = "response_cache"  # the technique a response-cache hit saves under


async def estimate_prompt_tokens(call: Call) -> int:
    return await call.original_tokens()


INLINE_COUNT_CHARS = 32_768  # longer streamed text is counted off the event loop


class BudgetStage:
    name = "budget"

    def __init__(self, budgets: Budgets):
        self.budgets = budgets
        self.ledger = budgets.ledger

    async def __call__(self, call: Call, next: Next) -> Result:
        began = time.perf_counter()
        await estimate_prompt_tokens(call)
        identity = call.identity
        scopes = self.budgets.scopes(identity.team, identity.key_budget, identity.key_id)
        allowance = RequestAllowance(self.budgets, scopes)
        tokens, usd = await allowance.prepare(call)
        reservation: Reservation | None = None
        if scopes:
            try:
                reservation = await self.ledger.run(
                    self.ledger.reserve, call.request_id, scopes, tokens, usd, self._row(call)
                )
            except (SQLAlchemyError, LedgerUnavailable) as exc:
                # Fail closed: a budget that cannot be checked is not enforced by luck.
                # The request's row (settled, spooled while the database is away) also
                # tells reconciliation to release a reserve that committed after all.
                log.warning("ledger: reserve failed for %s: %s", call.request_id,
                            str(exc).splitlines()[0][:200])
                error = exc if isinstance(exc, LedgerUnavailable) else LedgerUnavailable()
                await self._settle(call, None, None, status=error.status, outcome="error",
                                   error=error.message)
                if error is exc:
                    raise
                raise error from exc
            except BudgetExceeded as exc:
                if call.protocol.max_output_tokens(call.body) is None:
                    exc.message += (" The request sets no output cap, so the model's whole "
                                    "output limit was reserved; send max_tokens to reserve less.")
                await self._settle(
                    call, None, None, status=429, outcome="refused", error=exc.message
                )
                raise
            allowance.hold(reservation, tokens, usd)
            self._apply_soft_limits(call, reservation)
            call.budget_remaining = remaining(reservation)
        call.allowance = allowance
        call.record(
            self.name,
            technique=None,
            ms=(time.perf_counter() - began) * 1000,
            detail={"estimate_tokens": tokens, "estimate_usd": usd, "scopes": len(scopes)},
        )
        try:
            result = await next(call)
        except BaseException as exc:
            status, outcome = _status_of(exc)
            # What the upstream calls that did answer consumed (consensus samples
            # before a failing one) is charged: the backend billed it.
            await self._settle(
                call, allowance.reservation, None, status=status, outcome=outcome,
                error=str(exc) or type(exc).__name__, consumed=allowance.consumed,
            )
            raise
        if result.is_stream:
            self._settle_at_end_of_stream(call, allowance.reservation, result)
        else:
            await self._settle(call, allowance.reservation, result, status=result.status,
                               outcome="ok")
        return result

    def _apply_soft_limits(self, call: Call, reservation: Reservation) -> None:
        warnings = []
        for hit in reservation.soft:
            if hit.action == "degrade":
                call.degrade = True
            warnings.append(f"{hit.kind} '{hit.id}' at {hit.used_fraction:.0%} of its budget")
        if warnings:
            call.budget_warning = "; ".join(warnings)

    def _settle_at_end_of_stream(
        self, call: Call, reservation: Reservation | None, result: Result
    ) -> None:
        streamed: list[str] = []
        chunk_text = call.protocol.chunk_text
        interval = self.budgets.config.ledger.checkpoint_interval
        last = [time.monotonic()]
        pending: set[asyncio.Future[None]] = set()

        def on_chunk(chunk: Chunk) -> None:
            text = chunk_text(chunk)
            if text:
                streamed.append(text)
            if reservation is not None and not pending and \
                    time.monotonic() - last[0] >= interval:
                last[0] = time.monotonic()
                # In the ledger's thread, counted there: the loop only joins strings.
                task = asyncio.ensure_future(self.ledger.run(
                    self._checkpoint, call, reservation, "".join(streamed)))
                pending.add(task)
                task.add_done_callback(pending.discard)

        async def on_end(error: BaseException | None) -> None:
            status, outcome = (result.status, "ok") if error is None else _status_of(error)
            await self._settle(
                call,
                reservation,
                result,
                status=status,
                outcome=outcome,
                error=None if error is None else (str(error) or type(error).__name__),
                streamed="".join(streamed),
            )

        result.wrap_stream(on_chunk=on_chunk, on_end=on_end)

    def _checkpoint(self, call: Call, reservation: Reservation, streamed: str) -> None:
        usage = Usage.of(call.prompt_tokens_sent, count_text(streamed, call.token_model),
                         estimated=True)
        price = self.budgets.pricer.price(call.upstream_model or call.model, call.model)
        row = self._row(call, **usage_columns(usage), cost_usd=price.cost(usage))
        self.ledger.checkpoint(reservation, row)

    def _row(self, call: Call, **fields: Any) -> RequestRow:
        identity = call.identity
        return RequestRow(
            request_id=call.request_id,
            ts=call.created_at,
            team=identity.team,
            key_id=identity.key_id,
            user=identity.user,
            step=identity.step,
            model=call.model or None,
            upstream_model=call.upstream_model,
            backend=call.backend,
            prompt_tokens_original=call.prompt_tokens_original,
            mode=call.mode,
            stream=call.stream,
            tags=dict(identity.tags),
            fallback=call.fallback,
            status=0,
            outcome="abandoned",
            **fields,
        )

    async def _settle(
        self,
        call: Call,
        reservation: Reservation | None,
        result: Result | None,
        *,
        status: int,
        outcome: str,
        error: str | None = None,
        streamed: str | None = None,
        consumed: Usage | None = None,
    ) -> None:
        if result is None:
            usage = consumed  # the calls that answered before the request failed, if any
        elif streamed is not None and len(streamed) > INLINE_COUNT_CHARS:
            usage = await asyncio.to_thread(usage_of, call, result, streamed)
        else:
            usage = usage_of(call, result, streamed)
        price = self.budgets.pricer.price(call.upstream_model or call.model, call.model)
        cost = price.cost(usage) if usage else 0.0
        savings = [
            Saving(technique=technique, tokens=saved, usd=saved * price.input)
            for technique, saved in _saved_by_technique(call).items()
        ]
        if usage is not None and (usage.cached_tokens or usage.cache_write_tokens):
            savings.append(Saving(technique="cache", tokens=0, usd=price.cache_saving(usage)))
        replayed = result.cached_usage if result is not None else None
        if replayed is not None:
            # The whole upstream call was saved: what the answer cost when it was made.
            savings.append(Saving(technique=RESPONSE_CACHE, tokens=replayed.total_tokens,
                                  usd=price.cost(replayed)))
        row = self._row(
            call,
            **usage_columns(usage),
            cost_usd=cost,
            saved_tokens=sum(s.tokens for s in savings),
            saved_usd=sum(s.usd for s in savings),
            latency_ms=(time.perf_counter() - call.started) * 1000,
            from_cache=replayed is not None,
            events=stage_events(call.events),
        ).model_copy(update={"status": status, "outcome": outcome, "error": error})
        # What the call reports (headers, request log, metrics) is what the ledger keeps.
        call.usage, call.cost_usd = usage, cost
        call.savings_usd = {s.technique: s.usd for s in savings if s.usd or s.tokens}
        if reservation is not None and result is not None and not result.is_stream:
            # The hold was the estimate; what is left now counts the real cost.
            call.budget_remaining = remaining(reservation, usage, cost)
        # In the ledger's thread (PostgreSQL) the transaction completes even if
        # this task is cancelled while waiting.
        try:
            call.settle = await self.ledger.run(self.ledger.settle, reservation, row, savings)
        except SQLAlchemyError:
            # The backend already answered (and billed): the caller still gets the
            # answer. The reservation stays held until it expires and is reconciled.
            log.exception("ledger: settle failed for %s", call.request_id)
            call.settle = "failed"


def remaining(reservation: Reservation, usage: Usage | None = None,
              cost: float | None = None) -> str | None:
    """`x-tokenomy-budget-remaining`: the tightest budget left across the call's scopes,
    e.g. `usd=4.210000; tokens=95000`. Before the answer the hold (the estimate) counts
    as spent; after it, what the call really cost."""
    parts = []
    if reservation.remaining_usd is not None:
        left = reservation.remaining_usd
        if cost is not None:
            left += reservation.usd - cost
        parts.append(f"usd={max(0.0, left):.6f}")
    if reservation.remaining_tokens is not None:
        tokens = reservation.remaining_tokens
        if usage is not None:
            tokens += reservation.tokens - usage.total_tokens
        parts.append(f"tokens={max(0, tokens)}")
    return "; ".join(parts) or None


def usage_of(call: Call, result: Result, streamed: str | None) -> Usage:
    """Real usage from the backend; else what we can count of what was sent and streamed
    (marked estimated)."""
    if result.cached_usage is not None:
        return Usage()  # answered by the response cache: nothing was sent upstream
    if result.usage is not None:
        return result.usage
    if result.response is not None:
        found = call.protocol.response_usage(result.response)
        if found is not None:
            return found
    prompt = call.prompt_tokens_sent
    text = streamed
    if text is None and result.response is not None:
        text = call.protocol.response_text(result.response)
    completion = count_text(text, call.token_model) if text else 0
    return Usage.of(prompt, completion, estimated=True)


def _saved_by_technique(call: Call) -> dict[str, int]:
    saved: dict[str, int] = defaultdict(int)
    for event in call.events:
        if event.technique and event.technique != RESPONSE_CACHE and event.saved > 0:
            saved[event.technique] += event.saved
    return dict(saved)


def _status_of(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, TokenomyError):
        return exc.status, "error"
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        return 499, "cancelled"  # the client went away
    return 500, "error"

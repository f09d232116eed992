"""What a request's upstream calls may spend: its reservation, drawn on call by call.

The budget stage reserves, before anything is sent, the bound of one call of
the request at the dearest of its routes (a fallback re-sends it elsewhere):

    prompt tokens + media (images, audio, files, priced by transcript.media)
    + the backend's `forward_fields` the body carries (their JSON, as text)
    + choices (`n`) x output cap per choice

The output cap is the client's, else the model's documented maximum, else
`[ledger] default_max_tokens`, and then it is written into the body the
backend receives: an estimate that does not bound the bill is not a budget.

Every upstream call then draws its own bound from the pool (`admit`, called
by the upstream handler). A call that needs more than the pool holds grows
the reservation in the ledger first (atomic, refused like a reservation), so
consensus samples, the escalation, `n` choices and re-sent fallbacks are all
held before they are sent. A stage about to make several calls asks for them
at once (`cover`, one ledger round trip) and may pick something cheaper when
the budget says no. When a call answers, its draw becomes what it consumed,
and what it did not use funds the next call.

So, at any moment, what a request holds is at least what it was charged, and
a hard limit is exceeded only by what a backend bills beyond its own bound
(a tokenizer that counts differently from ours): one request's estimate error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy.exc import SQLAlchemyError

from tokenomy.budgets.rows import Reservation, Scope
from tokenomy.budgets.service import Budgets
from tokenomy.call import Call, Route, Usage
from tokenomy.errors import BudgetExceeded, LedgerUnavailable
from tokenomy.tokenizers import count_text
from tokenomy.transcript.media import Media, media_tokens

log = logging.getLogger(__name__)

INLINE_MEDIA_BYTES = 32_768  # bodies larger than this have their media priced in a thread


class Bound(NamedTuple):
    """The most one upstream call can be billed, and the output cap that makes it so."""

    tokens: int
    usd: float
    cap: int | None  # write this output cap into the body (it set none); None: leave it


class RequestAllowance:
    """One request's pool (the `Allowance` a Call carries; see call.py)."""

    def __init__(self, budgets: Budgets, scopes: list[Scope]):
        self.budgets = budgets
        self.scopes = scopes
        self.reservation: Reservation | None = None
        self.held = (0, 0.0)  # tokens, USD the ledger holds for this request
        self.drawn = (0, 0.0)  # bounds of calls in flight + what answered calls consumed
        self.consumed: Usage | None = None  # what the calls that answered reported
        self._draws: dict[int, Bound] = {}  # id(sent body) -> its draw
        self._media: dict[str, int] = {}  # model -> media tokens of the request
        self._lock = asyncio.Lock()

    # -- estimating -------------------------------------------------------------------

    async def prepare(self, call: Call) -> tuple[int, float]:
        """Price the request's media for each of its routes (off the loop when the body
        is large); returns the reservation to make: the dearest route's bound."""
        items = call.protocol.media(call.body)
        models = {route.upstream_model for route in call.routes} or {call.token_model}
        if items:
            if call.body_bytes > INLINE_MEDIA_BYTES or call.body_bytes == 0:
                priced = await asyncio.to_thread(_price_media, items, models)
            else:
                priced = _price_media(items, models)
            self._media.update(priced)
        bounds = [self.bound(call, route, call.body) for route in call.routes] or [
            self.bound(call, Route(call.model, call.backend or "", call.token_model), call.body)
        ]
        return max(b.tokens for b in bounds), max(b.usd for b in bounds)

    def bound(self, call: Call, route: Route, body: dict[str, Any]) -> Bound:
        protocol = call.protocol
        price = self.budgets.pricer.price(route.upstream_model, route.alias)
        media = self._media.get(route.upstream_model)
        if media is None:
            items = protocol.media(body)
            media = media_tokens(items, route.upstream_model) if items else 0
            self._media[route.upstream_model] = media
        cap = protocol.max_output_tokens(body)
        write = None
        if cap is None:
            cap = price.max_output or self.budgets.config.ledger.default_max_tokens
            write = None if price.max_output else cap
        prompt = call.prompt_tokens_sent + media + _beyond_protocol_tokens(call, body)
        output = protocol.choices(body) * cap
        return Bound(prompt + output, price.bound(prompt, output), write)

    def hold(self, reservation: Reservation | None, tokens: int, usd: float) -> None:
        self.reservation = reservation
        self.held = (tokens, usd)

    # -- the Allowance protocol ---------------------------------------------------------

    async def cover(self, calls: Sequence[Call]) -> bool:
        if not self.scopes:
            return True
        need = [self.bound(c, c.routes[0] if c.routes else _route(c), c.body) for c in calls]
        async with self._lock:
            try:
                await self._grow(sum(b.tokens for b in need), sum(b.usd for b in need))
            except BudgetExceeded as exc:
                log.info("budget: %d more upstream calls refused: %s", len(calls), exc.message)
                return False
        return True

    async def admit(self, call: Call, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        if not self.scopes:
            return body
        bound = self.bound(call, route, body)
        async with self._lock:
            await self._grow(bound.tokens, bound.usd)
            self.drawn = (self.drawn[0] + bound.tokens, self.drawn[1] + bound.usd)
        sent = body if bound.cap is None else call.protocol.with_output_cap(body, bound.cap)
        self._draws[id(sent)] = bound
        return sent

    def returned(self, call: Call, body: dict[str, Any], usage: Usage | None, *,
                 failed: bool = False) -> None:
        if usage is not None:
            self.consumed = usage if self.consumed is None else self.consumed + usage
        bound = self._draws.pop(id(body), None)
        if bound is None or (usage is None and not failed):
            return  # no budget, or an answer without usage: the draw stays as it was
        if failed:  # nothing consumed: the draw goes back to the pool
            used = (0, 0.0)
        else:
            assert usage is not None
            price = self.budgets.pricer.price(call.upstream_model, call.model)
            used = (usage.total_tokens, price.cost(usage))
        self.drawn = (self.drawn[0] - bound.tokens + used[0],
                      self.drawn[1] - bound.usd + used[1])

    # -- the ledger -------------------------------------------------------------------

    async def _grow(self, tokens: int, usd: float) -> None:
        """Make the hold cover what is drawn plus `tokens`/`usd` more (caller holds the lock)."""
        more_t = self.drawn[0] + tokens - self.held[0]
        more_u = self.drawn[1] + usd - self.held[1]
        if more_t <= 0 and more_u <= 1e-12:
            return
        reservation = self.reservation
        if reservation is None:
            raise BudgetExceeded("this request holds no reservation to grow")
        more_t, more_u = max(0, more_t), max(0.0, more_u)
        ledger = self.budgets.ledger
        try:
            await ledger.run(ledger.extend, reservation, self.scopes, more_t, more_u)
        except SQLAlchemyError as exc:
            log.exception("ledger: growing reservation %s failed", reservation.id)
            raise LedgerUnavailable() from exc
        self.held = (self.held[0] + more_t, self.held[1] + more_u)


def _beyond_protocol_tokens(call: Call, body: dict[str, Any]) -> int:
    """Tokens of the fields a body carries beyond its protocol's own (a backend's
    `forward_fields`, added on the way out): a provider may bill what they hold, and the
    transcript does not count them. Zero for the client's body, which still has fields
    no backend receives: only a body on its way out (`admit`) is priced so."""
    if body is call.body:
        return 0
    extra = {key: value for key, value in body.items()
             if key not in call.protocol.request_fields}
    if not extra:
        return 0
    return count_text(json.dumps(extra, ensure_ascii=False, default=str), call.token_model)


def _route(call: Call) -> Route:
    return Route(call.model, call.backend or "", call.token_model)


def _price_media(items: list[Media], models: set[str]) -> dict[str, int]:
    return {model: media_tokens(items, model) for model in models}

"""Who is calling, and which team pays: the one bearer-token parser and the `identify` stage.

The caller's tokenomy key comes as `Authorization: Bearer KEY` or `x-api-key:
KEY` (Anthropic clients send the latter); `api_key_from_headers` is the only
place that reads them. Auth is on when any virtual key exists (or
`[ledger] auth = "on"`, or keys are required because the proxy binds a
non-loopback address): a missing, unknown or revoked key is refused with 401,
a key used for another team (the `tokenomy.team` option) with 403, and the
key's team, name and budget then travel on the call's identity. Without keys
(dev mode) a call is attributed to the team its options name, or "default".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tokenomy.call import DEFAULT_TEAM, Call, Result
from tokenomy.errors import Forbidden, Unauthorized
from tokenomy.pipeline import Next, Services
from tokenomy.plugins import hookimpl

if TYPE_CHECKING:
    from tokenomy.budgets.service import Budgets


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The caller's key: `Authorization: Bearer KEY`, else `x-api-key` (names lower-case)."""
    auth = headers.get("authorization") or ""
    if auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
        if token:
            return token
    key = (headers.get("x-api-key") or "").strip()
    return key or None


class IdentifyStage:
    name = "identify"

    def __init__(self, budgets: Budgets | None = None):
        self.budgets = budgets

    async def __call__(self, call: Call, next: Next) -> Result:
        options = call.options
        identity = call.identity
        if self.budgets is None or not await self._authenticate(call):
            identity.team = options.team or identity.team or DEFAULT_TEAM
        if options.step:
            identity.step = options.step
        if options.user:
            identity.user = options.user
        if options.tags:
            identity.tags.update(options.tags)
        return await next(call)

    async def _authenticate(self, call: Call) -> bool:
        """True when auth is on and the key checked out; raises when it did not."""
        budgets = self.budgets
        assert budgets is not None
        keys, ledger = budgets.keys, budgets.ledger
        if not await ledger.run(keys.auth_enabled):
            return False
        token = call.credentials.token
        if not token:
            raise Unauthorized(
                "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>' "
                "(create one with `tokenomy keys create --team TEAM`)."
            )
        info = await ledger.run(keys.verify, token)
        if info is None:
            raise Unauthorized("Invalid or revoked API key.")
        wanted = call.options.team
        if wanted and wanted != info.team:
            raise Forbidden(
                f"This API key belongs to team '{info.team}' "
                f"and cannot be used for team '{wanted}'.",
                extra={"key_team": info.team, "requested_team": wanted},
            )
        identity = call.identity
        identity.team, identity.key_id = info.team, info.key_id
        identity.key_name = getattr(info, "name", None)
        identity.key_budget = info.budget
        return True


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    register("identify", lambda services: IdentifyStage(_budgets(services)))


def _budgets(services: Services) -> Budgets | None:
    return services.budgets

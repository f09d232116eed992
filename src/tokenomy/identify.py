"""The `identify` stage: who is calling, and which team pays.

Auth is on when any virtual key exists (or `ledger.auth = "on"`): the server
puts the bearer token (`Authorization: Bearer ...` or `x-api-key`) in
`call.state["api_key"]`; a missing, unknown or revoked key is refused with
401, and a key used for another team (the `tokenomy.team` field) with 403.
The key's team and budget then travel on the call. Dev mode (no keys, no
ledger): every call is attributed to the team named in the `tokenomy` body
field, or to the default team.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenomy.call import Call, Result
from tokenomy.errors import Forbidden, Unauthorized
from tokenomy.pipeline import Next

if TYPE_CHECKING:
    from tokenomy.budgets.service import Budgets

DEFAULT_TEAM = "default"


class IdentifyStage:
    name = "identify"

    def __init__(self, budgets: Budgets | None = None):
        self.budgets = budgets

    async def __call__(self, call: Call, next: Next) -> Result:
        options = call.options
        identity = call.identity
        if self.budgets is not None and await self._authenticate(call):
            pass  # the key named the team
        else:
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
        token = call.state.get("api_key")
        if not token:
            raise Unauthorized(
                "Missing API key: send 'Authorization: Bearer <key>' "
                "(create one with `tokenomy keys create --team TEAM`)."
            )
        info = await ledger.run(keys.verify, str(token))
        if info is None:
            raise Unauthorized("Invalid or revoked API key.")
        wanted = call.options.team
        if wanted and wanted != info.team:
            raise Forbidden(
                f"This API key belongs to team '{info.team}' "
                f"and cannot be used for team '{wanted}'.",
                extra={"key_team": info.team, "requested_team": wanted},
            )
        call.identity.team = info.team
        call.identity.key_id = info.key_id
        if info.budget is not None:
            call.state["key_budget"] = info.budget
        return True

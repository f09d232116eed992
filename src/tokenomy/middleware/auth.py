"""The `identify` stage: who is calling, and which team pays.

Dev mode (no keys configured): every call is attributed to the team named in
the `tokenomy` body field, or to the default team.
"""

from __future__ import annotations

from tokenomy.call import Call, Result
from tokenomy.pipeline import Next

DEFAULT_TEAM = "default"


class IdentifyStage:
    name = "identify"

    async def __call__(self, call: Call, next: Next) -> Result:
        options = call.options
        identity = call.identity
        identity.team = options.team or identity.team or DEFAULT_TEAM
        if options.step:
            identity.step = options.step
        if options.user:
            identity.user = options.user
        if options.tags:
            identity.tags.update(options.tags)
        return await next(call)

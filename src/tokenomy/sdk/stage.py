"""The `step` stage: what an SDK step asked of a call, applied on the engine side.

The step name, team and tags already travel in `tokenomy` options, which the
identify stage turns into the call's identity. This stage adds the one thing
only a step knows: a step with `on_budget="degrade"` that has spent its budget
asks for the cheap path, so `call.degrade` is set before the budget, compress
and plan stages run (they compress harder and think less). It records a
`step` event so the call's trace shows which step sent it.
"""

from __future__ import annotations

from tokenomy.call import Call, Result
from tokenomy.pipeline import Next


class StepStage:
    name = "step"

    async def __call__(self, call: Call, next: Next) -> Result:
        if call.options.degrade:
            call.degrade = True
        if call.identity.step or call.options.degrade:
            call.record(self.name, technique="degrade" if call.options.degrade else None,
                        detail={"step": call.identity.step, "degrade": call.options.degrade,
                                "tags": dict(call.identity.tags)})
        return await next(call)

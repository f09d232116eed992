"""The `step` stage (what an SDK step asked of a call)."""

from __future__ import annotations

from collections.abc import Callable

from tokenomy.plugins import hookimpl


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    from tokenomy.sdk.stage import StepStage

    register("step", lambda services: StepStage())

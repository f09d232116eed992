"""A budget's shape: limits per window and what a soft limit does.

It lives at the bottom of the package because three layers share it: the
config (`[teams.NAME]`), the key store (a key's own budget) and the call (the
budget of the key that authenticated it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Window = Literal["1h", "1d", "7d", "30d", "month"]
SoftAction = Literal["degrade", "warn"]


class BudgetSpec(BaseModel):
    """One budget: token and/or USD limits per window, with a soft limit."""

    model_config = ConfigDict(extra="forbid")

    tokens: int | None = Field(default=None, ge=0)
    usd: float | None = Field(default=None, ge=0)
    window: Window = "month"
    soft_limit: float = Field(default=0.8, gt=0, le=1)  # fraction of the hard limit
    soft_action: SoftAction = "degrade"

    @property
    def active(self) -> bool:
        return self.tokens is not None or self.usd is not None

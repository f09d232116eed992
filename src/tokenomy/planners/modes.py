"""Reasoning modes and the decision `select_mode` returns.

Modes from cheapest to dearest: `direct` (no thinking, a short answer),
`brief` (a short chain of thought under a word budget), `consensus` (k cheap
samples that stop early when they agree and escalate when they do not) and
`deliberate` (full thinking with a high effort or a large thinking budget).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Mode(StrEnum):
    DIRECT = "direct"
    BRIEF = "brief"
    CONSENSUS = "consensus"
    DELIBERATE = "deliberate"

    @property
    def rank(self) -> int:
        """Cost order: a lower rank is a cheaper mode."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str) -> Mode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(
                f"unknown reasoning mode '{value}' (expected auto or one of {names})"
            ) from None


_RANK = {Mode.DIRECT: 0, Mode.BRIEF: 1, Mode.CONSENSUS: 2, Mode.DELIBERATE: 3}


class ProviderParams(BaseModel):
    """What to put into the request body for one mode on one model."""

    family: str  # openai | anthropic | gemini | qwen | deepseek | generic
    body: dict[str, Any] = Field(default_factory=dict)  # top-level body fields to set
    max_tokens: int | None = None  # an output cap, when the mode needs one
    instruction: str | None = None  # appended to the last user message
    dropped: list[str] = Field(default_factory=list)  # params the model would reject


class ModeDecision(BaseModel):
    """The reasoning mode chosen for one request and how to ask the provider for it."""

    mode: Mode
    difficulty: float = Field(ge=0.0, le=1.0)  # share of training prompts that were easier
    p_cheap_ok: float = Field(ge=0.0, le=1.0)  # model's probability that a cheap mode suffices
    confidence: float = Field(ge=0.0, le=1.0)  # probability that the chosen side is right
    reason: str  # auto | fixed | degrade | floor | stream
    params: ProviderParams
    # For consensus: how the cheap samples are asked, and how the escalation is.
    sample_params: ProviderParams | None = None
    escalate_params: ProviderParams | None = None
    samples: int = 0
    threshold: float | None = None

    @property
    def max_tokens(self) -> int | None:
        return self.params.max_tokens

    @property
    def instruction(self) -> str | None:
        return self.params.instruction

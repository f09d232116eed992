"""Reasoning policy per team and per request.

Settings: the `[planner]` section applies to every team, and
`[teams.<name>.planner]` overrides it for one team, e.g.

    [planner]
    reasoning = "auto"          # off | auto | direct | brief | consensus | deliberate
    quality_floor = "direct"    # never pick a cheaper mode than this
    embeddings = "auto"         # MiniLM second opinion on math: auto (with a GPU) | on | off
    [planner.thresholds]
    direct = 0.35               # difficulty below this: direct
    brief = 0.6                 # below this: brief
    consensus = 0.8             # below this: consensus; above: deliberate

    [teams.research.planner]
    quality_floor = "brief"

A request asks with the body field `tokenomy.reasoning` ("auto" or a mode),
which wins over the team default. Under budget pressure (`call.degrade`) every
threshold moves up by `degrade_shift`, so more requests land in cheaper modes;
the quality floor still holds.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tokenomy.config import deep_merge
from tokenomy.planners.modes import Mode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thresholds(_Strict):
    """Difficulty cut points (difficulty is a percentile in [0, 1])."""

    direct: float = Field(default=0.35, ge=0, le=1)
    brief: float = Field(default=0.6, ge=0, le=1)
    consensus: float = Field(default=0.8, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.direct <= self.brief <= self.consensus:
            raise ValueError("thresholds must satisfy direct <= brief <= consensus")
        return self

    def shifted(self, by: float) -> Thresholds:
        return Thresholds(
            direct=min(1.0, self.direct + by),
            brief=min(1.0, self.brief + by),
            consensus=min(1.0, self.consensus + by),
        )


class ConsensusSettings(_Strict):
    max_samples: int = Field(default=6, ge=1, le=32)
    threshold: float = Field(default=0.95, gt=0.5, lt=1.0)
    temperature: float | None = Field(default=0.7, ge=0, le=2)  # sample diversity


class PlannerPolicy(_Strict):
    reasoning: str = "off"  # off | auto | a mode name
    quality_floor: Mode = Mode.DIRECT
    thresholds: Thresholds = Field(default_factory=Thresholds)
    degrade_shift: float = Field(default=0.2, ge=0, le=1)
    allow_consensus: bool = True
    brief_words: int = Field(default=60, ge=5, le=2000)
    # Thinking budgets (tokens) per mode for budget-style knobs, e.g. {"deliberate": 16000}.
    budgets: dict[str, int] = Field(default_factory=dict)
    # Models with no reasoning knob (gpt-4o, the local model, ...) can only be asked with
    # words. Under `auto` they are left exactly as the client sent them unless the team
    # turns `instructions` on; a mode the request names explicitly still gets its text.
    instructions: bool = False
    # An output cap (max_tokens) for knobless models, only ever when the client set none.
    # Off by default: tokenomy adds no cap the client did not ask for.
    cap_output: bool = False
    transport: Literal["auto", "openai", "litellm"] = "auto"
    consensus: ConsensusSettings = Field(default_factory=ConsensusSettings)
    model_path: str | None = None  # a difficulty model from `tokenomy planners train`
    # The difficulty model's embedding head (math word problems): one MiniLM pass
    # per new prompt. "auto" uses it where scoring runs on a GPU; on a CPU it
    # costs ~20 ms, over the 5 ms the features alone stay well under.
    embeddings: Literal["auto", "on", "off"] = "auto"

    @field_validator("reasoning")
    @classmethod
    def _known(cls, value: str) -> str:
        return normalize_request(value) or "off"

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, value: dict[str, int]) -> dict[str, int]:
        for key, tokens in value.items():
            Mode.parse(key)
            if tokens < 0:
                raise ValueError(f"budget for {key} must be >= 0")
        return value

    def resolve(self, requested: str | None) -> str:
        """The effective request: the per-request value wins over the team default."""
        return normalize_request(requested) or self.reasoning


def embeddings_enabled(setting: str) -> bool:
    """Whether the difficulty model's embedding head should score: "auto" means a GPU is here."""
    if setting != "auto":
        return setting == "on"
    return _gpu_with_encoder()


@lru_cache(maxsize=1)
def _gpu_with_encoder() -> bool:
    from tokenomy.assets import minilm_path, require
    from tokenomy.scoring.device import pick_device

    try:
        return pick_device().startswith("cuda") and bool(require(minilm_path(), "MiniLM"))
    except Exception:  # no torch, a broken driver, no MiniLM: fall back to the features
        return False


def normalize_request(value: str | None) -> str | None:
    """'auto', 'off' or a mode name; None when nothing was asked. Raises on anything else."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in {"", "none", "off", "false"}:
        return "off" if text else None
    if text == "auto":
        return "auto"
    return Mode.parse(text).value


CODIFY_SECTIONS = frozenset({"codify", "contracts"})


def policy_for_team(
    planner: dict[str, Any] | None, teams: dict[str, dict[str, Any]] | None, team: str
) -> PlannerPolicy:
    """The team's policy: `[planner]` overlaid with `[teams.<team>.planner]`.

    `[planner.codify]` and `[planner.contracts]` belong to planners.codify.
    """
    data = {k: v for k, v in (planner or {}).items() if k not in CODIFY_SECTIONS}
    team_section = ((teams or {}).get(team) or {}).get("planner")
    if isinstance(team_section, dict):
        data = deep_merge(data, team_section)
    return PlannerPolicy.model_validate(data)


def mode_for_difficulty(
    difficulty: float, policy: PlannerPolicy, *, degrade: bool = False, single_call: bool = False
) -> tuple[Mode, str]:
    """Pick a mode by thresholds; returns (mode, reason)."""
    cuts = policy.thresholds.shifted(policy.degrade_shift) if degrade else policy.thresholds
    if difficulty < cuts.direct:
        mode = Mode.DIRECT
    elif difficulty < cuts.brief:
        mode = Mode.BRIEF
    elif difficulty < cuts.consensus:
        mode = Mode.CONSENSUS
    else:
        mode = Mode.DELIBERATE
    reason = "degrade" if degrade else "auto"
    if mode is Mode.CONSENSUS and (single_call or not policy.allow_consensus):
        # Consensus votes on whole text answers: a stream, a request with tools (the
        # answer may be a tool call) or one asking for n choices gets the nearer single mode.
        mode = Mode.BRIEF if difficulty < (cuts.brief + cuts.consensus) / 2 else Mode.DELIBERATE
        reason = "single-call" if single_call else reason
    if mode.rank < policy.quality_floor.rank:
        mode, reason = policy.quality_floor, "floor"
        if mode is Mode.CONSENSUS and single_call:
            mode = Mode.DELIBERATE
    return mode, reason

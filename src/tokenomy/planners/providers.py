"""One table: how each provider family is asked for each reasoning mode.

`MODE_TABLE[family][mode]` holds the knob values; `provider_params` renders them
into request-body fields for a model, for the transport that will carry them
(`openai`: a raw OpenAI-compatible HTTP body; `litellm`: `litellm.acompletion`
keyword arguments, which litellm translates per provider). Before a knob is
sent, litellm's own model map is asked whether the model takes it
(`get_supported_openai_params`, and for `reasoning_effort` the accepted levels);
a knob the model would reject is dropped and the mode falls back to an
instruction, so no request fails on an unknown parameter.

Provider rules this table follows:
- OpenAI `reasoning_effort`: o-series and gpt-oss take low/medium/high; gpt-5
  adds minimal; gpt-5.1 and later take none (and no minimal).
- Anthropic `thinking={"type": "enabled", "budget_tokens": N}`: N >= 1024 and
  N < max_tokens; without thinking the field is omitted. Claude 4.6 and later
  think adaptively: `thinking={"type": "adaptive"}` with
  `output_config={"effort": "low" | "high"}` (Opus 4.7 and later reject
  `budget_tokens` with a 400); through litellm that is `reasoning_effort`, which
  litellm itself turns into the adaptive fields for those models.
- Gemini 2.5 `thinking_budget` (0 turns thinking off on Flash and Flash-Lite; Pro
  cannot turn it off, its minimum is 128); Gemini 3 `thinking_level` low/high.
  On Gemini's OpenAI-compatible endpoint both travel as
  `extra_body={"google": {"thinking_config": {...}}}`.
- Qwen3 on vLLM/SGLang: `chat_template_kwargs={"enable_thinking": bool}`; through
  litellm the `/no_think` soft switch in the user turn does the same.
- DeepSeek V3.1+: `thinking={"type": "enabled" | "disabled"}`; deepseek-reasoner
  always thinks and takes no switch.
- Everything else: an instruction text and an output cap.
"""

from __future__ import annotations

import contextlib
import logging
import re
from functools import lru_cache
from typing import Any, Literal

from tokenomy.assets import import_litellm
from tokenomy.planners.modes import Mode, ProviderParams

log = logging.getLogger(__name__)

Transport = Literal["openai", "litellm"]

ANTHROPIC_MIN_BUDGET = 1024
ANSWER_ROOM_TOKENS = 2048  # output left for the answer after a thinking budget

INSTRUCTIONS: dict[str, str] = {
    "direct": "Answer directly and concisely. Do not show your reasoning.",
    "brief": (
        "Think briefly, in at most {words} words, then give the final answer on its own "
        "last line."
    ),
    "deliberate": (
        "Think step by step and check your work before answering, then give the final "
        "answer on its own last line."
    ),
}

# The one table. Keys of each entry: effort (OpenAI levels), budget (thinking
# tokens), level (Gemini 3), thinking (on/off switch), instruction (a key of
# INSTRUCTIONS), max_tokens (output cap for models with no knob).
MODE_TABLE: dict[str, dict[Mode, dict[str, Any]]] = {
    "openai": {
        Mode.DIRECT: {"effort": ("none", "minimal", "low")},  # the cheapest the model takes
        Mode.BRIEF: {"effort": ("low",)},
        Mode.DELIBERATE: {"effort": ("high",)},
    },
    "anthropic": {
        Mode.DIRECT: {"budget": None},
        Mode.BRIEF: {"budget": 1024},
        Mode.DELIBERATE: {"budget": 8192},
    },
    "anthropic-adaptive": {
        Mode.DIRECT: {"adaptive": None},
        Mode.BRIEF: {"adaptive": "low"},
        Mode.DELIBERATE: {"adaptive": "high"},
    },
    "gemini-2.5": {
        Mode.DIRECT: {"budget": 0},
        Mode.BRIEF: {"budget": 1024},
        Mode.DELIBERATE: {"budget": 8192},
    },
    "gemini-3": {
        Mode.DIRECT: {"level": "low"},
        Mode.BRIEF: {"level": "low", "instruction": "brief"},
        Mode.DELIBERATE: {"level": "high"},
    },
    "qwen": {
        Mode.DIRECT: {"thinking": False},
        Mode.BRIEF: {"thinking": False, "instruction": "brief"},
        Mode.DELIBERATE: {"thinking": True},
    },
    "deepseek": {
        Mode.DIRECT: {"thinking": False},
        Mode.BRIEF: {"thinking": False, "instruction": "brief"},
        Mode.DELIBERATE: {"thinking": True},
    },
    "generic": {
        Mode.DIRECT: {"instruction": "direct", "max_tokens": 1024},
        Mode.BRIEF: {"instruction": "brief", "max_tokens": 2048},
        Mode.DELIBERATE: {"instruction": "deliberate"},
    },
}

# Levels per OpenAI model line when litellm's map states none (o-series, gpt-oss).
_OPENAI_EFFORTS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"^gpt-5\.\d"), ("none", "low", "medium", "high")),
    (re.compile(r"^gpt-5"), ("minimal", "low", "medium", "high")),
    (re.compile(r"^(o\d|gpt-oss)"), ("low", "medium", "high")),
]

_PREFIXES = re.compile(r"^(?:[\w.-]+/)+")
# Claude 4.6 and later (and the 5.x lines) think adaptively.
_ADAPTIVE_CLAUDE = re.compile(
    r"claude-(?:(?:opus|sonnet|haiku)-(?:4[-.][6-9]|[5-9])(?!\d)|[5-9](?!\d)|fable|mythos)"
)


def bare_name(model: str) -> str:
    """`openrouter/qwen/qwen3-32b` -> `qwen3-32b`; lower case."""
    return _PREFIXES.sub("", model.strip().lower())


def family_of_model(model: str) -> str:
    """The provider family whose reasoning knob `model` takes ('generic' when none)."""
    name = bare_name(model)
    if "claude" in name:
        if _ADAPTIVE_CLAUDE.search(name):
            return "anthropic-adaptive"
        # Extended thinking exists from Claude 3.7 on.
        if re.search(r"claude-(?:3-7|3\.7|(?:opus|sonnet|haiku)-4|4)", name):
            return "anthropic"
        return "generic"
    if name.startswith("gemini-2.5") or name.startswith("gemini-2-5"):
        return "gemini-2.5"
    if name.startswith("gemini-3"):
        return "gemini-3"
    if name.startswith("qwen3") and "2507" not in name:
        return "qwen"  # the 2507 releases are thinking-only or instruct-only: no switch
    if name.startswith("deepseek"):
        return "deepseek" if "reasoner" not in name and "r1" not in name else "generic"
    if any(p.search(name) for p, _ in _OPENAI_EFFORTS) and "chat" not in name:
        return "openai"
    return "generic"


def _litellm() -> Any | None:
    try:
        litellm = import_litellm()
        litellm.suppress_debug_info = True
        return litellm
    except Exception:  # pragma: no cover - litellm is a dependency
        return None


@lru_cache(maxsize=512)
def _model_info(model: str) -> dict[str, Any] | None:
    litellm = _litellm()
    if litellm is None:
        return None
    try:
        return dict(litellm.get_model_info(model))
    except Exception:
        return None  # not in litellm's map: our own table decides


@lru_cache(maxsize=512)
def supported_params(model: str) -> frozenset[str] | None:
    """The OpenAI parameters litellm says `model` takes; None when litellm does not know it."""
    if _model_info(model) is None:
        return None
    litellm = _litellm()
    with contextlib.suppress(Exception):
        params = litellm.get_supported_openai_params(model=model)  # type: ignore[union-attr]
        if params:
            return frozenset(params)
    return None


@lru_cache(maxsize=512)
def reasoning_efforts(model: str) -> tuple[str, ...]:
    """The `reasoning_effort` levels `model` accepts, cheapest first."""
    info = _model_info(model)
    if info is not None:
        with contextlib.suppress(Exception):
            from litellm.router_utils.reasoning_effort_capability import (
                resolve_supported_reasoning_efforts,
            )

            levels = resolve_supported_reasoning_efforts(info, deployment_is_mapped=True)
            if levels is not None:
                return tuple(
                    x for x in ("none", "minimal", "low", "medium", "high") if x in levels
                )
    name = bare_name(model)
    for pattern, levels in _OPENAI_EFFORTS:
        if pattern.search(name):
            return levels
    return ()


def _takes(model: str, param: str) -> bool:
    params = supported_params(model)
    return params is None or param in params


def _instruction(key: str | None, brief_words: int) -> str | None:
    return INSTRUCTIONS[key].format(words=brief_words) if key else None


def provider_params(
    mode: Mode,
    model: str,
    *,
    transport: Transport = "openai",
    brief_words: int = 60,
    client_max_tokens: int | None = None,
    budgets: dict[str, int] | None = None,
) -> ProviderParams:
    """How to ask `model` for `mode` (consensus samples use `direct`)."""
    if mode is Mode.CONSENSUS:
        mode = Mode.DIRECT
    family = family_of_model(model)
    spec = dict(MODE_TABLE[family][mode])
    if budgets and mode.value in budgets and "budget" in spec and spec["budget"] is not None:
        spec["budget"] = budgets[mode.value]
    out = ProviderParams(family=family)
    render = _RENDERERS[family]
    render(out, spec, model, transport, client_max_tokens)
    if out.instruction is None:
        out.instruction = _instruction(spec.get("instruction"), brief_words)
    elif "{words}" in out.instruction:
        out.instruction = out.instruction.format(words=brief_words)
    return out


@lru_cache(maxsize=512)
def has_reasoning_knob(model: str, transport: Transport = "openai") -> bool:
    """Whether `model` takes a reasoning parameter (an effort level, a thinking budget, a
    thinking switch); a model without one can only be asked with an instruction."""
    family = family_of_model(model)
    if family == "qwen":
        return True  # the template switch, or the /no_think soft switch through litellm
    return bool(provider_params(Mode.DELIBERATE, model, transport=transport).body)


def _fallback(out: ProviderParams, mode_key: str, dropped: str) -> None:
    """The model rejects the knob: say it with words instead."""
    out.dropped.append(dropped)
    out.instruction = INSTRUCTIONS[mode_key]


def _render_openai(
    out: ProviderParams, spec: dict[str, Any], model: str, transport: Transport, _: int | None
) -> None:
    wanted: tuple[str, ...] = spec["effort"]
    mode_key = {"none": "direct", "low": "brief", "high": "deliberate"}.get(wanted[0], "direct")
    if not _takes(model, "reasoning_effort"):
        _fallback(out, mode_key, "reasoning_effort")
        return
    levels = reasoning_efforts(model) or ("low", "medium", "high")
    choice = next((level for level in wanted if level in levels), None)
    if choice is None:  # e.g. 'high' on a model that stops at 'medium'
        choice = levels[-1] if mode_key == "deliberate" else levels[0]
    out.body["reasoning_effort"] = choice


def _render_anthropic(
    out: ProviderParams,
    spec: dict[str, Any],
    model: str,
    transport: Transport,
    client_max_tokens: int | None,
) -> None:
    budget: int | None = spec["budget"]
    if budget is None:
        return  # direct: no thinking field at all
    if not _takes(model, "thinking"):
        _fallback(out, "brief" if budget <= ANTHROPIC_MIN_BUDGET else "deliberate", "thinking")
        return
    budget = max(ANTHROPIC_MIN_BUDGET, budget)
    if client_max_tokens is not None:
        # budget_tokens must stay below max_tokens; keep the client's cap.
        budget = min(budget, client_max_tokens - 1)
        if budget < ANTHROPIC_MIN_BUDGET:
            _fallback(out, "brief", "thinking")
            return
    else:
        out.max_tokens = budget + ANSWER_ROOM_TOKENS
    out.body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _render_anthropic_adaptive(
    out: ProviderParams, spec: dict[str, Any], model: str, transport: Transport, _: int | None
) -> None:
    effort: str | None = spec["adaptive"]
    if effort is None:
        return  # direct: no thinking field, so the model answers without thinking
    mode_key = "brief" if effort == "low" else "deliberate"
    if transport == "litellm":
        if not _takes(model, "reasoning_effort"):
            _fallback(out, mode_key, "reasoning_effort")
            return
        out.body["reasoning_effort"] = effort  # litellm maps it to adaptive thinking + effort
        return
    if not _takes(model, "thinking"):
        _fallback(out, mode_key, "thinking")
        return
    out.body["thinking"] = {"type": "adaptive"}
    out.body["output_config"] = {"effort": effort}


def _render_gemini(
    out: ProviderParams, spec: dict[str, Any], model: str, transport: Transport, _: int | None
) -> None:
    name = bare_name(model)
    if "budget" in spec:
        budget = int(spec["budget"])
        if budget == 0 and "pro" in name:
            budget = 128  # 2.5 Pro cannot turn thinking off; 128 is its floor
        config: dict[str, Any] = {"thinking_budget": budget}
        effort = "disable" if budget == 0 else ("low" if budget <= 1024 else "high")
        if "pro" in name and budget <= 128:
            effort = "minimal"
    else:
        config = {"thinking_level": spec["level"]}
        effort = spec["level"]
    if transport == "litellm":
        # litellm maps reasoning_effort onto Gemini's thinkingConfig itself.
        if _takes(model, "reasoning_effort"):
            out.body["reasoning_effort"] = effort
        else:
            out.dropped.append("reasoning_effort")
        return
    out.body["extra_body"] = {"google": {"thinking_config": config}}


def _render_qwen(
    out: ProviderParams, spec: dict[str, Any], model: str, transport: Transport, _: int | None
) -> None:
    thinking = bool(spec["thinking"])
    if transport == "openai":
        out.body["chat_template_kwargs"] = {"enable_thinking": thinking}
    elif not thinking:
        # Qwen3's soft switch works through any transport.
        base = _instruction(spec.get("instruction"), 0)
        out.instruction = "/no_think" if base is None else base + " /no_think"


def _render_deepseek(
    out: ProviderParams, spec: dict[str, Any], model: str, transport: Transport, _: int | None
) -> None:
    if _takes(model, "thinking"):
        out.body["thinking"] = {"type": "enabled" if spec["thinking"] else "disabled"}
    else:
        out.dropped.append("thinking")


def _render_generic(
    out: ProviderParams, spec: dict[str, Any], model: str, transport: Transport, _: int | None
) -> None:
    out.max_tokens = spec.get("max_tokens")


_RENDERERS = {
    "openai": _render_openai,
    "anthropic": _render_anthropic,
    "anthropic-adaptive": _render_anthropic_adaptive,
    "gemini-2.5": _render_gemini,
    "gemini-3": _render_gemini,
    "qwen": _render_qwen,
    "deepseek": _render_deepseek,
    "generic": _render_generic,
}

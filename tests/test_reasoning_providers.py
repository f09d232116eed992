"""The mode -> provider-knob table, for every family, checked against litellm's model map."""

from __future__ import annotations

import pytest

from tokenomy.planners.modes import Mode, ProviderParams
from tokenomy.planners.providers import (
    ANTHROPIC_MIN_BUDGET,
    _render_openai,
    family_of_model,
    provider_params,
    reasoning_efforts,
)
from tokenomy.planners.stage import apply_params


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-5", "openai"),
        ("openai/gpt-5.1", "openai"),
        ("o3-mini", "openai"),
        ("gpt-oss-120b", "openai"),
        ("gpt-4o", "generic"),
        ("gpt-5-chat-latest", "generic"),
        ("claude-sonnet-4-5-20250929", "anthropic"),
        ("anthropic/claude-3-7-sonnet-20250219", "anthropic"),
        ("claude-3-5-haiku-20241022", "generic"),
        ("gemini/gemini-2.5-flash", "gemini-2.5"),
        ("gemini-3-pro-preview", "gemini-3"),
        ("hosted_vllm/Qwen/Qwen3-8B", "qwen"),
        ("Qwen/Qwen3-30B-A3B-Instruct-2507", "generic"),
        ("deepseek/deepseek-chat", "deepseek"),
        ("deepseek-reasoner", "generic"),
        ("local", "generic"),
    ],
)
def test_family_of_model(model: str, family: str) -> None:
    assert family_of_model(model) == family


def test_openai_effort_levels_follow_what_each_model_accepts() -> None:
    # gpt-5 takes minimal, gpt-5.1 takes none (and no minimal), o-series neither.
    assert provider_params(Mode.DIRECT, "gpt-5").body == {"reasoning_effort": "minimal"}
    assert provider_params(Mode.DIRECT, "gpt-5.1").body == {"reasoning_effort": "none"}
    assert provider_params(Mode.DIRECT, "o3-mini").body == {"reasoning_effort": "low"}
    assert "minimal" not in reasoning_efforts("gpt-5.1")
    for model in ("gpt-5", "gpt-5.1", "o3-mini"):
        assert provider_params(Mode.BRIEF, model).body == {"reasoning_effort": "low"}
        deliberate = provider_params(Mode.DELIBERATE, model)
        assert deliberate.body == {"reasoning_effort": "high"}
        # Reasoning models reject max_tokens; the effort knob is the whole ask.
        assert deliberate.max_tokens is None and deliberate.instruction is None


def test_a_knob_the_model_rejects_is_dropped_for_an_instruction() -> None:
    # litellm's map says gpt-4o takes no reasoning_effort.
    out = ProviderParams(family="openai")
    _render_openai(out, {"effort": ("high",)}, "gpt-4o", "openai", None)
    assert out.body == {} and out.dropped == ["reasoning_effort"]
    assert out.instruction and "step by step" in out.instruction


def test_anthropic_thinking_budget_rules() -> None:
    model = "claude-sonnet-4-5-20250929"
    assert provider_params(Mode.DIRECT, model).body == {}  # no thinking field at all
    brief = provider_params(Mode.BRIEF, model)
    deliberate = provider_params(Mode.DELIBERATE, model)
    for params in (brief, deliberate):
        budget = params.body["thinking"]["budget_tokens"]
        assert params.body["thinking"]["type"] == "enabled"
        assert budget >= ANTHROPIC_MIN_BUDGET
        assert params.max_tokens is not None and budget < params.max_tokens
    assert deliberate.body["thinking"]["budget_tokens"] > brief.body["thinking"]["budget_tokens"]
    # The client's max_tokens is kept: the budget shrinks below it ...
    capped = provider_params(Mode.DELIBERATE, model, client_max_tokens=4000)
    assert capped.body["thinking"]["budget_tokens"] == 3999 and capped.max_tokens is None
    # ... and when no valid budget fits, thinking is not sent at all.
    tiny = provider_params(Mode.DELIBERATE, model, client_max_tokens=800)
    assert "thinking" not in tiny.body and tiny.dropped == ["thinking"] and tiny.instruction
    # Budgets are configurable per mode.
    custom = provider_params(Mode.DELIBERATE, model, budgets={"deliberate": 16000})
    assert custom.body["thinking"]["budget_tokens"] == 16000


def test_claude_4_6_and_later_think_adaptively_and_never_get_a_budget() -> None:
    for model in ("claude-opus-4-7", "claude-sonnet-4-6", "anthropic/claude-opus-4-6-v1"):
        assert family_of_model(model) == "anthropic-adaptive"
        assert provider_params(Mode.DIRECT, model).body == {}  # no thinking
        brief = provider_params(Mode.BRIEF, model)
        deliberate = provider_params(Mode.DELIBERATE, model)
        assert brief.body == {"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}
        assert deliberate.body["output_config"] == {"effort": "high"}
        assert "budget_tokens" not in str(deliberate.body)  # Opus 4.7 answers 400 to it
        # Through litellm: its normalised reasoning_effort, which it maps to adaptive thinking.
        via = provider_params(Mode.DELIBERATE, model, transport="litellm")
        assert via.body == {"reasoning_effort": "high"}
    for older in ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5"):
        assert family_of_model(older) == "anthropic"


def test_adaptive_effort_merges_into_the_clients_output_config() -> None:
    params = provider_params(Mode.BRIEF, "claude-opus-4-7")
    body = {"model": "claude-opus-4-7", "output_config": {"format": {"type": "json_schema"}}}
    new, applied = apply_params(body, params)
    assert new["output_config"] == {"format": {"type": "json_schema"}, "effort": "low"}
    assert applied["output_config"] == {"effort": "low"}
    assert body["output_config"] == {"format": {"type": "json_schema"}}  # not mutated
    # A client that set the effort itself keeps control of reasoning.
    own = {"model": "claude-opus-4-7", "output_config": {"effort": "max"}}
    assert apply_params(own, params)[0] == own


def test_gemini_openai_compatible_and_litellm_shapes() -> None:
    flash = provider_params(Mode.DIRECT, "gemini-2.5-flash")
    assert flash.body == {"extra_body": {"google": {"thinking_config": {"thinking_budget": 0}}}}
    pro = provider_params(Mode.DIRECT, "gemini-2.5-pro")  # Pro cannot turn thinking off
    assert pro.body["extra_body"]["google"]["thinking_config"]["thinking_budget"] == 128
    deep = provider_params(Mode.DELIBERATE, "gemini-2.5-flash")
    assert deep.body["extra_body"]["google"]["thinking_config"]["thinking_budget"] >= 8192
    three = provider_params(Mode.DELIBERATE, "gemini-3-pro-preview")
    assert three.body == {"extra_body": {"google": {"thinking_config": {"thinking_level": "high"}}}}
    # Through litellm the normalised reasoning_effort is used; litellm maps it per model.
    via = provider_params(Mode.DIRECT, "gemini/gemini-2.5-flash", transport="litellm")
    assert via.body == {"reasoning_effort": "disable"}
    via = provider_params(Mode.DELIBERATE, "gemini/gemini-2.5-flash", transport="litellm")
    assert via.body == {"reasoning_effort": "high"}


def test_qwen_switch_and_soft_switch() -> None:
    model = "Qwen/Qwen3-8B"
    direct = provider_params(Mode.DIRECT, model)
    assert direct.body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert provider_params(Mode.DELIBERATE, model).body == {
        "chat_template_kwargs": {"enable_thinking": True}
    }
    brief = provider_params(Mode.BRIEF, model, brief_words=40)
    assert brief.body["chat_template_kwargs"]["enable_thinking"] is False
    assert brief.instruction is not None and "40 words" in brief.instruction
    soft = provider_params(Mode.DIRECT, "hosted_vllm/Qwen/Qwen3-8B", transport="litellm")
    assert soft.body == {} and soft.instruction == "/no_think"


def test_deepseek_thinking_type() -> None:
    assert provider_params(Mode.DIRECT, "deepseek/deepseek-chat").body == {
        "thinking": {"type": "disabled"}
    }
    assert provider_params(Mode.DELIBERATE, "deepseek/deepseek-chat").body == {
        "thinking": {"type": "enabled"}
    }


def test_models_without_a_knob_get_an_instruction_and_an_output_cap() -> None:
    direct = provider_params(Mode.DIRECT, "gpt-4o")
    brief = provider_params(Mode.BRIEF, "local", brief_words=30)
    deliberate = provider_params(Mode.DELIBERATE, "local")
    assert direct.body == {} and direct.max_tokens == 1024 and "directly" in direct.instruction
    assert brief.max_tokens == 2048 and "30 words" in brief.instruction
    assert deliberate.max_tokens is None and "step by step" in deliberate.instruction


def test_consensus_samples_are_asked_like_direct() -> None:
    assert provider_params(Mode.CONSENSUS, "gpt-5") == provider_params(Mode.DIRECT, "gpt-5")

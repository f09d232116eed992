"""`select_mode`: the public entry point that turns a prompt into a ModeDecision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenomy.compressors.segments import split_question
from tokenomy.planners.difficulty import DifficultyModel, load_difficulty_model
from tokenomy.planners.modes import Mode, ModeDecision
from tokenomy.planners.policy import (
    PlannerPolicy,
    embeddings_enabled,
    mode_for_difficulty,
    normalize_request,
)
from tokenomy.planners.providers import Transport, provider_params
from tokenomy.tokenizers import message_text


def prompt_of(messages: Sequence[dict[str, Any]]) -> str:
    """The text the difficulty model scores: the question asked now.

    That is the last user turn without the documents pasted into it: how hard a
    request is depends on what is asked, not on how much context came along.
    """
    text = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = message_text(message.get("content"))
            break
    else:
        text = message_text(messages[-1].get("content")) if messages else ""
    question = "\n".join(piece for kind, piece in split_question(text) if kind == "question")
    return question.strip() or text


def scorer_for(policy: PlannerPolicy) -> DifficultyModel:
    """The difficulty model a policy scores with (cached per path and embeddings switch)."""
    return load_difficulty_model(policy.model_path, embeddings_enabled(policy.embeddings))


def select_mode(
    messages: Sequence[dict[str, Any]],
    model: str = "",
    policy: PlannerPolicy | None = None,
    *,
    requested: str | None = None,
    degrade: bool = False,
    single_call: bool = False,
    transport: Transport = "openai",
    client_max_tokens: int | None = None,
) -> ModeDecision:
    """Pick a reasoning mode for `messages` sent to `model`, and the provider params for it.

    `requested` is "auto" or a mode (default: the policy's own setting, and
    "auto" when that is off, since calling this function asks for a decision).
    `single_call` rules out consensus: set it for streams, requests with tools,
    or requests that ask for several choices.
    """
    policy = policy or PlannerPolicy()
    asked = normalize_request(requested) or policy.reasoning
    if asked == "off":
        asked = "auto"
    scorer = scorer_for(policy)
    score = scorer.score(prompt_of(messages))
    if asked == "auto":
        mode, reason = mode_for_difficulty(
            score.difficulty, policy, degrade=degrade, single_call=single_call
        )
    else:
        mode, reason = Mode(asked), "fixed"
        if mode is Mode.CONSENSUS and single_call:
            mode, reason = Mode.DELIBERATE, "single-call"
    cheap = mode.rank <= Mode.BRIEF.rank
    confidence = score.p_cheap_ok if cheap else 1.0 - score.p_cheap_ok

    def params(which: Mode) -> Any:
        rendered = provider_params(
            which,
            model,
            transport=transport,
            brief_words=policy.brief_words,
            client_max_tokens=client_max_tokens,
            budgets=policy.budgets,
        )
        if not policy.cap_output and rendered.family == "generic":
            rendered.max_tokens = None
        return rendered

    decision = ModeDecision(
        mode=mode,
        difficulty=score.difficulty,
        p_cheap_ok=score.p_cheap_ok,
        confidence=confidence,
        reason=reason,
        params=params(mode),
    )
    if mode is Mode.CONSENSUS:
        decision.sample_params = params(Mode.DIRECT)
        decision.escalate_params = params(Mode.DELIBERATE)
        decision.samples = policy.consensus.max_samples
        decision.threshold = policy.consensus.threshold
    return decision

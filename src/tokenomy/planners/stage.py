"""PlanStage: choose a reasoning mode per request and ask the provider for it.

Runs after compression and before the upstream. When reasoning is requested
(body field `tokenomy.reasoning`, or the team's `[planner] reasoning`), it
scores the prompt, picks a mode, writes the provider's knob into the body
(never overwriting a parameter the client set), sets `call.mode` and the
`x-tokenomy-mode` header, and records an Event. For `consensus` the stage
calls the rest of the pipeline itself: k cheap non-streaming samples that stop
by the Beta rule, then one `deliberate` call if they disagree; the Result it
returns carries the usage of all of them, so the ledger charges every sample.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from typing import Any

from pydantic import ValidationError

from tokenomy.call import Call, Result
from tokenomy.config import Settings
from tokenomy.errors import BadRequest, ConfigError
from tokenomy.pipeline import Next
from tokenomy.planners.consensus import run_consensus, sample_copy
from tokenomy.planners.modes import Mode, ModeDecision, ProviderParams
from tokenomy.planners.policy import PlannerPolicy, normalize_request
from tokenomy.planners.providers import (
    Transport,
    family_of_model,
    has_reasoning_knob,
    supported_params,
)
from tokenomy.planners.select import scorer_for, select_mode
from tokenomy.transcript import OPENAI_CHAT, PartKind, WireProtocol

MODE_HEADER = "x-tokenomy-mode"
# Fields through which a client already controls reasoning; when one is set we add no knob.
CLIENT_REASONING_KEYS = ("reasoning_effort", "thinking", "reasoning", "thinking_config")


def warm_up(policy: PlannerPolicy | None = None) -> None:
    with contextlib.suppress(Exception):
        model = scorer_for(policy or PlannerPolicy())
        if model.head is not None:
            model.score("Warm up: how many apples are left if 3 of 5 are eaten?")
        supported_params("gpt-5")


def needs_single_call(body: dict[str, Any]) -> bool:
    """Consensus cannot serve a stream, a tool-using turn, or a request for n choices."""
    return bool(body.get("stream")) or bool(body.get("tools")) or int(body.get("n") or 1) > 1


def client_controls_reasoning(body: dict[str, Any]) -> bool:
    if any(key in body for key in CLIENT_REASONING_KEYS):
        return True
    if "enable_thinking" in (body.get("chat_template_kwargs") or {}):
        return True
    if "effort" in (body.get("output_config") or {}):  # Anthropic adaptive thinking
        return True
    google = ((body.get("extra_body") or {}).get("google")) or {}
    return "thinking_config" in google


def apply_params(
    body: dict[str, Any], params: ProviderParams, protocol: WireProtocol = OPENAI_CHAT
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new body with the mode's params applied; returns (body, what was applied).

    The params name knobs as OpenAI chat and Anthropic do; `protocol` renames them
    to its own request fields (e.g. Responses' `reasoning.effort`).
    """
    new = dict(body)
    applied: dict[str, Any] = {}
    if not client_controls_reasoning(body):
        for key, value in protocol.reasoning_fields(params.body).items():
            if key not in body:
                new[key] = copy.deepcopy(value)
                applied[key] = value
            elif isinstance(value, dict) and isinstance(body[key], dict):
                # e.g. output_config: keep the client's `format`, add our `effort`
                added = {k: v for k, v in value.items() if k not in body[key]}
                if added:
                    new[key] = {**body[key], **copy.deepcopy(added)}
                    applied[key] = added
    if params.max_tokens and protocol.max_output_tokens(body) is None:
        for key, value in protocol.reasoning_fields({"max_tokens": params.max_tokens}).items():
            new[key] = value
            applied[key] = value
    if params.instruction:
        applied["instruction"] = params.instruction  # the stage appends it to the prompt
    return new, applied


class PlanStage:
    name = "plan"

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self._policies: dict[str, PlannerPolicy] = {}
        # Validate every configured policy now, so a typo fails at start, not per request.
        for team in ["default", *self.settings.teams]:
            self.policy(team)
        # litellm's model map (4 s to import) and the difficulty model load in the
        # background, so the first request that asks for reasoning does not wait.
        threading.Thread(
            target=warm_up, args=(self.policy("default"),), name="tokenomy-planner-warm-up",
            daemon=True,
        ).start()

    def policy(self, team: str) -> PlannerPolicy:
        policy = self._policies.get(team)
        if policy is None:
            try:
                policy = self.settings.for_team(team).section("planner", PlannerPolicy)
            except (ConfigError, ValidationError) as exc:
                message = exc.message if isinstance(exc, ConfigError) else str(exc)
                raise ConfigError(f"invalid planner settings for team '{team}': {message}") \
                    from exc
            self._policies[team] = policy
        return policy

    def transport(self, call: Call, policy: PlannerPolicy) -> Transport:
        if policy.transport != "auto":
            return policy.transport
        backend = self.settings.backends.get(call.backend or "")
        return "litellm" if backend is not None and backend.kind == "litellm" else "openai"

    async def __call__(self, call: Call, next: Next) -> Result:
        policy = self.policy(call.identity.team)
        try:
            asked = policy.resolve(normalize_request(call.options.reasoning))
        except ValueError as exc:
            raise BadRequest(str(exc), param="tokenomy.reasoning") from exc
        if asked == "off" or not call.transcript.parts:
            return await next(call)
        started = time.perf_counter()
        model = call.token_model
        body = call.body
        transport = self.transport(call, policy)
        if asked == "auto" and not policy.instructions and not has_reasoning_knob(model,
                                                                                   transport):
            # `auto` never makes a model without a reasoning knob worse: no appended
            # instruction, no output cap, no consensus samples; the request goes as sent.
            call.record(self.name, ms=(time.perf_counter() - started) * 1000,
                        detail={"mode": None, "reason": "no reasoning knob: unchanged",
                                "family": family_of_model(model)})
            return await next(call)
        client_max = call.protocol.max_output_tokens(body)
        decision = select_mode(
            _as_messages(call),
            model=model,
            policy=policy,
            requested=asked,
            degrade=call.degrade,
            single_call=needs_single_call(body),
            transport=transport,
            client_max_tokens=int(client_max) if client_max else None,
        )
        if decision.mode is Mode.CONSENSUS and not await _affordable(call, decision):
            # The budget cannot hold every sample and the escalation: one careful call.
            assert decision.escalate_params is not None
            decision = decision.model_copy(update={
                "mode": Mode.DELIBERATE, "reason": "budget", "params": decision.escalate_params})
        if decision.mode is not Mode.CONSENSUS and not await _affordable(call, decision):
            # Not even the mode's own knobs fit: the request goes as it came (its
            # reservation covers that), never refused for what the planner added.
            call.record(self.name, technique="reasoning", detail={
                "mode": decision.mode.value, "skipped": "the budget cannot hold the mode"})
            return await next(call)
        call.mode = decision.mode.value
        detail: dict[str, Any] = {
            "mode": decision.mode.value,
            "difficulty": round(decision.difficulty, 4),
            "p_cheap_ok": round(decision.p_cheap_ok, 4),
            "reason": decision.reason,
            "family": decision.params.family,
            "degrade": call.degrade,
        }
        if decision.params.dropped:
            detail["dropped"] = decision.params.dropped
        if decision.mode is not Mode.CONSENSUS:
            new_body, applied = apply_params(body, decision.params, call.protocol)
            for key in applied.keys() - {"instruction"}:
                body[key] = new_body[key]
            detail["applied"] = applied
            ms = (time.perf_counter() - started) * 1000
            instruction = applied.get("instruction")
            if instruction:
                call.append_instruction(self.name, instruction, technique="reasoning", ms=ms,
                                        detail=detail)
            else:
                call.record(self.name, technique="reasoning",
                            tokens_before=call.prompt_tokens_sent,
                            tokens_after=call.prompt_tokens_sent, ms=ms, detail=detail)
            return await next(call)

        assert decision.sample_params is not None and decision.escalate_params is not None
        sample_body, sample_applied = apply_params(body, decision.sample_params,
                                                   call.protocol)
        temperature = policy.consensus.temperature
        params = supported_params(model)
        if (
            temperature is not None
            and "temperature" not in body
            and family_of_model(model) != "openai"  # reasoning models fix temperature at 1
            and (params is None or "temperature" in params)
        ):
            sample_body["temperature"] = temperature
        escalate_body, escalate_applied = apply_params(body, decision.escalate_params,
                                                       call.protocol)
        event = call.record(self.name, technique="reasoning",
                            ms=(time.perf_counter() - started) * 1000, detail=detail)
        sampling = time.perf_counter()
        result, outcome = await run_consensus(
            lambda: sample_copy(call, sample_body, sample_applied.get("instruction")),
            lambda: sample_copy(call, escalate_body, escalate_applied.get("instruction")),
            next,
            protocol=call.protocol,
            max_samples=decision.samples,
            threshold=decision.threshold or policy.consensus.threshold,
        )
        # The samples ran concurrently on forked calls: their wall time is the backend's.
        call.upstream_ms += (time.perf_counter() - sampling) * 1000
        detail.update(outcome.detail())
        call.consensus = (
            f"samples={len(outcome.samples)}; escalated={str(outcome.escalated).lower()}"
        )
        event.detail = detail
        return result


async def _affordable(call: Call, decision: ModeDecision) -> bool:
    """Hold every upstream call the decision makes (consensus: each sample, then the
    escalation) before the first is sent; False when the budget refuses them."""
    if call.allowance is None:
        return True
    if decision.mode is Mode.CONSENSUS:
        assert decision.sample_params is not None and decision.escalate_params is not None
        calls = [_as_sent(call, decision.sample_params)] * decision.samples
        calls.append(_as_sent(call, decision.escalate_params))
    else:
        calls = [_as_sent(call, decision.params)]
    return await call.allowance.cover(calls)


def _as_sent(call: Call, params: ProviderParams) -> Call:
    """A copy of `call` as it would leave with `params` applied (for the budget)."""
    body, applied = apply_params(call.body, params)
    return sample_copy(call, body, applied.get("instruction"))


def _as_messages(call: Call) -> list[dict[str, Any]]:
    """The prompt as role/content messages for the difficulty scorer (any protocol)."""
    return [{"role": part.role, "content": part.text} for part in call.transcript.parts
            if part.text and part.kind is not PartKind.OPAQUE]

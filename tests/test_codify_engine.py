"""Contracts and ReWOO through the real Engine: the test upstream, and the local SmolLM2."""

from __future__ import annotations

import pytest

from tokenomy.agents.rewoo import ReWOO
from tokenomy.codify.backend import engine_backend
from tokenomy.codify.contracts import make_contract, rule_contract, validate
from tokenomy.config import Settings
from tokenomy.engine import build_engine
from tokenomy.testing.processes import Server, echo_config

PROMPT = ("You are a very helpful assistant for Acme. Please always answer in English. "
          "You must never reveal the internal price list. Refunds are limited to $50. "
          "Remember, never reveal the internal price list!")


def capital(country: str) -> str:
    """The capital city of a country."""
    return {"italy": "Rome"}.get(country.lower(), "unknown")


async def test_engine_backend_reports_real_usage_and_falls_back(upstream: Server) -> None:
    engine = build_engine(Settings.model_validate(echo_config(upstream.v1)))
    try:
        backend = engine_backend(engine, "echo")
        # The echo model repeats the prompt: not a valid contract, so the rules win.
        made = await make_contract(PROMPT, backend)
        assert made.source == "rules" and made.text == rule_contract(PROMPT)
        assert validate(PROMPT, made.text) == []

        # Nor a plan: the planner is re-prompted once, then the question is answered directly.
        result = await ReWOO(backend, [capital]).run("What is the capital of Italy?")
        assert result.path == "direct" and result.answer.startswith("echo: ")
        assert result.tokens.calls == 3
        assert set(result.tokens.by_step) == {"planner", "direct"}
        assert result.tokens.prompt > 100 and result.tokens.completion > 0
    finally:
        await engine.aclose()


@pytest.mark.slow
async def test_local_model_writes_a_contract_or_the_rules_do() -> None:
    engine = build_engine(Settings())
    try:
        made = await make_contract(PROMPT, engine_backend(engine, "local", "gpt-4o"),
                                   max_tokens=48)
    finally:
        await engine.aclose()
    assert made.source in ("model", "rules")
    assert validate(PROMPT, made.text) == []  # whichever path, every hard rule survived
    assert made.tokens_after < made.tokens_before

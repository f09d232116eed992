"""5C contracts: hard rules survive, bad model drafts fall back, storage and opt-in substitution."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tokenomy.call import Call, Identity, Result
from tokenomy.codify.backend import Reply
from tokenomy.codify.cli import contract as contract_command
from tokenomy.codify.contract_store import ContractStore
from tokenomy.codify.contracts import (
    make_contract,
    normalise,
    prompt_hash,
    rule_contract,
    validate,
)
from tokenomy.codify.stage import CodifyStage
from tokenomy.config import Settings
from tokenomy.pipeline import Pipeline
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.tokenizers import count_text

PROMPTS = Path(__file__).resolve().parents[1] / "data" / "codify" / "prompts"
SUPPORT = (PROMPTS / "verbose_support.txt").read_text()
CODER = (PROMPTS / "verbose_coder.txt").read_text()


@pytest.mark.parametrize("path", sorted(PROMPTS.glob("*.txt")), ids=lambda p: p.stem)
def test_rule_contract_keeps_every_number_and_rule(path: Path) -> None:
    prompt = path.read_text()
    text = rule_contract(prompt)
    assert validate(prompt, text) == []
    assert rule_contract(prompt) == text  # deterministic


def test_rule_contract_has_the_five_parts_and_is_shorter() -> None:
    text = rule_contract(SUPPORT)
    for section in ("Character:", "Cause:", "Constraint:", "Contingency:", "Calibration:"):
        assert section in text
    assert "- Never promise refund larger than $50 without supervisor's approval." in text
    assert "within 24 hours" in text and "120 words" in text
    assert text.count("internal ticket numbers") == 1  # the repeated rule is stated once
    assert "Thank you" not in text
    for verbose in (SUPPORT, CODER):
        assert count_text(rule_contract(verbose), "gpt-4o") < 0.9 * count_text(verbose, "gpt-4o")


def test_validate_catches_a_lost_number_and_a_lost_negation() -> None:
    prompt = "Never reveal the key. Refunds are capped at $50."
    assert validate(prompt, "Refunds capped at $50. Reveal key.") == [
        "rule lost: Never reveal the key."]
    assert validate(prompt, "Never reveal key. Refunds capped.") == ["number $50 missing"]


def scripted(*replies: str):
    seen: list[list[dict]] = []

    async def backend(messages: list[dict], **params) -> Reply:
        seen.append(messages)
        assert params["max_tokens"] <= count_text(SUPPORT, "gpt-4o")
        return Reply(replies[min(len(seen) - 1, len(replies) - 1)])

    backend.seen = seen  # type: ignore[attr-defined]
    return backend


async def test_model_draft_that_drops_a_rule_falls_back_to_rules() -> None:
    draft = "Character: support agent.\nCause: help.\nConstraint: be nice.\nCalibration: short."
    made = await make_contract(SUPPORT, scripted(draft))
    assert made.source == "rules" and made.text == rule_contract(SUPPORT)
    assert any("number $50 missing" in p for p in made.problems)
    assert made.tokens_after < made.tokens_before


async def test_model_draft_that_keeps_every_rule_is_used() -> None:
    good = rule_contract(SUPPORT).replace("Helpful, friendly and knowledgeable ", "")
    made = await make_contract(SUPPORT, scripted(good))
    assert made.source == "model" and made.text == good and made.problems == []


async def test_backend_failure_still_gives_a_contract() -> None:
    async def broken(messages: list[dict], **params) -> Reply:
        raise ConnectionError("backend down")

    made = await make_contract(SUPPORT, broken)
    assert made.source == "rules" and made.problems == ["backend failed: backend down"]


def test_hash_ignores_whitespace_only() -> None:
    assert prompt_hash(SUPPORT) == prompt_hash("  " + SUPPORT.replace("\n\n", "\n") + "\n")
    assert prompt_hash(SUPPORT) != prompt_hash(SUPPORT.replace("$50", "$60"))
    assert normalise("a \n b") == "a b"


async def send(stage: CodifyStage, team: str, system: str = SUPPORT) -> Call:
    seen: list[Call] = []

    async def terminal(call: Call) -> Result:
        seen.append(call)
        return Result(response={})

    call = Call(body={"model": "gpt-4o", "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": "My sync is stuck."}]},
        identity=Identity(team=team))
    await Pipeline([stage], terminal).run(call)
    return seen[0]


async def test_contract_substituted_only_for_teams_that_opt_in(tmp_path: Path) -> None:
    store = ContractStore(tmp_path / "contracts.db")
    made = await make_contract(SUPPORT)
    store.put(made)
    settings = Settings(teams={"support": {"contracts": True}, "legal": {"contracts": False}})
    stage = CodifyStage(settings, store=store)

    opted = await send(stage, "support")
    assert opted.body["messages"][0]["content"] == made.text
    assert opted.body["messages"][1]["content"] == "My sync is stuck."
    [event] = opted.events
    assert event.technique == "contract" and event.detail["hash"] == prompt_hash(SUPPORT)
    assert event.tokens_before == count_text(SUPPORT, "gpt-4o")
    assert event.tokens_after == count_text(made.text, "gpt-4o") < event.tokens_before
    assert opted.prompt_tokens_sent < opted.prompt_tokens_original

    for team in ("legal", "default"):
        other = await send(stage, team)
        assert other.body["messages"][0]["content"] == SUPPORT and not other.events
    unknown = await send(stage, "support", system="You are terse.")
    assert unknown.body["messages"][0]["content"] == "You are terse." and not unknown.events


async def test_planner_wide_opt_in_and_team_opt_out(tmp_path: Path) -> None:
    store = ContractStore(tmp_path / "contracts.db")
    store.put(await make_contract(SUPPORT))
    settings = Settings(codify={"contracts": {"enabled": True}},
                        teams={"legal": {"contracts": False}})
    stage = CodifyStage(settings, store=store)
    assert [e.technique for e in (await send(stage, "anyone")).events] == ["contract"]
    assert (await send(stage, "legal")).events == []


async def test_store_survives_a_new_process_view(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    ContractStore(path).put(await make_contract(CODER))
    again = ContractStore(path)
    row = again.get(prompt_hash(CODER))
    assert row is not None and row.contract == rule_contract(CODER) and row.source == "rules"
    assert [r.hash for r in again.all()] == [prompt_hash(CODER)]
    assert again.delete(row.hash) and again.get(row.hash) is None


def test_cli_writes_a_contract_the_stage_then_uses(tmp_path: Path) -> None:
    db = tmp_path / "contracts.db"
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(CODER)
    runner = CliRunner()
    result = runner.invoke(contract_command, [str(prompt_file), "--rules-only", "--db", str(db),
                                              "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["hash"] == prompt_hash(CODER) and out["source"] == "rules"
    assert out["saved"] == out["tokens_before"] - out["tokens_after"] > 0
    listed = runner.invoke(contract_command, ["--list", "--db", str(db)])
    assert prompt_hash(CODER)[:16] in listed.output
    assert ContractStore(db).get(prompt_hash(CODER)) is not None
    empty = runner.invoke(contract_command, ["--rules-only", "--db", str(db)], input="  \n")
    assert empty.exit_code != 0 and "empty" in empty.output


def test_contract_is_a_tokenomy_command() -> None:
    from tokenomy.cli import main

    result = CliRunner().invoke(main, ["contract", "--help"])
    assert result.exit_code == 0 and "5C contract" in result.output


def test_structured_prompt_keeps_headings_placeholders_and_order() -> None:
    prompt = (PROMPTS / "langchain_summary.txt").read_text()
    text = rule_contract(prompt)
    lines = text.splitlines()
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == ["## SESSION INTENT", "## SUMMARY", "## ARTIFACTS", "## NEXT STEPS"]
    assert lines[0] == "Character: Context Extraction Assistant."  # from the <role> tag
    assert lines[-2:] == ["Messages to summarize:", "{messages}"]
    assert validate(prompt, text) == []
    assert validate(prompt, text.replace("{messages}", "")) == ["placeholder {messages} missing"]


def test_proxy_substitutes_the_contract_for_an_opted_in_team(
        upstream: Server, tmp_path: Path) -> None:
    db = tmp_path / "contracts.db"
    runner = CliRunner()
    made = runner.invoke(contract_command, ["--rules-only", "--db", str(db), "--json"],
                         input=SUPPORT)
    assert made.exit_code == 0, made.output
    contract_text = json.loads(made.output)["contract"]
    config = echo_config(upstream.v1, codify={"contracts": {"teams": ["support"],
                                                             "db": str(db)}},
                         backends={"test": {"kind": "openai", "base_url": upstream.v1,
                                            "timeout": 60}})  # a loaded CI machine
    with run_proxy(config, folder=tmp_path / "proxy") as proxy:
        for team, expected in (("support", contract_text), ("sales", SUPPORT)):
            reply = httpx.post(proxy.v1 + "/chat/completions", timeout=120, json={
                "model": "echo", "tokenomy": {"team": team},
                "messages": [{"role": "system", "content": SUPPORT},
                             {"role": "user", "content": "My sync is stuck."}]})
            assert reply.status_code == 200, reply.text
            sent = httpx.get(upstream.url + "/_last").json()["messages"][0]["content"]
            assert sent == expected
            original = int(reply.headers["x-tokenomy-prompt-tokens-original"])
            tokens_sent = int(reply.headers["x-tokenomy-prompt-tokens-sent"])
            assert (tokens_sent < original) == (team == "support")

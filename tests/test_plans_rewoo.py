"""Codified plans (parser, checker, interpreter) and ReWOO with a scripted planner/solver."""

from __future__ import annotations

import asyncio

import pytest

from tokenomy.agents.plan_runtime import run_plan
from tokenomy.agents.plans import PlanError, describe_tools, parse_plan
from tokenomy.agents.rewoo import ReWOO, build_rewoo_graph
from tokenomy.codify.backend import Reply
from tokenomy.tokenizers import count_messages, count_text

PRICES = {"apple": 0.5, "pear": 0.75, "plum": 1.25}
RATES = {("EUR", "USD"): 1.1}


def unit_price(item: str) -> float:
    """Price of one item in EUR."""
    return PRICES[item]


async def convert(amount: float, source: str = "EUR", target: str = "USD") -> float:
    """Convert money between currencies."""
    await asyncio.sleep(0)
    return round(amount * RATES[(source, target)], 4)


def stock(item: str) -> dict:
    """Stock level and warehouse of an item."""
    return {"item": item, "count": {"apple": 12, "pear": 0}.get(item, 3), "where": "north"}


TOOLS = {"unit_price": unit_price, "convert": convert, "stock": stock}

PLAN = """
```python
# compare the basket in USD
items: list[str] = ["apple", "pear"]
total: float = 0
for item in items:
    #E1: float = unit_price(item=item)
    total = total + #E1 * 2
#E2: float = convert(amount=total)
#E3: dict = stock(item="pear")
if #E3.count == 0 and #E2 > 1:
    note: str = f"pear sold out at {#E3.where}"
else:
    note: str = "all in stock"
```
"""


async def test_plan_parses_checks_and_runs() -> None:
    plan = parse_plan(PLAN, TOOLS)
    assert plan.tool_calls == ["unit_price", "convert", "stock"]
    assert plan.evidence == ["E1", "E2", "E3"]
    run = await run_plan(plan, TOOLS)
    assert run.variables["total"] == 2.5
    assert run.evidence == {"#E1": 0.75, "#E2": 2.75, "#E3": {"item": "pear", "count": 0,
                                                             "where": "north"}}
    assert run.variables["note"] == "pear sold out at north"
    assert [c.name for c in run.calls] == ["unit_price", "unit_price", "convert", "stock"]
    assert run.calls[2].args == {"amount": 2.5} and run.warnings == []


@pytest.mark.parametrize(("plan", "problem"), [
    ("#E1 = delete_all()", "line 1: unknown tool delete_all()"),
    ("#E1 = unit_price(item='a', colour='red')", "line 1: unit_price(): got an unexpected"),
    ("#E1 = unit_price()", "line 1: unit_price(): missing a required argument: 'item'"),
    ("#E1 = unit_price(item=x)", "line 1: x is used before it is set"),
    ("import os\n#E1 = unit_price(item='a')", "line 1: Import is not allowed in a plan"),
    ("#E1 = unit_price(item='a').__class__", "line 1: private attribute __class__"),
    ("x: Widget = 1\n#E1 = unit_price(item='a')", "line 1: unknown type Widget"),
    ("#E1 = unit_price(item='a'", "line 1: '(' was never closed"),
    ("total = 1 + 2", "the plan calls no tool"),
    ("#E1 = (lambda: 1)()", "line 1: Lambda is not allowed in a plan"),
])
def test_bad_plans_are_rejected_with_reasons(plan: str, problem: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(plan, TOOLS)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


async def test_classic_rewoo_syntax_is_accepted() -> None:
    text = ("Plan: find the price of a plum\n#E1 = unit_price[plum]\n"
            "Plan: convert it\n#E2 = convert[#E1]")
    run = await run_plan(parse_plan(text, TOOLS), TOOLS)
    # the classic form passes text; the tool's failure becomes evidence for the solver
    assert run.evidence["#E2"].startswith("error: TypeError")
    plan = parse_plan("Plan: price\n#E1 = unit_price[plum]\nPlan: stock\n#E2 = stock[#E1]",
                      TOOLS)
    run = await run_plan(plan, TOOLS)
    assert run.evidence["#E1"] == 1.25 and run.evidence["#E2"]["item"] == "1.25"


async def test_type_mismatch_is_a_warning_and_tool_errors_are_evidence() -> None:
    run = await run_plan(parse_plan("#E1: str = unit_price(item='apple')\n"
                                    "#E2 = unit_price(item='kiwi')", TOOLS), TOOLS)
    assert run.warnings == ["line 1: expected str, got float"]
    assert run.evidence["#E2"] == "error: KeyError: 'kiwi'"


def test_tools_are_described_as_signatures() -> None:
    assert describe_tools(TOOLS).splitlines()[1] == (
        "convert(amount: float, source: str = EUR, target: str = USD) -> float"
        "  # Convert money between currencies.")


class Scripted:
    """A backend that answers from a script and records what it was sent."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.seen: list[list[dict]] = []

    async def __call__(self, messages: list[dict], **params) -> Reply:
        self.seen.append(messages)
        return Reply(self.replies.pop(0))


GOOD_PLAN = "#E1: float = unit_price(item='plum')\n#E2: float = convert(amount=#E1 * 3)"


async def test_rewoo_plans_once_runs_tools_and_solves_once() -> None:
    backend = Scripted(GOOD_PLAN, "Three plums cost 4.125 USD.")
    result = await ReWOO(backend, TOOLS).run("What do 3 plums cost in USD?")
    assert result.path == "rewoo" and result.answer == "Three plums cost 4.125 USD."
    assert result.evidence == {"#E1": 1.25, "#E2": 4.125}
    assert len(backend.seen) == 2  # one planner call, one solver call, no per-tool calls
    solver_prompt = backend.seen[1][0]["content"]
    assert "convert(amount=3.75) -> 4.125" in solver_prompt
    assert "#E2: float = convert(amount=#E1 * 3)" in solver_prompt
    assert "What do 3 plums cost" in solver_prompt
    assert result.plan == GOOD_PLAN  # shown in the #E form the planner wrote
    planner_messages = backend.seen[0]
    assert result.tokens.by_step["planner"] == (count_messages(planner_messages, "gpt-4o")
                                                + count_text(GOOD_PLAN, "gpt-4o"))
    assert result.tokens.calls == 2 and result.tokens.total == sum(
        result.tokens.by_step.values())


async def test_examples_are_shown_as_earlier_turns() -> None:
    backend = Scripted(GOOD_PLAN, "4.125 USD")
    example = ("Price of 2 pears in USD?", "#E1 = unit_price(item='pear')\n"
               "#E2 = convert(amount=#E1 * 2)")
    await ReWOO(backend, TOOLS, examples=[example]).run("3 plums in USD?")
    assert [m["role"] for m in backend.seen[0]] == ["system", "user", "assistant", "user"]
    assert backend.seen[0][2]["content"] == example[1]


async def test_rewoo_reprompts_once_then_succeeds() -> None:
    backend = Scripted("I will look up the price of plums.", GOOD_PLAN, "4.125 USD")
    result = await ReWOO(backend, TOOLS).run("What do 3 plums cost in USD?")
    assert result.path == "rewoo-reprompt" and result.answer == "4.125 USD"
    reprompt = backend.seen[1][-1]["content"]
    assert reprompt.startswith("Your plan could not be used: line 1: invalid syntax")
    assert "unit_price(item: str) -> float" in reprompt


async def test_rewoo_falls_back_to_a_direct_answer_and_still_counts_tokens() -> None:
    backend = Scripted("no plan", "still no plan", "About 4 USD.")
    result = await ReWOO(backend, TOOLS).run("What do 3 plums cost in USD?")
    assert result.path == "direct" and result.answer == "About 4 USD." and result.plan is None
    assert set(result.tokens.by_step) == {"planner", "direct"} and result.tokens.calls == 3
    assert result.tokens.total > 0 and result.errors


async def test_usage_reported_by_the_backend_is_used_as_is() -> None:
    async def billed(messages: list[dict], **params) -> Reply:
        return Reply(GOOD_PLAN if len(messages) == 2 else "ok", 100, 10)

    result = await ReWOO(billed, TOOLS).run("3 plums in USD?")
    assert result.tokens.prompt == 200 and result.tokens.completion == 20


async def test_langgraph_runs_planner_worker_solver() -> None:
    graph = build_rewoo_graph(ReWOO(Scripted(GOOD_PLAN, "4.125 USD"), TOOLS)).compile()
    assert {"planner", "worker", "solver", "direct"} <= set(graph.get_graph().nodes)
    state = await graph.ainvoke({"question": "What do 3 plums cost in USD?"})
    assert state["answer"] == "4.125 USD" and state["path"] == "rewoo"
    assert state["evidence"]["#E2"] == 4.125 and state["tokens"]["calls"] == 2

    fallback = build_rewoo_graph(ReWOO(Scripted("x", "y", "About 4."), TOOLS)).compile()
    state = await fallback.ainvoke({"question": "3 plums?"})
    assert state["path"] == "direct" and state["tokens"]["calls"] == 3

"""ReWOO plan-then-execute: one planner call, tools run by workers, one solver call.

ReAct pays for the whole transcript again on every tool step; ReWOO (Xu et
al., 2023) writes every tool call up front with `#E1`-style placeholders, runs
the tools without the model, and asks once for the answer. Plans use the
codified pseudocode of `plans.py`.

Small models write broken plans, so the planner is re-prompted once with the
parser's complaints, and if that fails too the question is answered directly
(one call, no tools). Tokens are counted on every path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from tokenomy.agents.plan_runtime import PlanRuntimeError, run_plan
from tokenomy.agents.plans import (
    Plan,
    PlanError,
    PlanRun,
    describe_tools,
    parse_plan,
)
from tokenomy.codify.backend import ChatBackend, Reply, counted

PLANNER = """Write a plan that answers the question with these tools. Each line calls one
tool and stores its result in #E1, #E2, ...; later lines may use earlier results.
Python-like: typed variables, keyword arguments, for, if/else, f-strings.
Output only the plan.

Tools:
{tools}"""

# Shown only when the caller gives no worked examples of its own.
PLANNER_EXAMPLE = """

Example:
#E1: dict = get_weather(city="Paris")
if #E1.temp > 20:
    #E2: str = suggest(activity="swim", city="Paris")"""

REPROMPT = """Your plan could not be used: {problems}
Write it again in exactly this form, using only these tools:
{tools}
Output only lines like:  #E1: type = tool(arg=value)"""

SOLVER = """Plan:
{plan}

Tool results:
{facts}

Question: {question}
Answer the question in one short sentence, using the tool results."""

DIRECT = "Answer the question briefly."


@dataclass
class Tokens:
    prompt: int = 0
    completion: int = 0
    calls: int = 0
    by_step: dict[str, int] = field(default_factory=dict)

    def add(self, step: str, reply: Reply) -> None:
        self.prompt += reply.prompt_tokens
        self.completion += reply.completion_tokens
        self.calls += 1
        total = reply.prompt_tokens + reply.completion_tokens
        self.by_step[step] = self.by_step.get(step, 0) + total

    @property
    def total(self) -> int:
        return self.prompt + self.completion


@dataclass
class ReWOOResult:
    answer: str
    plan: str | None  # the plan that ran, or None on the direct path
    evidence: dict[str, Any]
    run: PlanRun | None
    tokens: Tokens
    path: str  # "rewoo", "rewoo-reprompt" or "direct"
    errors: list[str] = field(default_factory=list)


def facts(run: PlanRun, limit: int = 2000) -> list[str]:
    """One line per tool call: `capital(country='Italy') -> 'Rome'` (what the solver reads)."""
    lines = []
    for call in run.calls:
        args = ", ".join(f"{k}={v!r}" for k, v in call.args.items())
        value = call.result if call.error is None else f"error: {call.error}"
        text = json.dumps(value, default=str, ensure_ascii=False)
        lines.append(f"{call.name}({args}) -> {text[:limit]}")
    return lines


def display(plan_text: str) -> str:
    """The plan as the planner wrote it: evidence variables back in `#E1` form."""
    return re.sub(r"\bE(\d+)\b", r"#E\1", plan_text)


class ReWOO:
    """`await ReWOO(backend, tools).run(question)`; tools are plain or async callables."""

    def __init__(self, backend: ChatBackend, tools: dict[str, Callable[..., Any]]
                 | list[Callable[..., Any]], *, model: str = "gpt-4o",
                 plan_tokens: int = 200, answer_tokens: int = 200,
                 examples: list[tuple[str, str]] | None = None) -> None:
        self.backend = backend
        self.tools = tools if isinstance(tools, dict) else {t.__name__: t for t in tools}
        self.model = model  # whose tokenizer counts usage a backend leaves out
        self.plan_tokens = plan_tokens
        self.answer_tokens = answer_tokens
        self.tool_text = describe_tools(self.tools)
        # (question, plan) pairs shown as earlier chat turns: small models copy a
        # worked exchange far more reliably than a format described in prose.
        self.examples = examples or []

    async def ask(self, step: str, messages: list[dict[str, Any]], tokens: Tokens,
                  max_tokens: int) -> str:
        reply = await self.backend(messages, max_tokens=max_tokens, temperature=0)
        tokens.add(step, counted(reply, messages, self.model))
        return reply.text

    async def plan(self, question: str, tokens: Tokens) -> tuple[Plan | None, int, list[str]]:
        """(plan, attempts, problems): one try, then one re-prompt with the problems."""
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": PLANNER.format(tools=self.tool_text)
             + ("" if self.examples else PLANNER_EXAMPLE)}]
        for example_question, example_plan in self.examples:
            messages += [{"role": "user", "content": example_question},
                         {"role": "assistant", "content": example_plan}]
        messages.append({"role": "user", "content": question})
        errors: list[str] = []
        for attempt in (1, 2):
            text = await self.ask("planner", messages, tokens, self.plan_tokens)
            try:
                return parse_plan(text, self.tools), attempt, errors
            except PlanError as exc:
                errors += exc.problems
                messages = [*messages, {"role": "assistant", "content": text},
                            {"role": "user", "content": REPROMPT.format(
                                problems="; ".join(exc.problems[:5]), tools=self.tool_text)}]
        return None, 2, errors

    async def work(self, plan: Plan) -> PlanRun:
        return await run_plan(plan, self.tools)

    async def solve(self, question: str, plan_text: str, lines: list[str],
                    tokens: Tokens) -> str:
        prompt = SOLVER.format(question=question, plan=display(plan_text),
                               facts="\n".join(lines) or "(no results)")
        return await self.ask("solver", [{"role": "user", "content": prompt}], tokens,
                              self.answer_tokens)

    async def direct(self, question: str, tokens: Tokens) -> str:
        messages = [{"role": "system", "content": DIRECT}, {"role": "user", "content": question}]
        return await self.ask("direct", messages, tokens, self.answer_tokens)

    async def run(self, question: str) -> ReWOOResult:
        tokens = Tokens()
        plan, attempts, errors = await self.plan(question, tokens)
        if plan is not None:
            try:
                run = await self.work(plan)
            except (PlanRuntimeError, TypeError, KeyError, IndexError, ValueError,
                    ZeroDivisionError, AttributeError) as exc:
                errors.append(f"plan failed while running: {exc}")
            else:
                answer = await self.solve(question, plan.text, facts(run), tokens)
                path = "rewoo" if attempts == 1 else "rewoo-reprompt"
                return ReWOOResult(answer, display(plan.text), run.evidence, run, tokens, path,
                                   errors)
        answer = await self.direct(question, tokens)
        return ReWOOResult(answer, None, {}, None, tokens, "direct", errors)


class ReWOOState(TypedDict, total=False):
    question: str
    plan: str | None
    attempts: int
    evidence: dict[str, Any]
    facts: list[str]
    answer: str
    path: str
    errors: list[str]
    tokens: dict[str, Any]


def build_rewoo_graph(rewoo: ReWOO) -> Any:
    """A LangGraph `StateGraph` with planner, worker, solver (and direct) nodes.

    `graph = build_rewoo_graph(ReWOO(backend, tools)).compile()` then
    `await graph.ainvoke({"question": "..."})`.
    """
    from langgraph.graph import END, START, StateGraph

    def tally(state: ReWOOState) -> Tokens:
        saved = state.get("tokens") or {}
        return Tokens(saved.get("prompt", 0), saved.get("completion", 0), saved.get("calls", 0),
                      dict(saved.get("by_step", {})))

    def dump(tokens: Tokens) -> dict[str, Any]:
        return {"prompt": tokens.prompt, "completion": tokens.completion, "calls": tokens.calls,
                "by_step": tokens.by_step, "total": tokens.total}

    async def planner(state: ReWOOState) -> ReWOOState:
        tokens = tally(state)
        plan, attempts, errors = await rewoo.plan(state["question"], tokens)
        return {"plan": display(plan.text) if plan else None, "attempts": attempts,
                "errors": errors, "tokens": dump(tokens)}

    async def worker(state: ReWOOState) -> ReWOOState:
        try:
            run = await rewoo.work(parse_plan(state["plan"] or "", rewoo.tools))
        except (PlanError, PlanRuntimeError, TypeError, KeyError, IndexError, ValueError,
                ZeroDivisionError, AttributeError) as exc:
            return {"plan": None, "errors": [*state.get("errors", []), f"plan failed: {exc}"]}
        return {"evidence": run.evidence, "facts": facts(run)}

    async def solver(state: ReWOOState) -> ReWOOState:
        tokens = tally(state)
        answer = await rewoo.solve(state["question"], state["plan"] or "",
                                   state.get("facts", []), tokens)
        path = "rewoo" if state.get("attempts") == 1 else "rewoo-reprompt"
        return {"answer": answer, "path": path, "tokens": dump(tokens)}

    async def direct(state: ReWOOState) -> ReWOOState:
        tokens = tally(state)
        answer = await rewoo.direct(state["question"], tokens)
        return {"answer": answer, "path": "direct", "tokens": dump(tokens)}

    graph = StateGraph(ReWOOState)
    graph.add_node("planner", planner)
    graph.add_node("worker", worker)
    graph.add_node("solver", solver)
    graph.add_node("direct", direct)
    graph.add_edge(START, "planner")
    graph.add_conditional_edges("planner", lambda s: "worker" if s.get("plan") else "direct",
                                ["worker", "direct"])
    graph.add_conditional_edges("worker", lambda s: "solver" if s.get("plan") else "direct",
                                ["solver", "direct"])
    graph.add_edge("solver", END)
    graph.add_edge("direct", END)
    return graph

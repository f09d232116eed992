"""@tokenomy.step: keeps what it wraps intact, composes when nested, enforces step budgets."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

import tokenomy
from sdk_support import echo_settings, ledger_steps
from tokenomy.errors import BudgetExceeded
from tokenomy.sdk import current_step
from tokenomy.testing.processes import Server


def test_wrapper_keeps_signature_name_and_kind() -> None:
    def node(state: dict, config: dict, *, runtime: object = None) -> dict:
        """Doc."""
        return state

    async def anode(state: dict, config: dict) -> dict:
        return state

    def gen(n: int) -> Iterator[int]:
        yield from range(n)

    async def agen(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            yield i

    for fn in (node, anode, gen, agen):
        wrapped = tokenomy.step(fn)
        assert inspect.signature(wrapped) == inspect.signature(fn)
        assert wrapped.__name__ == fn.__name__ and wrapped.__doc__ == fn.__doc__
        for probe in (inspect.iscoroutinefunction, inspect.isgeneratorfunction,
                      inspect.isasyncgenfunction):
            assert probe(wrapped) == probe(fn), (fn.__name__, probe.__name__)
    named = tokenomy.step(name="n", budget_tokens=5)(anode)
    assert inspect.iscoroutinefunction(named)
    assert inspect.signature(named) == inspect.signature(anode)


def test_nested_steps_compose_inner_overrides_outer() -> None:
    seen: dict[str, object] = {}

    @tokenomy.step(name="inner", reasoning="direct", tags={"b": "2", "a": "override"})
    def inner() -> None:
        ctx = current_step()
        assert ctx is not None
        seen.update(name=ctx.name, team=ctx.team, reasoning=ctx.reasoning, tags=ctx.tags,
                    compress=ctx.compress.target_ratio if ctx.compress else None,
                    chain=[c.name for c in ctx.chain()])

    @tokenomy.step(name="outer", team="search", compress=4, reasoning="deliberate",
                   tags={"a": "1"})
    def outer() -> str | None:
        inner()
        ctx = current_step()
        return ctx.name if ctx else None

    assert outer() == "outer"  # the inner step was closed again
    assert current_step() is None
    assert seen == {"name": "inner", "team": "search", "reasoning": "direct",
                    "tags": {"a": "override", "b": "2"}, "compress": 4.0,
                    "chain": ["inner", "outer"]}


def test_reasoning_takes_the_planner_vocabulary() -> None:
    assert tokenomy.step(reasoning="Brief").reasoning == "brief"
    with pytest.raises(ValueError, match="unknown reasoning mode"):
        tokenomy.step(reasoning="extreme")


def test_unnamed_step_takes_the_function_name_and_works_as_context_manager() -> None:
    @tokenomy.step
    def summarize() -> str | None:
        ctx = current_step()
        return ctx.name if ctx else None

    assert summarize() == "summarize"
    with tokenomy.step("setup", team="ops") as ctx:
        assert current_step() is ctx and ctx.name == "setup" and ctx.team == "ops"
    assert current_step() is None


async def test_generators_see_their_step_at_every_resume() -> None:
    @tokenomy.step(name="gen")
    def gen() -> Iterator[str | None]:
        for _ in range(3):
            ctx = current_step()
            yield ctx.name if ctx else None

    @tokenomy.step(name="agen")
    async def agen():  # type: ignore[no-untyped-def]
        for _ in range(3):
            await asyncio.sleep(0)
            ctx = current_step()
            yield ctx.name if ctx else None

    names = []
    for name in gen():
        names.append(name)
        assert current_step() is None  # the consumer is outside the step between resumes
    assert names == ["gen"] * 3
    anames = []
    async for name in agen():
        anames.append(name)
        assert current_step() is None
    assert anames == ["agen"] * 3


async def test_concurrent_async_steps_do_not_leak_into_each_other() -> None:
    @tokenomy.step
    async def worker(name: str) -> list[str | None]:
        out = []
        for _ in range(5):
            await asyncio.sleep(0)
            ctx = current_step()
            out.append(ctx.tags.get("who") if ctx else None)
        return out

    async def run(name: str) -> list[str | None]:
        with tokenomy.step(tags={"who": name}):
            return await worker(name)

    a, b = await asyncio.gather(run("a"), run("b"))
    assert a == ["a"] * 5 and b == ["b"] * 5

    shared = tokenomy.step("shared")  # one Step object entered by two tasks at once

    async def enter(n: int) -> str | None:
        async with shared as ctx:
            await asyncio.sleep(0.01 * n)
            assert current_step() is ctx
        return ctx.name

    assert await asyncio.gather(enter(2), enter(1)) == ["shared", "shared"]
    assert current_step() is None


# -- budgets against the real engine (in process) and the test upstream ----------------------


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-step-ledger")


@pytest.fixture(scope="module")
def client(upstream: Server, ledger_dir: Path) -> Iterator[tokenomy.Client]:
    with tokenomy.Client(echo_settings(upstream, ledger_dir)) as c:
        yield c


def ask(client: tokenomy.Client, text: str) -> str:
    completion = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content or ""


def test_step_budget_raises_naming_the_step(client: tokenomy.Client) -> None:
    @tokenomy.step(name="summarize", budget_tokens=30)
    def summarize() -> int:
        calls = 0
        with pytest.raises(BudgetExceeded) as info:
            for _ in range(10):
                ask(client, "please summarize the quarterly figures for the board")
                calls += 1
        assert "summarize" in info.value.message and info.value.status == 429
        assert info.value.code == "step_budget_exceeded"
        ctx = current_step()
        assert ctx is not None and ctx.usage.total_tokens >= 30
        return calls

    calls = summarize()
    assert 1 <= calls < 10  # some calls went through, then the step was refused
    assert client.last_call is not None and client.last_call.identity.step == "summarize"


def test_step_budget_degrades_instead(client: tokenomy.Client) -> None:
    @tokenomy.step(name="draft", budget_tokens=10, on_budget="degrade")
    def draft() -> list[bool]:
        flags = []
        for _ in range(3):
            ask(client, "write a short draft reply to the customer")
            assert client.last_call is not None
            flags.append(client.last_call.degrade)
        return flags

    flags = draft()
    assert flags[0] is False and flags[1:] == [True, True]
    events = [e for e in client.last_call.events if e.stage == "step"]  # type: ignore[union-attr]
    assert events and events[0].technique == "degrade"


def test_outer_budget_applies_to_inner_step_calls(client: tokenomy.Client) -> None:
    @tokenomy.step(name="leaf")
    def leaf() -> str:
        return ask(client, "one more question about the invoice")

    @tokenomy.step(name="agent", budget_tokens=1)
    def agent() -> None:
        leaf()  # the first call is allowed: nothing spent yet
        with pytest.raises(BudgetExceeded, match="'agent'"):
            leaf()

    agent()


def test_calls_are_attributed_in_the_ledger(upstream: Server, tmp_path: Path) -> None:
    with tokenomy.Client(echo_settings(upstream, tmp_path)) as client:

        @tokenomy.step(name="ledger-check", team="research")
        def work() -> None:
            ask(client, "first")
            ask(client, "second")

        work()
        ask(client, "outside any step")
    steps = ledger_steps(tmp_path)  # the ledger is read after the engine let go of it
    assert steps["ledger-check"]["requests"] == 2
    assert steps["ledger-check"]["prompt_tokens"] > 0
    assert sum(group["requests"] for group in steps.values()) == 3

"""LangGraph and LangChain 1.x: decorated nodes, the tokenomy chat model, the agent middleware."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

import tokenomy
from sdk_support import echo_settings, ledger_steps
from tokenomy.errors import BudgetExceeded
from tokenomy.sdk import current_step
from tokenomy.sdk.langchain import TokenomyChatOpenAI, TokenomyMiddleware, chat_model
from tokenomy.sdk.runner import InProcessEngine
from tokenomy.testing.processes import Server

DATA = Path(__file__).resolve().parents[1] / "data" / "qa_passages.dev.jsonl"


class State(TypedDict, total=False):
    question: str
    context: str
    answer: str
    seen: list[str]


class Context(TypedDict):
    user: str


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-langgraph")


@pytest.fixture(scope="module")
def engine(upstream: Server, ledger_dir: Path) -> Iterator[InProcessEngine]:
    engine = InProcessEngine(echo_settings(upstream, ledger_dir))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def llm(engine: InProcessEngine) -> TokenomyChatOpenAI:
    return chat_model("echo", engine=engine)


def build_graph(llm: TokenomyChatOpenAI) -> Any:
    @tokenomy.step  # attributed to the node name, read from LangGraph's config
    def retrieve(state: State, config: RunnableConfig, runtime: Runtime[Context]) -> State:
        ctx = current_step()
        assert ctx is not None
        reply = llm.invoke([HumanMessage(f"rewrite as a search query: {state['question']}")])
        assert runtime.context["user"] == "ana"  # LangGraph still injects runtime ...
        assert config["metadata"]["langgraph_node"] == "retrieve"  # ... and config
        return {"context": str(reply.content), "seen": [f"retrieve:{ctx.name}"]}

    @tokenomy.step(team="answers", tags={"kind": "final"})
    async def answer(state: State, config: RunnableConfig, runtime: Runtime[Context]) -> State:
        ctx = current_step()
        assert ctx is not None
        reply = await llm.ainvoke([HumanMessage(f"{state['context']} -> {state['question']}")])
        return {"answer": str(reply.content),
                "seen": [*state.get("seen", []), f"answer:{ctx.name}:{ctx.team}"]}

    assert inspect.iscoroutinefunction(answer) and not inspect.iscoroutinefunction(retrieve)
    graph = StateGraph(State, context_schema=Context)
    graph.add_node("retrieve", retrieve)
    graph.add_node("answer", answer)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "answer")
    graph.add_edge("answer", END)
    return graph.compile()


async def test_langgraph_nodes_are_attributed_per_node(
    llm: TokenomyChatOpenAI, engine: InProcessEngine, upstream: Server, tmp_path: Path
) -> None:
    app = build_graph(llm)
    out = await app.ainvoke({"question": "who wrote the report?"}, context={"user": "ana"})
    assert out["seen"] == ["retrieve:retrieve", "answer:answer:answers"]
    assert out["answer"].startswith("echo: echo: rewrite as a search query")
    calls = list(engine.recent)[-2:]
    assert [(c.identity.step, c.identity.team) for c in calls] == [
        ("retrieve", "default"), ("answer", "answers")]
    assert calls[1].identity.tags["kind"] == "final"
    assert calls[1].identity.tags["langgraph_node"] == "answer"
    # Streaming the graph attributes the same way.
    updates = [u async for u in app.astream({"question": "and the date?"},
                                            context={"user": "ana"}, stream_mode="updates")]
    assert [next(iter(u)) for u in updates] == ["retrieve", "answer"]
    assert [c.identity.step for c in list(engine.recent)[-2:]] == ["retrieve", "answer"]

    # The same graph, counted in a ledger of its own: one row per node call, grouped by step.
    own = InProcessEngine(echo_settings(upstream, tmp_path))
    try:
        await build_graph(chat_model("echo", engine=own)).ainvoke(
            {"question": "q"}, context={"user": "ana"})
    finally:
        own.close()
    steps = ledger_steps(tmp_path)
    assert {k: v["requests"] for k, v in steps.items()} == {"retrieve": 1, "answer": 1}


async def test_chat_model_step_budget_raises_before_sending(
    llm: TokenomyChatOpenAI, upstream_reset: Server
) -> None:
    with tokenomy.step("tiny", budget_tokens=1):
        await llm.ainvoke("first call is allowed")
        with pytest.raises(BudgetExceeded, match="'tiny'"):
            await llm.ainvoke("second is refused")
        with pytest.raises(BudgetExceeded):
            llm.invoke("sync too")
    stats = httpx.get(upstream_reset.url + "/_stats").json()
    assert stats["count"] == 1  # the refused calls never reached the backend


def test_chat_model_streams_and_charges_the_step(llm: TokenomyChatOpenAI) -> None:
    with tokenomy.step("streamer") as ctx:
        text = "".join(str(chunk.content) for chunk in llm.stream("stream me"))
    assert text == "echo: stream me"
    assert ctx.usage.calls == 1 and ctx.usage.completion_tokens > 0


def test_chat_model_through_the_proxy(echo_proxy: Server) -> None:
    remote = chat_model("echo", client=tokenomy.Client(base_url=echo_proxy.v1))
    with tokenomy.step("via-proxy", budget_tokens=100_000) as ctx:
        reply = remote.invoke("hello proxy")
        streamed = "".join(str(c.content) for c in remote.stream("hello stream"))
    assert reply.content == "echo: hello proxy" and streamed == "echo: hello stream"
    assert ctx.usage.calls == 2 and ctx.usage.prompt_tokens_sent > 0


# -- the agent middleware ----------------------------------------------------------------------


def long_passage() -> tuple[str, str]:
    """A real passage (several hundred tokens) and its question."""
    for line in DATA.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if len(item["passage"]) > 3000:
            return item["passage"], item["question"]
    raise AssertionError("no long passage in the data file")


@pytest.mark.slow
async def test_middleware_changes_what_the_model_receives(
    llm: TokenomyChatOpenAI, engine: InProcessEngine, upstream_reset: Server
) -> None:
    passage, question = long_passage()
    middleware = TokenomyMiddleware(compress=4, reasoning="low")
    agent = create_agent(llm, tools=[], middleware=[middleware],
                         system_prompt="Answer from the retrieved passage.")
    history = [
        HumanMessage(question),
        AIMessage("", tool_calls=[{"name": "search", "args": {"q": question}, "id": "call_1"}]),
        ToolMessage(passage, tool_call_id="call_1"),
        HumanMessage(question),
    ]
    await agent.ainvoke({"messages": history})
    sent = httpx.get(upstream_reset.url + "/_last").json()
    messages = sent["messages"]
    assert messages[0] == {"role": "system", "content": "Answer from the retrieved passage."}
    tool = next(m for m in messages if m["role"] == "tool")
    assert len(tool["content"]) < len(passage) / 2  # the retrieved document was compressed
    assert messages[-1]["content"] == question  # the question is byte-identical
    assert sent["reasoning_effort"] == "low"  # model_settings reached the request
    event = middleware.events[-1]
    assert event.tokens_before is not None and event.tokens_after is not None
    assert event.tokens_after < event.tokens_before

    # A step's policy overrides the middleware's: no compression, the planner's deliberate
    # mode, mapped for an OpenAI reasoning model; the engine is told not to plan again.
    o3 = chat_model("o3-mini", engine=engine)
    agent = create_agent(o3, tools=[], middleware=[middleware])
    with tokenomy.step("agent", reasoning="deliberate", compress=False):
        agent.invoke({"messages": history})
    sent = httpx.get(upstream_reset.url + "/_last").json()
    assert sent["reasoning_effort"] == "high"
    assert middleware.decisions[-1].mode == "deliberate"
    assert next(m for m in sent["messages"] if m["role"] == "tool")["content"] == passage
    assert "tokenomy" not in sent  # the tokenomy field never reaches the backend


@pytest.mark.slow
async def test_rag_example_graph_reports_per_step(engine: InProcessEngine) -> None:
    # The example's graph on the echo backend (fast); the example itself uses the local model.
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "langgraph_rag_agent.py"
    spec = importlib.util.spec_from_file_location("langgraph_rag_agent", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # LangGraph resolves the state's type hints through it
    spec.loader.exec_module(example)
    corpus = example.load_corpus()
    app = example.build_graph(chat_model("echo", engine=engine), corpus)
    out = await app.ainvoke({"question": corpus[0]["question"]})
    rows = {row["step"]: row for row in out["report"]}
    assert set(rows) == {"retrieve", "answer"}
    assert rows["retrieve"]["calls"] == rows["answer"]["calls"] == 1
    # The answer step asked for compress=3: its documents were compressed on the way.
    assert rows["answer"]["prompt_sent"] < rows["answer"]["prompt_original"] / 2
    assert corpus[0]["passage"] in out["passages"]  # BM25 found the passage with the answer


def test_node_name_comes_from_langgraph_when_no_config_argument() -> None:
    seen: list[tuple[str | None, str | None]] = []

    @tokenomy.step
    def helper() -> None:  # a step inside a decorated node keeps its own name
        ctx = current_step()
        seen.append((ctx.name, ctx.parent.name if ctx and ctx.parent else None))

    @tokenomy.step
    def plan(state: State) -> State:  # no config parameter: read LangGraph's current config
        helper()
        return {}

    def act(state: State) -> State:  # undecorated: a `with` step inside takes the node name
        with tokenomy.step(tags={"phase": "act"}) as ctx:
            seen.append((ctx.name, ctx.tags.get("langgraph_node")))
        return {}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("act", act)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "act")
    graph.add_edge("act", END)
    graph.compile().invoke({"question": "q"})
    assert seen == [("helper", "plan"), ("act", "act")]


async def test_writer_and_store_are_still_injected() -> None:
    from langgraph.store.base import BaseStore
    from langgraph.store.memory import InMemoryStore
    from langgraph.types import StreamWriter

    @tokenomy.step
    async def node(state: State, writer: StreamWriter, store: BaseStore) -> State:
        ctx = current_step()
        writer({"step": ctx.name if ctx else None})
        store.put(("notes",), "last", {"step": ctx.name if ctx else None})
        return {}

    graph = StateGraph(State)
    graph.add_node("note", node)
    graph.add_edge(START, "note")
    graph.add_edge("note", END)
    store = InMemoryStore()
    app = graph.compile(store=store)
    custom = [part async for part in app.astream({"question": "q"}, stream_mode="custom")]
    assert custom == [{"step": "note"}]
    item = store.get(("notes",), "last")
    assert item is not None and item.value == {"step": "note"}

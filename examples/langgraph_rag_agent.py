"""A LangGraph RAG agent whose nodes are tokenomy steps, on the embedded local model (offline).

    python examples/langgraph_rag_agent.py            # in process: no server, no keys
    tokenomy report --group-by step                   # the per-step breakdown afterwards

Two nodes, each a `@tokenomy.step`:
- `retrieve` asks the model for search keywords (a small call), then ranks a few
  real passages (data/qa_passages.dev.jsonl, BIG-bench QA) with BM25;
- `answer` asks the question over the top passages with `compress=3`, so the
  compress stage shrinks the retrieved documents before the model reads them.

Every call is attributed to its node in the ledger ($TOKENOMY_HOME/ledger.db by
default, or the `ledger.url` of --config), and each node reports the tokens
its calls had before and after compression. `langgraph_rag_via_proxy.py`
runs the same graph through `tokenomy serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

import tokenomy
from tokenomy.sdk import current_step

DATA = Path(__file__).resolve().parents[1] / "data" / "qa_passages.dev.jsonl"
CORPUS_SIZE = 12  # the first lines of the file are a random sample
QUESTIONS = (0, 3, 9)  # items whose answer is only in their passage


class StepReport(TypedDict):
    step: str
    calls: int
    prompt_original: int
    prompt_sent: int
    completion: int
    seconds: float


class RagState(TypedDict, total=False):
    question: str
    keywords: str
    passages: list[str]
    answer: str
    report: Annotated[list[StepReport], operator.add]


def load_corpus() -> list[dict[str, Any]]:
    lines = DATA.read_text(encoding="utf-8").splitlines()[:CORPUS_SIZE]
    return [json.loads(line) for line in lines]


def step_report(started: float) -> StepReport:
    """What the calls of the step that is open right now cost, before and after tokenomy."""
    ctx = current_step()
    assert ctx is not None and ctx.name is not None
    usage = ctx.usage
    return StepReport(step=ctx.name, calls=usage.calls,
                      prompt_original=usage.prompt_tokens_original,
                      prompt_sent=usage.prompt_tokens_sent,
                      completion=usage.completion_tokens,
                      seconds=round(time.perf_counter() - started, 2))


def build_graph(llm: BaseChatModel, corpus: list[dict[str, Any]], top_k: int = 3) -> Any:
    from tokenomy.compressors.relevance import bm25_scores

    passages = [item["passage"] for item in corpus]

    @tokenomy.step  # attributed to the LangGraph node name: "retrieve"
    async def retrieve(state: RagState, config: RunnableConfig) -> RagState:
        started = time.perf_counter()
        reply = await llm.ainvoke(
            [HumanMessage(f"Give three search keywords for: {state['question']}")],
            max_tokens=16)
        keywords = str(reply.content)
        scores = bm25_scores(passages, f"{state['question']} {keywords}")
        ranked = sorted(range(len(passages)), key=lambda i: -float(scores[i]))[:top_k]
        return {"keywords": keywords, "passages": [passages[i] for i in ranked],
                "report": [step_report(started)]}

    @tokenomy.step(compress=3, tags={"kind": "rag-answer"})  # node name: "answer"
    async def answer(state: RagState, config: RunnableConfig) -> RagState:
        started = time.perf_counter()
        documents = "\n".join(f"<document>{p}</document>" for p in state["passages"])
        reply = await llm.ainvoke([
            SystemMessage("Answer the question in a few words, using only the documents."),
            HumanMessage(f"Context:\n{documents}\n\nQuestion: {state['question']}"),
        ], max_tokens=32)
        return {"answer": str(reply.content).strip(), "report": [step_report(started)]}

    graph = StateGraph(RagState)
    graph.add_node("retrieve", retrieve)
    graph.add_node("answer", answer)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "answer")
    graph.add_edge("answer", END)
    return graph.compile()


def print_table(rows: list[StepReport]) -> None:
    header = (f"{'step':<10} {'calls':>5} {'prompt before':>13} {'prompt sent':>11} "
              f"{'saved':>6} {'completion':>10} {'seconds':>8}")
    print(header)
    print("-" * len(header))
    totals: dict[str, StepReport] = {}
    for row in rows:
        total = totals.setdefault(row["step"], StepReport(
            step=row["step"], calls=0, prompt_original=0, prompt_sent=0, completion=0,
            seconds=0.0))
        for key in ("calls", "prompt_original", "prompt_sent", "completion", "seconds"):
            total[key] += row[key]  # type: ignore[literal-required]
    for row in totals.values():
        saved = 1 - row["prompt_sent"] / row["prompt_original"] if row["prompt_original"] else 0
        print(f"{row['step']:<10} {row['calls']:>5} {row['prompt_original']:>13} "
              f"{row['prompt_sent']:>11} {saved:>6.0%} {row['completion']:>10} "
              f"{row['seconds']:>8.2f}")


async def run(llm: BaseChatModel) -> None:
    corpus = load_corpus()
    app = build_graph(llm, corpus)
    rows: list[StepReport] = []
    for index in QUESTIONS:
        item = corpus[index]
        out = await app.ainvoke({"question": item["question"]})
        rows += out["report"]
        hit = any(a.lower() in out["answer"].lower() for a in item["answers"])
        print(f"Q: {item['question']}\nA: {out['answer']!r}  (gold: {item['answers'][0]}; "
              f"{'found' if hit else 'missed'})\n")
    print_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="tokenomy settings file (default: the local model)")
    parser.add_argument("--model", default="local")
    args = parser.parse_args()
    from tokenomy.sdk.langchain import chat_model

    llm = chat_model(args.model, config=args.config, temperature=0)
    asyncio.run(run(llm))
    print("\nper-step ledger: tokenomy report --group-by step")


if __name__ == "__main__":
    main()

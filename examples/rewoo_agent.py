"""A ReWOO agent that runs offline on tokenomy's embedded local model (SmolLM2-135M).

    python examples/rewoo_agent.py ["question"] [--graph] [--model local]

One planner call writes every tool call as codified pseudocode (#E1, #E2, ...),
the tools run as plain Python, and one solver call answers. A 135M model often
writes a plan that does not parse: the helper re-prompts once with the format,
then answers directly, and the token count covers every call either way.
With `--graph` the same agent runs as a LangGraph StateGraph
(planner -> worker -> solver, or -> direct).

Needs `tokenomy assets install` once; no network, no keys. Point `--config`
at a settings file to run the same agent against any configured backend.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from tokenomy.agents.rewoo import ReWOO, build_rewoo_graph
from tokenomy.codify.backend import engine_backend
from tokenomy.config import Settings, load_settings
from tokenomy.engine import build_engine

CAPITALS = {"france": "Paris", "italy": "Rome", "japan": "Tokyo", "kenya": "Nairobi"}
POPULATION_M = {"Paris": 2.1, "Rome": 2.8, "Tokyo": 14.0, "Nairobi": 4.4}


def capital(country: str) -> str:
    """The capital city of a country."""
    return CAPITALS.get(country.strip().lower(), "unknown")


def population(city: str) -> float:
    """City population in millions."""
    return POPULATION_M.get(city.strip(), 0.0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?",
                        default="What is the capital of Italy and how many people live there?")
    parser.add_argument("--graph", action="store_true", help="run as a LangGraph StateGraph")
    parser.add_argument("--model", default="local", help="model alias (default: local SmolLM2)")
    parser.add_argument("--config", default=None, help="tokenomy settings file")
    args = parser.parse_args()

    engine = build_engine(load_settings(args.config) if args.config else Settings())
    try:
        agent = ReWOO(engine_backend(engine, args.model, count_model="gpt-4o"),
                      [capital, population], plan_tokens=64, answer_tokens=48,
                      examples=[("What is the capital of France and its population?",
                                 '#E1 = capital(country="France")\n'
                                 "#E2 = population(city=#E1)")])
        if args.graph:
            state = await build_rewoo_graph(agent).compile().ainvoke({"question": args.question})
            report = {k: state.get(k) for k in ("path", "plan", "evidence", "answer", "tokens",
                                                "errors")}
        else:
            result = await agent.run(args.question)
            report = {"path": result.path, "plan": result.plan, "evidence": result.evidence,
                      "answer": result.answer, "errors": result.errors,
                      "tokens": {"prompt": result.tokens.prompt,
                                 "completion": result.tokens.completion,
                                 "calls": result.tokens.calls,
                                 "by_step": result.tokens.by_step}}
    finally:
        await engine.aclose()
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main())

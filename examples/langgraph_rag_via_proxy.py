"""The LangGraph RAG agent of `langgraph_rag_agent.py`, through a running `tokenomy serve`.

    tokenomy serve --port 8787 &                                  # the embedded local model
    python examples/langgraph_rag_via_proxy.py --base-url http://127.0.0.1:8787/v1
    python examples/langgraph_rag_via_proxy.py                    # starts (and stops) a proxy
    tokenomy report --group-by step

The only change from the in-process agent is the chat model:
`chat_model("local", base_url=...)` is a `ChatOpenAI` that talks to the proxy
and carries the open step (name, team, tags, compress policy) in the
`tokenomy` body field, so the proxy attributes each node's calls, compresses
the `answer` node's documents and writes one ledger row per call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from langgraph_rag_agent import run

from tokenomy.sdk.langchain import chat_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", help="a running proxy, e.g. http://127.0.0.1:8787/v1 "
                        "(default: start `tokenomy serve` on a free port for this run)")
    parser.add_argument("--model", default="local")
    args = parser.parse_args()
    if args.base_url:
        asyncio.run(run(chat_model(args.model, base_url=args.base_url, temperature=0)))
    else:
        from tokenomy.testing.processes import run_proxy

        print("starting tokenomy serve (embedded local model) ...", file=sys.stderr)
        with run_proxy(None) as proxy:
            print(f"proxy at {proxy.v1}", file=sys.stderr)
            asyncio.run(run(chat_model(args.model, base_url=proxy.v1, temperature=0,
                                       timeout=300)))
    print("\nper-step ledger: tokenomy report --group-by step")


if __name__ == "__main__":
    main()

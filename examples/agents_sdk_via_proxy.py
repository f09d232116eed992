"""An OpenAI Agents SDK agent with a function tool, through `tokenomy serve` (`/v1/responses`).

    python -m tokenomy.testing.upstream --port 9100 &     # the loopback Responses upstream
    tokenomy serve --config loopback.yaml &               # default_backend: the upstream above
    .venv-agents/bin/python examples/agents_sdk_via_proxy.py --model echo
    .venv-agents/bin/python examples/agents_sdk_via_proxy.py --model gpt-5-mini  # a real backend

The only tokenomy-specific line is the client: an `AsyncOpenAI` whose `base_url`
is the proxy, handed to the SDK as its model provider (`OpenAIProvider`; or
globally with `set_default_openai_client`). The SDK speaks the Responses API, so
every model call of the run (the tool call, then the answer after the tool's
output) goes through the proxy's stages and gets a ledger row. Against the
loopback upstream the "model" calls the tool with arguments drawn from its
schema and answers with the tool's result.

The SDK runs from its own venv (`pip install openai-agents==0.20.0 openai==2.54.0`):
its releases pin `websockets<17` or need openai 3, which tokenomy's own pins exclude.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"It is sunny and 21 C in {city}."


async def run(base_url: str, model: str, api_key: str = "tk-dev") -> Any:
    set_tracing_disabled(True)  # traces would go to OpenAI's servers, not through the proxy
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)
    agent = Agent(name="weather", instructions="Answer with the weather tool's result.",
                  tools=[get_weather])
    config = RunConfig(model=model,
                       model_provider=OpenAIProvider(openai_client=client, use_responses=True))
    return await Runner.run(agent, "What is the weather in Paris?", run_config=config)


def report(result: Any) -> None:
    for item in result.new_items:
        print(f"{item.type}: {_describe(item.raw_item)}")
    for number, response in enumerate(result.raw_responses, 1):
        usage = response.usage
        print(f"model call {number}: {usage.input_tokens} input tokens "
              f"({usage.input_tokens_details.cached_tokens} cached), "
              f"{usage.output_tokens} output tokens")
    print(f"final output: {result.final_output}")


def _describe(raw: Any) -> str:
    kind = getattr(raw, "type", None) or raw.get("type")
    if kind == "function_call":
        return f"{raw.name}({raw.arguments})"
    if kind == "function_call_output":
        return str(raw["output"])
    return str(raw.content[0].text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8787/v1",
                        help="the proxy (default: %(default)s)")
    parser.add_argument("--model", default="echo")
    parser.add_argument("--api-key", default=os.environ.get("TOKENOMY_API_KEY", "tk-dev"),
                        help="a tokenomy key (default: $TOKENOMY_API_KEY)")
    args = parser.parse_args()
    report(asyncio.run(run(args.base_url, args.model, args.api_key)))


if __name__ == "__main__":
    main()

"""tokenomy.Client / AsyncClient: the OpenAI client's shape, in process and against a proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import tokenomy
from sdk_support import echo_settings
from tokenomy.errors import BadRequest, BudgetExceeded, UpstreamError
from tokenomy.sdk import current_step
from tokenomy.testing.processes import Server

MESSAGES = [{"role": "user", "content": "how many invoices are overdue?"}]


@pytest.fixture(scope="module")
def client(upstream: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tokenomy.Client]:
    with tokenomy.Client(echo_settings(upstream, tmp_path_factory.mktemp("client"))) as c:
        yield c


def test_in_process_create_returns_openai_types(client: tokenomy.Client) -> None:
    with tokenomy.step("billing", team="finance", tags={"env": "test"}):
        completion = client.chat.completions.create(model="echo", messages=MESSAGES)
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "echo: how many invoices are overdue?"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    call = client.last_call
    assert call is not None
    assert (call.identity.step, call.identity.team) == ("billing", "finance")
    assert call.identity.tags == {"env": "test"}
    assert [e.stage for e in call.events][:1] == ["step"]


def test_in_process_stream_and_usage_accounting(client: tokenomy.Client) -> None:
    with tokenomy.step("stream-step") as ctx:
        stream = client.chat.completions.create(model="echo", messages=MESSAGES, stream=True)
        chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: how many invoices are overdue?"
    assert all(c.usage is None for c in chunks)  # the caller did not ask for usage ...
    assert ctx.usage.calls == 1 and ctx.usage.completion_tokens > 0  # ... but the step counted
    assert ctx.usage.prompt_tokens_sent == client.last_call.prompt_tokens_sent  # type: ignore[union-attr]


def test_stream_usage_when_asked(client: tokenomy.Client) -> None:
    chunks = list(client.chat.completions.create(
        model="echo", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_in_process_errors_are_tokenomy_errors(client: tokenomy.Client) -> None:
    with pytest.raises(BadRequest, match="messages"):
        client.chat.completions.create(model="echo", messages=[])
    with pytest.raises(UpstreamError):
        client.chat.completions.create(model="fault:500", messages=MESSAGES)
    # The client keeps working after an error.
    assert client.chat.completions.create(model="echo", messages=MESSAGES).choices


async def test_sync_client_inside_a_running_loop(client: tokenomy.Client) -> None:
    # A sync call from async code (notebooks, sync LangGraph nodes on a loop) must not deadlock.
    completion = client.chat.completions.create(model="echo", messages=MESSAGES)
    assert completion.choices[0].message.content


async def test_async_client_concurrent_calls_keep_their_steps(
    upstream: Server, tmp_path: Path
) -> None:
    async with tokenomy.AsyncClient(echo_settings(upstream, tmp_path)) as aclient:

        @tokenomy.step
        async def worker(n: int) -> tuple[str, int]:
            completion = await aclient.chat.completions.create(
                model="echo", messages=[{"role": "user", "content": f"question {n}"}])
            ctx = current_step()
            assert ctx is not None
            return completion.choices[0].message.content or "", ctx.usage.calls

        results = await asyncio.gather(*(worker(n) for n in range(5)))
        assert [r[0] for r in results] == [f"echo: question {n}" for n in range(5)]
        assert all(calls == 1 for _, calls in results)  # each invocation has its own usage
        stream = await aclient.chat.completions.create(model="echo", messages=MESSAGES,
                                                       stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text.startswith("echo:")


# -- against a running proxy -------------------------------------------------------------------


def test_client_against_proxy(echo_proxy: Server) -> None:
    with tokenomy.Client(base_url=echo_proxy.v1) as remote:
        with tokenomy.step("remote-step", budget_tokens=10_000) as ctx:
            completion = remote.chat.completions.create(model="echo", messages=MESSAGES)
            chunks = list(remote.chat.completions.create(model="echo", messages=MESSAGES,
                                                         stream=True))
        assert completion.choices[0].message.content == "echo: how many invoices are overdue?"
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            "echo: how many invoices are overdue?")
        assert ctx.usage.calls == 2
        assert ctx.usage.prompt_tokens_original >= ctx.usage.prompt_tokens_sent > 0
        # Errors are the openai package's, as with any OpenAI client.
        with pytest.raises(openai.BadRequestError):
            remote.chat.completions.create(model="echo", messages=[])


def test_proxy_client_sends_the_step_in_the_tokenomy_field(upstream_reset: Server) -> None:
    # Point the client straight at the test upstream, which keeps the last body it got.
    with (tokenomy.Client(base_url=upstream_reset.v1) as remote,
          tokenomy.step("retrieve", team="search", compress=3, reasoning="brief")):
        remote.chat.completions.create(model="echo-model", messages=MESSAGES,
                                       tokenomy={"tags": {"run": "7"}})
    body = httpx.get(upstream_reset.url + "/_last").json()
    assert body["tokenomy"] == {"step": "retrieve", "team": "search", "tags": {"run": "7"},
                                "compress": {"target_ratio": 3.0}, "reasoning": "brief"}


async def test_async_client_against_proxy_step_budget(echo_proxy: Server) -> None:
    async with tokenomy.AsyncClient(base_url=echo_proxy.v1) as remote:
        with tokenomy.step("astream") as ctx:
            stream = await remote.chat.completions.create(model="echo", messages=MESSAGES,
                                                          stream=True)
            chunks = [c async for c in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            "echo: how many invoices are overdue?")
        assert all(c.usage is None for c in chunks) and ctx.usage.completion_tokens > 0
        with tokenomy.step("tight", budget_tokens=5):
            await remote.chat.completions.create(model="echo", messages=MESSAGES)
            with pytest.raises(BudgetExceeded, match="'tight'"):
                await remote.chat.completions.create(model="echo", messages=MESSAGES)


def test_degrade_travels_to_the_proxy(echo_proxy: Server) -> None:
    # A spent step with on_budget="degrade" keeps going; the proxy gets `degrade: true`
    # (a field it validates) and takes the cheap path.
    with tokenomy.Client(base_url=echo_proxy.v1) as remote, \
            tokenomy.step("cheap", budget_tokens=1, on_budget="degrade") as ctx:
        for _ in range(3):
            completion = remote.chat.completions.create(model="echo", messages=MESSAGES)
            assert completion.choices[0].message.content
    assert ctx.usage.calls == 3


def test_in_process_client_with_virtual_keys(upstream: Server, tmp_path: Path) -> None:
    # Once the ledger has keys, the in-process engine checks them as the proxy does.
    from tokenomy.budgets.service import Budgets
    from tokenomy.errors import Unauthorized

    settings = echo_settings(upstream, tmp_path)
    budgets = Budgets.from_settings(settings, background=False)
    try:
        _, key = budgets.keys.create("ops")
    finally:
        budgets.close()
    with tokenomy.Client(settings, api_key=key) as keyed, tokenomy.step("keyed"):
        keyed.chat.completions.create(model="echo", messages=MESSAGES)
        assert keyed.last_call is not None and keyed.last_call.identity.team == "ops"
    with tokenomy.Client(settings) as anonymous, pytest.raises(Unauthorized):
        anonymous.chat.completions.create(model="echo", messages=MESSAGES)
    # The LangChain chat model in process takes the key the same way (as its api_key).
    from tokenomy.sdk.langchain import chat_model

    llm = chat_model("echo", config=settings, api_key=key)
    assert llm.invoke("hi").content
    anonymous_llm = chat_model("echo", config=settings, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous_llm.invoke("hi")

"""LangChain 1.x and LangGraph: an agent middleware and a chat model that go through tokenomy.

    from tokenomy.sdk.langchain import TokenomyMiddleware, chat_model

    agent = create_agent(model, tools, middleware=[TokenomyMiddleware(compress=4)])
    llm = chat_model("local")                     # a ChatOpenAI served by tokenomy in process
    llm = chat_model("gpt-4o", base_url=PROXY)    # ... or through a running proxy

`TokenomyMiddleware.wrap_model_call` runs the engine's own codify, compress and
plan stages (the ones the proxy runs) over the model request: tool outputs
such as retrieved documents are compressed against the latest user question,
the system prompt and the question stay byte-identical (prompt caches keep
hitting), and the plan stage's knobs (`reasoning_effort`, ...) become
`model_settings`. `chat_model` is a `ChatOpenAI` whose httpx
transport is tokenomy's, so every call is attributed to the open
`@tokenomy.step` and checked against its budget.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import BaseMessage, ToolMessage, convert_to_openai_messages
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tokenomy.call import Call, CompressOptions, Event, TokenomyOptions
from tokenomy.config import Settings, load_settings
from tokenomy.engine import rewrite, rewrite_stages
from tokenomy.sdk.client import Client
from tokenomy.sdk.context import (
    CompressPolicy,
    budget_state,
    compress_options,
    current_step,
)
from tokenomy.sdk.runner import InProcessEngine
from tokenomy.sdk.transport import IN_PROCESS_URL, TokenomyTransport

# OpenAI reasoning efforts the middleware sets as given; anything else is the planner's
# vocabulary ("auto", "off", or a mode: direct, brief, consensus, deliberate).
RAW_EFFORTS = ("minimal", "low", "medium", "high")
DEGRADED_EFFORT = "low"
DEFAULT_RATIO = 2.0


class PlanDecision(BaseModel):
    """What the engine's plan stage chose for one model call (from its event)."""

    mode: str
    difficulty: float | None = None
    reason: str | None = None
    applied: dict[str, Any] = {}


def _run(coro: Any) -> Any:
    """Run the engine's stages from sync code, inside a running loop or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A loop runs in this thread (a sync agent call from async code): run the stages on a
    # fresh loop in a worker, in the caller's context (the open step is a contextvar).
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, coro).result()


def _text(message: BaseMessage) -> str | None:
    content = message.content
    return content if isinstance(content, str) else None


def _model_name(request: ModelRequest[Any]) -> str:
    return str(getattr(request.model, "model_name", None) or getattr(request.model, "model", None)
               or "gpt-4o")


class TokenomyMiddleware(AgentMiddleware):
    """Compress the model request's changing tail and pick the reasoning effort.

    compress: the default policy (a ratio, True/False, a dict or CompressOptions);
        an open `@tokenomy.step(compress=...)` overrides it.
    reasoning: "auto" or a mode (ask the planner: `tokenomy.planners.select_mode`), "off",
        an OpenAI effort ("minimal", "low", "medium", "high") set as given, or None.
    min_tokens: tool outputs shorter than this are left alone.
    compressor: `tokenomy.compress` by default.
    """

    def __init__(
        self,
        *,
        compress: CompressPolicy = DEFAULT_RATIO,
        reasoning: str | None = "auto",
        min_tokens: int = 64,
        settings: Settings | None = None,
    ) -> None:
        super().__init__()
        self.compress = compress_options(compress)
        self.reasoning = reasoning
        self.min_tokens = min_tokens
        # The engine's own stages, as the proxy runs them (settings: the proxy's config).
        self._stages = rewrite_stages(settings or Settings(compression={"min_tokens": min_tokens}))
        # The latest compressions and planner decisions, newest last (bounded: agents run long).
        self.events: deque[Event] = deque(maxlen=256)
        self.decisions: deque[Any] = deque(maxlen=256)

    # -- the hooks -------------------------------------------------------------------------

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> Any:
        return handler(self.rewrite(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> Any:
        # The stages score text in worker threads: the caller's loop is never blocked.
        return await handler(await self.arewrite(request))

    # -- the work --------------------------------------------------------------------------

    def policy(self) -> tuple[CompressOptions | None, str | None, bool]:
        """The compress and reasoning policy in force, and whether the step must degrade."""
        step = current_step()
        degrade = budget_state(step)
        compress, reasoning = self.compress, self.reasoning
        if step is not None and step.compress is not None:
            compress = step.compress
        if step is not None and step.reasoning:
            reasoning = step.reasoning
        return compress, reasoning, degrade

    def rewrite(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        return _run(self.arewrite(request))

    async def arewrite(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The request after the engine's codify, compress and plan stages."""
        compress, reasoning, degrade = self.policy()
        raw_effort = reasoning if reasoning in RAW_EFFORTS else None
        messages: list[BaseMessage] = list(request.messages)
        body = {"model": _model_name(request), "messages": convert_to_openai_messages(messages)}
        if compress is not None and compress.enabled and compress.documents is None:
            # Tool outputs are what this middleware compresses (retrieved documents,
            # search results), wherever they sit in the history.
            tools = [i for i, m in enumerate(messages) if isinstance(m, ToolMessage)]
            compress = compress.model_copy(update={"documents": tools})
        options = TokenomyOptions(compress=compress if compress is not None
                                  else CompressOptions(enabled=False),
                                  reasoning=None if raw_effort else reasoning, degrade=degrade)
        call = await rewrite(Call(body=body, options=options), self._stages)
        self.events.extend(e for e in call.events if e.stage == "compress" and e.saved)
        changed = self._changed(messages, call.body["messages"])
        settings = {k: v for k, v in call.body.items() if k not in ("model", "messages")}
        if raw_effort:
            settings["reasoning_effort"] = DEGRADED_EFFORT if degrade else raw_effort
        plan = next((e for e in reversed(call.events) if e.stage == "plan"), None)
        if plan is not None:
            self.decisions.append(PlanDecision(mode=plan.detail.get("mode", ""),
                                               difficulty=plan.detail.get("difficulty"),
                                               reason=plan.detail.get("reason"),
                                               applied=plan.detail.get("applied") or {}))
        if "max_tokens" in request.model_settings:
            settings.pop("max_tokens", None)  # never lower the caller's own cap
        if isinstance(request.model, TokenomyChatOpenAI) and (changed or settings):
            # The model is tokenomy's own engine: it must not compress or plan again what
            # this middleware already did.
            extra = dict(request.model_settings.get("extra_body") or {})
            extra["tokenomy"] = {**(extra.get("tokenomy") or {}),
                                 "compress": {"enabled": False}, "reasoning": "off"}
            settings = {**settings, "extra_body": extra}
        overrides: dict[str, Any] = {}
        if changed is not None:
            overrides["messages"] = changed
        if settings:
            overrides["model_settings"] = {**request.model_settings, **settings}
        return request.override(**overrides) if overrides else request

    @staticmethod
    def _changed(messages: list[BaseMessage],
                 sent: list[dict[str, Any]]) -> list[BaseMessage] | None:
        """The LangChain messages with the engine's text edits applied (None: no edit)."""
        out, changed = list(messages), False
        for index, (message, wire) in enumerate(zip(messages, sent, strict=False)):
            content = wire.get("content")
            if isinstance(content, str) and isinstance(message.content, str) \
                    and content != message.content:
                out[index] = message.model_copy(update={"content": content})
                changed = True
        return out if changed else None


class TokenomyChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` that refuses up front when the open step's budget is spent (raise policy).

    The transport it is built with (see `chat_model`) does the rest: attribution,
    degrade, and charging usage back to the step.
    """

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        budget_state(current_step())
        return super()._generate(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        budget_state(current_step())
        return await super()._agenerate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        budget_state(current_step())
        yield from super()._stream(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        budget_state(current_step())
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


def chat_model(
    model: str = "local",
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    config: str | Settings | None = None,
    engine: InProcessEngine | None = None,
    client: Client | None = None,
    **chat_openai_options: Any,
) -> TokenomyChatOpenAI:
    """A LangChain chat model whose calls go through tokenomy: in process, or via `base_url`.

    In process it runs the engine built from `config`, or shares the engine of an
    in-process `client` (a `tokenomy.Client`) or the given `engine`; with `base_url` (or
    a proxy `client`) it talks to a running `tokenomy serve` and carries the open step in
    the `tokenomy` body field.
    """
    if client is not None:
        engine = engine or client._engine
        base_url = base_url or client.base_url
    if base_url is None and engine is None:
        settings = config if isinstance(config, Settings) else load_settings(config)
        engine = InProcessEngine(settings)
    transport = TokenomyTransport(engine if base_url is None else None)
    chat_openai_options.setdefault("stream_usage", True)
    return TokenomyChatOpenAI(
        model=model,
        base_url=base_url or IN_PROCESS_URL,
        api_key=api_key or "tokenomy",
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
        **chat_openai_options,
    )

"""LangChain 1.x and LangGraph: an agent middleware and a chat model that go through tokenomy.

    from tokenomy.sdk.langchain import TokenomyMiddleware, chat_model

    agent = create_agent(model, tools, middleware=[TokenomyMiddleware(compress=4)])
    llm = chat_model("local")                     # a ChatOpenAI served by tokenomy in process
    llm = chat_model("gpt-4o", base_url=PROXY)    # ... or through a running proxy

`TokenomyMiddleware.wrap_model_call` compresses what changes between turns
(tool outputs such as retrieved documents) against the latest user question,
leaves the system prompt and the question byte-identical (prompt caches keep
hitting), and sets `model_settings` (`reasoning_effort`) from the step's
reasoning policy or the planner. `chat_model` is a `ChatOpenAI` whose httpx
transport is tokenomy's, so every call is attributed to the open
`@tokenomy.step` and checked against its budget.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from tokenomy.call import CompressOptions, Event
from tokenomy.config import Settings, load_settings
from tokenomy.sdk.client import Client
from tokenomy.sdk.context import (
    CompressPolicy,
    budget_state,
    compress_options,
    current_step,
)
from tokenomy.sdk.runner import InProcessEngine
from tokenomy.sdk.transport import IN_PROCESS_URL, TokenomyTransport

Compressor = Callable[..., Any]  # tokenomy.compress's signature
# OpenAI reasoning efforts the middleware sets as given; anything else is the planner's
# vocabulary ("auto", "off", or a mode: direct, brief, consensus, deliberate).
RAW_EFFORTS = ("minimal", "low", "medium", "high")
DEGRADED_EFFORT = "low"
DEFAULT_RATIO = 2.0


def default_compressor() -> Compressor | None:
    """`tokenomy.compress` when the compressors are installed, else None (no compression)."""
    try:
        from tokenomy import compress
    except ImportError:
        return None
    return compress


def _planner() -> Callable[..., Any] | None:
    try:
        from tokenomy.planners import select_mode
    except ImportError:
        return None
    return select_mode


def _text(message: BaseMessage) -> str | None:
    content = message.content
    return content if isinstance(content, str) else None


def _model_name(request: ModelRequest[Any]) -> str:
    return str(getattr(request.model, "model_name", None) or getattr(request.model, "model", None)
               or "gpt-4o")


class TokenomyMiddleware(AgentMiddleware):  # type: ignore[type-arg]
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
        compressor: Compressor | None = None,
    ) -> None:
        super().__init__()
        self.compress = compress_options(compress)
        self.reasoning = reasoning
        self.min_tokens = min_tokens
        self.compressor = compressor or default_compressor()
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
        # Compression scores text with local models: keep it off the event loop.
        return await handler(await asyncio.to_thread(self.rewrite, request))

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
        compress, reasoning, degrade = self.policy()
        messages = self._compress(request, compress, degrade)
        compressed = messages is not None
        settings, instruction = self._plan(request, reasoning, degrade)
        if instruction:
            messages = _with_instruction(messages or request.messages, instruction)
        if isinstance(request.model, TokenomyChatOpenAI) and (compressed or settings or
                                                               instruction):
            # The model is tokenomy's own engine: it must not compress or plan again what
            # this middleware already did.
            skip: dict[str, Any] = {}
            if compressed:
                skip["compress"] = {"enabled": False}
            if settings or instruction:
                skip["reasoning"] = "off"
            extra = dict(request.model_settings.get("extra_body") or {})
            extra["tokenomy"] = {**(extra.get("tokenomy") or {}), **skip}
            settings = {**settings, "extra_body": extra}
        overrides: dict[str, Any] = {}
        if messages is not None:
            overrides["messages"] = messages
        if settings:
            overrides["model_settings"] = {**request.model_settings, **settings}
        return request.override(**overrides) if overrides else request

    def _compress(self, request: ModelRequest[Any], options: CompressOptions | None,
                  degrade: bool) -> list[Any] | None:
        if options is None or not options.enabled or self.compressor is None:
            return None
        query = next((_text(m) for m in reversed(request.messages)
                      if isinstance(m, HumanMessage) and _text(m)), None)
        ratio = options.target_ratio or DEFAULT_RATIO
        if degrade:
            ratio *= 2  # a spent step budget with on_budget="degrade": compress harder
        model = _model_name(request)
        changed = False
        out: list[Any] = []
        for message in request.messages:
            text = _text(message)
            if not isinstance(message, ToolMessage) or not text:
                out.append(message)
                continue
            started = time.perf_counter()
            result = self.compressor(text, query=query, target_ratio=ratio,
                                     target_tokens=options.target_tokens, model=model,
                                     method=options.method, min_tokens=self.min_tokens)
            if result.original_tokens < self.min_tokens or result.text == text:
                out.append(message)
                continue
            self.events.append(Event(
                stage="langchain", technique=getattr(result, "method", None),
                tokens_before=result.original_tokens, tokens_after=result.compressed_tokens,
                ms=round((time.perf_counter() - started) * 1000, 3),
                detail={"tool_call_id": message.tool_call_id, "degrade": degrade},
            ))
            out.append(message.model_copy(update={"content": result.text}))
            changed = True
        return out if changed else None

    def _plan(self, request: ModelRequest[Any], reasoning: str | None,
              degrade: bool) -> tuple[dict[str, Any], str | None]:
        """model_settings for the reasoning policy, and an instruction for the last user turn."""
        if reasoning in RAW_EFFORTS:  # an OpenAI effort, set as given
            return {"reasoning_effort": "low" if degrade else reasoning}, None
        if reasoning is None or reasoning == "off":
            return {}, None
        planner = _planner()
        if planner is None:
            return ({"reasoning_effort": DEGRADED_EFFORT} if degrade else {}), None
        from langchain_core.messages import convert_to_openai_messages

        system = [request.system_message] if request.system_message is not None else []
        messages = convert_to_openai_messages([*system, *request.messages])
        decision = planner(messages, model=_model_name(request), requested=reasoning,
                           degrade=degrade)
        self.decisions.append(decision)
        settings = dict(decision.params.body)
        if decision.params.max_tokens and "max_tokens" not in request.model_settings:
            settings["max_tokens"] = decision.params.max_tokens
        return settings, decision.params.instruction


def _with_instruction(messages: list[Any], instruction: str) -> list[Any]:
    """Append the planner's instruction to the last user turn (string content only)."""
    out = list(messages)
    for index in range(len(out) - 1, -1, -1):
        message = out[index]
        if isinstance(message, HumanMessage) and isinstance(message.content, str):
            out[index] = message.model_copy(
                update={"content": f"{message.content}\n\n{instruction}"})
            break
    return out


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

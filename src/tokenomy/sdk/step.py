"""`@tokenomy.step`: attribute, budget and steer every LLM call made inside a function.

    @tokenomy.step                                   # named after the function / LangGraph node
    @tokenomy.step(name="answer", budget_tokens=2000, compress=4, reasoning="low")
    with tokenomy.step(name="setup"): ...           # also a context manager

The wrapper keeps the wrapped function's signature, name and kind (sync,
async, generator, async generator): LangGraph inspects a node's signature to
decide whether to inject `config`, `runtime`, `store` or `writer`, and
whether to await it. With no name given, a LangGraph node is attributed to
its node name, read from the `config` argument's metadata or, inside a node,
from LangGraph's current config.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar, overload

from tokenomy.sdk.context import (
    CompressPolicy,
    OnBudget,
    StepContext,
    compress_options,
    current_step,
    reset_step,
    set_step,
)

F = TypeVar("F", bound=Callable[..., Any])


def _langgraph_metadata(
    args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Mapping[str, Any], bool]:
    """LangGraph's node metadata, and whether it came from the function's own `config` argument
    (rather than from the node that happens to be running)."""
    for value in (kwargs.get("config"), *args):
        if isinstance(value, Mapping):
            metadata = value.get("metadata")
            if isinstance(metadata, Mapping) and "langgraph_node" in metadata:
                return metadata, True
    # Only ask LangGraph when it is already loaded: `import tokenomy` stays light.
    if "langchain_core.runnables.config" in sys.modules:
        from langchain_core.runnables.config import var_child_runnable_config

        config = var_child_runnable_config.get()
        metadata = (config or {}).get("metadata")
        if isinstance(metadata, Mapping) and "langgraph_node" in metadata:
            return metadata, False
    return {}, False


def _reasoning(value: str | None) -> str | None:
    """The planner's vocabulary: "auto", "off", or a mode (direct, brief, consensus, deliberate)."""
    if value is None:
        return None
    try:
        from tokenomy.planners.policy import normalize_request
    except ImportError:  # planners not installed: pass it on, the engine decides
        return value
    try:
        return normalize_request(value)
    except ValueError as exc:
        raise ValueError(f"step(reasoning=...): {exc}") from None


class Step:
    """A step policy: a decorator for any kind of function, and a context manager."""

    def __init__(
        self,
        name: str | None = None,
        *,
        team: str | None = None,
        user: str | None = None,
        budget_tokens: int | None = None,
        compress: CompressPolicy = None,
        reasoning: str | None = None,
        tags: Mapping[str, Any] | None = None,
        on_budget: OnBudget = "raise",
    ) -> None:
        if on_budget not in ("raise", "degrade"):
            raise ValueError(f"on_budget must be 'raise' or 'degrade', not {on_budget!r}")
        if budget_tokens is not None and budget_tokens < 0:
            raise ValueError("budget_tokens must be zero or more")
        self.name = name
        self.team = team
        self.user = user
        self.budget_tokens = budget_tokens
        self.compress = compress_options(compress)
        self.reasoning = _reasoning(reasoning)
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.on_budget: OnBudget = on_budget
        # Open `with` blocks of this object, per context: one Step object may be entered
        # by several tasks at once, and each must reset its own token.
        self._open: ContextVar[tuple[Any, ...]] = ContextVar(f"tokenomy_step_{id(self)}",
                                                             default=())

    def context(
        self, fn: Callable[..., Any] | None = None,
        args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None,
    ) -> StepContext:
        """The composed context for one invocation, inside whatever step is open now."""
        parent = current_step()
        tags = dict(self.tags)
        name = self.name
        metadata, passed_in = _langgraph_metadata(args, kwargs or {})
        if metadata:
            node = str(metadata["langgraph_node"])
            tags.setdefault("langgraph_node", node)
            if "langgraph_step" in metadata:
                tags.setdefault("langgraph_step", str(metadata["langgraph_step"]))
            # A helper step inside a decorated node keeps its own name; the node itself,
            # or a step opened inside an undecorated node, takes the node's name.
            outer_node = parent.tags.get("langgraph_node") if parent is not None else None
            if name is None and (passed_in or outer_node != node):
                name = node
        if name is None and fn is not None:
            name = getattr(fn, "__name__", None)
        if parent is not None:
            return parent.nested(
                name=name, team=self.team, user=self.user, tags=tags,
                budget_tokens=self.budget_tokens, compress=self.compress,
                reasoning=self.reasoning, on_budget=self.on_budget,
            )
        return StepContext(
            name=name, team=self.team, user=self.user, tags=tags,
            budget_tokens=self.budget_tokens, compress=self.compress,
            reasoning=self.reasoning, on_budget=self.on_budget,
        )

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> StepContext:
        ctx = self.context()
        self._open.set((*self._open.get(), set_step(ctx)))
        return ctx

    def __exit__(self, *exc: object) -> None:
        *rest, token = self._open.get()
        reset_step(token)
        self._open.set(tuple(rest))

    async def __aenter__(self) -> StepContext:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    # -- decorator -------------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        if inspect.isasyncgenfunction(fn):
            return self._wrap_async_gen(fn)  # type: ignore[return-value]
        if inspect.isgeneratorfunction(fn):
            return self._wrap_gen(fn)  # type: ignore[return-value]
        if inspect.iscoroutinefunction(fn):
            return self._wrap_async(fn)  # type: ignore[return-value]
        if not callable(fn):
            raise TypeError(f"@tokenomy.step decorates a function, not {fn!r}")
        return self._wrap_sync(fn)  # type: ignore[return-value]

    def _wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = set_step(self.context(fn, args, kwargs))
            try:
                return fn(*args, **kwargs)
            finally:
                reset_step(token)

        return wrapper

    def _wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = set_step(self.context(fn, args, kwargs))
            try:
                return await fn(*args, **kwargs)
            finally:
                reset_step(token)

        return wrapper

    def _wrap_gen(self, fn: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Any]:
        # The body runs a little at every resume, in the consumer's context, so the
        # step is set and reset around each resume rather than once.
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            ctx = self.context(fn, args, kwargs)
            gen = fn(*args, **kwargs)
            send: Any = None
            pending: BaseException | None = None
            try:
                while True:
                    token = set_step(ctx)
                    try:
                        if pending is not None:
                            exc, pending = pending, None
                            item = gen.throw(exc)
                        else:
                            item = gen.send(send)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        reset_step(token)
                    try:
                        send = yield item
                    except GeneratorExit:
                        raise
                    except BaseException as exc:
                        pending = exc
            finally:
                token = set_step(ctx)
                try:
                    gen.close()
                finally:
                    reset_step(token)

        return wrapper

    def _wrap_async_gen(self, fn: Callable[..., AsyncGenerator[Any, Any]]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            ctx = self.context(fn, args, kwargs)
            gen = fn(*args, **kwargs)
            send: Any = None
            pending: BaseException | None = None
            try:
                while True:
                    token = set_step(ctx)
                    try:
                        if pending is not None:
                            exc, pending = pending, None
                            item = await gen.athrow(exc)
                        else:
                            item = await gen.asend(send)
                    except StopAsyncIteration:
                        return
                    finally:
                        reset_step(token)
                    try:
                        send = yield item
                    except GeneratorExit:
                        raise
                    except BaseException as exc:
                        pending = exc
            finally:
                token = set_step(ctx)
                try:
                    await gen.aclose()
                finally:
                    reset_step(token)

        return wrapper


@overload
def step(fn: F, /) -> F: ...


@overload
def step(
    name: str | None = None,
    /,
    *,
    team: str | None = None,
    user: str | None = None,
    budget_tokens: int | None = None,
    compress: CompressPolicy = None,
    reasoning: str | None = None,
    tags: Mapping[str, Any] | None = None,
    on_budget: OnBudget = "raise",
) -> Step: ...


def step(fn: Any = None, /, *, name: str | None = None, **policy: Any) -> Any:
    """`@step`, `@step("name")`, `@step(name=..., budget_tokens=...)`, or `with step(...):`."""
    if callable(fn):
        return Step(name, **policy)(fn)
    if fn is not None and not isinstance(fn, str):
        raise TypeError(f"step() takes a function or a step name, not {fn!r}")
    return Step(fn or name, **policy)

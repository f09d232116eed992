"""The step context: who a call made inside `@tokenomy.step` is attributed to, and its policy.

A `contextvars.ContextVar` holds the innermost open step. Each step points at
its parent, so nested steps compose: the inner one's name, team, policy and
tags override the outer one's (tags merge), while every enclosing step's
budget still applies. A step's usage counter is shared by every call made
inside it, nested steps and concurrent tasks included (a lock guards it,
because sync LangGraph nodes run on worker threads).

Every way an SDK call leaves the process (the in-process `Client`, the proxy
`Client`, the LangChain chat-model transport) goes through `open_call()`,
which checks the step budgets and returns a `CallTicket` carrying the
`tokenomy` body field; `ticket.settle(...)` charges the real usage back.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from tokenomy.call import CompressOptions
from tokenomy.errors import BudgetExceeded

OnBudget = Literal["raise", "degrade"]
CompressPolicy = CompressOptions | dict[str, Any] | bool | float | int | None


def compress_options(policy: CompressPolicy) -> CompressOptions | None:
    """`compress=` as users write it: True, False, a ratio (4 = a quarter), a dict, or options."""
    if policy is None:
        return None
    if isinstance(policy, CompressOptions):
        return policy
    if isinstance(policy, bool):
        return CompressOptions(enabled=policy)
    if isinstance(policy, int | float):
        return CompressOptions(target_ratio=float(policy))
    if isinstance(policy, dict):
        return CompressOptions.model_validate(policy)
    raise TypeError(f"compress= takes a bool, a ratio, a dict or CompressOptions, not {policy!r}")


@dataclass
class StepUsage:
    """Tokens of the calls made through tokenomy inside one step invocation."""

    calls: int = 0
    prompt_tokens_original: int = 0
    prompt_tokens_sent: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_tokens(self) -> int:
        """What the step budget counts: prompt tokens actually sent plus completion tokens."""
        return self.prompt_tokens_sent + self.completion_tokens

    @property
    def saved_tokens(self) -> int:
        return max(0, self.prompt_tokens_original - self.prompt_tokens_sent)

    def add(self, original: int, sent: int, completion: int) -> None:
        with self._lock:
            self.calls += 1
            self.prompt_tokens_original += original
            self.prompt_tokens_sent += sent
            self.completion_tokens += completion


@dataclass
class StepContext:
    """One open step, already composed with the steps around it."""

    name: str | None = None
    team: str | None = None
    user: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    budget_tokens: int | None = None
    compress: CompressOptions | None = None
    reasoning: str | None = None
    on_budget: OnBudget = "raise"
    parent: StepContext | None = None
    usage: StepUsage = field(default_factory=StepUsage)

    def chain(self) -> list[StepContext]:
        """This step and every step around it, innermost first."""
        out: list[StepContext] = []
        node: StepContext | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out

    def nested(
        self,
        *,
        name: str | None,
        team: str | None,
        user: str | None,
        tags: dict[str, str] | None,
        budget_tokens: int | None,
        compress: CompressOptions | None,
        reasoning: str | None,
        on_budget: OnBudget,
    ) -> StepContext:
        """A child step: what it names overrides this one, tags merge."""
        return StepContext(
            name=name or self.name,
            team=team or self.team,
            user=user or self.user,
            tags={**self.tags, **(tags or {})},
            budget_tokens=budget_tokens,
            compress=compress if compress is not None else self.compress,
            reasoning=reasoning if reasoning is not None else self.reasoning,
            on_budget=on_budget,
            parent=self,
        )


_CURRENT: ContextVar[StepContext | None] = ContextVar("tokenomy_step", default=None)


def current_step() -> StepContext | None:
    """The innermost open step in this context, or None outside any step."""
    return _CURRENT.get()


def set_step(ctx: StepContext | None) -> Any:
    return _CURRENT.set(ctx)


def reset_step(token: Any) -> None:
    _CURRENT.reset(token)


def budget_state(ctx: StepContext | None) -> bool:
    """Check every enclosing step budget; raise or return True when the call must degrade.

    A step whose calls have used up `budget_tokens` refuses the next call
    (on_budget="raise") or lets it through on the cheap path ("degrade").
    """
    degrade = False
    for node in ctx.chain() if ctx is not None else ():
        if node.budget_tokens is None or node.usage.total_tokens < node.budget_tokens:
            continue
        if node.on_budget == "degrade":
            degrade = True
            continue
        name = node.name or "(unnamed step)"
        raise BudgetExceeded(
            f"step '{name}' has used {node.usage.total_tokens} tokens of its "
            f"budget_tokens={node.budget_tokens}; the call was refused "
            f"(use on_budget='degrade' to continue on a cheaper path)",
            code="step_budget_exceeded",
            extra={"step": name, "budget_tokens": node.budget_tokens,
                   "used_tokens": node.usage.total_tokens},
        )
    return degrade


@dataclass
class CallTicket:
    """One call leaving the SDK: the `tokenomy` field to send, and where to charge its usage."""

    step: StepContext | None
    options: dict[str, Any]
    degrade: bool = False

    def settle(self, *, original: int | None, sent: int | None, completion: int | None) -> None:
        sent_tokens = int(sent or 0)
        original_tokens = int(original if original is not None else sent_tokens)
        for node in self.step.chain() if self.step is not None else ():
            node.usage.add(original_tokens, sent_tokens, int(completion or 0))


def step_options(ctx: StepContext | None, degrade: bool = False) -> dict[str, Any]:
    """The `tokenomy` body field a step implies (only what it sets)."""
    if ctx is None:
        return {"degrade": True} if degrade else {}
    options: dict[str, Any] = {}
    if ctx.name:
        options["step"] = ctx.name
    if ctx.team:
        options["team"] = ctx.team
    if ctx.user:
        options["user"] = ctx.user
    if ctx.tags:
        options["tags"] = dict(ctx.tags)
    if ctx.compress is not None:
        options["compress"] = ctx.compress.model_dump(exclude_defaults=True) or {"enabled": True}
    if ctx.reasoning is not None:
        options["reasoning"] = ctx.reasoning
    if degrade:
        options["degrade"] = True
    return options


def open_call(explicit: dict[str, Any] | None = None) -> CallTicket:
    """Start a call in the current step: check budgets, build the `tokenomy` field.

    Options the caller passed for this one request (`explicit`) win over the
    step's; tags merge.
    """
    ctx = current_step()
    degrade = budget_state(ctx)
    options = step_options(ctx, degrade)
    for key, value in (explicit or {}).items():
        if key == "tags" and isinstance(value, dict):
            options["tags"] = {**options.get("tags", {}), **value}
        else:
            options[key] = value
    return CallTicket(step=ctx, options=options, degrade=degrade)

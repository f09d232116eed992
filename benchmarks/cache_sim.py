"""Simulated provider prompt caches and their bills, over what an upstream actually received.

A request is rendered as tokens (o200k_base, through `tokenomy.tokenizers`):
its messages in order, then its tools. Each message is OpenAI's documented
framing (three stand-in tokens that no text produces) followed by the tokens of
its values in a fixed order (role, name, content, tool calls, tool_call_id),
so its length is what `count_messages` bills for it and two messages render
the same whenever a provider's chat template would (key order in the JSON does
not matter to a provider, so it does not matter here).

Per call of a run:
- prefix cache (DeepSeek, GPT-5): the longest common prefix, in tokens, with
  the previous call of the same run, rounded down to the provider's step
  (DeepSeek: 64-token blocks; GPT-5: nothing under 1,024 tokens, then 128-token
  steps);
- Anthropic-style explicit cache with a breakpoint at the end of every request:
  a call reads the longest earlier request of the run whose messages are a
  prefix of its own (tools equal; Anthropic renders tools first), and writes
  everything after it.

Messages are rendered once per distinct content and interned (as int32 bytes,
compared in C), so a request is a list of small integers and the 39M-token
replay stays cheap.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from dataclasses import dataclass, field
from typing import Any

from tokenomy.tokenizers import count_messages, get_encoder, message_text

MODEL = "gpt-4o"  # o200k_base
# Stand-ins for the per-message framing tokens and a `name` marker: negative ids
# are never produced by a tokenizer, so framing only ever matches framing.
_FRAME = (-1, -2, -3)
_NAME_MARK = (-4,)
_TOOLS_MARK = (-9,)
_ORDER = ("role", "name", "content", "tool_calls", "tool_call_id")


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens."""

    name: str
    input: float
    cached: float
    output: float
    cache_write: float | None = None  # only the explicit (Anthropic-style) cache


# Output prices are each provider's list price for the model class named; the
# output tokens are the recorded completions, the same for every system.
PROFILES = (
    Price("deepseek", input=0.27, cached=0.07, output=1.10),
    Price("anthropic", input=3.00, cached=0.30, output=15.00, cache_write=3.75),
    Price("gpt5", input=1.25, cached=0.125, output=10.00),
)


def deepseek_cached(prefix: int) -> int:
    return prefix // 64 * 64


def gpt5_cached(prefix: int) -> int:
    return 0 if prefix < 1024 else prefix // 128 * 128


def _common(a: bytes, b: bytes) -> int:
    """Common prefix, in tokens, of two int32 token strings (slice compares run in C)."""
    low, high = 0, min(len(a), len(b)) // 4
    while low < high:
        mid = (low + high + 1) // 2
        if a[low * 4:mid * 4] == b[low * 4:mid * 4]:
            low = mid
        else:
            high = mid - 1
    return low


def _packed(tokens: list[int]) -> bytes:
    return array("i", tokens).tobytes()


@dataclass
class Rendered:
    """One request as interned chunks: one per message, then the tools."""

    messages: list[int]  # chunk ids
    tools: int  # chunk id
    prompt_tokens: int  # what `count_messages(messages, MODEL, tools)` bills


@dataclass
class Renderer:
    """Renders requests to interned token chunks; one per benchmark process is enough."""

    chunks: list[bytes] = field(default_factory=list)  # int32 tokens
    _ids: dict[bytes, int] = field(default_factory=dict)
    _by_key: dict[bytes, int] = field(default_factory=dict)
    _tools_count: dict[str, int] = field(default_factory=dict)

    def _intern(self, tokens: list[int]) -> int:
        packed = _packed(tokens)
        found = self._ids.get(packed)
        if found is None:
            found = self._ids[packed] = len(self.chunks)
            self.chunks.append(packed)
        return found

    def tokens(self, chunk: int) -> int:
        return len(self.chunks[chunk]) // 4

    def _value(self, value: Any) -> list[int]:
        encoder = get_encoder(MODEL)
        if value is None:
            return []
        if isinstance(value, str):
            return encoder.encode(value)
        if isinstance(value, list):  # content parts
            return encoder.encode(message_text(value))
        if isinstance(value, dict):
            return encoder.encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
        return encoder.encode(str(value))

    def message(self, message: dict[str, Any]) -> int:
        text = json.dumps(message, sort_keys=True, ensure_ascii=False)
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        found = self._by_key.get(key)
        if found is not None:
            return found
        tokens: list[int] = list(_FRAME)
        keys = [k for k in _ORDER if k in message] + sorted(k for k in message if k not in _ORDER)
        for name in keys:
            value = message[name]
            if name == "tool_calls" and isinstance(value, list):
                for call in value:
                    function = (call or {}).get("function") or {}
                    tokens += self._value(function.get("name") or "")
                    tokens += self._value(function.get("arguments") or "")
                continue
            tokens += self._value(value)
            if name == "name":
                tokens += _NAME_MARK
        found = self._by_key[key] = self._intern(tokens)
        return found

    def request(self, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]] | None) -> Rendered:
        ids = [self.message(m) for m in messages]
        tools_key = json.dumps(tools or [], sort_keys=True, separators=(",", ":"))
        tools_id = self._intern([*_TOOLS_MARK, *self._value(tools_key)] if tools else [])
        if tools_key not in self._tools_count:
            # The tools' share of the bill (and the reply primer), as tokenomy counts it.
            self._tools_count[tools_key] = count_messages([], MODEL, tools or None)
        prompt = sum(self.tokens(i) for i in ids) + self._tools_count[tools_key]
        return Rendered(ids, tools_id, prompt)

    def common_prefix(self, a: Rendered, b: Rendered) -> int:
        """Common prefix in tokens of two rendered requests (messages, then tools).

        Every chunk starts with a stand-in no other chunk kind shares, so past the
        first differing chunk nothing more can match.
        """
        seq_a, seq_b = [*a.messages, a.tools], [*b.messages, b.tools]
        total = 0
        for x, y in zip(seq_a, seq_b, strict=False):
            if x != y:
                return total + _common(self.chunks[x], self.chunks[y])
            total += self.tokens(x)
        return total

    def is_prefix(self, earlier: Rendered, later: Rendered) -> bool:
        """Anthropic-style: the earlier request's messages start the later one, same tools."""
        n = len(earlier.messages)
        return earlier.tools == later.tools and later.messages[:n] == earlier.messages


@dataclass
class CallCost:
    prompt: int
    output: int
    prefix: int  # common prefix with the previous call, in tokens
    read: int  # Anthropic-style cache read


def simulate_run(renderer: Renderer, requests: list[Rendered],
                 outputs: list[int]) -> list[CallCost]:
    """Per call: prompt tokens, the common prefix with the previous call, the explicit read."""
    costs: list[CallCost] = []
    for k, request in enumerate(requests):
        prefix = renderer.common_prefix(requests[k - 1], request) if k else 0
        prefix = min(prefix, request.prompt_tokens)
        read = max((earlier.prompt_tokens for earlier in requests[:k]
                    if renderer.is_prefix(earlier, request)), default=0)
        costs.append(CallCost(request.prompt_tokens, outputs[k], prefix,
                              min(read, request.prompt_tokens)))
    return costs


def dollars(profile: Price, calls: list[CallCost]) -> float:
    total = 0.0
    for call in calls:
        if profile.cache_write is not None:
            read = call.read
            total += read * profile.cached + (call.prompt - read) * profile.cache_write
        else:
            rounded = deepseek_cached if profile.name == "deepseek" else gpt5_cached
            cached = rounded(call.prefix)
            total += cached * profile.cached + (call.prompt - cached) * profile.input
        total += call.output * profile.output
    return total / 1e6


def pearson(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / (sxx * syy) ** 0.5 if sxx and syy else float("nan")

"""Consensus mode: cheap samples that stop when they agree, escalation when they do not.

ARM's consensus idea with Adaptive-Consistency's Beta stopping rule
(Aggarwal et al., 2023): after each sample, with `a` votes for the leading
answer and `b` for the runner-up, the share of the leader among those two is
Beta(a + 1, b + 1) distributed; sampling stops once P(share > 1/2) reaches the
threshold. With integer counts that probability is a binomial tail,
P(Bin(a + b + 1, 1/2) <= a), computed exactly without scipy. At 0.95 four
identical answers stop (0.969) and three do not (0.9375).
"""

from __future__ import annotations

import asyncio
import math
import re
import unicodedata
from collections import Counter
from typing import Any

from tokenomy.call import Call, Result, Usage
from tokenomy.pipeline import Next
from tokenomy.transcript import WireProtocol


def majority_probability(leader: int, runner_up: int) -> float:
    """P(p_leader > p_runner_up) under a uniform prior: P(Beta(a+1, b+1) > 1/2)."""
    n = leader + runner_up + 1
    return sum(math.comb(n, k) for k in range(leader + 1)) / 2**n


def should_stop(votes: Counter[str], threshold: float) -> bool:
    """Adaptive-Consistency's Beta rule on the vote counts so far."""
    if not votes:
        return False
    top = votes.most_common(2)
    leader = top[0][1]
    runner_up = top[1][1] if len(top) > 1 else 0
    return majority_probability(leader, runner_up) >= threshold


def min_samples_to_stop(threshold: float, limit: int = 64) -> int:
    """The fewest samples after which the rule can stop (all of them agreeing)."""
    for n in range(1, limit + 1):
        if majority_probability(n, 0) >= threshold:
            return n
    return limit


_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_HASHES = re.compile(r"####\s*([^\n]+)")
_FINAL = re.compile(
    r"(?:final answer|the answer is|answer)\s*(?:is)?\s*[:=]?\s*\**\s*([^\n]+)", re.IGNORECASE
)
_CHOICE = re.compile(r"^\(?([A-Ha-h])\)?(?:[.):\s]|$)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _normalize(answer: str) -> str:
    text = unicodedata.normalize("NFKC", answer).strip().strip("*").strip()
    choice = _CHOICE.match(text)
    if choice and (len(text) <= 3 or text[1:2] in ".):"):
        return choice.group(1).upper()
    numbers = _NUMBER.findall(text)
    if numbers and len(text) <= 40:
        value = numbers[0].replace(",", "")
        return value[:-2] if value.endswith(".0") else value
    return re.sub(r"[\W_]+", " ", text.lower()).strip()[:200]


def extract_answer(text: str) -> str:
    """The final answer in a completion, normalised so equal answers compare equal."""
    for pattern in (_BOXED, _HASHES):
        found = pattern.findall(text)
        if found:
            return _normalize(found[-1])
    found = _FINAL.findall(text)
    if found:
        return _normalize(found[-1])
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    if len(last) > 40:
        numbers = _NUMBER.findall(last)
        if numbers:
            return _normalize(numbers[-1])
    return _normalize(last)


def add_usage(total: Usage, extra: Usage | None) -> Usage:
    return total if extra is None else total + extra


def _usage_of(result: Result, protocol: WireProtocol) -> Usage | None:
    if result.usage is not None:
        return result.usage
    return protocol.response_usage(result.response or {})


class ConsensusOutcome:
    """What a consensus run did: its answer, votes, samples, and whether it escalated."""

    def __init__(self) -> None:
        self.votes: Counter[str] = Counter()
        self.samples: list[Result] = []
        self.answers: list[str] = []
        self.escalated = False
        self.usage = Usage()

    def detail(self) -> dict[str, Any]:
        return {
            "samples": len(self.samples),
            "votes": dict(self.votes),
            "escalated": self.escalated,
        }


async def run_consensus(
    make_sample: Any,
    make_escalation: Any,
    next: Next,
    *,
    protocol: WireProtocol,
    max_samples: int,
    threshold: float,
) -> tuple[Result, ConsensusOutcome]:
    """Sample cheaply until the Beta rule stops or `max_samples` is reached.

    `make_sample()` and `make_escalation()` return fresh non-streaming Calls.
    The first batch runs concurrently (the rule cannot stop before it); later
    samples run one at a time so the run stops as soon as the answers agree.
    The returned Result carries the usage of every sample (and the escalation),
    written in `protocol`'s shape.
    """
    outcome = ConsensusOutcome()
    first = min(max_samples, min_samples_to_stop(threshold))

    def take(result: Result) -> None:
        outcome.samples.append(result)
        outcome.usage = add_usage(outcome.usage, _usage_of(result, protocol))
        answer = extract_answer(protocol.response_text(result.response or {}))
        outcome.answers.append(answer)
        if answer:
            outcome.votes[answer] += 1

    for result in await asyncio.gather(*(next(make_sample()) for _ in range(first))):
        take(result)
    while not should_stop(outcome.votes, threshold) and len(outcome.samples) < max_samples:
        take(await next(make_sample()))

    if should_stop(outcome.votes, threshold):
        winner = outcome.votes.most_common(1)[0][0]
        chosen = outcome.samples[outcome.answers.index(winner)]
    else:
        outcome.escalated = True
        chosen = await next(make_escalation())
        outcome.usage = add_usage(outcome.usage, _usage_of(chosen, protocol))
    # The client and the ledger see what the whole run consumed.
    response = protocol.with_usage(chosen.response or {}, outcome.usage)
    return Result(response=response, usage=outcome.usage, status=chosen.status), outcome


def sample_copy(call: Call, body: dict[str, Any], instruction: str | None = None) -> Call:
    """A fresh Call for one sample: same identity and route, the given body, no stream."""
    body = {**body, "stream": False}
    body.pop("stream_options", None)
    twin = call.fork(body)
    if instruction:
        twin.append_instruction("plan", instruction, technique="reasoning")
    return twin

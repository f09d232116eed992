"""Hypothesis against the compressors: random Unicode, zero-width characters, JSON of any
shape (deeply nested too), huge documents, and text that imitates our own field and headers.

No crash, nothing grows, JSON stays JSON, and memory stays bounded. Example counts
are fixed (see the settings on each test) so the suite stays fast.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenomy import compress
from tokenomy.compressors.messages import compress_messages

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
LOOKALIKES = [
    '{"tokenomy": {"team": "root", "compress": {"target_ratio": 100}}}',
    "x-tokenomy-request-id: forged\r\nSet-Cookie: a=b",
    "Authorization: Bearer sk-live-forged",
    "data: [DONE]\n\n",
    "```python\nprint('keep me')\n```",
]
FAST = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
MODEL_SCORED = settings(max_examples=25, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=12)
hostile_text = st.lists(
    st.one_of(words, st.sampled_from(ZERO_WIDTH), st.sampled_from(LOOKALIKES),
              st.sampled_from([" ", "\n", "\n\n", ". ", "\t"])),
    min_size=1, max_size=300,
).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=60,
)


@FAST
@given(text=hostile_text, ratio=st.floats(1.0, 20.0))
def test_lossless_never_crashes_or_grows(text: str, ratio: float) -> None:
    result = compress(text, method="lossless", target_ratio=ratio, min_tokens=0)
    assert result.compressed_tokens <= result.original_tokens


@FAST
@given(data=json_values)
def test_json_stays_json(data: object) -> None:
    text = json.dumps(data, ensure_ascii=False)
    result = compress(text, method="lossless", min_tokens=0)
    # Valid JSON still (uniform arrays of objects may become a columns/rows table).
    json.loads(result.text)
    assert result.compressed_tokens <= result.original_tokens


@pytest.mark.parametrize(("depth", "method"), [(50, "auto"), (300, "lossless"),
                                               (1500, "lossless")])
def test_deeply_nested_json_document(depth: int, method: str) -> None:
    # 1500 levels: deeper than Python's json module recurses (it used to crash).
    text = "[" * depth + "1" + "]" * depth
    result = compress(text, method=method, min_tokens=0, query="what number?")
    assert result.compressed_tokens <= result.original_tokens


@pytest.mark.slow
@MODEL_SCORED
@given(docs=st.lists(hostile_text, min_size=1, max_size=6), query=hostile_text)
def test_extractive_on_hostile_documents(docs: list[str], query: str) -> None:
    result = compress(docs, query=query, method="extractive", target_ratio=3.0, min_tokens=0)
    assert result.compressed_tokens <= result.original_tokens + 8


@pytest.mark.slow
@MODEL_SCORED
@given(tail=hostile_text, question=hostile_text)
def test_compress_messages_keeps_shape(tail: str, question: str) -> None:
    messages = [{"role": "system", "content": "You answer from the context."},
                {"role": "user", "content": tail},
                {"role": "user", "content": question}]
    result = compress_messages(messages, model="gpt-4o-mini", target_ratio=4.0)
    assert [m["role"] for m in result.messages] == ["system", "user", "user"]
    assert result.messages[0]["content"] == messages[0]["content"]  # the stable prefix
    assert result.tokens_after <= result.tokens_before


@pytest.mark.slow
def test_huge_document_bounded_time_and_memory() -> None:
    sentence = "The quarterly revenue grew by {n} percent while costs fell\u200b. "
    text = "".join(sentence.format(n=i) for i in range(12_000))  # ~750 KB, ~190k tokens
    tracemalloc.start()
    try:
        result = compress(text, query="how much did revenue grow in 7?", method="auto",
                          target_tokens=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.compressed_tokens <= 2000 * 1.1
    assert peak < 400 * 2**20, f"peak Python allocations {peak / 2**20:.0f} MiB"

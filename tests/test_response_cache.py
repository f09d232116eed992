"""The exact response cache through real `tokenomy serve` processes.

Two replicas on one PostgreSQL ledger share answers; a TTL expires them;
`Cache-Control` bypasses or refreshes; a stream replays as SSE that the openai
SDK parses; each hit is a ledger row with zero spend and the saving under
`response_cache`; a team over budget gets no cached answer and no team sees
another's; Redis works as the store too. The upstream's request counter
proves whether a request went upstream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from budget_support import pg_schema_url, query, sqlite_url
from tokenomy.config import Settings
from tokenomy.engine import Engine
from tokenomy.response_cache.entry import cache_key
from tokenomy.testing.processes import Server, echo_config, run_proxy

PRICES = {"echo-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6}}


def cache_config(upstream: Server, ledger_url: str, **cache: Any) -> dict[str, Any]:
    config = echo_config(
        upstream.v1,
        ledger={"url": ledger_url, "prices": PRICES},
        teams={
            "cached": {"response_cache": {"enabled": True}},
            "other": {"response_cache": {"enabled": True}},
            "plain": {},
            "broke": {"tokens": 1, "window": "1d", "response_cache": {"enabled": True}},
        },
        response_cache={"ttl": 60, **cache},
    )
    config["backends"]["test"]["timeout"] = 30
    return config


def body(text: str, team: str = "cached", **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": "echo",
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
        "tokenomy": {"team": team, "compress": {"enabled": False}, "reasoning": "off"},
    }
    payload.update(extra)
    return payload


def post(proxy: Server, payload: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(proxy.v1 + "/chat/completions", json=payload, headers=headers, timeout=30)


def upstream_count(upstream: Server) -> int:
    return int(httpx.get(upstream.url + "/_stats").json()["count"])


def until_hit(proxy: Server, payload: dict[str, Any], **headers: str) -> httpx.Response:
    """The store is written after the answer is sent: ask again until it is there."""
    deadline = time.monotonic() + 10
    while True:
        response = post(proxy, payload, **headers)
        if response.headers.get("x-tokenomy-cache") == "hit" or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def rows(url: str, request_id: str) -> list[Any]:
    return query(url, "SELECT from_cache, cost_usd, prompt_tokens, completion_tokens, "
                      "saved_tokens, saved_usd, outcome, events FROM tk_requests "
                      "WHERE request_id = :rid", rid=request_id)


def savings(url: str, request_id: str) -> dict[str, tuple[int, float]]:
    found = query(url, "SELECT technique, tokens_saved, usd_saved FROM tk_savings "
                       "WHERE request_id = :rid", rid=request_id)
    return {t: (n, usd) for t, n, usd in found}


def wait_for_row(url: str, request_id: str) -> Any:
    deadline = time.monotonic() + 10
    while not (found := rows(url, request_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, f"no ledger row for {request_id}"
    return found[0]


@pytest.fixture(scope="module")
def replicas(upstream: Server, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Server, Server, str]]:
    """Two `tokenomy serve` processes sharing one fresh PostgreSQL schema."""
    gen = pg_schema_url()
    url = next(gen)
    folder = tmp_path_factory.mktemp("response-cache")
    config = cache_config(upstream, url, ttl=60)
    try:
        with (run_proxy(config, folder=folder / "a") as a,
              run_proxy(config, folder=folder / "b") as b):
            yield a, b, url
    finally:
        next(gen, None)


@pytest.mark.postgres
def test_hit_across_replicas_on_postgres_is_a_free_ledger_row(
        replicas: tuple[Server, Server, str], upstream: Server) -> None:
    a, b, url = replicas
    payload = body(f"what is the capital of France? {uuid.uuid4().hex}")
    first = post(a, payload)
    assert first.status_code == 200, first.text
    assert first.headers["x-tokenomy-cache"] == "miss"
    before = upstream_count(upstream)
    second = until_hit(b, payload)
    assert second.headers["x-tokenomy-cache"] == "hit"
    assert upstream_count(upstream) == before  # the replica never called upstream
    assert second.json() == first.json()  # the same answer, byte for byte as JSON

    usage = first.json()["usage"]
    row = wait_for_row(url, second.headers["x-tokenomy-request-id"])
    from_cache, cost, prompt, completion, saved_tokens, saved_usd, outcome, events = row
    assert (from_cache, cost, prompt, completion, outcome) == (True, 0.0, 0, 0, "ok")
    expected_usd = usage["prompt_tokens"] * 1e-6 + usage["completion_tokens"] * 4e-6
    saved = savings(url, second.headers["x-tokenomy-request-id"])
    assert saved["response_cache"][0] == usage["total_tokens"]
    assert saved["response_cache"][1] == pytest.approx(expected_usd)
    assert saved_tokens == usage["total_tokens"] and saved_usd == pytest.approx(expected_usd)
    stages = [e["stage"] for e in json.loads(events)]
    assert "response_cache" in stages  # the request view can show what answered it
    # The miss was charged as usual.
    miss = wait_for_row(url, first.headers["x-tokenomy-request-id"])
    assert miss[0] is False and miss[1] == pytest.approx(expected_usd)


@pytest.mark.postgres
def test_stream_replays_as_sse_the_openai_sdk_parses(
        replicas: tuple[Server, Server, str], upstream: Server) -> None:
    a, b, url = replicas
    text = f"stream me please {uuid.uuid4().hex}"
    options = {"team": "cached", "compress": {"enabled": False}, "reasoning": "off"}

    def ask(proxy: Server) -> tuple[str, str | None, str]:
        client = openai.OpenAI(base_url=proxy.v1, api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": text}], temperature=0,
            stream=True, extra_body={"tokenomy": options})
        stream = raw.parse()
        content = "".join(chunk.choices[0].delta.content or ""
                          for chunk in stream if chunk.choices)
        return content, raw.headers.get("x-tokenomy-cache"), raw.headers[
            "x-tokenomy-request-id"]

    content, state, _ = ask(a)
    assert state == "miss" and content.startswith("echo:")
    before = upstream_count(upstream)
    deadline = time.monotonic() + 10
    while (found := ask(b))[1] != "hit" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found[1] == "hit"
    assert found[0] == content
    assert upstream_count(upstream) == before
    row = wait_for_row(url, found[2])
    assert row[0] is True and row[1] == 0.0

    # A JSON request for the same prompt is a different request on the wire: not answered
    # from the streamed answer (and the other way round).
    json_answer = post(a, body(text))
    assert json_answer.headers["x-tokenomy-cache"] == "miss"


@pytest.mark.postgres
def test_cache_control_no_cache_refreshes_and_no_store_bypasses(
        replicas: tuple[Server, Server, str], upstream: Server) -> None:
    a, b, _ = replicas
    payload = body(f"refresh me {uuid.uuid4().hex}")
    assert post(a, payload).headers["x-tokenomy-cache"] == "miss"
    assert until_hit(a, payload).headers["x-tokenomy-cache"] == "hit"
    before = upstream_count(upstream)
    fresh = post(b, payload, **{"cache-control": "no-cache"})
    assert fresh.headers["x-tokenomy-cache"] == "refresh"
    assert upstream_count(upstream) == before + 1
    skipped = post(b, payload, **{"cache-control": "no-store"})
    assert skipped.headers["x-tokenomy-cache"] == "bypass"
    assert upstream_count(upstream) == before + 2
    option_off = body(payload["messages"][0]["content"])
    option_off["tokenomy"]["cache"] = False
    assert post(b, option_off).headers["x-tokenomy-cache"] == "bypass"
    assert upstream_count(upstream) == before + 3


@pytest.mark.postgres
def test_keyed_per_team_and_budget_checked_before_a_hit(
        replicas: tuple[Server, Server, str], upstream: Server) -> None:
    a, b, _ = replicas
    text = f"shared question {uuid.uuid4().hex}"
    assert post(a, body(text, team="cached")).headers["x-tokenomy-cache"] == "miss"
    assert until_hit(b, body(text, team="cached")).headers["x-tokenomy-cache"] == "hit"
    # Another team asking the same thing gets its own answer from upstream.
    before = upstream_count(upstream)
    other = post(b, body(text, team="other"))
    assert other.headers["x-tokenomy-cache"] == "miss"
    assert upstream_count(upstream) == before + 1
    # A team over its budget is refused before the cache is consulted.
    refused = post(b, body(text, team="broke"))
    assert refused.status_code == 429
    assert "x-tokenomy-cache" not in refused.headers


@pytest.mark.postgres
def test_eligibility_temperature_opt_in_and_what_the_backend_sees(
        replicas: tuple[Server, Server, str], upstream: Server) -> None:
    a, _, _ = replicas
    text = f"eligible? {uuid.uuid4().hex}"
    sampled = body(text)
    del sampled["temperature"]  # the backend samples: not deterministic, not cached
    assert "x-tokenomy-cache" not in post(a, sampled).headers
    # A team without the cache, opting in per request through the options header.
    plain = body(text, team="plain")
    del plain["temperature"]
    header = {"x-tokenomy-options": json.dumps({"cache": True})}
    assert post(a, plain, **header).headers["x-tokenomy-cache"] == "miss"
    assert until_hit(a, plain, **header).headers["x-tokenomy-cache"] == "hit"
    # Anything the backend would see differently is another key.
    for change in ({"max_tokens": 7}, {"user": "someone-else"}, {"seed": 3}):
        changed = {**plain, **change, "tokenomy": dict(plain["tokenomy"])}
        assert post(a, changed, **header).headers["x-tokenomy-cache"] == "miss", change


def test_ttl_expiry_and_size_bound_on_sqlite(upstream: Server, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    config = cache_config(upstream, url, ttl=1, max_entries=2)
    with run_proxy(config, folder=tmp_path) as proxy:
        payload = body(f"short lived {uuid.uuid4().hex}")
        assert post(proxy, payload).headers["x-tokenomy-cache"] == "miss"
        assert until_hit(proxy, payload).headers["x-tokenomy-cache"] == "hit"
        time.sleep(1.2)
        before = upstream_count(upstream)
        assert post(proxy, payload).headers["x-tokenomy-cache"] == "miss"  # expired
        assert upstream_count(upstream) == before + 1
        for i in range(4):
            post(proxy, body(f"fill {i} {uuid.uuid4().hex}"))
        time.sleep(0.5)
        kept = query(url, "SELECT count(*) FROM tk_response_cache")[0][0]
        assert kept <= 2


def test_redis_store_shared_by_two_replicas(upstream: Server, tmp_path: Path) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    prefix = f"tokenomy-test:{uuid.uuid4().hex}:"
    # Two replicas with separate SQLite ledgers: only Redis can carry the answer across.
    configs = [cache_config(upstream, sqlite_url(tmp_path / name), store="redis",
                            redis_prefix=prefix) for name in ("a", "b")]
    try:
        with (run_proxy(configs[0], folder=tmp_path / "a") as a,
              run_proxy(configs[1], folder=tmp_path / "b") as b):
            payload = body(f"via redis {uuid.uuid4().hex}")
            first = post(a, payload)
            assert first.headers["x-tokenomy-cache"] == "miss"
            before = upstream_count(upstream)
            second = until_hit(b, payload)
            assert second.headers["x-tokenomy-cache"] == "hit"
            assert second.json() == first.json()
            assert upstream_count(upstream) == before
            row = wait_for_row(sqlite_url(tmp_path / "b"), second.headers["x-tokenomy-request-id"])
            assert row[0] == 1 and row[1] == 0.0  # SQLite booleans read back as 0/1
        client = redis.Redis(host="127.0.0.1", port=6379)
        keys = list(client.scan_iter(prefix + "*"))
        assert keys  # the answer and the index live under the prefix
        ttl = client.pttl(next(k for k in keys if not k.endswith(b"index")))
        assert 0 < ttl <= 60_000
    finally:
        client = redis.Redis(host="127.0.0.1", port=6379)
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)


def test_key_is_what_the_backend_would_receive() -> None:
    settings = Settings.model_validate({
        "backends": {"b": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"fast": {"backend": "b", "model": "m-1"}, "m-1": {"backend": "b"}},
        "ledger": {"enabled": False},
        "pipeline": {"stages": ["identify"]},  # the key needs no other stage
    })
    engine = Engine(settings)

    def key(body: dict[str, Any], team: str = "t", **headers: str) -> str | None:
        call = engine.prepare(body, headers=headers)
        call.identity.team = team
        return cache_key(call)

    messages = [{"role": "user", "content": "hi"}]
    base = key({"model": "fast", "messages": messages, "temperature": 0})
    # The alias and the backend's own name reach the backend as the same request,
    # top-level field order means nothing, tokenomy's options never reach it.
    assert base == key({"temperature": 0, "messages": messages, "model": "m-1"})
    assert base == key({"model": "fast", "messages": messages, "temperature": 0,
                        "tokenomy": {"step": "x"}})
    # What the backend would see differently, or another team, is another key.
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}}}
    swapped = json.loads(json.dumps(tool))
    props = swapped["function"]["parameters"]["properties"]
    swapped["function"]["parameters"]["properties"] = {"b": props["b"], "a": props["a"]}
    different = [
        key({"model": "fast", "messages": messages, "temperature": 0}, team="u"),
        key({"model": "fast", "messages": messages, "temperature": 0.0}),
        key({"model": "fast", "messages": messages, "temperature": 0, "stream": True}),
        key({"model": "fast", "messages": [{"role": "user", "content": "hi "}],
             "temperature": 0}),
        key({"model": "fast", "messages": messages, "temperature": 0, "tools": [tool]}),
        key({"model": "fast", "messages": messages, "temperature": 0, "tools": [swapped]}),
    ]
    assert len({base, *different}) == len(different) + 1


async def test_consensus_samples_are_never_cached(tmp_path: Path) -> None:
    """Samples of one request are forks with the same body: an exact cache would make them
    agree by construction. The stage answers forks upstream, even when asked to cache."""
    from tokenomy.budgets.service import Budgets
    from tokenomy.call import Call, Result
    from tokenomy.options import TokenomyOptions
    from tokenomy.pipeline import Pipeline, Services
    from tokenomy.response_cache.stage import build

    settings = Settings(ledger={"url": sqlite_url(tmp_path)})
    budgets = Budgets.from_settings(settings, background=False)
    calls: list[str] = []

    async def backend(call: Call) -> Result:  # the stage under test is the real one
        calls.append(call.request_id)
        return Result(response={"choices": [{"message": {"content": "4"}}],
                                "usage": {"prompt_tokens": 5, "completion_tokens": 1}})

    stage = build(Services(settings=settings, router=None, budgets=budgets))  # type: ignore[arg-type]
    assert stage is not None
    pipeline = Pipeline([stage], backend)
    try:
        body = {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "2+2"}]}
        parent = Call(body=body, options=TokenomyOptions(cache=True), backend="b",
                      upstream_model="m")
        for _ in range(3):
            sample = parent.fork(dict(body))
            await pipeline.run(sample)
            assert sample.cache is None
        assert len(calls) == 3
        await pipeline.run(parent)  # the request itself is cached as usual
        await stage.aclose()
        again = Call(body=dict(body), options=TokenomyOptions(cache=True), backend="b",
                     upstream_model="m")
        result = await pipeline.run(again)
        assert again.cache == "hit" and result.cached_usage is not None and len(calls) == 4
    finally:
        budgets.close()

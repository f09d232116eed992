"""Attacks on the ledger through the proxy: items 2, 3, 4, 6, 7 and 8 of issue 11.

Each function starts what it attacks (a `tokenomy serve` on SQLite or on a fresh
PostgreSQL schema), runs for seconds, and returns (item, attack, figure) rows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from hardening_kit import (
    base_config,
    chat,
    engine_for,
    pg_schema,
    proxy,
    refusal_needs,
    relay_class,
    rows,
    start_proxy,
    upstream,
)
from sqlalchemy import MetaData, Table, insert

Row = tuple[str, str, str]
PG_PORT = 5432


def _post(url: str, body: dict[str, Any], timeout: float = 60) -> httpx.Response:
    return httpx.post(url + "/chat/completions", json=body, timeout=timeout)


def poisoned_rows(folder: Path) -> list[Row]:
    """Item 2 (PostgreSQL): identity fields longer than their column or holding a NUL."""
    poisons = {"step of 300 chars": {"step": "s" * 300}, "step with a NUL": {"step": "a\0b"},
               "user of 300 chars": {"user": "u" * 300}}
    with pg_schema() as url, upstream() as up:
        config = base_config(up, ledger={"url": url, "reconcile_interval": 1, "owner_ttl": 3},
                             teams={"p": {"tokens": 1_000_000, "window": "1d"},
                                    "other": {"tokens": 1_000_000, "window": "1d"}})
        statuses = []
        first = start_proxy(config, folder / "a")
        try:
            for options in poisons.values():
                body = chat(max_tokens=10, tokenomy={"team": "p", **options})
                statuses.append(_post(first.v1, body).status_code)
            time.sleep(2)
            engine = engine_for(url)
            held = rows(engine, "select count(*) from tk_reservations")[0][0]
            other = _post(first.v1, chat(max_tokens=10, tokenomy={"team": "other"}))
            time.sleep(1)
            landed = rows(engine, "select count(*) from tk_requests where team='other'")[0][0]
        finally:
            first.stop(kill=True)
        try:
            again = start_proxy(config, folder / "b")
            restarted = "started"
            time.sleep(4)  # its reconcile runs at start and every second
            again.stop()
        except (RuntimeError, TimeoutError) as exc:
            restarted = f"failed to start ({str(exc).splitlines()[0][:60]})"
        held_after = rows(engine, "select count(*) from tk_reservations")[0][0]
        engine.dispose()
    return [("2", "3 poisoned identity fields (PostgreSQL), then kill -9 and restart",
             f"statuses {statuses}; {held} reservations stuck; another team's request "
             f"{other.status_code} with {landed} row; restarted replica {restarted}, "
             f"{held_after} reservations still held")]


def _plain_cost(server: Any) -> int:
    answer = _post(server.v1, chat("what is 6 times 7?", max_tokens=12)).json()
    return int(answer["usage"]["total_tokens"])


def fan_out(folder: Path) -> list[Row]:
    """Item 3: consensus, n, images, max_tokens, and 200 concurrent fan-out requests."""
    out: list[Row] = []
    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        config = base_config(up, ledger={"url": url})
        with proxy(config, folder / "probe") as server:
            cost = _plain_cost(server)
        limit = 10 * cost
        config["teams"] = {
            "consensus": {"tokens": limit, "window": "1d"},
            "choices": {"tokens": 1000, "window": "1d"},
            "images": {"tokens": 1, "window": "1d"},  # refuses all, says what each needs
        }
        with proxy(config, folder / "attacks") as server:
            httpx.post(up.url + "/_reset")
            bodies = [chat(f"what is {i} times 7?", max_tokens=12,
                           metadata={"test_fault": "vary"},
                           tokenomy={"team": "consensus", "reasoning": "consensus"})
                      for i in range(10)]
            admitted = asyncio.run(_fire(server.v1, bodies)).count(200)  # all at once
            calls = httpx.get(up.url + "/_stats").json()["count"]
            engine = engine_for(url)
            spent = _spent(engine, "consensus")
            out.append(("3", "10 consensus requests, budget for 10 plain calls",
                        f"admitted {admitted}/10, {calls} upstream calls, charged {spent} "
                        f"against a limit of {limit}"))
            # 200 one-letter words: each of the 100 choices answers its max_tokens (100).
            n100 = _post(server.v1, chat("a " * 200, max_tokens=100, n=100,
                                         tokenomy={"team": "choices"}))
            out.append(("3", "n=100, max_tokens=100, budget 1,000",
                        f"status {n100.status_code}, charged {_spent(engine, 'choices')} "
                        f"against 1000"))
            big = base64.b64encode(_png_head(4096, 4096) + b"\0" * (3 * 1024 * 1024)).decode()
            for label, parts in (
                ("a 3 MB base64 image", [_image(f"data:image/png;base64,{big}")]),
                ("50 high-detail image URLs",
                 [_image(f"https://example.com/{i}.png") for i in range(50)]),
            ):
                body = {"model": "echo", "max_tokens": 10, "tokenomy": {"team": "images"},
                        "messages": [{"role": "user", "content": [
                            {"type": "text", "text": "describe"}, *parts]}]}
                response = _post(server.v1, body)
                needs = refusal_needs(response)
                estimate = f"estimated {needs} tokens" if needs else "admitted"
                out.append(("3", f"{label}: the reservation's estimate",
                            f"status {response.status_code}, {estimate}"))
            huge = _post(server.v1, chat(max_tokens=2**63 - 1))
            out.append(("3", "max_tokens = 2^63-1", f"status {huge.status_code}"))
            engine.dispose()
    out.append(_concurrent(folder / "concurrent"))
    return out


def _concurrent(folder: Path) -> Row:
    limit = 10_000
    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        config = base_config(up, ledger={"url": url},
                             teams={"capped": {"tokens": limit, "window": "1d"}},
                             planner={"consensus": {"max_samples": 4}})
        with proxy(config, folder) as server:
            bodies = []
            for i in range(200):
                body = chat(f"request {i}: what is {i} plus {i}?", max_tokens=12,
                            tokenomy={"team": "capped"})
                if i % 4 == 1:
                    body["n"] = 8
                elif i % 4 == 2:
                    body["metadata"] = {"test_fault": "vary"}
                    body["tokenomy"]["reasoning"] = "consensus"
                elif i % 4 == 3:
                    body["stream"] = True
                bodies.append(body)
            bodies.sort(key=lambda b: "metadata" not in b)
            statuses = asyncio.run(_fire(server.v1, bodies))
            time.sleep(1)
            engine = engine_for(url)
            spent = _spent(engine, "capped")
            engine.dispose()
    others = sorted({s for s in statuses if s not in (200, 429)})
    return ("3", "200 concurrent requests (plain, n=8, consensus, stream), SQLite",
            f"{statuses.count(200)} admitted, {statuses.count(429)} refused"
            + (f", other statuses {others}" if others else "")
            + f"; charged {spent} against a limit of {limit}")


async def _fire(v1: str, bodies: list[dict[str, Any]]) -> list[int]:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(body: dict[str, Any]) -> int:
            if body.get("stream"):
                async with client.stream("POST", v1 + "/chat/completions", json=body) as r:
                    async for _ in r.aiter_bytes():
                        pass
                    return r.status_code
            return (await client.post(v1 + "/chat/completions", json=body)).status_code

        return list(await asyncio.gather(*(one(b) for b in bodies)))


def _spent(engine: Any, team: str) -> int:
    found = rows(engine, "select coalesce(sum(total_tokens), 0) from tk_requests "
                         "where team=:t", t=team)
    return int(found[0][0])


def _png_head(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(
        ">IIBBBBB", width, height, 8, 6, 0, 0, 0) + b"\0\0\0\0"


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": "high"}}


def heartbeat(folder: Path) -> list[Row]:
    """Item 4 (PostgreSQL): replica A holds 10 calls against a budget for 10; it looks,
    from B, like a process in another PID namespace (its recorded pid does not exist
    here); B starts and serves the same team."""
    with pg_schema() as url, upstream() as up:
        per_call = 110  # prompt + max_tokens 100, with room for the framing
        config = base_config(up, ledger={"url": url, "reconcile_interval": 1, "owner_ttl": 5},
                             teams={"h": {"tokens": 10 * per_call + 20, "window": "1d"}})
        a = start_proxy(config, folder / "a")
        b = None
        try:
            _post(a.v1, chat(max_tokens=5))  # warm: the first call loads what it needs
            _hang(a.v1, 10)
            engine = engine_for(url)
            deadline = time.monotonic() + 60
            held = 0
            while held < 10 and time.monotonic() < deadline:
                held = rows(engine, "select count(*) from tk_reservations")[0][0]
                time.sleep(0.1)
            with engine.begin() as conn:  # what a pid from another namespace looks like here
                from sqlalchemy import text

                conn.execute(text("update tk_owners set pid = 4194000"))
            b = start_proxy(config, folder / "b")
            time.sleep(3)
            kept = rows(engine, "select count(*) from tk_reservations")[0][0]
            admitted = _hang(b.v1, 10, settle=3.0)
            engine.dispose()
        finally:
            a.stop(kill=True)
            if b is not None:
                b.stop(kill=True)
    return [("4", "replica B starts beside A (10 live calls, budget for 10, 'other PID "
             "namespace')", f"B released {held - min(kept, held)} of A's {held} live "
             f"reservations; B admitted {admitted} more calls against a budget for 10")]


def _hang(v1: str, count: int, settle: float = 0.0) -> int:
    """`count` calls the upstream holds 30 s; returns how many were admitted (not 429)."""
    refused: list[int] = []

    def one(i: int) -> None:
        body = chat(f"hold {i}", model="fault:hang", max_tokens=100, tokenomy={"team": "h"})
        with contextlib.suppress(httpx.HTTPError):
            if _post(v1, body, timeout=40).status_code == 429:
                refused.append(i)

    for i in range(count):
        threading.Thread(target=one, args=(i,), daemon=True).start()
    time.sleep(settle)
    return count - len(refused)


def db_blips(folder: Path) -> list[Row]:
    """Items 6 and 7 (PostgreSQL through a TCP relay): connections cut during 100 requests,
    then the database gone altogether."""
    relay_type = relay_class()
    with pg_schema() as url, upstream() as up:
        relay = relay_type(PG_PORT).up()
        via = url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
        config = base_config(up, ledger={"url": via, "reconcile_interval": 1},
                             teams={"b": {"tokens": 10_000_000, "window": "1d"}})
        server = start_proxy(config, folder)
        stop = threading.Event()

        def cut() -> None:
            while not stop.wait(0.15):
                relay.down()
                time.sleep(0.1)
                relay.up()

        served: list[str] = []
        statuses: list[int] = []
        try:
            cutter = threading.Thread(target=cut)
            cutter.start()
            for i in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    response = _post(server.v1, chat(f"n{i}", max_tokens=5,
                                                     tokenomy={"team": "b"}), timeout=30)
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        served.append(response.headers["x-tokenomy-request-id"])
            stop.set()
            cutter.join()  # it leaves the relay up
            time.sleep(12)  # retries, the spool's replay, reconciliation
            engine = engine_for(url)
            ids = {r[0] for r in rows(engine, "select request_id from tk_requests")}
            lost = sum(1 for rid in served if rid not in ids)
            held = rows(engine, "select count(*) from tk_reservations")[0][0]
            relay.down()
            gone = [_post(server.v1, chat(max_tokens=5, tokenomy={"team": "b"}),
                          timeout=60).status_code for _ in range(3)]
            relay.up()
            engine.dispose()
        finally:
            stop.set()
            server.stop()
            relay.down()
    errors = len([s for s in statuses if s != 200])
    return [
        ("6", "100 requests while the ledger's PostgreSQL connections are cut every 150 ms",
         f"{len(served)} served ({errors} errors), {lost} served without a row, "
         f"{held} reservations still held 12 s later"),
        ("7", "ledger database unreachable", f"statuses {gone}"),
    ]


def over_budget_team(folder: Path) -> list[Row]:
    """Item 8 (SQLite): team A has 300k rows this window and is over budget; team B's
    latency alone, then while four of A's clients retry refused requests."""
    with upstream() as up:
        url = f"sqlite:///{folder / 'ledger.db'}"
        config = base_config(up, ledger={"url": url},
                             teams={"a": {"tokens": 1000, "window": "month"},
                                    "b": {"tokens": 10_000_000_000, "window": "month"}})
        with proxy(config, folder):
            pass  # migrations
        engine = engine_for(url)
        _seed(engine, "a", 300_000)
        engine.dispose()
        with proxy(config, folder) as server:
            body_b = chat(max_tokens=5, tokenomy={"team": "b"})
            for _ in range(5):
                _post(server.v1, body_b)
            alone = _latencies(server.v1, body_b, 30)
            stop = threading.Event()

            def hammer() -> None:
                with httpx.Client(timeout=120) as client:
                    while not stop.is_set():
                        client.post(server.v1 + "/chat/completions",
                                    json=chat(max_tokens=5, tokenomy={"team": "a"}))
                        time.sleep(0.02)

            threads = [threading.Thread(target=hammer) for _ in range(4)]
            for thread in threads:
                thread.start()
            time.sleep(1)
            loaded = _latencies(server.v1, body_b, 30)
            stop.set()
            for thread in threads:
                thread.join()
    return [("8", "team B's median latency: alone, then while over-budget team A "
             "(300k rows) is refused", f"{alone:.0f} ms -> {loaded:.0f} ms")]


def _latencies(v1: str, body: dict[str, Any], count: int) -> float:
    took = []
    with httpx.Client(timeout=120) as client:
        for _ in range(count):
            began = time.perf_counter()
            client.post(v1 + "/chat/completions", json=body)
            took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return took[len(took) // 2]


def _seed(engine: Any, team: str, count: int) -> None:
    """`count` request rows of `team` in this window, whatever the schema's version."""
    table = Table("tk_requests", MetaData(), autoload_with=engine)
    now = time.time()
    template: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key or column.nullable or column.server_default is not None:
            continue
        python = column.type.python_type
        template[column.name] = "" if python is str else (False if python is bool else 0)
    template.update(team=team, status=200, outcome="ok", total_tokens=100,
                    day=time.strftime("%Y-%m-%d", time.gmtime(now)))
    with engine.begin() as conn:
        for start in range(0, count, 20_000):
            batch = [{**template, "request_id": uuid.uuid4().hex, "ts": now - 60 - i * 1e-3}
                     for i in range(start, min(count, start + 20_000))]
            conn.execute(insert(table), batch)


LEDGER_ATTACKS = {
    "poison": poisoned_rows,
    "fanout": fan_out,
    "heartbeat": heartbeat,
    "blips": db_blips,
    "overbudget": over_budget_team,
}

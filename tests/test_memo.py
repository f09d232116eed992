"""The compression memo in the ledger's database: shared by replicas, bounded in time and size.

Every test runs against a real SQLite file and a real PostgreSQL schema
(`budget_support.ledger_url`); two `Memo` objects on one database are two replicas.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from budget_support import ledger_url  # noqa: F401  (the fixture)
from tokenomy.budgets.db import make_engine
from tokenomy.compressors.memo import UNCHANGED, Memo, memo_key, memo_table


@pytest.fixture()
def engine(ledger_url: str) -> Iterator[Engine]:  # noqa: F811
    engine = make_engine(ledger_url)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(memo_table)).scalar() or 0)


def test_replicas_share_forms_and_the_first_recorded_form_wins(engine: Engine) -> None:
    first, second = Memo(engine), Memo(engine)
    key = memo_key("conversation", "tool_result", "0", "cat x.py")
    assert first.put(key, "form A") == "form A"
    assert second.get_many([key]) == {key: "form A"}
    # A replica that compressed the same part on its own sends the recorded form.
    assert second.put(key, "form B") == "form A"
    assert Memo(engine).get_many([key]) == {key: "form A"}  # a restart finds it too


def test_entries_unused_past_the_ttl_are_gone_everywhere(engine: Engine) -> None:
    memo = Memo(engine, ttl=0.4)
    used, idle = memo_key("used"), memo_key("idle")
    memo.put(used, "kept")
    memo.put(idle, "expires")
    for _ in range(6):  # `used` is looked up while time passes; `idle` is not
        time.sleep(0.1)
        assert memo.get_many([used]) == {used: "kept"}
    assert memo.get_many([idle]) == {}  # not in this process's cache either
    assert Memo(engine, ttl=0.4).get_many([used, idle]) == {used: "kept"}
    assert memo.trim() >= 1
    assert _rows(engine) == 1


def test_the_table_is_trimmed_to_its_size_bound_least_recently_used_first(
        engine: Engine) -> None:
    memo = Memo(engine, max_entries=100)
    keys = [memo_key(str(i)) for i in range(130)]
    for i, key in enumerate(keys):
        memo.put(key, f"form {i}")
        time.sleep(0.001)  # distinct use times
    memo.trim()
    assert _rows(engine) <= 100
    fresh = Memo(engine, max_entries=100)
    assert keys[-1] in fresh.get_many([keys[-1]])
    assert fresh.get_many(keys[:30]) == {}


def test_without_a_database_the_memo_is_in_process_and_bounded() -> None:
    memo = Memo(local_entries=10)
    keys = [memo_key(str(i)) for i in range(20)]
    for i, key in enumerate(keys):
        assert memo.put(key, f"form {i}") == f"form {i}"
    assert memo.get_many(keys[-10:]) == {k: f"form {10 + i}" for i, k in enumerate(keys[-10:])}
    assert memo.get_many(keys[:10]) == {}
    assert memo.trim() == 0


def test_parts_left_as_they_were_are_recorded_once_with_the_compressed_ones(
        engine: Engine) -> None:
    # One write per request holds every live part, the ones compression left alone
    # too (UNCHANGED), so no later turn asks the database about them again.
    from tokenomy.compressors.agent.loop import AgentCompressor
    from tokenomy.transcript import OPENAI_CHAT

    listing = "\n".join(f"src/pkg/module_{i}.py" for i in range(40))
    messages = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Find the module that parses dates."},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": "bash", "arguments": '{"command": "find src -name *.py"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": listing}]
    memo = Memo(engine)
    writes: list[int] = []
    put_many = memo.put_many
    memo.put_many = lambda items: writes.append(len(items)) or put_many(items)  # type: ignore
    compressor = AgentCompressor(memo, min_tokens=10**6)  # nothing is worth compressing
    changes, _ = compressor.run(OPENAI_CHAT.parts({"messages": messages}), team="t",
                                model="gpt-4o")
    assert changes == [] and writes == [1]
    with engine.connect() as conn:
        assert conn.execute(select(memo_table.c.value)).scalars().all() == [UNCHANGED]
    # The next turn finds it in the process's cache: nothing to write, nothing to read.
    later = [*messages, {"role": "assistant", "content": "It is not listed; let me grep."}]
    done = compressor.run_local(OPENAI_CHAT.parts({"messages": later}), team="t",
                                model="gpt-4o")
    assert done is not None and done[0] == [] and writes == [1]  # on the event loop
    # A process that does not know the earlier parts (a restart) must ask the database.
    restarted = AgentCompressor(Memo(engine), min_tokens=10**6)
    assert restarted.run_local(OPENAI_CHAT.parts({"messages": later}), team="t",
                               model="gpt-4o") is None
    changes, _ = restarted.run(OPENAI_CHAT.parts({"messages": later}), team="t",
                               model="gpt-4o")
    assert changes == []

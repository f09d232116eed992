"""The in-process index of lines already sent: extended per request, never shared wrongly.

Sessions of one task share a conversation name (team, system prompt, task) but
not a history. Each keeps its own index, so interleaved sessions extend theirs,
and an index never holds a line of another session's history.
"""

from __future__ import annotations

from tokenomy.compressors.agent.seen_cache import SeenCache
from tokenomy.transcript import Part, PartKind


def _history(session: str, turns: int) -> tuple[list[str], list[Part]]:
    texts = [f"the task, shared by every session of it ({k})" if k == 0 else
             f"session {session} read line number {k} of its own history" for k in range(turns)]
    parts = [Part(k, "tool", PartKind.TOOL_RESULT, text, None) for k, text in enumerate(texts)]
    return texts, parts


def test_interleaved_sessions_of_one_task_each_extend_their_own_index() -> None:
    cache = SeenCache()
    a1 = cache.index("task", *_history("A", 3))
    b1 = cache.index("task", *_history("B", 3))
    a2 = cache.index("task", *_history("A", 5))
    b2 = cache.index("task", *_history("B", 6))
    assert a2 is a1 and b2 is b1  # extended, not rebuilt
    assert "session A read line number 4 of its own history" in a2
    assert "session A read line number 1 of its own history" not in b2
    assert "session B read line number 5 of its own history" in b2


def test_a_history_that_is_not_an_extension_gets_a_fresh_index() -> None:
    cache = SeenCache()
    first = cache.index("task", *_history("A", 4))
    texts, parts = _history("A", 4)
    texts[2] = parts[2].text.replace("line", "LINE")  # sent differently this time
    other = cache.index("task", texts, parts)
    assert other is not first
    assert "session A read line number 2 of its own history" not in other
    cache.forget("task")
    assert cache.index("task", *_history("A", 5)) is not first

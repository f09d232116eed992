"""The stage pipeline: onion order, answering early, and stream wrapping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tokenomy.call import Call, Result
from tokenomy.pipeline import Next, Pipeline


class Tag:
    def __init__(self, name: str, log: list[str]):
        self.name, self.log = name, log

    async def __call__(self, call: Call, next: Next) -> Result:
        self.log.append(f"{self.name}>")
        result = await next(call)
        self.log.append(f"<{self.name}")
        return result


def _call(stream: bool = False) -> Call:
    return Call(body={"model": "m", "messages": [{"role": "user", "content": "x"}],
                      "stream": stream})


async def test_stages_run_in_onion_order() -> None:
    log: list[str] = []

    async def terminal(call: Call) -> Result:
        log.append("backend")
        return Result(response={"choices": []})

    pipeline = Pipeline([Tag("a", log), Tag("b", log)], terminal)
    await pipeline.run(_call())
    assert log == ["a>", "b>", "backend", "<b", "<a"]
    assert pipeline.stage("b") is not None and pipeline.stage("zzz") is None


async def test_a_stage_may_answer_itself() -> None:
    class Cache:
        name = "cache"

        async def __call__(self, call: Call, next: Next) -> Result:
            return Result(response={"cached": True})

    async def terminal(call: Call) -> Result:
        raise AssertionError("the backend must not be called")

    result = await Pipeline([Cache()], terminal).run(_call())
    assert result.response == {"cached": True}


async def _chunks(n: int, fail: bool = False) -> AsyncIterator[dict]:
    for i in range(n):
        yield {"choices": [{"delta": {"content": str(i)}}]}
    if fail:
        raise RuntimeError("cut")
    yield {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n}}


@pytest.mark.parametrize("fail", [False, True])
async def test_wrap_stream_sees_chunks_and_end_once(fail: bool) -> None:
    seen: list[dict] = []
    ends: list[BaseException | None] = []

    async def on_end(error: BaseException | None) -> None:
        ends.append(error)

    result = Result(chunks=_chunks(3, fail))
    result.wrap_stream(on_chunk=seen.append, on_end=on_end)
    got = []
    if fail:
        with pytest.raises(RuntimeError):
            async for chunk in result.chunks:
                got.append(chunk)
    else:
        got = [chunk async for chunk in result.chunks]
        assert result.usage is not None and result.usage.completion_tokens == 3
    assert got == seen and len(ends) == 1
    assert (ends[0] is not None) == fail


async def test_wrap_stream_end_runs_when_consumer_leaves() -> None:
    ends: list[BaseException | None] = []

    async def on_end(error: BaseException | None) -> None:
        ends.append(error)

    result = Result(chunks=_chunks(10))
    result.wrap_stream(on_end=on_end)
    async for _ in result.chunks:
        break
    await result.chunks.aclose()
    assert len(ends) == 1 and isinstance(ends[0], GeneratorExit)


async def test_wrap_stream_end_survives_cancellation() -> None:
    import asyncio

    import anyio

    finished: list[bool] = []

    async def on_end(error: BaseException | None) -> None:
        await asyncio.sleep(0.05)  # e.g. a database write
        finished.append(True)

    async def slow() -> AsyncIterator[dict]:
        yield {"choices": []}
        await asyncio.sleep(10)
        yield {"choices": []}

    result = Result(chunks=slow())
    result.wrap_stream(on_end=on_end)

    async def consume() -> None:
        async for _ in result.chunks:
            pass

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await asyncio.sleep(0.05)
        group.cancel_scope.cancel()
    assert finished == [True]

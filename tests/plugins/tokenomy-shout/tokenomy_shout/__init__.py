"""A third-party tokenomy plugin: one compressor and one stage, no edit to tokenomy.

- compressor `first-words`: keeps the leading words of a text up to the token budget
  and says how many it dropped.
- stage `stamp` (placed after `compress`): tags every request it sees in the backend's
  `metadata` field, so a test can see it ran.
"""

from __future__ import annotations

import time

from tokenomy.compressors.base import make_result
from tokenomy.plugins import hookimpl
from tokenomy.tokenizers import count_text


class FirstWords:
    name = "first-words"

    def compress(self, text, *, query, target_tokens, model):
        started = time.perf_counter()
        words = text.split()
        kept: list[str] = []
        for word in words:
            if count_text(" ".join([*kept, word]), model) > max(1, target_tokens - 12):
                break
            kept.append(word)
        out = " ".join(kept) + f" [{len(words) - len(kept)} words dropped by first-words]"
        if len(kept) == len(words):
            out = text
        return make_result(text, out, model=model, method=self.name, started=started)


class Stamp:
    name = "stamp"

    async def __call__(self, call, next):
        call.body["metadata"] = {**(call.body.get("metadata") or {}), "stamped_by": "shout"}
        call.record(self.name, technique=None, detail={"stamped": True})
        return await next(call)


@hookimpl
def register_compressors(register):
    register("first-words", FirstWords())


@hookimpl
def register_stages(register):
    register("stamp", lambda services: Stamp(), after="compress")

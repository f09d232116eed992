"""What the response cache keys on and what it keeps.

The key is a hash of the team, the wire protocol, the backend and the body
exactly as that backend would receive it (`protocol.forwarded`: the protocol's
own fields, the backend's model name, after every stage's edits) plus the
client headers forwarded with it. The one normalisation is the order of the
body's top-level fields, which name parameters and mean nothing in any order;
nested values keep their order (the order of a tool's properties is part of
the prompt a model sees). So two requests share an answer only when the
backend would have received the same request, for the same team.

A streaming and a JSON request differ on the wire (`stream`), so they have
different keys: a streamed answer replays only to streaming requests, as the
chunks it was, and a JSON answer only to JSON requests.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import BaseModel

from tokenomy.call import Call, Usage

VERSION = b"tokenomy-response-cache/1"


def cache_key(call: Call) -> str | None:
    """The call's key, or None when its body cannot be written as JSON (never cached)."""
    body = call.protocol.forwarded(call.body, call.upstream_model or call.model)
    # Fields outside the protocol count too: a backend's `forward_fields` may send them,
    # and then they can change the answer.
    body = {**{k: v for k, v in call.body.items() if k != "tokenomy"}, **body}
    try:
        payload = orjson.dumps(dict(sorted(body.items())))
        headers = orjson.dumps(sorted(call.client_headers.items()))
    except TypeError:
        return None
    digest = hashlib.sha256(VERSION)
    for part in (call.protocol.name, call.identity.team, call.backend or ""):
        digest.update(b"\x00" + part.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00" + payload + b"\x00" + headers)
    return digest.hexdigest()


class Entry(BaseModel):
    """One kept answer: a whole response or the chunks of a stream, and what it cost."""

    protocol: str
    stream: bool
    model: str | None = None  # the backend's model that made it
    created_at: float
    usage: Usage
    response: dict[str, Any] | None = None
    chunks: list[dict[str, Any]] | None = None

    def dumps(self) -> bytes:
        return orjson.dumps(self.model_dump())

    @classmethod
    def loads(cls, raw: bytes | str) -> Entry:
        return cls.model_validate(orjson.loads(raw))

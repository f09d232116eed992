"""Server-sent events: the one encoder and incremental decoder (upstreams, server, SDK, tests).

The decoder follows the WHATWG event-stream rules that matter for LLM APIs:
lines end in LF, CRLF or CR (a CRLF split across two reads is still one line
end); `data:` lines of one event are joined with LF; `event:` names the event
(Anthropic's `message_start`, OpenAI Responses' `response.created`); lines
starting with `:` are comments (keep-alives); a blank line ends an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from tokenomy.errors import TokenomyError, UpstreamError
from tokenomy.transcript import WireProtocol

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class SSEvent:
    data: str
    event: str | None = None
    id: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data)


def encode(data: Any, event: str | None = None) -> bytes:
    """One event; `data` is JSON-encoded unless it is already str or bytes."""
    if isinstance(data, bytes):
        payload = data
    elif isinstance(data, str):
        payload = data.encode()
    else:
        payload = orjson.dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    lines = payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def encode_chunk(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def encode_error(error: TokenomyError) -> bytes:
    return b"data: " + orjson.dumps(error.to_dict()) + b"\n\n"


def encode_event(protocol: WireProtocol, chunk: dict[str, Any]) -> bytes:
    """A chunk as its protocol frames it (`event: NAME` where the protocol names events).

    orjson never writes a newline, so one `data:` line always holds the chunk.
    """
    name = protocol.event_name(chunk)
    data = b"data: " + orjson.dumps(chunk) + b"\n\n"
    return data if name is None else b"event: " + name.encode() + b"\n" + data


def encode_stream_error(protocol: WireProtocol, error: TokenomyError) -> bytes:
    return encode_event(protocol, protocol.stream_error(error))


def stream_tail(protocol: WireProtocol) -> bytes:
    """What ends a stream that finished well (`data: [DONE]` for OpenAI chat, else nothing)."""
    return b"" if protocol.done_marker is None else encode(protocol.done_marker)


class Decoder:
    """Feed bytes as they arrive; get the events they complete."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEvent]:
        self._buffer += chunk
        events: list[SSEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, after = cut
            line = self._buffer[:end].decode("utf-8", "replace")
            self._buffer = self._buffer[after:]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEvent]:
        """At the end of the stream: the last event, even without its blank line."""
        events = []
        if self._buffer:
            line, self._buffer = self._buffer.decode("utf-8", "replace"), b""
            found = self._line(line.rstrip("\r"))
            if found is not None:
                events.append(found)
        found = self._line("")
        if found is not None:
            events.append(found)
        return events

    def _line(self, line: str) -> SSEvent | None:
        if not line:
            if not self._data and self._event is None:
                return None
            event = SSEvent("\n".join(self._data), self._event, self._id)
            self._data, self._event = [], None
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """(end of the first line, start of the next), or None while the line is incomplete."""
    lf, cr = buffer.find(b"\n"), buffer.find(b"\r")
    if cr < 0 or (0 <= lf < cr):
        return None if lf < 0 else (lf, lf + 1)
    if cr + 1 == len(buffer):
        return None  # a CR at the end of a read may be half of a CRLF
    return (cr, cr + 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, cr + 1)


async def events(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEvent]:
    decoder = Decoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event


def _error_type(chunk: dict[str, Any]) -> str | None:
    """The backend's own error type in a failure chunk ({"error": {"type": ...}}, as
    OpenAI and Anthropic send it), so the client's error event keeps it."""
    error = chunk.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) and 0 < len(kind) <= 64 else None


async def protocol_chunks(stream: AsyncIterable[SSEvent], backend: str,
                          protocol: WireProtocol) -> AsyncIterator[dict[str, Any]]:
    """A backend's chunks in `protocol` until its end; a stream that is cut short, garbled
    or reports an error mid-way raises UpstreamError (the client gets an error event)."""
    finished = False
    async for event in stream:
        data = event.data.strip()
        if not data:
            continue
        if data == protocol.done_marker:
            return  # the protocol's own end: complete whatever came before
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"backend '{backend}' sent a malformed stream chunk") from exc
        if not isinstance(chunk, dict):
            raise UpstreamError(f"backend '{backend}' sent a stream chunk that is not an object")
        failure = protocol.chunk_failure(chunk)
        if failure is not None:
            raise UpstreamError(f"backend '{backend}' failed mid-stream: {failure}",
                                type=_error_type(chunk))
        finished = finished or protocol.chunk_finishes(chunk)
        yield chunk
    if not finished:
        raise UpstreamError(f"backend '{backend}' closed the stream before it finished")

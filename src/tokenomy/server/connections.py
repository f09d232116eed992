"""Bounded resources per client: what one connection may hold, and for how long.

uvicorn closes idle keep-alive connections, but nothing else: a client that
sends its headers one byte a minute, never finishes its body, or stops
reading a stream holds a connection (and, for a stream, a budget reservation
and an upstream connection) for ever. This is uvicorn's httptools protocol
with the missing clocks, set from `[server]`:

- `header_timeout`: a request line and headers must arrive within this many
  seconds of the connection opening (or of the previous response ending);
- `body_timeout`: the body must arrive within this of the headers;
- `write_timeout`: a response write that cannot progress this long (the
  client stopped reading: the socket buffers are full) aborts the
  connection; the app sees the disconnect and closes the stream, which
  releases the reservation and the upstream connection;
- `max_connections`: connections beyond this are answered 503 and closed at
  once, before they can hold anything.

A timed-out request is answered `408` when no response has started, then
the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tokenomy.config import ServerSettings


def _plain(status: bytes, message: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\nconnection: close\r\n\r\n"
            + message)


_BUSY = _plain(b"503 Service Unavailable", b"too many connections; retry shortly")
_SLOW_HEAD = _plain(b"408 Request Timeout", b"the request headers took too long")
_SLOW_BODY = _plain(b"408 Request Timeout", b"the request body took too long")


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol plus header, body and write clocks and a connection cap."""

    limits: ServerSettings = ServerSettings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock: asyncio.TimerHandle | None = None
        self._write_clock: asyncio.TimerHandle | None = None
        self._refused = False

    # -- connections ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            transport.write(_BUSY)
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, _SLOW_HEAD)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        if self._write_clock is not None:
            self._write_clock.cancel()
            self._write_clock = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)

    # -- the request's clocks -----------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body:
            self._arm(self.limits.body_timeout, _SLOW_BODY)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # waiting for the next request on this connection
            self._arm(self.limits.header_timeout, _SLOW_HEAD)

    def _arm(self, seconds: float, answer: bytes) -> None:
        self._disarm()
        self._clock = self.loop.call_later(seconds, self._expired, answer)

    def _disarm(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def _expired(self, answer: bytes) -> None:
        self._clock = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            return  # a response is under way: the write clock watches it from here
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() now says the client is gone
            cycle.message_event.set()
        self.transport.write(answer)
        self.transport.close()

    # -- writes nobody reads --------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_clock is None:
            self._write_clock = self.loop.call_later(self.limits.write_timeout,
                                                     self._write_expired)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_clock is not None:
            self._write_clock.cancel()
            self._write_clock = None

    def _write_expired(self) -> None:
        self._write_clock = None
        # abort(), not close(): close() would wait to flush a buffer nobody reads.
        self.transport.abort()


def bounded_protocol(limits: ServerSettings) -> type[BoundedHttp]:
    """The protocol class `uvicorn.run(http=...)` takes, with these limits."""
    return type("TokenomyHttp", (BoundedHttp,), {"limits": limits})


class ConfiguredHttp(BoundedHttp):
    """The protocol for the worker processes of `tokenomy serve --workers N`: its limits
    come from the config named by $TOKENOMY_CONFIG, read once per process (a class made
    at run time by `bounded_protocol` cannot be sent to a worker process)."""

    _configured: ClassVar[ServerSettings | None] = None

    @property
    def limits(self) -> ServerSettings:  # type: ignore[override]  # read once per process
        cls = type(self)
        if cls._configured is None:
            from tokenomy.config import load_settings

            cls._configured = load_settings().server
        return cls._configured

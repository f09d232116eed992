"""The one interface between the pipeline and a backend (like httpx's transports).

An upstream takes a request body already in its wire protocol, holding only
that protocol's fields and addressed to the backend's own model name, and
returns a response dict, or opens a stream of chunk dicts. `open_stream`
returns only once the backend has accepted the request, so a refusal still
becomes a proper HTTP error status instead of a broken stream. `headers` are
client headers the protocol forwards (e.g. `anthropic-beta`); credentials never
come from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from tokenomy.transcript import WireProtocol


class Upstream(Protocol):
    name: str
    spoken: frozenset[str]  # the wire protocols it carries natively (others are translated)

    async def complete(self, body: dict[str, Any], *, protocol: WireProtocol,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]: ...

    async def open_stream(self, body: dict[str, Any], *, protocol: WireProtocol,
                          headers: Mapping[str, str] | None = None
                          ) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


def speaks(backend: str, protocol: WireProtocol, spoken: frozenset[str]) -> None:
    """Refuse a protocol this backend kind cannot carry (a config mistake, said clearly)."""
    if protocol.name not in spoken:
        from tokenomy.errors import BadRequest

        raise BadRequest(f"backend '{backend}' cannot serve {protocol.name} requests; "
                         f"route this model to a backend that speaks {protocol.name}",
                         code="protocol_not_supported")

"""The built-in wire protocols."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_protocols(register: Callable[[Any], None]) -> None:
    from tokenomy.transcript.openai_chat import OPENAI_CHAT
    from tokenomy.transcript.openai_responses import OPENAI_RESPONSES

    register(OPENAI_CHAT)
    register(OPENAI_RESPONSES)

"""The built-in wire protocols."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_protocols(register: Callable[[Any], None]) -> None:
    from tokenomy.transcript.anthropic_messages import ANTHROPIC_MESSAGES
    from tokenomy.transcript.openai_chat import OPENAI_CHAT
    from tokenomy.transcript.openai_responses import OPENAI_RESPONSES

    register(OPENAI_CHAT)
    register(ANTHROPIC_MESSAGES)
    register(OPENAI_RESPONSES)

"""The protocol-neutral view of a request: parts over a native body, one adapter per protocol.

    parts = call.transcript.parts      # Part(turn, role, kind, text, path, ...)
    call.edit("compress", [(part, new_text)], technique="extractive")

Protocols register themselves by name (see `tokenomy.plugins`); the built-in
OpenAI Chat Completions adapter is `OPENAI_CHAT`, the Anthropic Messages one
`ANTHROPIC_MESSAGES`.
"""

from tokenomy.transcript.anthropic_messages import ANTHROPIC_MESSAGES, AnthropicMessages
from tokenomy.transcript.openai_chat import OPENAI_CHAT, OpenAIChat
from tokenomy.transcript.parts import ROLES, Part, PartKind, Path
from tokenomy.transcript.protocol import Deterministic, WireProtocol, only_fields
from tokenomy.transcript.view import Transcript

__all__ = ["ANTHROPIC_MESSAGES", "OPENAI_CHAT", "ROLES", "AnthropicMessages", "Deterministic",
           "OpenAIChat", "Part", "PartKind", "Path", "Transcript", "WireProtocol", "only_fields"]

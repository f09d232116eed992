"""What an `AgentCompressor` makes of one request body: the body its upstream receives."""

from __future__ import annotations

import copy
from typing import Any

from tokenomy.compressors.agent.loop import AgentCompressor
from tokenomy.transcript import OPENAI_CHAT, Transcript, WireProtocol

MODEL = "deepseek-chat"


def sent(compressor: AgentCompressor, body: dict[str, Any],
         protocol: WireProtocol = OPENAI_CHAT) -> dict[str, Any]:
    """`body` (left as it is) with the compressor's changes written in, as it goes upstream."""
    transcript = Transcript(copy.deepcopy(body), protocol.parts)
    changes, _ = compressor.run(transcript.parts, team="t", model=MODEL)
    for part, text in changes:
        transcript.write(part, text)
    return transcript.body

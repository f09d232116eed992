"""History compression: recent turns stay verbatim, older ones shrink.

Older turns go in two steps, each only when still over budget: tool results
that a later assistant turn already used are replaced by a short marker (the
message and its tool_call_id stay, so the transcript remains valid), then the
remaining old text keeps only the sentences that the current question and the
later turns depend on (extractive, with those later turns as the query).
"""

from __future__ import annotations

from typing import Any

from tokenomy.compressors.base import CompressionResult
from tokenomy.compressors.extractive import ExtractiveCompressor
from tokenomy.compressors.segments import Segment
from tokenomy.tokenizers import count_text
from tokenomy.tokenizers.counting import message_text

ELIDED_TOOL_OUTPUT = "[earlier tool output omitted]"


class HistoryCompressor:
    name = "history"

    def __init__(self, extractive: ExtractiveCompressor | None = None,
                 context_chars: int = 2000):
        self.extractive = extractive or ExtractiveCompressor()
        self.context_chars = context_chars

    def compress(
        self, text: str, *, query: str | None, target_tokens: int, model: str
    ) -> CompressionResult:
        """A transcript as plain text: keep what the query depends on."""
        result = self.extractive.compress(text, query=query, target_tokens=target_tokens,
                                          model=model)
        return result.model_copy(update={"method": self.name})

    def compress_segments(
        self,
        messages: list[dict[str, Any]],
        segments: list[Segment],
        *,
        query: str,
        budget: int,
        model: str,
    ) -> list[str]:
        """New texts for `segments` (all of kind `history`) under one shared budget."""
        texts = [s.text for s in segments]
        counts = [count_text(t, model) for t in texts]
        if sum(counts) <= budget:
            return texts
        last_history = max(s.message for s in segments)
        for k, seg in enumerate(segments):
            resolved = any(
                str(m.get("role")) == "assistant" for m in messages[seg.message + 1 :]
            )
            if seg.role in ("tool", "function") and resolved:
                texts[k] = ELIDED_TOOL_OUTPUT
                counts[k] = count_text(ELIDED_TOOL_OUTPUT, model)
        if sum(counts) <= budget:
            return texts
        # What later turns say is what old turns must still support.
        later = " ".join(message_text(m.get("content")) for m in messages[last_history + 1 :])
        dependency_query = (query + " " + later[-self.context_chars :]).strip()
        pool = [k for k, seg in enumerate(segments) if texts[k] != ELIDED_TOOL_OUTPUT]
        fixed = sum(counts) - sum(counts[k] for k in pool)
        outs = self.extractive.compress_many(
            [texts[k] for k in pool], query=dependency_query, budget=max(0, budget - fixed),
            model=model,
        )
        for k, (out, _) in zip(pool, outs, strict=True):
            texts[k] = out or "…"
        return texts

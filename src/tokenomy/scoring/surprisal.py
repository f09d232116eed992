"""Per-token self-information of a context, conditioned on a question, from SmolLM2.

`-log p(token | question, preceding context)` is what LLMLingua-1 and
Selective-Context use to find the tokens a reader could have guessed. Long
contexts are cut into windows (each re-primed with the question and a short
overlap of the preceding context), and windows from all concurrent requests
go through one `Batcher`, so they share padded forward passes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from tokenomy.scoring.batching import Batcher
from tokenomy.scoring.deadline import paused
from tokenomy.scoring.models import SmallLM, load_small_lm


@dataclass(frozen=True)
class Window:
    """Model input ids, and the first position whose surprisal is wanted."""

    ids: tuple[int, ...]
    score_from: int


@dataclass
class TokenSurprisal:
    """The context's tokens (character spans into the context) and their surprisal in nats."""

    spans: list[tuple[int, int]]
    nll: np.ndarray  # float32, one per span


class SurprisalScorer:
    """Scores contexts with the small LM; thread-safe, batched across callers."""

    def __init__(
        self,
        lm: SmallLM | None = None,
        *,
        window: int = 512,
        overlap: int = 64,
        max_batch: int = 8,
        max_wait_ms: float = 4.0,
    ):
        with paused():  # loading the model once is not the work a deadline times
            self.lm = lm or load_small_lm()
        self.window = window
        self.overlap = overlap
        tok = self.lm.tokenizer
        self._start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self._pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        max_tokens = max_batch * (window + overlap + 128)
        self.batcher: Batcher[Window, np.ndarray] = Batcher(
            self._score_batch,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_cost=max_tokens,
            cost=lambda w: float(len(w.ids)),
            name="tokenomy-surprisal",
        )

    # -- building windows ------------------------------------------------------------

    def _prefix(self, question: str | None) -> list[int]:
        ids = [self._start_id]
        if question and question.strip():
            ids += self.lm.tokenizer(question.strip() + "\n\n", add_special_tokens=False)[
                "input_ids"
            ][-256:]  # a very long question conditions no better than its last part
        return ids

    def windows(
        self, context: str, question: str | None
    ) -> tuple[list[Window], list[tuple[int, int]]]:
        enc = self.lm.tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
        ids: list[int] = enc["input_ids"]
        spans = [tuple(span) for span in enc["offset_mapping"]]
        prefix = self._prefix(question)
        out: list[Window] = []
        for start in range(0, len(ids), self.window):
            end = min(len(ids), start + self.window)
            lead = max(0, start - self.overlap)
            window_ids = prefix + ids[lead:end]
            out.append(Window(tuple(window_ids), len(prefix) + (start - lead)))
        return out, spans

    # -- scoring -------------------------------------------------------------------------

    def _score_batch(self, windows: list[Window]) -> list[np.ndarray]:
        import torch

        longest = max(len(w.ids) for w in windows)
        ids = torch.full((len(windows), longest), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), longest), dtype=torch.long)
        for row, w in enumerate(windows):  # right padding: real positions stay 0..n-1
            ids[row, : len(w.ids)] = torch.tensor(w.ids)
            mask[row, : len(w.ids)] = 1
        with self.lm.lock, torch.inference_mode():
            logits = self.lm.model(
                input_ids=ids.to(self.lm.device), attention_mask=mask.to(self.lm.device)
            ).logits
            logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            target = ids[:, 1:].to(self.lm.device).unsqueeze(-1)
            nll = (-logprobs.gather(-1, target).squeeze(-1)).cpu().numpy()
        # nll[:, t - 1] is the surprisal of the token at position t.
        return [nll[row, w.score_from - 1 : len(w.ids) - 1].copy() for row, w in enumerate(windows)]

    def score(self, context: str, question: str | None = None) -> TokenSurprisal:
        """Blocking; call it from a worker thread (the compressors run in one)."""
        windows, spans = self.windows(context, question)
        if not windows:
            return TokenSurprisal([], np.zeros(0, dtype=np.float32))
        parts = self.batcher.map_sync(windows)
        return TokenSurprisal(spans, np.concatenate(parts).astype(np.float32))

    async def ascore(self, context: str, question: str | None = None) -> TokenSurprisal:
        """The same, awaiting the batcher without blocking the event loop."""
        windows, spans = self.windows(context, question)
        if not windows:
            return TokenSurprisal([], np.zeros(0, dtype=np.float32))
        parts = await self.batcher.submit_many(windows)
        return TokenSurprisal(spans, np.concatenate(parts).astype(np.float32))


_scorers: dict[str, SurprisalScorer] = {}
_scorers_lock = threading.Lock()


def get_surprisal_scorer(device: str | None = None) -> SurprisalScorer:
    """One shared scorer (and so one batcher) per device, so all requests batch together."""
    lm = load_small_lm(device)
    with _scorers_lock:
        if lm.device not in _scorers:
            _scorers[lm.device] = SurprisalScorer(lm)
        return _scorers[lm.device]

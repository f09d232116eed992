"""The methods `benchmarks/compression.py` compares: ours and the baselines.

Every method takes the documents, the question and a budget in the target
model's tokens, and returns the compressed context as one string. Baselines are
written the way their authors (or the usual LangChain recipe) run them, on the
same local models we use, so the comparison is like for like.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenomy.compressors.sentences import split_sentences
from tokenomy.tokenizers import count_text, get_encoder

Method = Callable[[Sequence[str], str, int], str]


def join_docs(docs: Sequence[str]) -> str:
    """The prompt's context exactly as `tokenomy.compress(list_of_docs)` builds it."""
    return "\n\n".join(f"[{i + 1}] {doc.strip()}" for i, doc in enumerate(docs))


@dataclass
class Ours:
    """`tokenomy.compress` with one method (auto, extractive, or extractive then tokens)."""

    method: str
    model: str

    def __call__(self, docs: Sequence[str], question: str, budget: int) -> str:
        import tokenomy

        return tokenomy.compress(list(docs), query=question, target_tokens=budget,
                                 model=self.model, method=self.method, min_tokens=0).text


@dataclass
class Truncation:
    """Keep the first `budget` tokens: what a context window limit does by itself."""

    model: str

    def __call__(self, docs: Sequence[str], question: str, budget: int) -> str:
        encoder = get_encoder(self.model)
        return encoder.decode(encoder.encode(join_docs(docs))[:budget])


@dataclass
class RandomSentences:
    """Drop random sentences until the budget fits (seeded per prompt)."""

    model: str
    seed: int = 0

    def __call__(self, docs: Sequence[str], question: str, budget: int) -> str:
        text = join_docs(docs)
        sentences = [s.text for s in split_sentences(text)]
        rng = random.Random(f"{self.seed}:{question}:{len(text)}")
        costs = [count_text(s, self.model) + 1 for s in sentences]
        order = list(range(len(sentences)))
        rng.shuffle(order)
        total, kept = 0, set()
        for i in order:
            if total + costs[i] <= budget:
                kept.add(i)
                total += costs[i]
        return " ".join(s for i, s in enumerate(sentences) if i in kept)


@dataclass
class EmbeddingsFilter:
    """LangChain's `EmbeddingsFilter` recipe with MiniLM: split documents into chunks
    (sentences, as its `DocumentCompressorPipeline` with a splitter does), keep the
    chunks most similar to the question (top-k by cosine) until the budget is
    spent, in their original order. No cache: LangChain embeds on every call."""

    model: str
    threshold: float = 0.0

    def __call__(self, docs: Sequence[str], question: str, budget: int) -> str:
        from tokenomy.scoring import load_embedder

        text = join_docs(docs)
        chunks = [s.text for s in split_sentences(text)]
        embedder = load_embedder()
        vectors = embedder.encode([question, *chunks], normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
        sims = vectors[1:] @ vectors[0]
        total, kept = 0, set()
        for i in np.argsort(-sims):
            if sims[i] < self.threshold:
                break
            cost = count_text(chunks[i], self.model) + 1
            if total + cost <= budget:
                kept.add(int(i))
                total += cost
        return " ".join(c for i, c in enumerate(chunks) if i in kept)


class LongLLMLingua:
    """`llmlingua.PromptCompressor` in LongLLMLingua mode with SmolLM2 as its small model.

    The settings are the ones the LongLLMLingua README recommends for multi-document
    QA. llmlingua 0.2.2 predates transformers 5 (it slices the KV cache as tuples),
    so `_LegacyCacheCompressor` converts the cache at its one model call.
    """

    def __init__(self, device: str):
        from tokenomy.assets import configure_offline, smollm_path

        configure_offline()  # tiktoken's encodings from the bundled cache, no network
        self.compressor = _legacy_cache_compressor()(
            model_name=str(smollm_path()), device_map=device
        )

    def __call__(self, docs: Sequence[str], question: str, budget: int) -> str:
        original = count_text(join_docs(docs), "gpt-4o")
        result = self.compressor.compress_prompt(
            [f"[{i + 1}] {d.strip()}" for i, d in enumerate(docs)],
            question=question,
            rate=min(1.0, budget / max(1, original)),
            rank_method="longllmlingua",
            condition_in_question="after_condition",
            reorder_context="sort",
            dynamic_context_compression_ratio=0.3,
            condition_compare=True,
            context_budget="+100",
            concate_question=False,
        )
        return str(result["compressed_prompt"])


def _legacy_cache_compressor() -> type:
    import torch
    from llmlingua import PromptCompressor
    from transformers import DynamicCache

    class _IndexableCache(DynamicCache):  # type: ignore[misc]
        """llmlingua reads the cached length as `past_key_values[0][0].shape[2]`."""

        def __getitem__(self, index: int) -> tuple[Any, Any]:
            return self.layers[index].keys, self.layers[index].values

    class _LegacyCacheCompressor(PromptCompressor):  # type: ignore[misc]
        def get_ppl(self, *args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
            if past_key_values is not None and not isinstance(past_key_values, DynamicCache):
                past_key_values = _IndexableCache(
                    ddp_cache_data=[(k, v) for k, v in past_key_values],
                    config=self.model.config,
                )
            out = super().get_ppl(*args, past_key_values=past_key_values, **kwargs)
            if isinstance(out, tuple):
                loss, cache = out
                if isinstance(cache, DynamicCache):
                    cache = [[layer.keys, layer.values] for layer in cache.layers]
                return loss, cache
            return out

    torch.set_grad_enabled(False)
    return _LegacyCacheCompressor

"""Sentence embeddings with a content-hash cache, computed in batches.

A document seen before costs nothing: every text is keyed by the hash of its
content, so repeated retrieved passages (the common case in RAG and agents)
skip the model entirely. Missing texts are embedded in one batched call.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tokenomy.scoring.deadline import check, paused

EncodeFn = Callable[[list[str]], np.ndarray]


ENCODE_SLICE = 64  # texts embedded between two deadline checks: one model batch


def content_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """An LRU of unit-normalised embeddings keyed by content hash; thread-safe."""

    def __init__(self, encode: EncodeFn | None = None, max_items: int = 200_000,
                 batch_size: int = 64):
        self._encode = encode
        self.max_items = max_items
        self.batch_size = batch_size
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _default_encode(self, texts: list[str]) -> np.ndarray:
        from tokenomy.scoring.models import load_embedder

        with paused():  # loading the model once is not the work a deadline times
            model: Any = load_embedder()
        return np.asarray(
            model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False),
            dtype=np.float32,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings (n, dim) for `texts`, unit length; cached texts are free."""
        keys = [content_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        missing: dict[bytes, str] = {}
        with self._lock:
            for key, text in zip(keys, texts, strict=True):
                vec = self._items.get(key)
                if vec is not None:
                    self._items.move_to_end(key)
                    found[key] = vec
                    self.hits += 1
                elif key not in missing:
                    missing[key] = text
                    self.misses += 1
        if missing:
            encode = self._encode or self._default_encode
            pending = list(missing.values())
            # In slices, with a deadline check between them: a megabyte of sentences is a
            # minute of CPU, and its request may have gone away (or run out of time).
            parts = []
            for start in range(0, len(pending), ENCODE_SLICE):
                check()
                parts.append(encode(pending[start:start + ENCODE_SLICE]))
            vectors = parts[0] if len(parts) == 1 else np.concatenate(parts)
            with self._lock:
                for key, vec in zip(missing, vectors, strict=True):
                    found[key] = vec
                    self._items[key] = vec
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        if not keys:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


_default: EmbeddingCache | None = None
_default_lock = threading.Lock()


def default_cache() -> EmbeddingCache:
    """The process-wide cache the compressors share."""
    global _default
    with _default_lock:
        if _default is None:
            _default = EmbeddingCache()
        return _default


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    return default_cache().embed(texts)

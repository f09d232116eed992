"""Local scoring models (MiniLM embedder, SmolLM2), loaded once from the asset cache."""

from tokenomy.scoring.device import pick_device
from tokenomy.scoring.embeddings import EmbeddingCache, default_cache, embed_texts
from tokenomy.scoring.models import load_embedder, load_small_lm

__all__ = [
    "EmbeddingCache",
    "default_cache",
    "embed_texts",
    "load_embedder",
    "load_small_lm",
    "pick_device",
]

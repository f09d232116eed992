"""Local scoring models (MiniLM embedder, SmolLM2), loaded once from the asset cache."""

from tokenomy.scoring.device import pick_device
from tokenomy.scoring.models import load_embedder, load_small_lm

__all__ = ["load_embedder", "load_small_lm", "pick_device"]

"""Choosing where scoring runs: CUDA when there is one, else the CPU."""

from __future__ import annotations

import os


def pick_device(preference: str | None = None) -> str:
    """`preference` (or $TOKENOMY_DEVICE) may force "cpu", "cuda" or "cuda:N"; default auto."""
    preference = (preference or os.environ.get("TOKENOMY_DEVICE") or "auto").lower()
    if preference != "auto":
        return preference
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

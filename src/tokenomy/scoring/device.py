"""Choosing where scoring runs: CUDA when there is one, else the CPU."""

from __future__ import annotations

import os
import sys

# Present whenever the NVIDIA kernel driver is loaded (containers with a GPU mount it too).
NVIDIA_DRIVER_FILE = "/proc/driver/nvidia/version"


def pick_device(preference: str | None = None) -> str:
    """`preference` (or $TOKENOMY_DEVICE) may force "cpu", "cuda" or "cuda:N"; default auto.

    On Linux without the NVIDIA driver the answer is "cpu" without importing
    torch (about a second and hundreds of MB), so callers that only need to
    know, such as the planner's warm-up, stay light.
    """
    preference = (preference or os.environ.get("TOKENOMY_DEVICE") or "auto").lower()
    if preference != "auto":
        return preference
    if sys.platform.startswith("linux") and not os.path.exists(NVIDIA_DRIVER_FILE):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

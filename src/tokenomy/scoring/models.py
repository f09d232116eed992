"""Loading the local models from $TOKENOMY_HOME/models: once per process, thread-safe."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tokenomy.assets import minilm_path, require, smollm_path
from tokenomy.scoring.device import pick_device

_lock = threading.Lock()
_cache: dict[tuple[str, str], Any] = {}
log = logging.getLogger("tokenomy.scoring")


@contextmanager
def _loading(name: str, device: str) -> Iterator[None]:
    """Say what is loading and how long it took (a cold CLI run waits seconds for this),
    and keep transformers' own progress bars off stderr (a JSON log must stay JSON)."""
    log.info("loading %s on %s (first use in this process; torch and the weights take "
             "a few seconds)...", name, device)
    began = time.perf_counter()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    yield
    log.info("loaded %s in %.1f s", name, time.perf_counter() - began)


@dataclass
class SmallLM:
    """SmolLM2-135M-Instruct: the embedded chat backend and the surprisal scorer."""

    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizer
    device: str
    # Generation and scoring share one model; torch on CPU is not re-entrant-fast,
    # so callers serialise heavy work on this lock.
    lock: threading.Lock


def load_small_lm(device: str | None = None) -> SmallLM:
    device = pick_device(device)
    key = ("smollm", device)
    with _lock:
        if key not in _cache:
            path = str(require(smollm_path(), "SmolLM2-135M-Instruct"))
            with _loading("SmolLM2-135M-Instruct", device):
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                # A local folder and local_files_only: nothing is looked up on a model hub.
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                dtype = torch.float16 if device.startswith("cuda") else torch.float32
                loaded = AutoModelForCausalLM.from_pretrained(path, dtype=dtype,
                                                              local_files_only=True)
                model = loaded.to(device).eval()  # type: ignore[arg-type]
            _cache[key] = SmallLM(model, tokenizer, device, threading.Lock())
        return _cache[key]


def load_embedder(device: str | None = None) -> Any:
    """all-MiniLM-L6-v2 as a sentence-transformers model."""
    device = pick_device(device)
    key = ("minilm", device)
    with _lock:
        if key not in _cache:
            path = str(require(minilm_path(), "all-MiniLM-L6-v2"))
            with _loading("all-MiniLM-L6-v2", device):
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(path, device=device, local_files_only=True)
                # The first forward pass initialises torch's kernels (seconds on a busy
                # CPU): done here, it is part of loading, not of the first request's work.
                model.encode(["warm up"], show_progress_bar=False)
                _cache[key] = model
        return _cache[key]

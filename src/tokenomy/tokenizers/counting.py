"""Counting chat prompts the way each provider bills them."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from tokenomy.tokenizers.encoders import family_of, get_encoder

# OpenAI's documented chat overhead (cookbook "How to count tokens with tiktoken"):
# every message is wrapped as <|start|>{role/name}\n{content}<|end|>\n and every
# reply is primed with <|start|>assistant<|message|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER = 3


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in (None, "text", "input_text"):
                parts.append(str(part.get("text") or ""))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False)


def count_text(text: str, model: str) -> int:
    """Tokens of a plain string in `model`'s tokenizer."""
    return get_encoder(model).count(text)


def _value_tokens(value: Any, model: str) -> int:
    encoder = get_encoder(model)
    if isinstance(value, str):
        return encoder.count(value)
    if isinstance(value, list):  # content parts
        return encoder.count(message_text(value))
    if isinstance(value, dict | list):
        return encoder.count(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    return encoder.count(str(value)) if value is not None else 0


def _count_openai(messages: list[dict[str, Any]], model: str) -> int:
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "tool_calls" and isinstance(value, list):
                for call in value:
                    fn = (call or {}).get("function") or {}
                    total += _value_tokens(fn.get("name") or "", model)
                    total += _value_tokens(fn.get("arguments") or "", model)
                continue
            total += _value_tokens(value, model)
            if key == "name":
                total += TOKENS_PER_NAME
    return total + REPLY_PRIMER


def _count_tools_openai(tools: list[dict[str, Any]], model: str) -> int:
    """OpenAI's cookbook estimate for function definitions (gpt-4o family constants)."""
    func_init, prop_init, prop_key, enum_init, enum_item, func_end = 7, 3, 3, -3, 3, 12
    encoder = get_encoder(model)
    total = 0
    for tool in tools:
        fn = tool.get("function") or {}
        total += func_init
        desc = str(fn.get("description") or "").rstrip(".")
        total += encoder.count(f"{fn.get('name', '')}:{desc}")
        props = (fn.get("parameters") or {}).get("properties") or {}
        if props:
            total += prop_init
            for key, prop in props.items():
                total += prop_key
                prop = prop or {}
                if "enum" in prop:
                    total += enum_init
                    for item in prop["enum"]:
                        total += enum_item + encoder.count(str(item))
                p_desc = str(prop.get("description") or "").rstrip(".")
                total += encoder.count(f"{key}:{prop.get('type', '')}:{p_desc}")
    return total + func_end if tools else 0


@lru_cache(maxsize=4)
def _local_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from tokenomy.assets import require, smollm_path

    return AutoTokenizer.from_pretrained(str(require(smollm_path(), "SmolLM2")))


def _count_local(messages: list[dict[str, Any]]) -> int:
    """The local model sees its chat template, so count exactly that."""
    tokenizer = _local_tokenizer()
    plain = [{"role": m.get("role", "user"), "content": message_text(m.get("content"))}
             for m in messages]
    ids = tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


def _count_fallback(messages: list[dict[str, Any]], model: str) -> int:
    """Models with no bundled tokenizer: cl100k with OpenAI's framing.

    That is litellm's own `token_counter` default for unknown models; calling it
    here would import litellm (seconds) on the request path, and for some families
    make it try to fetch a tokenizer from a hub, which this product never does.
    """
    return _count_openai(messages, model)


def count_messages(
    messages: list[dict[str, Any]], model: str, tools: list[dict[str, Any]] | None = None
) -> int:
    """Prompt tokens of a chat request as `model`'s provider counts them."""
    family = family_of(model)
    if family in ("openai-o200k", "openai-cl100k"):
        return _count_openai(messages, model) + _count_tools_openai(tools or [], model)
    if family == "local":
        try:
            return _count_local(messages)
        except Exception:
            pass
    if family == "fallback":
        return _count_fallback(messages, model) + _count_tools_openai(tools or [], model)
    # Anthropic: the content in its own tokenizer plus the same small per-turn framing.
    return _count_openai(messages, model) + _count_tools_openai(tools or [], model)

"""The built-in backend kinds, registered like any plugin's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


def _openai(name: str, settings: Any) -> Any:
    from tokenomy.upstreams.openai import OpenAICompatible

    return OpenAICompatible(name, settings)


def _anthropic(name: str, settings: Any) -> Any:
    from tokenomy.upstreams.anthropic import AnthropicBackend

    return AnthropicBackend(name, settings)


def _litellm(name: str, settings: Any) -> Any:
    from tokenomy.upstreams.litellm import LiteLLMBackend

    return LiteLLMBackend(name, settings)


def _local(name: str, settings: Any) -> Any:
    from tokenomy.upstreams.local import LocalModel

    return LocalModel(name, settings)


@hookimpl
def register_upstream_kinds(register: Callable[[str, Callable[[str, Any], Any]], None]) -> None:
    register("openai", _openai)
    register("anthropic", _anthropic)
    register("litellm", _litellm)
    register("local", _local)


@hookimpl
def register_translators(register: Callable[[Any], None]) -> None:
    from tokenomy.upstreams.translate_anthropic import ANTHROPIC_TO_CHAT
    from tokenomy.upstreams.translate_responses import RESPONSES_TRANSLATOR

    register(ANTHROPIC_TO_CHAT)
    register(RESPONSES_TRANSLATOR)

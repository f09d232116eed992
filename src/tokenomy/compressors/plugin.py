"""The built-in compressors, the `[compression]` section, the `compress` stage and command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenomy.plugins import hookimpl


@hookimpl
def register_compressors(register: Callable[[str, Any], None]) -> None:
    from tokenomy.compressors.code import CodeCompressor
    from tokenomy.compressors.extractive import ExtractiveCompressor
    from tokenomy.compressors.history import HistoryCompressor
    from tokenomy.compressors.lossless import LosslessCompressor
    from tokenomy.compressors.registry import LazyTokensCompressor

    register("lossless", LosslessCompressor())
    register("extractive", ExtractiveCompressor())
    register("tokens", LazyTokensCompressor())
    register("code", CodeCompressor())
    register("history", HistoryCompressor())


@hookimpl
def register_settings_sections(register: Callable[[str, Any], None]) -> None:
    from tokenomy.compressors.settings import CompressionSettings

    register("compression", CompressionSettings)


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    from tokenomy.compressors.stage import compress_stage

    register("compress", compress_stage)


@hookimpl
def register_commands(cli: Any) -> None:
    from tokenomy.compressors.cli import compress

    cli.add_command(compress)

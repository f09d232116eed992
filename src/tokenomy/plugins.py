"""Plugins: pluggy hooks and the `tokenomy` entry-point group, the built-ins included.

The way simonw/llm does it: every compressor, upstream kind, stage, wire
protocol, settings section and CLI command is registered through a hook, and
tokenomy's own ones are plugins like any other (listed in `DEFAULT_PLUGINS`,
imported by name so this module sits below everything it loads). A third
party ships a distribution with

    [project.entry-points.tokenomy]
    my_plugin = "my_package.plugin"

whose module defines `@hookimpl` functions; nothing in tokenomy is edited.
Names users type (compression methods, backend kinds, stage names, CLI
choices) are validated against what the hooks registered.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from tokenomy.errors import ConfigError

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from tokenomy.compressors.base import Compressor
    from tokenomy.pipeline import Services, Stage
    from tokenomy.transcript.protocol import WireProtocol
    from tokenomy.upstreams.base import Upstream
    from tokenomy.upstreams.translate import Translator

GROUP = "tokenomy"
hookspec = pluggy.HookspecMarker(GROUP)
hookimpl = pluggy.HookimplMarker(GROUP)

DEFAULT_PLUGINS = (
    "tokenomy.transcript.plugin",
    "tokenomy.identify",
    "tokenomy.upstreams.plugin",
    "tokenomy.compressors.plugin",
    "tokenomy.codify.plugin",
    "tokenomy.planners.plugin",
    "tokenomy.prompt_cache.plugin",
    "tokenomy.budgets.plugin",
    "tokenomy.response_cache.plugin",
    "tokenomy.sdk.plugin",
    "tokenomy.observe.plugin",
)


class Specs:
    """The hooks. Each receives a `register` callable (or the CLI group) and calls it."""

    @hookspec
    def register_compressors(self, register: Callable[[str, Compressor], None]) -> None:
        """Register compressors by method name: `register("mine", MyCompressor())`."""

    @hookspec
    def register_upstream_kinds(
        self, register: Callable[[str, Callable[[str, Any], Upstream]], None]
    ) -> None:
        """Register backend kinds: `register("kind", factory)`; factory(name, BackendSettings)."""

    @hookspec
    def register_stages(self, register: Callable[..., None]) -> None:
        """Register pipeline stages: `register("name", factory, after="compress")`.

        `factory(services)` returns the stage, or None when it has nothing to do
        under these settings; `after` places it in the default order.
        """

    @hookspec
    def register_protocols(self, register: Callable[[WireProtocol], None]) -> None:
        """Register wire protocols (request adapters)."""

    @hookspec
    def register_translators(self, register: Callable[[Translator], None]) -> None:
        """Register translators between a wire protocol and OpenAI chat (one per protocol),
        used when a request's backend does not speak its protocol."""

    @hookspec
    def register_settings_sections(
        self, register: Callable[[str, type[BaseModel]], None]
    ) -> None:
        """Register a typed top-level settings section, e.g. `register("compression", Model)`."""

    @hookspec
    def register_commands(self, cli: click.Group) -> None:
        """Add commands to the `tokenomy` CLI group."""


@dataclass(frozen=True)
class StageSpec:
    name: str
    factory: Callable[[Services], Stage | None]
    after: str | None = None


@dataclass
class Registry:
    compressors: dict[str, Compressor]
    upstream_kinds: dict[str, Callable[[str, Any], Upstream]]
    stages: dict[str, StageSpec]
    protocols: dict[str, WireProtocol]
    sections: dict[str, type[BaseModel]]
    translators: dict[str, Translator]


pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(Specs)
_lock = threading.RLock()
_loaded = False
_registry: Registry | None = None


def load() -> pluggy.PluginManager:
    """Register the built-ins and every installed `tokenomy` entry point (once)."""
    global _loaded
    with _lock:
        if not _loaded:
            for name in DEFAULT_PLUGINS:
                module = importlib.import_module(name)
                if not pm.is_registered(module):
                    pm.register(module, name)
            pm.load_setuptools_entrypoints(GROUP)
            _loaded = True
    return pm


def _unique(kind: str, table: dict[str, Any], name: str, value: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a plugin registered a {kind} without a name")
    if name in table and table[name] != value:
        raise ConfigError(f"two plugins registered the {kind} '{name}'")
    table[name] = value


def registry() -> Registry:
    """Everything the plugins registered (built once, after `load`)."""
    global _registry
    if _registry is not None:
        return _registry
    manager = load()
    reg = Registry({}, {}, {}, {}, {}, {})
    hook = manager.hook
    hook.register_compressors(
        register=lambda name, compressor: _unique("compressor", reg.compressors, name, compressor))
    hook.register_upstream_kinds(
        register=lambda name, factory: _unique("backend kind", reg.upstream_kinds, name, factory))

    def add_stage(name: str, factory: Callable[[Services], Stage | None], *,
                  after: str | None = None) -> None:
        _unique("stage", reg.stages, name, StageSpec(name, factory, after))

    hook.register_stages(register=add_stage)
    hook.register_protocols(
        register=lambda protocol: _unique("protocol", reg.protocols, protocol.name, protocol))
    hook.register_translators(
        register=lambda translator: _unique("translator", reg.translators, translator.protocol,
                                            translator))
    hook.register_settings_sections(
        register=lambda name, model: _unique("settings section", reg.sections, name, model))
    _registry = reg
    return reg


def reset() -> None:
    """Forget the registry (tests that register a plugin at run time)."""
    global _registry
    _registry = None


def compressor_methods() -> list[str]:
    """Every compression method a request or a config may name: `auto` and the registered."""
    return ["auto", *sorted(registry().compressors)]


def check_method(method: str) -> str:
    if method not in compressor_methods():
        raise ValueError(f"unknown compression method {method!r}; "
                         f"use one of {', '.join(compressor_methods())}")
    return method

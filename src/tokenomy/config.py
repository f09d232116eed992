"""One settings model, loaded from a TOML or YAML file plus environment overrides.

Environment variables `TOKENOMY_<SECTION>__<FIELD>` override the file, e.g.
`TOKENOMY_SERVER__PORT=9000`. Validation errors name the file and line of
the offending key, so a typo is found at a glance.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenomy.errors import ConfigError


def tokenomy_home() -> Path:
    """The cache folder for assets and the default SQLite ledger."""
    return Path(os.environ.get("TOKENOMY_HOME") or Path.home() / ".cache" / "tokenomy")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_messages: int = Field(default=4096, ge=1)
    admin_key: str | None = None  # needed for /v1/tokenomy/usage; env TOKENOMY_SERVER__ADMIN_KEY
    drain_seconds: float = Field(default=30.0, ge=0)


class BackendSettings(_Strict):
    """Where calls go: an OpenAI-compatible URL, a litellm provider, or the local model."""

    kind: Literal["openai", "litellm", "local"]
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None  # read the key from this environment variable
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    max_connections: int = Field(default=1000, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    provider_params: dict[str, Any] = Field(default_factory=dict)  # passed to litellm

    @model_validator(mode="after")
    def _needs_url(self) -> BackendSettings:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("an 'openai' backend needs base_url")
        return self

    def resolved_api_key(self) -> str | None:
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return None


class ModelAlias(_Strict):
    """A model name clients use, mapped to a backend and the backend's own model name."""

    backend: str
    model: str | None = None  # defaults to the alias itself
    fallbacks: list[str] = Field(default_factory=list)  # other aliases to try on failure
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)


class Settings(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    backends: dict[str, BackendSettings] = Field(
        default_factory=lambda: {"local": BackendSettings(kind="local")}
    )
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    default_backend: str | None = None  # used for model names that are not aliases
    # Sections owned by other subsystems; each validates its own shape.
    ledger: dict[str, Any] = Field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = Field(default_factory=dict)
    compression: dict[str, Any] = Field(default_factory=dict)
    planner: dict[str, Any] = Field(default_factory=dict)
    scoring: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_exist(self) -> Settings:
        for alias, target in self.models.items():
            if target.backend not in self.backends:
                raise ValueError(
                    f"model '{alias}' names backend '{target.backend}', "
                    f"which is not among [backends]: {sorted(self.backends)}"
                )
            for fallback in target.fallbacks:
                if fallback not in self.models:
                    raise ValueError(f"model '{alias}' falls back to unknown model '{fallback}'")
        if self.default_backend and self.default_backend not in self.backends:
            raise ValueError(f"default_backend '{self.default_backend}' is not among [backends]")
        return self

    def fallback_backend(self) -> str:
        if self.default_backend:
            return self.default_backend
        return next(iter(self.backends))


ENV_PREFIX = "TOKENOMY_"
_RESERVED_ENV = {"TOKENOMY_HOME", "TOKENOMY_CONFIG"}


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """TOKENOMY_SERVER__PORT=9000 -> {"server": {"port": "9000"}}."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _RESERVED_ENV or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return tree


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` laid over `base`, tables merged key by key (used for env and team overrides)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the key at `loc` in a TOML or YAML file."""
    keys = [str(part) for part in loc if not isinstance(part, int)]
    lines = text.splitlines()
    start = 0
    # Walk the path: each key must appear after the previous one.
    found: int | None = None
    for key in keys:
        pattern = re.compile(
            rf"""^\s*(\[+\s*)?([\w.\-"']*\.)?["']?{re.escape(key)}["']?\s*(\]|=|:|\.)"""
        )
        for number in range(start, len(lines)):
            if pattern.search(lines[number]):
                found, start = number + 1, number + 1
                break
    return found


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        if path.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table of settings")
    return data


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Load settings from `path` (or $TOKENOMY_CONFIG), then apply env overrides.

    With no file, the embedded local backend serves every model name.
    """
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("TOKENOMY_CONFIG")
    data: dict[str, Any] = {}
    text = ""
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        text = file.read_text(encoding="utf-8")
        data = _parse(file, text)
    data = deep_merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            line = _line_of(text, loc) if text else None
            at = f"{path}:{line}" if line else str(path or "environment")
            problems.append(f"{at}: {where}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from exc

"""One settings model, loaded from a TOML or YAML file plus environment overrides.

Environment variables `TOKENOMY_<SECTION>__<FIELD>` override the file, e.g.
`TOKENOMY_SERVER__PORT=9000`. Validation errors name the file and line of
the offending key, so a typo is found at a glance.

The core owns `[server]`, `[backends]`, `[models]`, `[pipeline]` and `[teams]`.
Every other top-level section belongs to a subsystem, which registers its typed
model through the plugin hook `register_settings_sections`; `settings.section(
"compression")` returns it validated, and `settings.for_team("research")` is the
one place a team's overrides (`[teams.research.compression]`, ...) are merged.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from tokenomy.errors import ConfigError


def tokenomy_home() -> Path:
    """The cache folder for assets and the default SQLite ledger."""
    return Path(os.environ.get("TOKENOMY_HOME") or Path.home() / ".cache" / "tokenomy")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_messages: int = Field(default=4096, ge=1)
    admin_key: str | None = None  # needed for /v1/tokenomy/usage; env TOKENOMY_SERVER__ADMIN_KEY
    drain_seconds: float = Field(default=30.0, ge=0)
    # What one client may hold (server/connections.py): seconds to send the request
    # line and headers, then the body; an idle keep-alive connection's life; how long
    # a response write may stall (a client that stopped reading); open connections.
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=30.0, gt=0)
    keepalive_timeout: int = Field(default=5, ge=1)
    write_timeout: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=2048, ge=1)


# Backend kinds that post the request body, unchanged, to the configured URL.
NATIVE_KINDS = ("openai", "anthropic")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
NEVER_FORWARDED = frozenset({"model", "tokenomy"})  # addressed and read by tokenomy


class BackendSettings(_Strict):
    """Where calls go: an OpenAI-compatible URL, a litellm provider, or the local model."""

    kind: str = Field(min_length=1)  # a registered backend kind: openai, anthropic, litellm, local
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None  # read the key from this environment variable
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    max_connections: int = Field(default=1000, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    provider_params: dict[str, Any] = Field(default_factory=dict)  # passed to litellm
    # The wire protocols the backend speaks natively (default: all its kind can carry),
    # e.g. [openai.chat] for a chat-only OpenAI-compatible server: requests in another
    # protocol are then translated through chat.
    protocols: list[str] | None = Field(default=None, min_length=1)
    # Top-level request fields, beyond the protocol's own, that reach this backend as
    # the client sent them: a field the provider added after this release (names only,
    # never a destination or a credential: those come from the settings above).
    forward_fields: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_url(self) -> BackendSettings:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("an 'openai' backend needs base_url")
        return self

    @model_validator(mode="after")
    def _forwardable(self) -> BackendSettings:
        if not self.forward_fields:
            return self
        if self.kind not in NATIVE_KINDS:
            # litellm reads body fields as client options (api_base, api_key, ...);
            # the local model has nothing to do with them.
            raise ValueError(f"forward_fields needs a backend that posts the body as it is "
                             f"({', '.join(NATIVE_KINDS)}); a '{self.kind}' backend would "
                             f"read them as options")
        for name in self.forward_fields:
            if not FIELD_NAME.fullmatch(name) or name in NEVER_FORWARDED:
                raise ValueError(f"forward_fields: {name!r} is not a field tokenomy can "
                                 f"forward (a plain name other than "
                                 f"{', '.join(sorted(NEVER_FORWARDED))})")
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


CORE_SECTIONS = ("server", "backends", "models", "default_backend", "pipeline", "teams")
DEFAULT_STAGES = ("identify", "step", "budget", "codify", "compress", "plan")


class PipelineSettings(_Strict):
    """`[pipeline] stages = [...]`: the stage order, outermost first (default: built-ins
    in their usual order, plugin stages placed where they ask)."""

    stages: list[str] | None = None


class Settings(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    backends: dict[str, BackendSettings] = Field(
        default_factory=lambda: {"local": BackendSettings(kind="local")}
    )
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    default_backend: str | None = None  # used for model names that are not aliases
    # Sections owned by other subsystems; each validates its own shape.
    pipeline: PipelineSettings = Field(default_factory=lambda: PipelineSettings())
    # [teams.NAME]: the team's budget and its overrides of other sections.
    teams: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Subsystem sections arrive as extra fields and are validated by `section()`.
    model_config = ConfigDict(extra="allow")
    _source: tuple[str, str] | None = PrivateAttr(default=None)  # (path, text) for errors
    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)
    _teams: dict[str, Settings] = PrivateAttr(default_factory=dict)
    _team: str | None = PrivateAttr(default=None)  # set on a team's merged settings

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

    def raw_section(self, name: str) -> dict[str, Any]:
        value = (self.model_extra or {}).get(name)
        return dict(value) if isinstance(value, dict) else {}

    def set_default(self, section: str, key: str, value: Any) -> None:
        """Set `[section] key` unless the config set it (start-up decisions such as
        `require_keys` on a non-loopback bind); forgets the validated sections."""
        extra = self.model_extra if self.model_extra is not None else {}
        table = extra.setdefault(section, {})
        if isinstance(table, dict):
            table.setdefault(key, value)
        self._sections.clear()
        self._teams.clear()

    def section(self, name: str, model: type[M]) -> M:
        """The `[name]` section, validated by its subsystem's model (cached)."""
        found = self._sections.get(name)
        if found is None:
            try:
                found = model.model_validate(self.raw_section(name))
            except ValidationError as exc:
                # A team's merged section: the error names [teams.TEAM.SECTION], where
                # the bad value came from (the section itself was checked first).
                where = ("teams", self._team, name) if self._team else (name,)
                raise self._error(exc, where) from exc
            self._sections[name] = found
        return found  # type: ignore[return-value]

    def for_team(self, team: str) -> Settings:
        """These settings with `[teams.TEAM.SECTION]` laid over each section (cached)."""
        found = self._teams.get(team)
        if found is not None:
            return found
        overrides = {key: value for key, value in (self.teams.get(team) or {}).items()
                     if isinstance(value, dict)}
        if not overrides:
            found = self
        else:
            data = self.model_dump()
            for key, value in overrides.items():
                data[key] = deep_merge(self.raw_section(key), value)
            try:
                found = Settings.model_validate(data)
            except ValidationError as exc:
                raise self._error(exc, ("teams", team)) from exc
            found._source = self._source
            found._team = team
        self._teams[team] = found
        return found

    def check_section(self, name: str, model: type[BaseModel]) -> None:
        """Validate `[name]` and every team's override of it now (a typo fails at start)."""
        self.section(name, model)
        for team in self.teams:
            self.for_team(team).section(name, model)

    def check_sections(self, known: dict[str, type[BaseModel]]) -> None:
        """Fail at start on a misspelt section or a bad value in any section or team."""
        for name in self.model_extra or {}:
            if name not in known:
                raise ConfigError(self._where((name,)) + f": unknown settings section [{name}]; "
                                  f"known: {', '.join(sorted([*CORE_SECTIONS, *known]))}")
        for team, values in self.teams.items():
            for name, value in (values or {}).items():
                if isinstance(value, dict) and name not in known and name != "contracts":
                    raise ConfigError(self._where(("teams", team, name)) + f": [teams.{team}."
                                      f"{name}] overrides no known section; known: "
                                      f"{', '.join(sorted(known))}")
        for name, model in known.items():
            self.check_section(name, model)

    def _where(self, loc: tuple[Any, ...]) -> str:
        if self._source is None:
            return "settings"
        path, text = self._source
        line = _line_of(text, loc) if text else None
        return f"{path}:{line}" if line else path

    def validation_error(self, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> ConfigError:
        """A subsystem's validation error as a ConfigError naming file and line."""
        return self._error(exc, prefix)

    def _error(self, exc: ValidationError, prefix: tuple[Any, ...]) -> ConfigError:
        problems = []
        for error in exc.errors():
            loc = (*prefix, *error["loc"])
            where = ".".join(str(p) for p in loc)
            problems.append(f"{self._where(loc)}: {where}: {error['msg']}")
        return ConfigError("invalid configuration:\n  " + "\n  ".join(problems))




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
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            line = _line_of(text, loc) if text else None
            at = f"{path}:{line}" if line else str(path or "environment")
            problems.append(f"{at}: {where}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from exc
    settings._source = (str(path or "environment"), text)
    return settings

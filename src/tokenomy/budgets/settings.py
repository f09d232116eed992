"""The `[ledger]` and `[teams.NAME]` config sections, validated here.

`Settings.ledger` and `Settings.teams` are free-form dicts in the core settings
model; this package owns their shape so a typo fails at start with a message
that names the key.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import make_url

from tokenomy.config import Settings, tokenomy_home
from tokenomy.errors import ConfigError
from tokenomy.limits import BudgetSpec, SoftAction, Window

__all__ = ["BudgetConfig", "BudgetSpec", "DashboardSettings", "LedgerSettings", "ModelPrice",
           "SoftAction", "TeamSettings", "Window"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelPrice(_Strict):
    """`[ledger.prices.MODEL]`: USD per token, named as in litellm's cost map.

    Unset cache rates fall back to the input rate (1-hour writes: to the
    5-minute write rate).
    """

    input_cost_per_token: float = Field(ge=0)
    output_cost_per_token: float = Field(ge=0)
    cache_read_input_token_cost: float | None = Field(default=None, ge=0)
    cache_creation_input_token_cost: float | None = Field(default=None, ge=0)
    cache_creation_input_token_cost_above_1hr: float | None = Field(default=None, ge=0)


class LedgerSettings(_Strict):
    enabled: bool = True  # false: no ledger, keys or budgets (dev mode, benchmarks)
    url: str | None = None  # default: sqlite file $TOKENOMY_HOME/ledger.db
    # The output cap per choice for a budgeted request that sets none, to a model whose
    # maximum output is unknown: reserved, and written into the body sent upstream.
    default_max_tokens: int = Field(default=1024, ge=1)
    # A stream on a budgeted team records what it delivered this often, so a process
    # killed mid-stream leaves a row (and a charge) with those tokens.
    checkpoint_interval: float = Field(default=5.0, gt=0)
    reservation_ttl: float = Field(default=3600.0, gt=0)  # absolute expiry of a reservation
    owner_ttl: float = Field(default=30.0, gt=0)  # an owner silent this long is dead
    reconcile_interval: float = Field(default=10.0, gt=0)
    # A settle the database refuses as unreachable is retried this many times,
    # waiting settle_backoff seconds, doubled each time (capped at 1 s), in the
    # ledger's worker thread; then it goes to the spool and is replayed later.
    settle_retries: int = Field(default=4, ge=0, le=20)
    settle_backoff: float = Field(default=0.05, gt=0, le=5)
    # The spool (JSON lines): default next to the SQLite file, else in
    # $TOKENOMY_HOME/spool/ under a name derived from the database URL.
    spool_path: str | None = None
    auth: Literal["auto", "on", "off"] = "auto"  # auto: on as soon as one key exists
    # Auth on even with zero keys (every request 401 until a key exists), so a
    # ledger that comes back empty never opens the proxy; `tokenomy serve` sets
    # it when it binds a non-loopback address.
    require_keys: bool = False
    key_pepper: str | None = None  # HMAC secret mixed into stored key hashes
    prices: dict[str, ModelPrice] = Field(default_factory=dict)  # per-model cost overrides

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite:///{tokenomy_home() / 'ledger.db'}"

    def resolved_spool(self) -> Path:
        if self.spool_path:
            return Path(self.spool_path).expanduser()
        url = make_url(self.resolved_url())
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            db = Path(url.database).expanduser()
            return db.with_name(db.name + ".spool.jsonl")
        where = url.render_as_string(hide_password=True).encode()
        return tokenomy_home() / "spool" / f"ledger-{hashlib.sha256(where).hexdigest()[:16]}.jsonl"


class DashboardSettings(_Strict):
    """`[dashboard]`: the browser session that replaces a key in the URL.

    The session cookie is signed with `session_secret` when set, else with a
    random secret kept in the ledger (`tk_secrets`), so every replica on one
    ledger accepts the others' sessions and a restart logs nobody out.
    """

    session_secret: str | None = Field(default=None, min_length=16)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)


class TeamSettings(BudgetSpec):
    """`[teams.NAME]`: the team's budget (all fields optional).

    The same table holds the team's overrides of other sections
    (`[teams.NAME.compression]`, `[teams.NAME.planner]`, ...), merged and
    validated by `Settings.for_team`, and `contracts = true` (codify).
    """

    contracts: bool | dict[str, Any] = False


class BudgetConfig(_Strict):
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    teams: dict[str, TeamSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> BudgetConfig:
        for name in self.teams:
            if not name or len(name) > 128:
                raise ValueError(f"team name {name!r} must be 1-128 characters")
        return self

    @classmethod
    def from_settings(cls, settings: Settings | None, db_url: str | None = None) -> BudgetConfig:
        ledger: dict[str, Any] = settings.raw_section("ledger") if settings else {}
        # A team's section overrides (tables) are merged and checked by Settings.for_team.
        teams: dict[str, Any] = {
            name: {key: value for key, value in (team or {}).items()
                   if key == "contracts" or not isinstance(value, dict)}
            for name, team in (settings.teams if settings else {}).items()}
        if db_url:
            ledger["url"] = db_url
        try:
            return cls.model_validate({"ledger": ledger, "teams": teams})
        except ValidationError as exc:
            if settings is not None:  # file and line, like every other section's errors
                raise settings.validation_error(exc) from exc
            problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ConfigError(
                "invalid [ledger]/[teams] settings:\n  " + "\n  ".join(problems)
            ) from exc

    def team_budget(self, team: str) -> BudgetSpec | None:
        spec = self.teams.get(team)
        return spec if spec is not None and spec.active else None


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_keys_off_loopback(settings: Settings, host: str) -> str | None:
    """For `tokenomy serve`: on a non-loopback address, keys are required from the start.

    `auth = "auto"` turns auth on once a key exists, so a ledger that comes
    back empty would silently open the proxy; off loopback that is not
    acceptable, so `require_keys` is set (unless the config says otherwise).
    Returns the one line to print at start, or None on loopback.
    """
    if _loopback(host):
        return None
    ledger = settings.raw_section("ledger")
    open_to_all = (
        "anyone who can reach this address can use the proxy and its backends' credentials"
    )
    if ledger.get("enabled", True) is False:
        return f"WARNING: serving on {host} with the ledger disabled: {open_to_all}."
    if ledger.get("auth", "auto") == "off" or ledger.get("require_keys") is False:
        return f"WARNING: serving on {host} with API keys turned off in the config: {open_to_all}."
    settings.set_default("ledger", "require_keys", True)
    return (
        f"tokenomy: serving on {host} (not loopback): API keys are required on every request; "
        "create one with `tokenomy keys create --team TEAM` (same --config)."
    )

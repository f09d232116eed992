"""The `[ledger]` and `[teams.NAME]` config sections, validated here.

`Settings.ledger` and `Settings.teams` are free-form dicts in the core settings
model; this package owns their shape so a typo fails at start with a message
that names the key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenomy.config import Settings, tokenomy_home
from tokenomy.errors import ConfigError
from tokenomy.limits import BudgetSpec, SoftAction, Window

__all__ = ["BudgetConfig", "BudgetSpec", "LedgerSettings", "ModelPrice", "SoftAction",
           "TeamSettings", "Window"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelPrice(_Strict):
    input_cost_per_token: float = Field(ge=0)
    output_cost_per_token: float = Field(ge=0)
    cache_read_input_token_cost: float | None = Field(default=None, ge=0)


class LedgerSettings(_Strict):
    enabled: bool = True  # false: no ledger, keys or budgets (dev mode, benchmarks)
    url: str | None = None  # default: sqlite file $TOKENOMY_HOME/ledger.db
    default_max_tokens: int = Field(default=1024, ge=1)  # completion estimate when unset
    reservation_ttl: float = Field(default=3600.0, gt=0)  # absolute expiry of a reservation
    owner_ttl: float = Field(default=30.0, gt=0)  # an owner silent this long is dead
    reconcile_interval: float = Field(default=10.0, gt=0)
    # SQLite calls run on the event loop (faster than a thread hop); turn off when
    # several processes write one SQLite file and lock waits would stall the loop.
    sqlite_inline: bool = True
    auth: Literal["auto", "on", "off"] = "auto"  # auto: on as soon as one key exists
    key_pepper: str | None = None  # HMAC secret mixed into stored key hashes
    prices: dict[str, ModelPrice] = Field(default_factory=dict)  # per-model cost overrides

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        return f"sqlite:///{tokenomy_home() / 'ledger.db'}"


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
            problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ConfigError(
                "invalid [ledger]/[teams] settings:\n  " + "\n  ".join(problems)
            ) from exc

    def team_budget(self, team: str) -> BudgetSpec | None:
        spec = self.teams.get(team)
        return spec if spec is not None and spec.active else None

"""The `[codify]` settings section, and who opted in to contracts.

    [codify]                  # all optional
    typed_schemas = true      # JSON Schemas / tool lists pasted as text -> typed definitions
    json_data = true          # pretty JSON data -> minified JSON or TOON tables
    min_saving = 0.1          # rewrite a block only when it saves this share of its tokens
    schema_roles = ["system", "developer"]          # where schemas become types
    data_roles = ["system", "developer", "tool", "user"]  # where JSON data is minified
    table_roles = ["system", "developer", "tool"]   # where uniform arrays become tables

A user who pastes JSON usually wants JSON back, so by default user messages are
only minified (still valid JSON) and their schemas are left as written.

    [codify.contracts]
    enabled = true            # every team gets its stored 5C contracts ...
    teams = ["research"]      # ... or only these teams (`contracts = true` is short for enabled)
    db = "/path/contracts.db" # default $TOKENOMY_HOME/contracts.db

    [teams.research]
    contracts = false         # a team's own value wins
    [teams.research.codify]   # the team's overrides of [codify]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tokenomy.config import Settings, tokenomy_home


class ContractPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False  # substitute for every team
    teams: list[str] = Field(default_factory=list)  # or only for these
    db: str | None = None  # default $TOKENOMY_HOME/contracts.db

    @classmethod
    def from_value(cls, value: Any) -> ContractPolicy:
        if isinstance(value, bool):
            return cls(enabled=value)
        return cls.model_validate(value or {})

    def db_path(self) -> Path:
        return Path(self.db) if self.db else tokenomy_home() / "contracts.db"


class CodifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    typed_schemas: bool = True
    json_data: bool = True
    min_saving: float = Field(default=0.1, ge=0.0, lt=1.0)
    min_tokens: int = Field(default=8, ge=0)
    max_chars: int = Field(default=1_000_000, ge=0)  # longer texts pass through untouched
    schema_roles: list[str] = Field(default_factory=lambda: ["system", "developer"])
    data_roles: list[str] = Field(
        default_factory=lambda: ["system", "developer", "tool", "user"])
    table_roles: list[str] = Field(default_factory=lambda: ["system", "developer", "tool"])
    contracts: ContractPolicy = Field(default_factory=lambda: ContractPolicy())

    @field_validator("contracts", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value



def codify_settings(settings: Settings | None) -> CodifySettings:
    return (settings or Settings()).section("codify", CodifySettings)


def team_opted_in(settings: Settings | None, policy: ContractPolicy, team: str) -> bool:
    """A team's own `contracts` value wins; otherwise the planner-wide policy."""
    own = (settings.teams.get(team) if settings else None) or {}
    if "contracts" in own:
        return bool(own["contracts"])
    return policy.enabled or team in policy.teams

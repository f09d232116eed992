"""One object that owns a process's ledger, keys, prices and budget config.

The engine builds it once from Settings and hands it to the stages that need
it (identify and budget); the usage API and the CLI use it too.
"""

from __future__ import annotations

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from tokenomy.budgets.cost import Pricer
from tokenomy.budgets.db import normalize_url
from tokenomy.budgets.keys import KeyStore
from tokenomy.budgets.ledger import Ledger
from tokenomy.budgets.rows import Scope
from tokenomy.budgets.settings import BudgetConfig, BudgetSpec
from tokenomy.config import Settings
from tokenomy.errors import ConfigError


class Budgets:
    def __init__(self, config: BudgetConfig, settings: Settings | None = None):
        self.config = config
        self.settings = settings
        self.ledger = Ledger(config.ledger.resolved_url(), config.ledger)
        self.keys = KeyStore(self.ledger.engine, config.ledger)
        self.pricer = Pricer(config.ledger, settings)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, db_url: str | None = None, background: bool = True
    ) -> Budgets:
        config = BudgetConfig.from_settings(settings, db_url)
        try:
            budgets = cls(config, settings)
            budgets.ledger.open(background=background)
        except SQLAlchemyError as exc:
            url = make_url(normalize_url(config.ledger.resolved_url()))
            where = url.render_as_string(hide_password=True)
            raise ConfigError(f"cannot open the ledger database {where}: {exc}") from exc
        return budgets

    def close(self) -> None:
        self.ledger.close()

    def scopes(
        self, team: str, key_budget: BudgetSpec | None = None, key_id: str | None = None
    ) -> list[Scope]:
        """The budgets that apply to a call: the team's, then the key's."""
        found: list[Scope] = []
        spec = self.config.team_budget(team)
        if spec is not None:
            found.append(Scope(kind="team", id=team, spec=spec))
        if key_budget is not None and key_id is not None:
            found.append(Scope(kind="key", id=key_id, spec=key_budget))
        return found

"""`tokenomy report` and `tokenomy keys ...` (registered on the main CLI group)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tokenomy.errors import TokenomyError

if TYPE_CHECKING:
    from tokenomy.budgets.service import Budgets
    from tokenomy.config import Settings

_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="TOKENOMY_CONFIG",
    help="TOML or YAML settings file (its [ledger] and [teams] sections apply).",
)
_DB = click.option(
    "--db",
    "db_url",
    default=None,
    help="Ledger database URL (sqlite:///path or postgresql://...); default: the config's "
    "ledger.url, else $TOKENOMY_HOME/ledger.db.",
)


@contextmanager
def _budgets(
    config_path: str | None, db_url: str | None, *, must_exist: bool = False
) -> Iterator[Budgets]:
    """The ledger named by --db or the config; `must_exist`: never create one.

    A read (a report, a key listing) on a mistyped path must say so, not
    create an empty ledger there and report nothing.
    """
    from tokenomy.budgets.service import Budgets
    from tokenomy.config import load_settings

    try:
        settings = load_settings(config_path)
        if must_exist:
            _require_existing(settings, db_url)
        budgets = Budgets.from_settings(settings, db_url=db_url, background=False)
    except TokenomyError as exc:
        raise click.ClickException(exc.message) from exc
    except Exception as exc:  # a bad URL or an unreachable database
        raise click.ClickException(f"cannot open the ledger: {exc}") from exc
    try:
        yield budgets
    finally:
        budgets.close()


def _require_existing(settings: Settings, db_url: str | None) -> None:
    from sqlalchemy import make_url

    from tokenomy.budgets.db import normalize_url
    from tokenomy.budgets.settings import BudgetConfig

    url = make_url(
        normalize_url(BudgetConfig.from_settings(settings, db_url).ledger.resolved_url())
    )
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database).expanduser()
    if not path.is_file():
        where = "--db" if db_url else "the config's ledger.url (or the default)"
        raise click.ClickException(
            f"no ledger database at {path} (from {where}): check the path; "
            "a ledger is created by `tokenomy serve` or `tokenomy keys create`"
        )


@click.command()
@click.option("--team", default=None, help="Only this team.")
@click.option("--since", default=None, help="YYYY-MM-DD, ISO time, 'today' or a span like 7d.")
@click.option("--until", default=None, help="YYYY-MM-DD (inclusive day) or ISO time.")
@click.option(
    "--group-by",
    "group_by",
    default="day",
    show_default=True,
    type=click.Choice(["day", "team", "key", "step", "model", "technique"]),
    help="One row per day, team, key, step, model or saving technique (groups add up).",
)
@click.option(
    "--format",
    "fmt",
    default="table",
    show_default=True,
    type=click.Choice(["table", "csv", "json", "html"]),
    help="table for a terminal; csv, json or a self-contained html page for elsewhere.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
@_DB
@_CONFIG
def report(
    team: str | None,
    since: str | None,
    until: str | None,
    group_by: str,
    fmt: str,
    output: str | None,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Tokens, cost, savings by technique, budgets and top steps from the ledger."""
    from tokenomy.budgets.html import render_html
    from tokenomy.budgets.render import to_csv, to_json, to_table
    from tokenomy.budgets.report import ReportQuery, aggregate, parse_when

    with _budgets(config_path, db_url, must_exist=True) as budgets:
        try:
            query = ReportQuery(
                team=team,
                since=parse_when(since),
                until=parse_when(until, end=True),
                group_by=group_by,
            )
        except TokenomyError as exc:
            raise click.BadParameter(exc.message) from exc
        data = aggregate(budgets, query)
    render = {"table": to_table, "csv": to_csv, "json": to_json, "html": render_html}[fmt]
    text = render(data)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@click.group()
def keys() -> None:
    """Virtual API keys: one per app or person, tied to a team, revocable."""


@keys.command("create")
@click.option("--team", required=True, help="The team this key spends for.")
@click.option("--name", default=None, help="A label (who or what uses the key).")
@click.option(
    "--budget-tokens",
    type=click.IntRange(min=0),
    default=None,
    help="Token limit per window for this key.",
)
@click.option(
    "--budget-usd",
    type=click.FloatRange(min=0),
    default=None,
    help="USD limit per window for this key.",
)
@click.option(
    "--window",
    default="month",
    show_default=True,
    type=click.Choice(["1h", "1d", "7d", "30d", "month"]),
    help="The budget's window: it resets at the start of each (month: calendar month, UTC).",
)
@click.option(
    "--soft-limit",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="Fraction of the limit where the soft action starts.",
)
@click.option(
    "--soft-action", type=click.Choice(["degrade", "warn"]), default="degrade", show_default=True,
    help="Past the soft limit: degrade (compress harder, think less) or warn (a header).",
)
@click.option(
    "--create-team",
    is_flag=True,
    help="Allow a team the config does not declare in [teams] (no team budget applies).",
)
@_DB
@_CONFIG
def keys_create(
    team: str,
    name: str | None,
    budget_tokens: int | None,
    budget_usd: float | None,
    window: str,
    soft_limit: float,
    soft_action: str,
    create_team: bool,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from tokenomy.budgets.settings import BudgetSpec
    from tokenomy.call import DEFAULT_TEAM

    spec = BudgetSpec(
        tokens=budget_tokens,
        usd=budget_usd,
        window=window,
        soft_limit=soft_limit,
        soft_action=soft_action,
    )
    with _budgets(config_path, db_url) as budgets:
        declared = budgets.config.teams
        if team not in declared and team != DEFAULT_TEAM and not create_team:
            # A typo here would mint a key whose spend no team budget ever sees.
            known = ", ".join(sorted(declared)) or "none"
            raise click.ClickException(
                f"team {team!r} is not declared in the config's [teams] (declared: {known}). "
                f"Declare it (TOML: a [teams.{team}] table, with a budget or empty) and pass "
                "that config with --config, or pass --create-team to create the key anyway."
            )
        info, key = budgets.keys.create(team, name=name, budget=spec)
    click.echo(key)
    click.echo(
        f"key {info.key_id} for team {team} created; it is shown only once, store it now", err=True
    )


@keys.command("list")
@click.option("--team", default=None, help="Only this team's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_DB
@_CONFIG
def keys_list(team: str | None, as_json: bool, db_url: str | None, config_path: str | None) -> None:
    """List keys (ids, teams, budgets; never the secrets)."""
    with _budgets(config_path, db_url) as budgets:
        found = budgets.keys.list(team)
    if as_json:
        click.echo(json.dumps([k.model_dump() for k in found], indent=2))
        return
    for k in found:
        state = "revoked" if k.revoked else "active"
        budget = "-"
        if k.budget is not None:
            limits = [
                f"{k.budget.tokens} tok" if k.budget.tokens is not None else "",
                f"${k.budget.usd}" if k.budget.usd is not None else "",
            ]
            budget = " / ".join(x for x in limits if x) + f" per {k.budget.window}"
        click.echo(f"{k.key_id}  {state:<7}  team={k.team}  name={k.name or '-'}  budget={budget}")


@keys.command("revoke")
@click.argument("key_id")
@_DB
@_CONFIG
def keys_revoke(key_id: str, db_url: str | None, config_path: str | None) -> None:
    """Revoke a key by id: it is refused from the next request on."""
    with _budgets(config_path, db_url) as budgets:
        done = budgets.keys.revoke(key_id)
    if not done:
        raise click.ClickException(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}", err=True)


COMMANDS = [report, keys]

"""Cache-aware money: prices per input bucket from litellm's map (or the config),
the buckets and the caching saving in the ledger and its reports, the
migration that adds them, and the CLI's guards around keys and reports."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, MetaData, Table, text

import budget_support
from budget_support import query, sqlite_url
from tokenomy.budgets import schema
from tokenomy.budgets.cost import Price, Pricer
from tokenomy.budgets.db import make_engine
from tokenomy.budgets.ledger import Ledger
from tokenomy.budgets.migrations import MIGRATIONS, current_version
from tokenomy.budgets.render import to_csv, to_table
from tokenomy.budgets.report import GROUP_BYS, ReportQuery, aggregate
from tokenomy.budgets.rows import RequestRow, Saving
from tokenomy.budgets.service import Budgets
from tokenomy.budgets.settings import LedgerSettings
from tokenomy.budgets.stage import BudgetStage
from tokenomy.call import Call, Result, TokenomyOptions, Usage
from tokenomy.cli import main
from tokenomy.config import Settings
from tokenomy.identify import IdentifyStage
from tokenomy.pipeline import Pipeline

ledger_url = budget_support.ledger_url  # the fixture: a SQLite file, then a PostgreSQL schema

SONNET = "claude-sonnet-4-5"  # in litellm's bundled map with all three cache rates
# 10,000 input: 1,000 uncached, 8,000 read from cache, 1,000 written (400 of them for 1 h).
USAGE = Usage.of(10_000, 100, cache_read=8_000, cache_write=1_000, cache_write_1h=400)


def test_prices_come_from_litellms_cache_keys() -> None:
    sonnet = Pricer(LedgerSettings()).price(SONNET)
    assert (sonnet.input, sonnet.output) == (3e-06, 1.5e-05)
    rates = (sonnet.cache_read, sonnet.cache_write, sonnet.cache_write_1h)
    assert rates == (3e-07, 3.75e-06, 6e-06)
    gpt = Pricer(LedgerSettings()).price("gpt-4o")  # reads discounted, no write premium
    assert gpt.cache_read == 1.25e-06 and gpt.cache_write is None


def test_each_bucket_is_priced_at_its_rate() -> None:
    sonnet = Pricer(LedgerSettings()).price(SONNET)
    expected = 1_000 * 3e-06 + 8_000 * 3e-07 + 600 * 3.75e-06 + 400 * 6e-06 + 100 * 1.5e-05
    assert math.isclose(sonnet.cost(USAGE), expected)
    # Reads saved 90% of their input price; writes paid a premium on top of it.
    saving = 8_000 * (3e-06 - 3e-07) - 600 * (3.75e-06 - 3e-06) - 400 * (6e-06 - 3e-06)
    assert math.isclose(sonnet.cache_saving(USAGE), saving)
    # A request that only writes to the cache saved nothing yet: it paid the premium.
    write_only = Usage.of(1_000, 10, cache_write=1_000)
    assert sonnet.cache_saving(write_only) < 0
    # No cache rates known: every bucket at the input price, nothing saved.
    flat = Price(input=1e-06, output=2e-06)
    assert math.isclose(flat.cost(USAGE), 10_000 * 1e-06 + 100 * 2e-06)
    assert flat.cache_saving(USAGE) == 0


def test_config_overrides_the_cache_rates() -> None:
    settings = LedgerSettings(
        prices={
            SONNET: {
                "input_cost_per_token": 1e-06,
                "output_cost_per_token": 2e-06,
                "cache_read_input_token_cost": 1e-07,
                "cache_creation_input_token_cost": 1.5e-06,
                "cache_creation_input_token_cost_above_1hr": 3e-06,
            }
        }
    )
    price = Pricer(settings).price(SONNET)
    assert (price.cache_read, price.cache_write, price.cache_write_1h) == (1e-07, 1.5e-06, 3e-06)


def _anthropic_backend(call: Call) -> Any:
    async def answer(call: Call) -> Result:
        call.upstream_model = SONNET
        report = {
            "input_tokens": 1_000,
            "cache_read_input_tokens": 8_000,
            "cache_creation_input_tokens": 1_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400},
            "output_tokens": 100,
        }
        message = {"role": "assistant", "content": "ok"}
        return Result(
            response={"choices": [{"index": 0, "message": message}]},
            usage=Usage.from_anthropic(report),
        )

    return answer


async def test_a_settled_call_stores_its_buckets_and_the_caching_saving(ledger_url: str) -> None:
    settings = Settings(ledger={"url": ledger_url}, teams={"acme": {"tokens": 10**9}})
    budgets = Budgets.from_settings(settings, background=False)
    try:
        pipeline = Pipeline(
            [IdentifyStage(budgets), BudgetStage(budgets)], _anthropic_backend(None)
        )
        body = {"model": SONNET, "messages": [{"role": "user", "content": "hi"}]}
        call = Call(body=body, options=TokenomyOptions(team="acme"))
        await pipeline.run(call)
        [row] = query(
            ledger_url,
            "select prompt_tokens, uncached_tokens, cached_tokens, cache_write_tokens, "
            "cache_write_1h_tokens, completion_tokens, estimated, cost_usd, saved_usd "
            "from tk_requests",
        )
        sonnet = budgets.pricer.price(SONNET)
        assert tuple(row[:7]) == (10_000, 1_000, 8_000, 1_000, 400, 100, False)
        assert math.isclose(row[7], sonnet.cost(USAGE))
        assert math.isclose(row[8], sonnet.cache_saving(USAGE))
        [(technique, tokens, usd)] = query(
            ledger_url, "select technique, tokens_saved, usd_saved from tk_savings"
        )
        assert (technique, tokens) == ("cache", 0) and math.isclose(usd, row[8])
        report = aggregate(budgets, ReportQuery(group_by="team"))
        assert report.totals.cache_hit_rate == pytest.approx(0.8)
        assert [s.technique for s in report.savings_by_technique] == ["cache"]
    finally:
        budgets.close()


def _version_one(url: str) -> None:
    """A ledger as the first release left it: tk_requests without the new columns."""
    new = {"uncached_tokens", "cache_write_tokens", "cache_write_1h_tokens", "estimated", "settled",
           "from_cache", "events", "fallback"}
    old = MetaData()
    Table(
        "tk_requests",
        old,
        *(
            Column(
                c.name,
                c.type,
                primary_key=c.primary_key,
                nullable=c.nullable,
                autoincrement=c.autoincrement,
                unique=c.unique,
            )
            for c in schema.requests.columns
            if c.name not in new
        ),
    )
    engine = make_engine(url)
    with engine.begin() as conn:
        old.create_all(conn)
        for table in (
            schema.savings,
            schema.budget_usage,
            schema.reservations,
            schema.owners,
            schema.api_keys,
            schema.schema_version,
        ):
            table.create(conn)
        conn.execute(schema.schema_version.insert().values(version=1, applied_at=time.time()))
        for rid, outcome, prompt, cached in (("a", "ok", 100, 30), ("b", "abandoned", 0, 0)):
            conn.execute(
                text(
                    "insert into tk_requests (request_id, ts, day, team, prompt_tokens, "
                    "cached_tokens, total_tokens, status, outcome, stream, cost_usd, "
                    "prompt_tokens_original, completion_tokens, reasoning_tokens, "
                    "saved_tokens, saved_usd, latency_ms) values (:r, 1.8e9, '2027-01-15', "
                    "'acme', :p, :c, :p, 200, :o, false, 0, 0, 0, 0, 0, 0, 0)"
                ),
                {"r": rid, "p": prompt, "c": cached, "o": outcome},
            )
    engine.dispose()


def test_migration_adds_the_buckets_to_an_existing_ledger(ledger_url: str) -> None:
    _version_one(ledger_url)
    ledger = Ledger(ledger_url).open(background=False)
    try:
        with ledger.engine.connect() as conn:
            assert current_version(conn) == len(MIGRATIONS)
        rows = query(
            ledger_url,
            "select request_id, uncached_tokens, cache_write_tokens, estimated, settled "
            "from tk_requests order by request_id",
        )
        assert [tuple(r) for r in rows] == [("a", 70, 0, False, True), ("b", 0, 0, False, False)]
        # A late settle may still replace the abandoned row; the settled one stays.
        ledger.record(RequestRow(request_id="b", ts=1.8e9, team="acme", total_tokens=5))
        ledger.record(RequestRow(request_id="a", ts=1.8e9, team="acme", total_tokens=999))
        totals = query(ledger_url, "select request_id, total_tokens from tk_requests order by 1")
        assert [tuple(r) for r in totals] == [("a", 100), ("b", 5)]
        # Migration 3: the response cache's table, the secrets and the two request columns.
        flags = query(ledger_url, "select from_cache, events from tk_requests order by 1")
        assert [tuple(r) for r in flags] == [(False, None), (False, None)]
        assert query(ledger_url, "select count(*) from tk_response_cache")[0][0] == 0
        assert query(ledger_url, "select count(*) from tk_secrets")[0][0] == 0
        # Migration 4: the fallback column, empty on old rows, written by new settles.
        assert [tuple(r) for r in query(ledger_url, "select fallback from tk_requests")] == [
            (None,), (None,)]
        ledger.record(RequestRow(request_id="c", ts=1.8e9, team="acme", fallback="x -> y"))
        assert query(ledger_url, "select fallback from tk_requests where request_id = 'c'")[
            0][0] == "x -> y"
    finally:
        ledger.close()


def test_migration_3_is_idempotent(ledger_url: str) -> None:
    """Run again over a ledger that already has what it adds (a newer schema created the
    tables and columns): it creates only what is missing, and never fails."""
    Ledger(ledger_url).open(background=False).close()
    engine = make_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(text("delete from tk_schema_version where version >= 3"))
    engine.dispose()
    ledger = Ledger(ledger_url).open(background=False)
    try:
        with ledger.engine.connect() as conn:
            assert current_version(conn) == len(MIGRATIONS)
        ledger.record(RequestRow(request_id="c", ts=1.8e9, team="acme", from_cache=True,
                                 events=[{"stage": "response_cache", "ms": 0.1}]))
        [(flag, events)] = query(ledger_url, "select from_cache, events from tk_requests")
        assert flag in (True, 1) and '"response_cache"' in events
    finally:
        ledger.close()


@pytest.fixture
def cached_ledger(ledger_url: str):
    settings = Settings(ledger={"url": ledger_url})
    budgets = Budgets.from_settings(settings, background=False)
    now = time.time()
    plans = [  # (technique savings, prompt, cache read, cache write, 1h part, estimated)
        ({"extractive": 40}, 1000, 0, 0, 0, False),
        ({"extractive": 10, "lossless": 5}, 2000, 500, 0, 0, False),
        ({"cache": 0}, 3000, 2500, 300, 100, False),
        ({"cache": 0, "extractive": 7}, 4000, 1000, 1000, 0, False),
        ({}, 500, 0, 0, 0, True),
    ]
    for i, (saved, prompt, read, write, write_1h, estimated) in enumerate(plans):
        usage = Usage.of(
            prompt,
            50,
            cache_read=read,
            cache_write=write,
            cache_write_1h=write_1h,
            estimated=estimated,
        )
        savings = [
            Saving(technique=t, tokens=n, usd=n * 1e-6 + (0.001 if t == "cache" else 0))
            for t, n in saved.items()
        ]
        from tokenomy.budgets.rows import usage_columns

        budgets.ledger.record(
            RequestRow(
                request_id=f"c{i}",
                ts=now - i,
                team="acme",
                model="m",
                cost_usd=0.01 * (i + 1),
                **usage_columns(usage),
            ),
            savings,
        )
    yield budgets
    budgets.close()


SUMMED = [
    "requests",
    "estimated",
    "prompt_tokens",
    "uncached_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "saved_tokens",
    "saved_usd",
]


@pytest.mark.parametrize("group_by", GROUP_BYS)
def test_every_grouping_adds_up_with_buckets(cached_ledger: Budgets, group_by: str) -> None:
    report = aggregate(cached_ledger, ReportQuery(group_by=group_by))
    for field in SUMMED:
        groups = sum(getattr(g, field) for g in report.groups)
        assert math.isclose(groups, getattr(report.totals, field), abs_tol=1e-12), field
    t = report.totals
    assert t.requests == 5 and t.estimated == 1
    assert t.uncached_tokens + t.cached_tokens + t.cache_write_tokens == t.prompt_tokens
    assert t.cache_hit_rate == pytest.approx(4000 / 10500)
    by_technique = {s.technique: s for s in report.savings_by_technique}
    assert set(by_technique) == {"extractive", "lossless", "cache"}
    assert sum(s.tokens_saved for s in by_technique.values()) == t.saved_tokens
    assert math.isclose(sum(s.usd_saved for s in by_technique.values()), t.saved_usd)
    if group_by == "technique":
        keys = [g.key for g in report.groups]
        assert keys == ["cache", "cache+extractive", "extractive", "extractive+lossless", "none"]


def test_table_and_csv_show_the_buckets(cached_ledger: Budgets) -> None:
    report = aggregate(cached_ledger, ReportQuery(group_by="technique"))
    table = to_table(report)
    assert "cache read" in table and "hit rate" in table and "(100 1h)" in table
    assert "cache" in table.split("Saved by technique")[1]
    header = to_csv(report).splitlines()[0].split(",")
    assert {"uncached_tokens", "cache_write_tokens", "cache_hit_rate", "estimated"} <= set(header)
    data = json.loads(report.model_dump_json())
    assert data["totals"]["cache_hit_rate"] == pytest.approx(4000 / 10500)


def test_report_on_a_missing_database_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ledger.db"
    out = CliRunner().invoke(main, ["report", "--db", f"sqlite:///{missing}"])
    assert out.exit_code != 0 and "no ledger database at" in out.output
    assert not missing.exists() and not missing.parent.exists()


def test_keys_for_undeclared_teams_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "tokenomy.toml"
    url = sqlite_url(tmp_path)
    config.write_text(f'[ledger]\nurl = "{url}"\n\n[teams.search]\ntokens = 1000\n')
    runner = CliRunner()
    typo = runner.invoke(main, ["keys", "create", "--team", "serach", "--config", str(config)])
    assert typo.exit_code != 0
    assert "not declared" in typo.output and "[teams.serach]" in typo.output
    assert "--create-team" in typo.output
    for team, extra in (("search", []), ("default", []), ("adhoc", ["--create-team"])):
        made = runner.invoke(
            main, ["keys", "create", "--team", team, "--config", str(config), *extra]
        )
        assert made.exit_code == 0, made.output
    listed = runner.invoke(main, ["keys", "list", "--json", "--config", str(config)])
    assert sorted(k["team"] for k in json.loads(listed.stdout)) == ["adhoc", "default", "search"]

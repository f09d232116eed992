"""The dashboard over HTTP against a real `tokenomy serve` and a ledger seeded with
realistic traffic: the login form and its session cookie (never a key in a URL),
the headers every page carries, the team wall, the request view, and figures
that match the seeded rows. tests/test_dashboard_browser.py drives it in Chromium.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from budget_support import sqlite_url
from tokenomy.budgets.insights import insights
from tokenomy.budgets.report import ReportQuery, aggregate
from tokenomy.budgets.service import Budgets
from tokenomy.config import Settings
from tokenomy.server import session
from tokenomy.testing.processes import Server, echo_config, run_proxy
from tokenomy.testing.traffic import Seeded, seed_traffic, team_config

ADMIN = "admin-key-for-the-dashboard-tests"
NOW = time.time()


def seeded_config(upstream: Server, url: str) -> dict[str, Any]:
    teams = team_config()
    teams["support"]["response_cache"] = {"enabled": True}
    prices = {"echo-model": {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7}}
    return echo_config(upstream.v1, server={"admin_key": ADMIN},
                       ledger={"url": url, "prices": prices}, teams=teams)


@pytest.fixture(scope="module")
def seeded(upstream: Server, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Server, Seeded, str]]:
    folder = tmp_path_factory.mktemp("dashboard")
    url = sqlite_url(folder)
    config = seeded_config(upstream, url)
    budgets = Budgets.from_settings(Settings.model_validate(config), background=False)
    traffic = seed_traffic(budgets, requests=900, now=NOW)
    budgets.close()
    with run_proxy(config, folder=folder) as proxy:
        yield proxy, traffic, url


def sign_in(proxy: Server, key: str) -> httpx.Client:
    client = httpx.Client(base_url=proxy.url, timeout=60)
    response = client.post("/dashboard/login", data={"key": key})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard"
    return client


def test_login_sets_a_strict_session_cookie_and_no_key_in_urls(
        seeded: tuple[Server, Seeded, str]) -> None:
    proxy, traffic, _ = seeded
    browser = {"accept": "text/html,application/xhtml+xml"}
    anonymous = httpx.get(proxy.url + "/dashboard", headers=browser)
    assert anonymous.status_code == 401
    assert 'action="/dashboard/login"' in anonymous.text  # the login form, not a key prompt
    assert anonymous.headers["referrer-policy"] == "no-referrer"
    # A script (no HTML in Accept) gets the error in the API's own JSON shape.
    script = httpx.get(proxy.url + "/dashboard")
    assert script.status_code == 401 and script.json()["error"]["code"]
    # A key in the URL is not a way in any more (it would end up in logs and histories).
    assert httpx.get(proxy.url + "/dashboard", params={"key": ADMIN}).status_code == 401
    wrong = httpx.post(proxy.url + "/dashboard/login", data={"key": "nope"}, headers=browser)
    assert wrong.status_code == 401 and "not the admin key" in wrong.text
    assert 'id="login-error"' in wrong.text
    assert "set-cookie" not in wrong.headers

    client = httpx.Client(base_url=proxy.url, timeout=60)
    response = client.post("/dashboard/login", data={"key": ADMIN})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(session.COOKIE + "=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= flags
    assert "samesite=strict" in cookie.lower() and "path=/dashboard" in cookie.lower()
    assert ADMIN not in cookie
    page = client.get("/dashboard", params={"group_by": "key"})
    assert page.status_code == 200
    headers = page.headers
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    links = re.findall(r'href="([^"]+)"', page.text)
    assert links and not any("key=" in link for link in links)
    assert ADMIN not in page.text
    # Key names, never only ids, in the per-key table; the odd name is escaped.
    assert "notebook-ana" in page.text and "support-web" in page.text
    assert "&lt;b&gt;campaign &amp; co&lt;/b&gt;" in page.text and "<b>campaign" not in page.text
    assert traffic.key_ids["notebook-ana"] in page.text  # beside the name, as a hint
    # Signing out clears the cookie; the old value keeps working only until it expires,
    # so a copied cookie is the one thing to guard: it is HttpOnly and never in a URL.
    out = client.post("/dashboard/logout")
    assert out.status_code == 303 and "max-age=0" in out.headers["set-cookie"].lower()
    assert client.get("/dashboard").status_code == 401


def test_forged_expired_and_revoked_sessions_are_refused(
        seeded: tuple[Server, Seeded, str]) -> None:
    proxy, traffic, url = seeded
    client = sign_in(proxy, ADMIN)
    value = client.cookies[session.COOKIE]
    payload, mac = value.split(".")
    forged = httpx.get(proxy.url + "/dashboard",
                       cookies={session.COOKIE: payload + "." + mac[:-2] + "AA"})
    assert forged.status_code == 401
    other_secret = session.sign(session.Session(sub="admin", exp=time.time() + 60,
                                                fp=session.fingerprint(ADMIN)), b"guess" * 8)
    assert httpx.get(proxy.url + "/dashboard",
                     cookies={session.COOKIE: other_secret}).status_code == 401
    # A team key's session ends when the key is revoked.
    team_client = sign_in(proxy, traffic.keys["support-bot"])
    assert team_client.get("/dashboard").status_code == 200
    budgets = Budgets.from_settings(Settings(ledger={"url": url}), background=False)
    try:
        assert budgets.keys.revoke(traffic.key_ids["support-bot"])
    finally:
        budgets.close()
    assert team_client.get("/dashboard").status_code == 401


def test_cross_site_login_is_refused(seeded: tuple[Server, Seeded, str]) -> None:
    proxy, _, _ = seeded
    response = httpx.post(proxy.url + "/dashboard/login", data={"key": ADMIN},
                          headers={"origin": "https://evil.example"})
    assert response.status_code == 403 and "set-cookie" not in response.headers
    fetched = httpx.post(proxy.url + "/dashboard/login", data={"key": ADMIN},
                         headers={"origin": "null", "sec-fetch-site": "cross-site"})
    assert fetched.status_code == 403 and "set-cookie" not in fetched.headers
    same = httpx.post(proxy.url + "/dashboard/login", data={"key": ADMIN},
                      headers={"origin": proxy.url})
    assert same.status_code == 303


def test_team_key_sees_only_its_team(seeded: tuple[Server, Seeded, str]) -> None:
    proxy, traffic, _ = seeded
    client = sign_in(proxy, traffic.keys["notebook-ana"])
    page = client.get("/dashboard", params={"since": "30d"}).text
    shown = int(re.search(r'id="total-requests">([\d,]+)<', page).group(1).replace(",", ""))
    assert shown == traffic.count(team="research")
    assert '<option value="support"' not in page
    assert client.get("/dashboard", params={"team": "support"}).status_code == 403
    other = next(row for row, _ in traffic.rows if row.team == "support")
    assert client.get(f"/dashboard/requests/{other.request_id}").status_code == 404
    own = next(row for row, _ in traffic.rows if row.team == "research" and row.events)
    view = client.get(f"/dashboard/requests/{own.request_id}")
    assert view.status_code == 200 and own.request_id in view.text
    assert view.headers["referrer-policy"] == "no-referrer"


def test_request_view_lists_each_stage_of_a_real_request(
        seeded: tuple[Server, Seeded, str]) -> None:
    proxy, traffic, _ = seeded
    body = {"model": "echo", "temperature": 0,
            "messages": [{"role": "user", "content": "the dashboard's own request"}],
            "tokenomy": {"team": "support", "step": "answer", "reasoning": "off"}}
    first = httpx.post(proxy.v1 + "/chat/completions", json=body,
                       headers={"authorization": f"Bearer {traffic.keys['support-web']}"},
                       timeout=30)
    assert first.status_code == 200, first.text
    client = sign_in(proxy, ADMIN)
    rid = first.headers["x-tokenomy-request-id"]
    deadline = time.monotonic() + 10
    while (view := client.get(f"/dashboard/requests/{rid}")).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    stages = re.findall(r'<tr><td class="l">([a-z_]+)</td>', view.text.split('id="stages"')[1])
    assert "budget" in stages and "response_cache" in stages, stages  # the cache missed
    assert "support-web" in view.text  # the key by its name


def test_dashboard_figures_match_the_seeded_rows(seeded: tuple[Server, Seeded, str]) -> None:
    proxy, traffic, _ = seeded
    client = sign_in(proxy, ADMIN)
    page = client.get("/dashboard", params={"team": "platform", "since": "30d"}).text

    def card(name: str) -> str:
        return re.search(rf'id="{name}"[^>]*>([^<]+)<', page).group(1)

    rows = [row for row, _ in traffic.rows if row.team == "platform"]
    assert int(card("total-requests").replace(",", "")) == len(rows)
    assert int(card("total-refused").replace(",", "")) == sum(r.outcome == "refused"
                                                               for r in rows)
    failed = sum(r.outcome in ("error", "cancelled") for r in rows)
    assert int(card("total-errors").replace(",", "")) == failed
    hits = sum(r.from_cache for r in rows)
    answered = len(rows) - sum(r.outcome != "ok" for r in rows)
    rate = hits / answered
    assert card("response-cache-rate") == (f"{rate:.1%}" if rate < 0.1 else f"{rate:.0%}")
    ok = sorted(r.latency_ms for r in rows if r.outcome == "ok")
    p50 = ok[max(0, -(-len(ok) // 2) - 1)]
    assert card("latency-p50") == (f"{p50 / 1000:.2f} s" if p50 >= 1000 else f"{p50:.0f} ms")
    assert 'id="spend"' in page and 'id="requests"' in page and 'class="burn"' in page
    assert "forecast" in page

    # Filters narrow the table: every row of status=refused is a refusal.
    refused = client.get("/dashboard", params={"status": "refused", "since": "30d"}).text
    table = refused.split('id="requests"')[-1]
    assert "pill refused" in table and "pill ok" not in table and "pill cached" not in table


def test_series_add_up_to_the_totals_on_both_bucket_sizes(
        seeded: tuple[Server, Seeded, str], tmp_path: Path) -> None:
    _, traffic, url = seeded
    budgets = Budgets.from_settings(Settings(ledger={"url": url}), background=False)
    try:
        for bucket, since in (("hour", NOW - 2 * 86400), ("day", NOW - 30 * 86400)):
            query = ReportQuery(since=since)
            report = aggregate(budgets, query, now=NOW + 1)
            view = insights(budgets, query, bucket=bucket, now=NOW + 1)  # type: ignore[arg-type]
            assert sum(p.requests for p in view.series) == report.totals.requests
            assert sum(p.total_tokens for p in view.series) == report.totals.total_tokens
            assert sum(p.refused for p in view.series) == report.totals.refused
            assert sum(p.cached for p in view.series) == report.totals.cache_hits
            starts = [p.start for p in view.series]
            step = 3600 if bucket == "hour" else 86400
            assert all(b - a == step for a, b in itertools.pairwise(starts))
        # Group totals add up for every grouping, and refusals/cache hits with them.
        for group_by in ("day", "team", "key", "step", "model", "technique"):
            report = aggregate(budgets, ReportQuery(group_by=group_by))  # type: ignore[arg-type]
            for name in ("requests", "refused", "errors", "cache_hits", "cost_usd"):
                total = getattr(report.totals, name)
                assert sum(getattr(g, name) for g in report.groups) == pytest.approx(total)
        assert aggregate(budgets, ReportQuery()).totals.requests >= len(traffic.rows)
    finally:
        budgets.close()


def test_cli_report_shows_refusals_errors_cache_hits_and_key_names(
        seeded: tuple[Server, Seeded, str]) -> None:
    from click.testing import CliRunner

    from tokenomy.cli import main

    _, traffic, url = seeded
    out = CliRunner().invoke(main, ["report", "--group-by", "key", "--db", url])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    header = lines[2]
    for column in ("refused", "errors", "cache hits", "cache read", "cache write", "hit rate"):
        assert column in header
    for name, key_id in traffic.key_ids.items():
        assert f"{name} ({key_id})" in out.stdout
    total = next(line for line in lines if line.startswith("total")).split()
    requests, refused, errors, hits = (int(v.replace(",", "")) for v in total[1:5])
    assert refused == traffic.count(outcome="refused")
    assert errors >= traffic.count(outcome="error") + traffic.count(outcome="cancelled")
    assert hits >= traffic.count(from_cache=True) and requests >= len(traffic.rows)

"""The dashboard in a real headless browser (Debian chromium + Playwright), against
a ledger seeded with realistic traffic (tokenomy.testing.traffic: four teams,
seven keys, four models, steps, refusals, errors, cache hits, seven days) plus
real requests through the proxy (a response-cache miss and hit).

Sign in through the form (the key never appears in a URL, the cookie is
HttpOnly), read the cards and charts, filter by team, key, model, status and
step, page through and open a request's view, sign out. Screenshots land in
the test's folder, and in docs/ when TOKENOMY_DOCS_SCREENSHOTS=1 (the README
shows those).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from budget_support import sqlite_url
from test_dashboard import ADMIN, seeded_config
from tokenomy.budgets.service import Budgets
from tokenomy.config import Settings
from tokenomy.testing.processes import Server, run_proxy
from tokenomy.testing.traffic import Seeded, seed_traffic

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[1] / "docs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent: `apt-get install -y chromium` (make browser)",
    ),
]


def _count(text: str | None) -> int:
    return int((text or "0").replace(",", ""))


async def _shot(page: Any, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=True)
    if os.environ.get("TOKENOMY_DOCS_SCREENSHOTS") == "1":
        await page.screenshot(path=str(DOCS / f"dashboard-{name}.png"), full_page=True)


def _real_traffic(proxy: Server, traffic: Seeded) -> list[str]:
    """Requests through the proxy: a miss, then a hit of the response cache."""
    body = {"model": "echo", "temperature": 0, "tokenomy": {"step": "answer"},
            "messages": [{"role": "user", "content": "Which plan includes SSO?"}]}
    key = {"authorization": f"Bearer {traffic.keys['support-web']}"}
    ids = []
    for _ in range(20):
        response = httpx.post(proxy.v1 + "/chat/completions", json=body, headers=key, timeout=30)
        assert response.status_code == 200, response.text
        ids.append(response.headers["x-tokenomy-request-id"])
        if response.headers.get("x-tokenomy-cache") == "hit":
            return ids
        time.sleep(0.1)
    raise AssertionError("the response cache never answered")


async def test_dashboard_in_chromium(upstream: Server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    url = sqlite_url(tmp_path)
    config = seeded_config(upstream, url)
    budgets = Budgets.from_settings(Settings.model_validate(config), background=False)
    traffic = seed_traffic(budgets, requests=2400)
    budgets.close()
    with run_proxy(config, folder=tmp_path) as proxy:
        real = _real_traffic(proxy, traffic)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            context = await browser.new_context(viewport={"width": 1360, "height": 1000})
            page = await context.new_page()

            # Signing in: a form, then a cookie the page's scripts cannot read.
            response = await page.goto(proxy.url + "/dashboard")
            assert response is not None and response.status == 401
            await _shot(page, tmp_path, "login")
            await page.fill("#key", "not-a-key")
            await page.click("#sign-in")
            assert "not the admin key" in (await page.text_content("#login-error") or "")
            await page.fill("#key", ADMIN)
            async with page.expect_navigation():
                await page.click("#sign-in")
            assert page.url == proxy.url + "/dashboard" and ADMIN not in page.url
            [cookie] = await context.cookies()
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert await page.evaluate("document.cookie") == ""

            # Every team over the last 7 days: the cards, charts and budgets.
            await page.select_option("#since", "7d")
            async with page.expect_navigation():
                await page.click("#apply")
            total = len(traffic.rows) + len(real)
            assert _count(await page.text_content("#total-requests")) == total
            refused = traffic.count(outcome="refused")
            assert _count(await page.text_content("#total-refused")) == refused
            assert _count(await page.text_content("#cache-hits")) >= traffic.count(
                from_cache=True) + 1
            assert (await page.text_content("#latency-p50") or "").endswith(("ms", "s"))
            for chart in ("#spend", "#tokens", "#requests"):
                assert await page.locator(f"{chart} rect").count() > 0
                assert await page.locator(f"{chart} text").count() >= 4  # axis labels
            techniques = await page.locator("#savings .technique").all_text_contents()
            assert {"response_cache", "cache", "extractive"} <= set(techniques)
            assert await page.locator("#budgets .burn polyline").count() == 3
            assert await page.locator("#budgets .forecast").count() >= 3
            await _shot(page, tmp_path, "overview")

            # One team, grouped by key: names, not ids; the odd name shown as text.
            await page.select_option("#team", "growth")
            await page.select_option("#group_by", "key")
            async with page.expect_navigation():
                await page.click("#apply")
            assert "team=growth" in page.url and "key=" not in page.url.replace("key_id", "")
            names = await page.locator("#groups tbody td:first-child").all_text_contents()
            assert any("<b>campaign & co</b>" in n for n in names)
            assert await page.locator("#groups b").count() == 0
            assert _count(await page.text_content("#total-requests")) == traffic.count(
                team="growth")

            # The research team, one key and one model, refusals only.
            await page.select_option("#team", "research")
            async with page.expect_navigation():
                await page.click("#apply")
            await page.select_option("#key", label="notebook-ana")
            await page.select_option("#model", "gpt-4o-mini")
            await page.select_option("#status", "refused")
            async with page.expect_navigation():
                await page.click("#apply")
            expected = sum(1 for r, _ in traffic.rows if r.team == "research"
                           and r.key_id == traffic.key_ids["notebook-ana"]
                           and r.model == "gpt-4o-mini" and r.outcome == "refused"
                           and r.ts >= time.time() - 7 * 86400)
            assert _count(await page.text_content("#total-requests")) == expected
            statuses = await page.locator("#requests .pill").all_text_contents()
            assert statuses and all(s.startswith("refused") for s in statuses)

            # Support, last 24 hours in hourly buckets, with its real requests on top.
            await page.goto(proxy.url + "/dashboard?team=support&since=1d&step=answer")
            assert "hourly buckets" in (await page.text_content("header") or "")
            await _shot(page, tmp_path, "team")
            assert await page.locator("#requests tbody tr").count() >= 2
            async with page.expect_navigation():
                await page.click("#requests tbody tr:first-child a")
            assert page.url.endswith(real[-1])
            stages = await page.locator("#stages tbody td:first-child").all_text_contents()
            assert stages[-1] == "response_cache" and "budget" in stages
            assert "answered from the response cache" in (await page.text_content("#facts")
                                                          or "")
            await _shot(page, tmp_path, "request")

            # A seeded request with compression: before and after, per stage.
            seeded = next(r for r, _ in traffic.rows if any(
                e["stage"] == "compress" for e in r.events) and r.team == "research")
            await page.goto(f"{proxy.url}/dashboard/requests/{seeded.request_id}")
            row = page.locator("#stages tbody tr", has_text="compress")
            cells = await row.locator("td").all_text_contents()
            event = next(e for e in seeded.events if e["stage"] == "compress")
            assert _count(cells[2]) == event["tokens_before"]
            assert _count(cells[3]) == event["tokens_after"]

            # Signing out ends the session.
            await page.goto(proxy.url + "/dashboard")
            async with page.expect_navigation():
                await page.click("#logout")
            response = await page.goto(proxy.url + "/dashboard")
            assert response is not None and response.status == 401
            await browser.close()
    assert (tmp_path / "dashboard-overview.png").stat().st_size > 50_000

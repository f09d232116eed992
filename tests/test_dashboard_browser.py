"""The /dashboard page in a real headless browser (Debian chromium + Playwright).

Seeded teams' figures show on load; choosing a team and applying the filter
changes them; team names are escaped; a screenshot lands in the test's folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from budget_support import seed_rows, sqlite_url
from test_budget_proxy import ADMIN, proxy_config
from tokenomy.budgets.ledger import Ledger
from tokenomy.testing.processes import Server, run_proxy

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent: `apt-get install -y chromium` (make browser)",
    ),
]


def _count(text: str) -> int:
    return int(text.replace(",", ""))


async def test_dashboard_loads_filters_and_escapes(upstream: Server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    url = sqlite_url(tmp_path)
    ledger = Ledger(url).open(background=False)
    rows = seed_rows(ledger, count=120, now=time.time())
    ledger.close()
    alpha = [r for r, _ in rows if r.team == "alpha"]
    config = proxy_config(upstream, url)
    config["teams"]["alpha"] = {"tokens": 5_000_000, "window": "30d"}
    with run_proxy(config, folder=tmp_path) as proxy:
        assert httpx.get(proxy.url + "/dashboard").status_code == 401
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 1400})
            response = await page.goto(f"{proxy.url}/dashboard?key={ADMIN}&group_by=team")
            assert response is not None and response.status == 200
            assert _count(await page.text_content("#total-requests")) == len(rows)
            groups = await page.locator("#groups tbody td:first-child").all_text_contents()
            assert set(groups) == {"alpha", "beta", "<b>gamma & co</b>"}  # shown as text
            assert await page.locator("#groups b").count() == 0  # never as markup
            assert await page.locator("#spend-chart svg rect").count() > 0
            assert await page.locator("#savings-chart svg rect").count() > 0
            await page.screenshot(path=str(tmp_path / "dashboard-all.png"), full_page=True)

            await page.select_option("#team", "alpha")
            async with page.expect_navigation():
                await page.click("#apply")
            assert "team=alpha" in page.url
            assert _count(await page.text_content("#total-requests")) == len(alpha)
            total = sum(r.total_tokens for r in alpha)
            assert _count(await page.text_content("#total-tokens")) == total
            assert await page.locator("#budget-panel polyline").count() == 1  # burn-down
            assert "team alpha" in (await page.text_content("#budgets")) or ""
            await page.screenshot(path=str(tmp_path / "dashboard-alpha.png"), full_page=True)
            await browser.close()
    assert (tmp_path / "dashboard-alpha.png").stat().st_size > 10_000

"""The dashboard in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium).

Skipped (with the reason) only when Chromium or Playwright is missing outside CI; with CI=true
these run, and a missing browser is a failure. Screenshots of every page go to
test-output/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from bot.models import utcnow
from bot.storage.tables import MessageRow, ThreadRow
from bot.web.server import WebServer
from tests.web.conftest import Site
from tests.web.seed import PASSWORDS

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not IN_CI:
    if not CHROMIUM.exists():
        pytest.skip(
            "/usr/bin/chromium is missing (apt-get install -y chromium); CI runs these",
            allow_module_level=True,
        )
    pytest.importorskip("playwright.async_api", reason="playwright is not installed (pip install playwright)")

from playwright.async_api import Browser, Page, async_playwright  # noqa: E402


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the browser adds nothing database-specific (the HTTP tests cover PostgreSQL)."""
    return f"sqlite+aiosqlite:///{tmp_path}/unsource.db"


@pytest.fixture
async def served(site: Site) -> AsyncIterator[str]:
    server = WebServer(site.app, "127.0.0.1", 0)
    task = asyncio.create_task(server.run())
    await asyncio.wait_for(server.started.wait(), 10)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def sign_in(browser: Browser, base: str, user: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/")
    assert page.url.endswith("/login?next=/")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORDS[user])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    return page


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def db(site: Site, sql: str) -> Any:
    async with site.engine.connect() as c:
        return (await c.execute(text(sql))).scalar()


async def test_staff_signs_in_reads_the_overview_and_solves_a_thread_from_the_queue(
    site: Site, served: str, browser: Browser
) -> None:
    page = await sign_in(browser, served, "sam")
    await shot(page, "overview")
    total = await db(site, "select count(*) from thread where solved_at is null and state != 'solved'")
    assert int(await page.inner_text("[data-testid=total]")) == 5
    assert int(await page.inner_text("[data-testid=open]")) == total == 5
    assert await page.inner_text("[data-testid=whoami]") == "sam · staff"

    await page.click("nav >> text=Queue")
    await page.wait_for_url(f"{served}/queue")
    assert await page.locator("#queue-rows tr[data-thread]").count() == 5
    await shot(page, "queue")

    # live: a new question appears without a reload
    await page.evaluate("window.__still_here = true")
    now = utcnow()
    async with site.engine.begin() as c:
        await c.execute(
            insert(MessageRow.__table__).values(  # type: ignore[attr-defined]
                id=900,
                connector_id="local",
                external_id="q900",
                platform="jsonl",
                conversation_id="c1",
                kind="channel_post",
                author_id="newbie",
                text="is the API down right now?",
                sent_at=now,
                received_at=now,
                raw={},
                thread_id=900,
            )
        )
        await c.execute(
            insert(ThreadRow.__table__).values(  # type: ignore[attr-defined]
                id=900,
                connector_id="local",
                platform="jsonl",
                conversation_id="c1",
                root_message_id=900,
                root_external_id="q900",
                asker_id="newbie",
                state="awaiting_helper",
                priority="urgent",
                opened_at=now,
                updated_at=now,
            )
        )
    await page.wait_for_selector('#queue-rows tr[data-thread="900"]', timeout=10_000)
    assert await page.evaluate("window.__still_here") is True
    assert await page.inner_text("#queue-total") == "6"

    late = site.seeded.ids["late"]
    await page.click(f'#queue-rows tr[data-thread="{late}"] td:nth-child(3) a')
    await page.wait_for_url(f"{served}/thread/{late}")
    assert await page.inner_text("[data-testid=thread-state]") == "awaiting_helper"
    await shot(page, "thread")
    await page.click("[data-testid=solve]")
    await page.wait_for_url(f"{served}/thread/{late}?done=solve")
    assert await page.inner_text("[data-testid=thread-state]") == "solved"
    assert await db(site, f"select state from thread where id = {late}") == "solved"
    await shot(page, "thread-solved")

    for name in ("helpers", "knowledge", "trends", "config"):
        await page.goto(f"{served}/{name}")
        await shot(page, name)
    assert "**********" in await page.inner_text("[data-testid=config-text]")


async def test_viewer_sees_no_personal_data_and_is_refused_actions(
    site: Site, served: str, browser: Browser
) -> None:
    page = await sign_in(browser, served, "vic")
    tid = site.seeded.ids["pii"]
    await page.goto(f"{served}/thread/{tid}")
    body = await page.inner_text("body")
    assert site.seeded.pii_email not in body and site.seeded.pii_phone not in body
    assert site.seeded.asker_handle not in body and "[email]" in body
    await shot(page, "thread-viewer")
    await page.click("[data-testid=solve]")
    await page.wait_for_load_state()
    assert "staff role" in await page.inner_text("[data-testid=error]")
    await shot(page, "refused-viewer")
    assert await db(site, f"select state from thread where id = {tid}") == "awaiting_helper"

"""The dashboard over HTTP (httpx against the ASGI app) on real storage with known threads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config_watch import ConfigHolder
from bot.models import HealthState
from bot.web.app import create_app
from connectors.jsonl.connector import JsonlConnector
from tests.web.conftest import Site, csrf_of, signed_in
from tests.web.seed import PASSWORDS, TG_TOKEN, users_env


async def scalar(site: Site, sql: str) -> object:
    async with site.engine.connect() as c:
        return (await c.execute(text(sql))).scalar()


def as_dict(value: object) -> dict[str, Any]:
    """A JSON column as read with text(): a str on SQLite, a dict on PostgreSQL."""
    out = json.loads(value) if isinstance(value, str) else value
    assert isinstance(out, dict)
    return out


def tile(html: str, testid: str) -> str:
    m = re.search(rf'data-testid="{testid}">([^<]*)<', html)
    assert m, f"no {testid} on the page"
    return m.group(1).strip()


async def test_pages_need_sign_in(site: Site) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url="http://t") as c:
        for path in (
            "/",
            "/queue",
            "/thread/1",
            "/helpers",
            "/knowledge",
            "/trends",
            "/config",
            "/queue/rows",
        ):
            r = await c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


@pytest.mark.parametrize(
    ("user", "password", "status"),
    [
        ("sam", PASSWORDS["sam"], 303),
        ("sam", "wrong", 401),
        ("nobody", "x", 401),
        ("vic", PASSWORDS["vic"], 303),
    ],
)
async def test_sign_in(site: Site, user: str, password: str, status: int) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url="http://t") as c:
        page = await c.get("/login")
        r = await c.post("/login", data={"username": user, "password": password, "csrf": csrf_of(page.text)})
        assert r.status_code == status
        home = await c.get("/")
        assert home.status_code == (200 if status == 303 else 303)


async def test_sign_in_without_csrf_is_refused(site: Site) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url="http://t") as c:
        await c.get("/login")
        r = await c.post("/login", data={"username": "sam", "password": PASSWORDS["sam"]})
        assert r.status_code == 403
        assert (await c.get("/")).status_code == 303


async def test_overview_figures_match_the_database(site: Site) -> None:
    c = await signed_in(site.app, "vic")
    html = (await c.get("/")).text
    if site.url.startswith("postgresql"):
        in_window = await scalar(
            site, "select count(*) from thread where opened_at >= now() - interval '7 days'"
        )
    else:
        in_window = await scalar(
            site, "select count(*) from thread where opened_at >= datetime('now', '-7 days')"
        )
    assert int(tile(html, "total")) == in_window == 5
    expected = {o: list(site.seeded.outcomes.values()).count(o) for o in ("auto", "community", "staff")}
    for outcome, n in expected.items():
        assert tile(html, f"count-{outcome}") == f"{n} threads"
        assert tile(html, f"share-{outcome}") == f"{n / 5:.0%}"
    open_states = await scalar(site, "select count(*) from thread where state not in ('solved', 'closed')")
    assert int(tile(html, "open")) == open_states == 5
    assert tile(html, "state-awaiting_helper") == "2"
    assert tile(html, "sla") == "50%"  # auto + helped met; private + late breached; pii pending
    assert tile(html, "frt") == "1h 05m / 1h 49m"  # 10 min and 120 min
    assert tile(html, "savings") == "20 USD"  # 2 resolved without staff x 10


async def test_csrf_and_roles_on_actions(site: Site) -> None:
    tid = site.seeded.ids["late"]
    staff = await signed_in(site.app, "sam")
    viewer = await signed_in(site.app, "vic")
    # no token, a wrong token, a foreign origin: refused, nothing changes
    assert (await staff.post(f"/thread/{tid}/solve")).status_code == 403
    assert (await staff.post(f"/thread/{tid}/solve", data={"csrf": "forged"})).status_code == 403
    token = csrf_of((await staff.get(f"/thread/{tid}")).text)
    r = await staff.post(
        f"/thread/{tid}/solve", data={"csrf": token}, headers={"origin": "http://evil.example"}
    )
    assert r.status_code == 403
    # a viewer with a valid token is refused too
    vtoken = csrf_of((await viewer.get(f"/thread/{tid}")).text)
    r = await viewer.post(f"/thread/{tid}/solve", data={"csrf": vtoken})
    assert r.status_code == 403 and "staff role" in r.text
    assert await scalar(site, f"select state from thread where id = {tid}") == "awaiting_helper"
    # staff with the token: done, and audited
    r = await staff.post(f"/thread/{tid}/solve", data={"csrf": token})
    assert r.status_code == 303
    assert await scalar(site, f"select state from thread where id = {tid}") == "solved"
    assert (
        await scalar(site, f"select actor || ':' || action from web_action where thread_id = {tid}")
        == "sam:solved"
    )
    r = await staff.post(f"/thread/{tid}/reopen", data={"csrf": token})
    assert await scalar(site, f"select state from thread where id = {tid}") == "reopened"


async def test_reply_goes_through_the_outbox_once(site: Site) -> None:
    tid = site.seeded.ids["pii"]
    staff = await signed_in(site.app, "sam")
    page = (await staff.get(f"/thread/{tid}")).text
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page)
    assert nonce
    form = {"csrf": csrf_of(page), "nonce": nonce.group(1), "text": "We are on it."}
    assert (await staff.post(f"/thread/{tid}/reply", data=form)).status_code == 303
    assert (await staff.post(f"/thread/{tid}/reply", data=form)).status_code == 303  # double submit
    rows = await scalar(
        site, f"select count(*) from outbox where purpose = 'staff_reply' and thread_id = {tid}"
    )
    assert rows == 1
    key = await scalar(site, "select idempotency_key from outbox where purpose = 'staff_reply'")
    assert key == f"t{tid}:web:reply:{nonce.group(1)}"


async def test_reassign_tags_the_helper_and_sets_the_assignee(site: Site) -> None:
    tid = site.seeded.ids["late"]
    staff = await signed_in(site.app, "sam")
    page = (await staff.get(f"/thread/{tid}")).text
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page)
    assert nonce
    r = await staff.post(
        f"/thread/{tid}/reassign", data={"csrf": csrf_of(page), "nonce": nonce.group(1), "helper": "Bo"}
    )
    assert r.status_code == 303
    assert await scalar(site, f"select assignee from sla_thread where thread_id = {tid}") == "Bo"
    payload = await scalar(
        site, f"select payload from outbox where purpose in ('sla_assign', 'reassign') and thread_id = {tid}"
    )
    mentions = as_dict(payload)["mentions"]
    assert [m["user_id"] for m in mentions] == ["bo"]
    queue = (await staff.get("/queue")).text
    assert "→ Bo" in queue


async def test_snooze_hides_the_thread_from_the_queue(site: Site) -> None:
    tid = site.seeded.ids["late"]
    staff = await signed_in(site.app, "sam")
    token = csrf_of((await staff.get(f"/thread/{tid}")).text)
    assert f'href="/thread/{tid}"' in (await staff.get("/queue/rows")).text
    assert (await staff.post(f"/thread/{tid}/snooze", data={"csrf": token, "for": "4h"})).status_code == 303
    assert f'href="/thread/{tid}"' not in (await staff.get("/queue/rows")).text
    assert f'href="/thread/{tid}"' in (await staff.get("/queue/rows?snoozed=1")).text


async def test_viewer_never_sees_personal_data(site: Site) -> None:
    s = site.seeded
    tid = s.ids["pii"]
    viewer = await signed_in(site.app, "vic")
    staff = await signed_in(site.app, "sam")
    pages = [f"/thread/{tid}", "/queue", "/queue/rows", f"/thread/{s.ids['private']}", "/trends", "/config"]
    for path in pages:
        body = (await viewer.get(path)).text
        for secret in (s.pii_email, s.pii_phone, "4111 1111 1111 1111", s.asker_handle, TG_TOKEN):
            assert secret not in body, (path, secret)
    staff_view = (await staff.get(f"/thread/{tid}")).text
    assert s.pii_email in staff_view and s.asker_handle in staff_view
    assert "[email]" in (await viewer.get(f"/thread/{tid}")).text


async def test_config_page_hides_secrets(site: Site) -> None:
    staff = await signed_in(site.app, "sam")
    body = (await staff.get("/config")).text
    assert TG_TOKEN not in body and TG_TOKEN.split(":")[1] not in body
    assert "**********" in body
    assert 'data-testid="validation"><span class="ok">valid' in body


async def test_queue_filters(site: Site) -> None:
    viewer = await signed_in(site.app, "vic")
    everything = (await viewer.get("/queue/rows")).text
    assert everything.count("data-thread=") == 5
    r = await viewer.get("/queue/rows?state=awaiting_helper")
    assert r.text.count("data-thread=") == 2 and r.headers["x-queue-total"] == "2"
    assert (await viewer.get("/queue/rows?platform=nope")).text.count("data-thread=") == 0
    assert (await viewer.get("/queue/rows?topic=login")).text.count("data-thread=") == 2


async def test_knowledge_retire_by_staff(site: Site) -> None:
    async with site.engine.begin() as c:
        await c.execute(
            text(
                "insert into knowledge_entry (id, title, body, answer, votes, served, accepted, rejected,"
                " retired, source, created_at, updated_at) values"
                " ('kb1', 'Reset password', '', 'Use Settings', 0, 7, 3, 1, false, 'import',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    staff = await signed_in(site.app, "sam")
    page = (await staff.get("/knowledge")).text
    assert "Reset password" in page and ">7<" in page
    r = await staff.post("/knowledge/retire", data={"csrf": csrf_of(page), "id": "kb1"})
    assert r.status_code == 303
    assert await scalar(site, "select retired from knowledge_entry where id = 'kb1'") in (True, 1)


class _Runtime:
    def __init__(self, connectors: dict[str, JsonlConnector], scheduler: AsyncIOScheduler) -> None:
        self.connectors = connectors
        self.scheduler = scheduler


async def test_healthz_status_codes(site: Site, tmp_path: Path) -> None:
    from connectors.jsonl.connector import JsonlSettings

    conn = JsonlConnector(
        "local", JsonlSettings(inbound=tmp_path / "in.jsonl", outbound=tmp_path / "out.jsonl")
    )
    conn.set_health(HealthState.OK)
    scheduler = AsyncIOScheduler()
    app = create_app(
        ConfigHolder(site.config),
        site.sessions,
        runtime=_Runtime({"local": conn}, scheduler),
        env=users_env(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/healthz")
        assert r.status_code == 503 and r.json()["scheduler"] == "stopped"
        scheduler.start()
        try:
            r = await c.get("/healthz")
            assert r.status_code == 200 and r.json()["database"] == "ok", r.json()
            conn.set_health(HealthState.DEGRADED, "rate limited")
            r = await c.get("/healthz")
            assert r.status_code == 503 and r.json()["connectors"]["local"]["state"] == "degraded"
        finally:
            scheduler.shutdown(wait=False)
        await site.engine.dispose()
        bad = create_app(ConfigHolder(site.config), _broken_sessions(), runtime=None, env=users_env())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bad), base_url="http://t") as c2:
            r = await c2.get("/healthz")
            assert r.status_code == 503 and r.json()["database"].startswith("down")


def _broken_sessions() -> async_sessionmaker[AsyncSession]:
    from bot.storage.engine import create_engine, session_factory

    return session_factory(create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"))  # refused


async def test_metrics_in_prometheus_format(site: Site, tmp_path: Path) -> None:
    from connectors.jsonl.connector import JsonlSettings

    conn = JsonlConnector("x", JsonlSettings(inbound=tmp_path / "in.jsonl", outbound=tmp_path / "out.jsonl"))
    conn.set_health(HealthState.OK, est_cost_usd=1.25, throttled=3)
    app = create_app(
        ConfigHolder(site.config),
        site.sessions,
        runtime=_Runtime({"x": conn}, AsyncIOScheduler()),
        env=users_env(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.text)
        for s in fam.samples
    }
    msgs = await scalar(site, "select count(*) from message where connector_id = 'local'")
    assert samples[("unsource_messages_in_total", (("connector", "local"),))] == msgs
    assert samples[("unsource_decisions_total", (("kind", "tag_helpers"),))] == 4
    assert samples[("unsource_outbox_depth", (("state", "sent"),))] == 4
    assert samples[("unsource_outbox_depth", (("state", "pending"),))] == 0
    assert samples[("unsource_x_api_cost_usd", (("connector", "x"),))] == 1.25
    assert samples[("unsource_platform_rate_limited_total", (("connector", "x"),))] == 3
    assert samples[("unsource_sla_breaches_total", ())] == 0
    assert samples[("unsource_open_threads", ())] == 5


async def test_reassigning_a_private_thread_notifies_the_helper_privately(site: Site) -> None:
    tid = site.seeded.ids["private"]
    staff = await signed_in(site.app, "sam")
    page = (await staff.get(f"/thread/{tid}")).text
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page)
    assert nonce
    form = {"csrf": csrf_of(page), "nonce": nonce.group(1), "helper": "Bo"}
    assert (await staff.post(f"/thread/{tid}/reassign", data=form)).status_code == 303
    raw = await scalar(
        site, f"select payload from outbox where thread_id = {tid} and purpose != 'tag_helpers'"
    )
    payload = as_dict(raw)
    assert payload["private_to"] == "bo" and payload["mentions"] == []
    assert "4111" not in payload["text"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/queue", "/queue"), ("//evil.example/", "/"), ("/\\evil.example", "/"), ("https://evil.example", "/")],
)
async def test_sign_in_redirects_only_inside_the_dashboard(site: Site, target: str, expected: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url="http://t") as c:
        page = await c.get("/login")
        form = {"username": "vic", "password": PASSWORDS["vic"], "csrf": csrf_of(page.text), "next": target}
        r = await c.post("/login", data=form)
        assert r.status_code == 303 and r.headers["location"] == expected


async def test_knowledge_edit_and_merge_by_staff(site: Site) -> None:
    async with site.engine.begin() as c:
        for eid, served, accepted in (("kb1", 7, 3), ("kb2", 2, 1)):
            await c.execute(
                text(
                    "insert into knowledge_entry (id, title, body, answer, votes, served, accepted, rejected,"
                    " retired, source, created_at, updated_at) values"
                    f" ('{eid}', 'Reset password', '', 'Use Settings', 0, {served}, {accepted}, 0, false,"
                    " 'import', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
    staff = await signed_in(site.app, "sam")
    viewer = await signed_in(site.app, "vic")
    token = csrf_of((await staff.get("/knowledge")).text)
    edit = {"csrf": token, "id": "kb1", "title": "Reset your password", "answer": "Settings > Security"}
    vtoken = csrf_of((await viewer.get("/knowledge")).text)
    assert (await viewer.post("/knowledge/edit", data={**edit, "csrf": vtoken})).status_code == 403
    assert (await staff.post("/knowledge/edit", data=edit)).status_code == 303
    assert await scalar(site, "select title || '|' || answer from knowledge_entry where id = 'kb1'") == (
        "Reset your password|Settings > Security"
    )
    r = await staff.post("/knowledge/merge", data={"csrf": token, "id": "kb2", "keep": "kb1"})
    assert r.status_code == 303
    assert (
        await scalar(site, "select served || ':' || accepted from knowledge_entry where id = 'kb1'") == "9:4"
    )
    assert await scalar(site, "select retired from knowledge_entry where id = 'kb2'") in (True, 1)
    bad = await staff.post("/knowledge/merge", data={"csrf": token, "id": "kb1", "keep": "kb1"})
    assert bad.status_code == 409

"""Fixtures for the dashboard: a migrated database with known threads, and the ASGI app on it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from bot.config_watch import ConfigHolder
from bot.models import utcnow
from bot.settings import Config
from bot.storage.engine import create_engine, session_factory
from bot.web.app import create_app
from tests.web.seed import PASSWORDS, Seeded, make_config, seed, users_env


@dataclass
class Site:
    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    app: Starlette
    seeded: Seeded
    url: str


@pytest.fixture
async def site(migrated: str, tmp_path: Path) -> AsyncIterator[Site]:
    config = make_config(tmp_path, migrated)
    engine = create_engine(migrated)
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        seeded = await seed(s, utcnow())
    app = create_app(ConfigHolder(config), sessions, env=users_env())
    try:
        yield Site(config, engine, sessions, app, seeded, migrated)
    finally:
        await engine.dispose()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


async def signed_in(app: Starlette, user: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    page = await client.get("/login")
    r = await client.post(
        "/login",
        data={"username": user, "password": PASSWORDS[user], "csrf": csrf_of(page.text), "next": "/"},
    )
    assert r.status_code == 303, r.text
    return client

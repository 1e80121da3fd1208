"""Shared fixtures: database URLs (SQLite always; PostgreSQL when UNSOURCE_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

PG_ENV = "UNSOURCE_TEST_DATABASE_URL"


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


async def _pg_admin(base: str, sql: str) -> None:
    import asyncpg

    dsn = base.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def fresh_pg_url(base: str) -> Iterator[str]:
    """A new, empty database on the server of ``base``; dropped afterwards.

    When the variable is set and the server is unreachable, this FAILS (never skips)."""
    name = f"unsource_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage/pipeline test runs on SQLite, and on PostgreSQL when a URL is given."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/unsource.db"
        return
    base = pg_base_url()
    if base is None:
        pytest.skip(f"{PG_ENV} not set (CI sets it)")
    yield from fresh_pg_url(base)


@pytest.fixture
async def migrated(db_url: str) -> AsyncIterator[str]:
    from bot.storage import migrate

    await migrate.upgrade(db_url)
    yield db_url

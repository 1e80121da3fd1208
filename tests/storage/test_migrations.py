"""Migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from bot.storage import migrate
from bot.storage.engine import create_engine
from bot.storage.tables import metadata


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, metadata))


async def test_head_matches_the_models(migrated: str) -> None:
    engine = create_engine(migrated)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ: {diff[:5]}"


async def test_upgrade_is_idempotent_and_reports_head(migrated: str) -> None:
    await migrate.upgrade(migrated)  # again: nothing to do
    head = sorted(p.name for p in migrate.MIGRATIONS.joinpath("versions").glob("0*.py"))[-1].split("_")[0]
    assert await migrate.current_revision(migrated) == head

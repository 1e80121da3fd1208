"""Dialect-specific statements (SQLite and PostgreSQL both support ON CONFLICT)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert(dialect: str, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for this dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database dialect {dialect!r} (use SQLite or PostgreSQL)")


def dialect_of(session: AsyncSession) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return session.get_bind().dialect.name

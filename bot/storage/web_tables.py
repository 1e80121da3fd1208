"""The dashboard's own table: an audit trail of staff actions taken in the web UI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from bot.models import utcnow
from bot.storage.tables import BigId, DecisionRow, MessageRow, ThreadRow


class WebActionRow(SQLModel, table=True):
    """One staff action (solve, reopen, snooze, reassign, reply, knowledge edit) and who took it."""

    __tablename__ = "web_action"
    __table_args__ = (Index("ix_web_action_thread", "thread_id", "created_at"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    thread_id: int | None = Field(default=None, sa_type=BigId)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


class OverviewDayRow(SQLModel, table=True):
    """One settled UTC day of the overview's figures, pre-aggregated (bot/analytics/rollup.py).

    ``fingerprint`` names the settings the figures depend on (SLA policies, staff identities);
    ``computed_at`` is compared with the day's threads' ``updated_at`` to know it is still valid.
    """

    __tablename__ = "overview_day"

    fingerprint: str = Field(primary_key=True, max_length=64)
    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD (UTC)
    computed_at: datetime
    figures: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


# Indexes on core tables that the dashboard's window queries need (100,000+ threads):
# created here so that they live with the feature that uses them (migration 0004).
_THREAD = ThreadRow.__table__  # type: ignore[attr-defined]
_DECISION = DecisionRow.__table__  # type: ignore[attr-defined]
_MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
# the overview reads these columns of every thread opened in the window from the index alone
Index(
    "ix_thread_opened",
    *(
        _THREAD.c[name]
        for name in (
            "opened_at",
            "platform",
            "connector_id",
            "conversation_id",
            "state",
            "priority",
            "topic",
            "first_response_at",
            "root_message_id",
        )
    ),
)
# the roll-up validity check: the latest update of each day's threads, from the index alone
Index("ix_thread_opened_updated", _THREAD.c.opened_at, _THREAD.c.updated_at)
# covering indexes: the overview reads (kind, message id) of recent decisions and the thread ids
# of recent messages by helpers/staff without touching the tables
Index("ix_decision_created", _DECISION.c.kind, _DECISION.c.created_at, _DECISION.c.message_id)
Index(
    "ix_message_author",
    _MESSAGE.c.connector_id,
    _MESSAGE.c.author_id,
    _MESSAGE.c.sent_at,
    _MESSAGE.c.thread_id,
)

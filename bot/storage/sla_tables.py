"""SLA tables: the deadlines (one row per stage of a running clock), per-thread SLA state set by
staff commands, and webhook/e-mail deliveries (which are not connector sends).

The database is the source of truth for deadlines: APScheduler only runs a short sweep that
claims due rows (``state = 'pending' AND due_at <= now``, index ``ix_sla_stage_due``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.models import utcnow
from bot.storage.tables import BigId


def _pk() -> Any:
    return Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))


class SlaStageRow(SQLModel, table=True):
    """One stage of one clock of one thread. pending -> fired | cancelled (exactly once)."""

    __tablename__ = "sla_stage"
    __table_args__ = (
        UniqueConstraint("thread_id", "clock", "cycle", "policy", "stage", name="uq_sla_stage"),
        Index("ix_sla_stage_due", "state", "due_at"),
        Index("ix_sla_stage_thread", "thread_id", "state"),
    )

    id: int | None = _pk()
    thread_id: int = Field(sa_type=BigId)
    policy: str = Field(max_length=64)
    clock: str = Field(max_length=16)  # first_response | next_response | resolution
    cycle: int = Field(sa_type=BigId)  # id of the message that started the clock
    stage: int  # index in the policy's ladder
    action: str = Field(max_length=16)  # warn | remind | widen | escalate
    at: str = Field(max_length=16)  # "50%" / "45m", as configured
    started_at: datetime
    due_at: datetime
    state: str = Field(default="pending", max_length=16)  # pending | fired | cancelled
    fired_at: datetime | None = None
    fired_by: str | None = Field(default=None, max_length=128)
    note: str | None = Field(default=None, max_length=255)  # why cancelled / snoozed
    created_at: datetime = Field(default_factory=utcnow)


class SlaThreadRow(SQLModel, table=True):
    """SLA facts about a thread beyond its deadlines: priority override, assignee, snooze, close."""

    __tablename__ = "sla_thread"

    thread_id: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    priority: str | None = Field(default=None, max_length=16)  # raised by a later message
    assignee: str | None = Field(default=None, max_length=128)  # helper/staff name from config
    snoozed_until: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = Field(default=None, max_length=128)
    updated_at: datetime = Field(default_factory=utcnow)


class SlaDeliveryRow(SQLModel, table=True):
    """A webhook POST or an e-mail for a fired stage, unique by key, retried with backoff."""

    __tablename__ = "sla_delivery"
    __table_args__ = (Index("ix_sla_delivery_due", "state", "next_try_at"),)

    id: int | None = _pk()
    idempotency_key: str = Field(max_length=255, unique=True)
    thread_id: int | None = Field(default=None, sa_type=BigId)
    target: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # webhook | email
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    state: str = Field(default="pending", max_length=16)  # pending | sending | sent | retry | failed
    attempts: int = 0
    next_try_at: datetime = Field(default_factory=utcnow)
    last_error: str | None = None
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None

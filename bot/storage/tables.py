"""Database tables (SQLModel). Schema changes go through Alembic migrations.

Datetimes are aware UTC (sqlmodel 0.0.50 maps ``datetime`` to its UTCDateTime type and
refuses naive values). Platform ids are strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.models import utcnow

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _pk() -> Any:
    return Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))


class MessageRow(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("connector_id", "external_id", name="uq_message_connector_external"),
        Index("ix_message_thread", "thread_id"),
        Index("ix_message_conversation", "connector_id", "conversation_id", "thread_ref"),
    )

    id: int | None = _pk()
    connector_id: str = Field(max_length=64)
    external_id: str = Field(max_length=255)
    platform: str = Field(max_length=32)
    conversation_id: str = Field(max_length=255)
    thread_ref: str | None = Field(default=None, max_length=255)
    kind: str = Field(max_length=32)
    author_id: str = Field(max_length=255)
    author_handle: str | None = Field(default=None, max_length=255)
    author_name: str | None = Field(default=None, max_length=255)
    author_is_bot: bool = False
    text: str = ""
    sent_at: datetime
    received_at: datetime = Field(default_factory=utcnow)
    reply_to_id: str | None = Field(default=None, max_length=255)
    target_id: str | None = Field(default=None, max_length=255)
    mentions_bot: bool = False
    is_private: bool = False
    title: str | None = None
    reaction: str | None = Field(default=None, max_length=64)
    button_data: str | None = Field(default=None, max_length=255)
    permalink: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    thread_id: int | None = Field(default=None, sa_type=BigId)


class CursorRow(SQLModel, table=True):
    __tablename__ = "connector_cursor"

    connector_id: str = Field(primary_key=True, max_length=64)
    value: str
    updated_at: datetime = Field(default_factory=utcnow)


class WorkItemRow(SQLModel, table=True):
    """One message waiting for triage. Claimed with a lease; done exactly once."""

    __tablename__ = "work_item"
    __table_args__ = (Index("ix_work_item_state", "state", "available_at"),)

    id: int | None = _pk()
    message_id: int = Field(sa_type=BigId, unique=True)
    state: str = Field(default="pending", max_length=16)  # pending | claimed | done | failed
    available_at: datetime = Field(default_factory=utcnow)  # not before (deferrals)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None


class ThreadRow(SQLModel, table=True):
    __tablename__ = "thread"
    __table_args__ = (
        UniqueConstraint("connector_id", "root_external_id", name="uq_thread_root"),
        Index("ix_thread_lookup", "connector_id", "conversation_id", "thread_ref"),
        Index("ix_thread_state", "state"),
    )

    id: int | None = _pk()
    connector_id: str = Field(max_length=64)
    platform: str = Field(max_length=32)
    conversation_id: str = Field(max_length=255)
    thread_ref: str | None = Field(default=None, max_length=255)
    root_message_id: int = Field(sa_type=BigId)
    root_external_id: str = Field(max_length=255)
    asker_id: str = Field(max_length=255)
    asker_handle: str | None = Field(default=None, max_length=255)
    is_private: bool = False
    state: str = Field(default="new", max_length=32)
    topic: str | None = Field(default=None, max_length=128)
    language: str | None = Field(default=None, max_length=16)
    priority: str = Field(default="normal", max_length=16)
    sensitive: str | None = Field(default=None, max_length=64)
    message_count: int = 1
    opened_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    first_response_at: datetime | None = None
    solved_at: datetime | None = None


class DecisionRow(SQLModel, table=True):
    """The triage decision for one message (unique: a message is triaged exactly once)."""

    __tablename__ = "decision"

    id: int | None = _pk()
    message_id: int = Field(sa_type=BigId, unique=True)
    thread_id: int | None = Field(default=None, sa_type=BigId, index=True)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    decided_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class OutboxRow(SQLModel, table=True):
    """One outbound message. ``idempotency_key`` is unique: a restart never sends twice."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_try_at"),)

    id: int | None = _pk()
    idempotency_key: str = Field(max_length=255, unique=True)
    connector_id: str = Field(max_length=64)
    conversation_id: str = Field(max_length=255)
    thread_id: int | None = Field(default=None, sa_type=BigId, index=True)
    message_id: int | None = Field(default=None, sa_type=BigId)  # the inbound message that caused it
    purpose: str = Field(default="reply", max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # an OutboundMessage
    state: str = Field(default="pending", max_length=16)  # pending|sending|sent|retry|failed
    attempts: int = 0
    next_try_at: datetime = Field(default_factory=utcnow)
    last_error: str | None = None
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    receipt: dict[str, Any] | None = Field(default=None, sa_type=JSON)


metadata = SQLModel.metadata

# tables defined in their own modules register on the same metadata (for Alembic)
from bot.storage import (  # noqa: E402
    community_tables,  # noqa: F401
    knowledge_tables,  # noqa: F401
    sla_tables,  # noqa: F401
    web_tables,  # noqa: F401
)

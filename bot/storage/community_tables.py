"""Community tables: helper profiles (overrides of config), identities, tags, per-thread facts
(accepted answer, served auto-answer), per-topic stats and the points ledger (docs/community.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.models import utcnow
from bot.storage.tables import BigId


class HelperRow(SQLModel, table=True):
    """One helper. Profile columns left NULL fall back to ``config.yaml`` (config helpers);
    counters are kept here so routing reads one row per helper."""

    __tablename__ = "community_helper"

    name: str = Field(primary_key=True, max_length=128)
    display: str | None = Field(default=None, max_length=255)
    source: str = Field(default="config", max_length=16)  # config | self | staff
    active: bool | None = None  # NULL: as config (a config helper is active)
    topics: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    languages: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    timezone: str | None = Field(default=None, max_length=64)
    hours: str | None = Field(default=None, max_length=16)
    max_open: int | None = None
    away: bool = False
    away_until: datetime | None = None
    points: int = 0
    accepted: int = 0
    rejected: int = 0
    rating_sum: int = 0
    rating_count: int = 0
    last_tagged_at: datetime | None = None
    rank: str | None = Field(default=None, max_length=64)  # the highest rank announced/reached
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class HelperIdentityRow(SQLModel, table=True):
    """A platform account of a helper (added by a command; config identities live in config)."""

    __tablename__ = "community_identity"

    connector_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(primary_key=True, max_length=255)
    helper: str = Field(max_length=128, index=True)
    handle: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)


class HelperTagRow(SQLModel, table=True):
    """A helper tagged on a thread, and what they did: tagged | claimed | declined | answered."""

    __tablename__ = "community_tag"
    __table_args__ = (
        UniqueConstraint("thread_id", "helper", name="uq_community_tag"),
        Index("ix_community_tag_helper", "helper", "state"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    thread_id: int = Field(sa_type=BigId)
    helper: str = Field(max_length=128)
    state: str = Field(default="tagged", max_length=16)
    why: str | None = Field(default=None, max_length=255)
    tagged_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ThreadFactsRow(SQLModel, table=True):
    """What the community loop knows about a thread: the auto-answer served, the last helper
    answer, the accepted answer and who gets credit, the knowledge entry it became."""

    __tablename__ = "community_thread"

    thread_id: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    auto_entry_id: str | None = Field(default=None, max_length=128)
    answer_helper: str | None = Field(default=None, max_length=128)
    answer_message_id: int | None = Field(default=None, sa_type=BigId)
    accepted_helper: str | None = Field(default=None, max_length=128)
    accepted_message_id: int | None = Field(default=None, sa_type=BigId)
    accepted_entry_id: str | None = Field(default=None, max_length=128)  # an auto-answer accepted
    solved_by: str | None = Field(default=None, max_length=32)  # asker | helper | staff
    knowledge_entry_id: str | None = Field(default=None, max_length=128)
    rating: int | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class TopicStatRow(SQLModel, table=True):
    """Accepted/rejected answers of a helper in one topic (expertise by history)."""

    __tablename__ = "community_topic_stat"

    helper: str = Field(primary_key=True, max_length=128)
    topic: str = Field(primary_key=True, max_length=128)
    accepted: int = 0
    rejected: int = 0


class PointsRow(SQLModel, table=True):
    """The points ledger: one row per award, unique by ``key`` (awarded at most once)."""

    __tablename__ = "community_points"
    __table_args__ = (
        Index("ix_community_points_at", "created_at"),
        Index("ix_community_points_helper", "helper", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    key: str = Field(max_length=255, unique=True)
    helper: str = Field(max_length=128)
    points: int
    reason: str = Field(max_length=32)  # accepted | auto_accepted | helpful | kudos | first_response | rating
    thread_id: int | None = Field(default=None, sa_type=BigId)
    topic: str | None = Field(default=None, max_length=128)
    by: str | None = Field(default=None, max_length=255)  # who gave it (user id), for kudos/votes
    created_at: datetime = Field(default_factory=utcnow)


def table(model: Any) -> Any:
    return model.__table__

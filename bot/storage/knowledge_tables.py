"""The knowledge base in the database: the source of truth the matcher's index is built from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from bot.models import utcnow
from bot.storage.tables import BigId


class KnowledgeRow(SQLModel, table=True):
    """One past question and its accepted answer (from a solved thread, an import, or staff)."""

    __tablename__ = "knowledge_entry"
    __table_args__ = (Index("ix_knowledge_updated", "updated_at"),)

    id: str = Field(primary_key=True, max_length=128)
    title: str
    body: str = ""
    answer: str = ""
    answer_id: str | None = Field(default=None, max_length=128)
    credit: str | None = Field(default=None, max_length=255)
    credit_helper: str | None = Field(default=None, max_length=255)  # helper name, for points
    link: str | None = None
    topic: str | None = Field(default=None, max_length=128)
    language: str | None = Field(default=None, max_length=16)
    votes: int = 0
    served: int = 0
    accepted: int = 0
    rejected: int = 0
    retired: bool = False
    source: str = Field(default="import", max_length=32)  # import | thread | staff
    thread_id: int | None = Field(default=None, sa_type=BigId)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

"""Triage settings (the triage helper replaces this minimal version with the full model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TopicSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    keywords: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)


class TriageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    topics: list[TopicSettings] = Field(default_factory=list)

"""Typed configuration models and ``load_config``.

``config.yaml`` at the repository root is the shipped, commented configuration. Every section
is a model with ``extra="forbid"``; every error is reported at once with its path and line
(see :mod:`bot.config_loader`). Secrets come only from ``${ENV_VARS}`` and are ``SecretStr``
in the connector models, so they never print.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.config_loader import (
    LoadedYaml,
    Loc,
    missing_env_problems,
    problems_from_validation,
    read_yaml,
)
from bot.config_types import Duration
from bot.errors import ConfigError, ConfigProblem
from bot.models import utcnow
from connectors import registry
from connectors.base import AnyConnector, ConnectorSettings
from triage.config import TriageSettings


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(Section):
    url: str = Field(
        default="sqlite+aiosqlite:///data/unsource.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
    )
    auto_upgrade: bool = Field(default=True, description="apply database migrations on start")
    pool_size: int = Field(default=10, ge=1, le=200)
    busy_timeout: Duration = Field(default=timedelta(seconds=30), description="SQLite lock wait")

    @field_validator("url")
    @classmethod
    def _async_driver(cls, v: str) -> str:
        if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", v):
            raise ValueError("expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB")
        return v


class LoggingSettings(Section):
    format: Literal["keyvalue", "json"] = "keyvalue"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ConnectorEntry(Section):
    type: str = Field(description="registry name: jsonl, telegram, discord, twitter, or a plugin's")
    enabled: bool | Literal["auto"] = Field(
        default="auto", description="auto: enabled when every ${VAR} it references is set"
    )
    settings: dict[str, Any] = Field(default_factory=dict)


class PipelineSettings(Section):
    workers: int = Field(default=2, ge=1, le=64, description="concurrent triage workers per process")
    queue_size: int = Field(default=1000, ge=10, description="bound of each in-process queue")
    claim_batch: int = Field(default=200, ge=1, le=5000, description="work items claimed per round trip")
    lease: Duration = Field(default=timedelta(seconds=60), description="a claim older than this is retaken")
    idle_poll: Duration = Field(default=timedelta(milliseconds=200), description="wait when no work")


class DispatcherSettings(Section):
    concurrency: int = Field(default=8, ge=1, le=256)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base: Duration = timedelta(seconds=2)
    backoff_cap: Duration = timedelta(minutes=10)
    idle_poll: Duration = timedelta(milliseconds=200)


class HelperEntry(Section):
    name: str
    role: Literal["helper", "staff"] = "helper"
    identities: dict[str, str] = Field(default_factory=dict, description="connector id -> platform user id")
    handles: dict[str, str] = Field(default_factory=dict, description="connector id -> @handle (no @)")
    topics: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=lambda: ["en"])
    timezone: str = "UTC"
    hours: str | None = Field(default=None, description='local working hours like "09:00-17:00"')
    max_open: int = Field(default=5, ge=0)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like Europe/Berlin)") from None
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d", v):
            raise ValueError('expected hours like "09:00-17:00"')
        return v


class StaffSettings(Section):
    connector: str | None = Field(default=None, description="connector id of the private staff channel")
    conversation: str | None = Field(default=None, description="staff chat/channel id on that connector")


class SlaMatch(Section):
    priority: list[str] = Field(default_factory=list)
    topic: list[str] = Field(default_factory=list)
    connector: list[str] = Field(default_factory=list)
    channel: list[str] = Field(default_factory=list)


class SlaStage(Section):
    at: str = Field(description='when, relative to the target: "50%", "100%", "150%" or a duration "45m"')
    action: Literal["warn", "remind", "widen", "escalate"]

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        if re.fullmatch(r"\d+(\.\d+)?%", v.strip()):
            return v.strip()
        from bot.config_types import parse_duration

        parse_duration(v)
        return v.strip()


class SlaPolicy(Section):
    name: str
    match: SlaMatch = Field(default_factory=SlaMatch)
    first_response: Duration
    next_response: Duration | None = None
    resolution: Duration | None = None
    calendar: str = Field(default="24/7", description='"24/7" or a calendar name from sla.calendars')
    stages: list[SlaStage] = Field(default_factory=list)


class SlaSettings(Section):
    sweep_interval: Duration = timedelta(seconds=5)
    policies: list[SlaPolicy] = Field(
        default_factory=lambda: [
            SlaPolicy(
                name="default",
                first_response=timedelta(hours=1),
                stages=[
                    SlaStage(at="50%", action="remind"),
                    SlaStage(at="100%", action="widen"),
                    SlaStage(at="150%", action="escalate"),
                ],
            )
        ]
    )


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class Settings(Section):
    data_dir: Path = Field(default=Path("data"), description="where the SQLite file and indexes live")
    storage: StorageSettings = Field(default_factory=StorageSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    connectors: dict[str, ConnectorEntry] = Field(default_factory=dict)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    helpers: list[HelperEntry] = Field(default_factory=list)
    staff: StaffSettings = Field(default_factory=StaffSettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    web: WebSettings = Field(default_factory=WebSettings)


@dataclass(frozen=True)
class ConfiguredConnector:
    id: str
    type: str
    cls: builtins.type[AnyConnector] | None
    settings: ConnectorSettings | None
    enabled: bool
    note: str = ""  # why it is disabled, for the summary


@dataclass(frozen=True)
class Config:
    """A validated configuration: the typed settings plus the connectors it enables."""

    settings: Settings
    connectors: tuple[ConfiguredConnector, ...]
    source: Path | None = None
    loaded_at: datetime = field(default_factory=utcnow)

    @property
    def enabled_connectors(self) -> tuple[ConfiguredConnector, ...]:
        return tuple(c for c in self.connectors if c.enabled)

    def summary_lines(self) -> list[str]:
        s = self.settings
        lines = [f"storage: {redact_url(s.storage.url)}"]
        for c in self.connectors:
            state = "enabled" if c.enabled else f"disabled ({c.note})" if c.note else "disabled"
            lines.append(f"connector {c.id}: type {c.type}, {state}")
        topics = [t.name for t in s.triage.topics]
        lines.append(f"topics ({len(topics)}): {', '.join(topics) or '-'}")
        lines.append(f"sla policies ({len(s.sla.policies)}): {', '.join(p.name for p in s.sla.policies)}")
        helpers = sum(h.role == "helper" for h in s.helpers)
        lines.append(f"helpers: {helpers}, staff: {len(s.helpers) - helpers}")
        return lines


def redact_url(url: str) -> str:
    """Hide a password in a database URL."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate ``path``; raise :class:`ConfigError` listing every problem."""
    loaded = read_yaml(path, env)
    cfg = validate_loaded(loaded)
    return Config(settings=cfg[0], connectors=cfg[1], source=path)


def validate_loaded(loaded: LoadedYaml) -> tuple[Settings, tuple[ConfiguredConnector, ...]]:
    problems: list[ConfigProblem] = []
    data = loaded.data
    if not isinstance(data, dict):
        raise ConfigError([loaded.problem((), "the configuration must be a mapping of sections")])

    # ${VAR}s outside connectors are always required; inside, only for enabled connectors
    problems += [p for p in missing_env_problems(loaded) if not p.path.startswith("connectors.")]

    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation(loaded, exc)

    configured: list[ConfiguredConnector] = []
    raw_connectors = data.get("connectors") or {}
    if isinstance(raw_connectors, dict):
        for cid, raw in raw_connectors.items():
            c = _configure_connector(loaded, str(cid), raw, problems)
            if c is not None:
                configured.append(c)

    if settings is not None:
        problems += _cross_checks(loaded, settings, configured)
    if problems or settings is None:
        problems.sort(key=lambda p: (p.line or 0, p.path))
        raise ConfigError(problems)
    return settings, tuple(configured)


def _configure_connector(
    loaded: LoadedYaml, cid: str, raw: Any, problems: list[ConfigProblem]
) -> ConfiguredConnector | None:
    base: Loc = ("connectors", cid)
    if not isinstance(raw, dict):
        return None  # reported by the root model
    ctype = raw.get("type")
    enabled = raw.get("enabled", "auto")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", cid):
        problems.append(loaded.problem(base, "connector ids are lowercase letters, digits, - and _"))
    missing = missing_env_problems(loaded, base)
    if enabled is False:
        return ConfiguredConnector(cid, str(ctype), None, None, enabled=False, note="enabled: false")
    if enabled == "auto" and missing:
        names = sorted(
            {n for names in (v for k, v in loaded.missing_env.items() if k[:2] == base) for n in names}
        )
        return ConfiguredConnector(
            cid, str(ctype), None, None, enabled=False, note=f"not set: {', '.join(names)}"
        )
    problems += missing
    if not isinstance(ctype, str):
        return None  # the root model reports the missing/invalid type
    try:
        cls = registry.get(ctype)
    except registry.UnknownConnector as exc:
        problems.append(loaded.problem((*base, "type"), str(exc)))
        return None
    try:
        parsed = cls.settings_model.model_validate(raw.get("settings") or {})
    except ValidationError as exc:
        problems += problems_from_validation(loaded, exc, (*base, "settings"))
        return None
    return ConfiguredConnector(cid, ctype, cls, parsed, enabled=True)


def _cross_checks(
    loaded: LoadedYaml, settings: Settings, connectors: list[ConfiguredConnector]
) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    ids = {c.id for c in connectors} | set(settings.connectors)
    for i, helper in enumerate(settings.helpers):
        for cid in helper.identities:
            if cid not in ids:
                out.append(loaded.problem(("helpers", i, "identities", cid), f"no connector named {cid!r}"))
    if settings.staff.connector is not None and settings.staff.connector not in ids:
        out.append(loaded.problem(("staff", "connector"), f"no connector named {settings.staff.connector!r}"))
    seen: set[str] = set()
    topic_names = {t.name for t in settings.triage.topics}
    for i, policy in enumerate(settings.sla.policies):
        if policy.name in seen:
            out.append(
                loaded.problem(("sla", "policies", i, "name"), f"duplicate policy name {policy.name!r}")
            )
        seen.add(policy.name)
        for j, topic in enumerate(policy.match.topic):
            if topic not in topic_names:
                out.append(
                    loaded.problem(("sla", "policies", i, "match", "topic", j), f"no topic named {topic!r}")
                )
        for j, cid in enumerate(policy.match.connector):
            if cid not in ids:
                out.append(
                    loaded.problem(
                        ("sla", "policies", i, "match", "connector", j), f"no connector named {cid!r}"
                    )
                )
    return out

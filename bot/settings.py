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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.config_loader import (
    LoadedYaml,
    Loc,
    missing_env_problems,
    problems_from_validation,
    read_yaml,
)
from bot.config_types import Duration, TimeZoneName
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
    claim_batch: int = Field(default=200, ge=1, le=5000, description="work items claimed per round trip")
    lease: Duration = Field(default=timedelta(seconds=60), description="a claim older than this is retaken")
    idle_poll: Duration = Field(default=timedelta(milliseconds=200), description="wait when no work")
    triage: Literal["product", "rules"] = Field(
        default="product", description="product: signals + knowledge matcher; rules: keyword rules only"
    )
    knowledge_refresh: Duration = Field(
        default=timedelta(seconds=30), description="how often workers pick up knowledge base changes"
    )


class DispatcherSettings(Section):
    concurrency: int = Field(default=32, ge=1, le=256, description="destinations sent to at once")
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
    timezone: TimeZoneName = "UTC"
    hours: str | None = Field(default=None, description='local working hours like "09:00-17:00"')
    max_open: int = Field(default=5, ge=0)

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


SlaAction = Literal["warn", "remind", "widen", "escalate"]
SlaClock = Literal["response", "first_response", "next_response", "resolution"]


class SlaStage(Section):
    at: str = Field(description='when, relative to the target: "50%", "100%", "150%" or a duration "45m"')
    action: SlaAction
    clock: SlaClock = Field(
        default="response",
        description="response (first and next response), first_response, next_response or resolution",
    )
    audience: list[str] = Field(
        default_factory=list,
        description=(
            "who hears about it: tagged, more_helpers, topic_channel, staff, or a target name from"
            " sla.targets; empty: by action (warn/remind: tagged; widen: more_helpers + topic_channel;"
            " escalate: staff)"
        ),
    )

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
    auto_answer_counts: bool = Field(
        default=True, description="an auto-answer counts as the first response (the asker can say 'not yet')"
    )


_HOURS_RANGE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


class SlaCalendar(Section):
    """Business hours per weekday in a time zone, with holidays: the SLA clock pauses outside them."""

    timezone: TimeZoneName = "UTC"
    hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], str] = Field(
        default_factory=lambda: {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")},
        description='weekday -> "09:00-17:00" or "09:00-12:00, 13:00-17:00"; missing days are closed',
    )
    holidays: list[date] = Field(default_factory=list, description="closed all day (local dates)")

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, str]) -> dict[str, str]:
        for day, text in v.items():
            if text.strip().lower() == "closed":
                continue
            for part in text.split(","):
                m = _HOURS_RANGE.fullmatch(part.strip())
                if m is None:
                    raise ValueError(f'{day}: expected hours like "09:00-17:00", got {part.strip()!r}')
                if (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
                    raise ValueError(f"{day}: {part.strip()!r} ends before it starts")
        if not any(t.strip().lower() != "closed" for t in v.values()):
            raise ValueError("a calendar needs at least one open weekday")
        return v


class SlaTarget(Section):
    """Where escalations can go besides the staff channel."""

    type: Literal["channel", "dm", "webhook", "email"]
    connector: str | None = Field(default=None, description="channel/dm: the connector id")
    conversation: str | None = Field(default=None, description="channel: chat/channel id")
    user: str | None = Field(default=None, description="dm: platform user id")
    url: str | None = Field(default=None, description="webhook: http(s) URL (JSON POST)")
    secret: SecretStr | None = Field(default=None, description="webhook: HMAC-SHA256 key, from ${ENV}")
    to: list[str] = Field(default_factory=list, description="email: recipients")
    private: bool = Field(default=False, description="private staff: show the question unredacted")

    @model_validator(mode="after")
    def _fields(self) -> SlaTarget:
        need = {
            "channel": ("connector", "conversation"),
            "dm": ("connector", "user"),
            "webhook": ("url",),
            "email": ("to",),
        }[self.type]
        missing = [f for f in need if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.type} target needs {', '.join(missing)}")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ValueError("webhook url must start with http:// or https://")
        return self


class SlaChannel(Section):
    connector: str
    conversation: str


class SlaWebhookSettings(Section):
    timeout: Duration = timedelta(seconds=5)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base: Duration = timedelta(seconds=2)
    backoff_cap: Duration = timedelta(minutes=10)
    signature_header: str = "X-Unsource-Signature"


class SmtpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    sender: str = "unsource@localhost"
    timeout: Duration = timedelta(seconds=10)


class SlaSettings(Section):
    sweep_interval: Duration = timedelta(seconds=5)
    sweep_batch: int = Field(
        default=200, ge=1, le=10000, description="stages claimed per transaction (bounds the write lock)"
    )
    offline_after: Duration = Field(
        default=timedelta(seconds=60),
        description='a stage firing later than this says "overdue by ..., bot was offline"',
    )
    link: str | None = Field(
        default=None, description='link to a thread when it has no permalink, e.g. "https://ops/t/{thread}"'
    )
    calendars: dict[str, SlaCalendar] = Field(default_factory=dict)
    targets: dict[str, SlaTarget] = Field(default_factory=dict)
    topic_channels: dict[str, SlaChannel] = Field(
        default_factory=dict, description="topic -> the helpers' channel (audience topic_channel)"
    )
    widen_by: int = Field(default=2, ge=1, le=20, description="helpers added by a widen stage")
    webhook: SlaWebhookSettings = Field(default_factory=SlaWebhookSettings)
    smtp: SmtpSettings | None = None
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

    @model_validator(mode="after")
    def _references(self) -> SlaSettings:
        problems: list[str] = []
        builtin = {"tagged", "more_helpers", "topic_channel", "staff"}
        for p in self.policies:
            if p.calendar != "24/7" and p.calendar not in self.calendars:
                problems.append(f"policy {p.name!r}: no calendar named {p.calendar!r}")
            for st in p.stages:
                for a in st.audience:
                    if a not in builtin and a not in self.targets:
                        problems.append(f"policy {p.name!r}: no audience or target named {a!r}")
        for name, t in self.targets.items():
            if t.type == "email" and self.smtp is None:
                problems.append(f"target {name!r} is email but sla.smtp is not set")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TrendSettings(Section):
    """Spike detection on question volume per topic and per term (see docs/dashboard.md)."""

    bucket: Duration = Field(default=timedelta(hours=1), description="width of one count bucket")
    window: int = Field(default=48, ge=4, le=2000, description="baseline buckets before the one tested")
    min_history: int = Field(default=12, ge=2, description="fewer baseline buckets: no test")
    alpha: float = Field(default=1e-4, gt=0, lt=0.5, description="tail probability that counts as a spike")
    min_count: int = Field(default=5, ge=1, description="a spike needs at least this many in one bucket")
    min_ratio: float = Field(default=2.0, ge=1.0, description="... and this many times the baseline mean")
    alert: bool = Field(default=True, description="post each new spike once to the staff channel")
    interval: Duration = Field(default=timedelta(minutes=5), description="how often the alert job runs")


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    enabled: bool = Field(default=True, description="serve the dashboard in roles all and ingest")
    users_env: str = Field(
        default="UNSOURCE_WEB_USERS",
        description='env var with "name:role:pbkdf2_sha256$iterations$salt$hash" entries, comma-separated',
    )
    secret_env: str = Field(default="UNSOURCE_WEB_SECRET", description="env var with the cookie signing key")
    session_ttl: Duration = Field(default=timedelta(hours=12))
    secure_cookies: bool = Field(default=False, description="set Secure on cookies (serve behind HTTPS)")
    cost_per_staff_contact: float = Field(default=6.0, ge=0, description="for the savings estimate")
    currency: str = Field(default="USD", max_length=8)
    queue_refresh: Duration = Field(default=timedelta(seconds=5), description="live queue polling interval")
    trends: TrendSettings = Field(default_factory=TrendSettings)


class RankSettings(Section):
    name: str
    points: int = Field(ge=0, description="points needed to reach this rank")


class PointSettings(Section):
    """Points per event (docs/community.md). Nobody earns points on their own question."""

    accepted_answer: int = Field(default=10, ge=0, description="your answer was accepted")
    auto_answer_accepted: int = Field(
        default=3, ge=0, description="an auto-answer built from yours solved it"
    )
    helpful_vote: int = Field(default=1, ge=0, description="a helpful reaction on your message")
    kudos: int = Field(default=2, ge=0, description="someone gave you kudos")
    first_response: int = Field(
        default=2, ge=0, description="first reply in a thread within first_response_within"
    )
    rating: dict[int, int] = Field(
        default_factory=lambda: {5: 5, 4: 3, 3: 1, 2: 0, 1: 0}, description="asker rating (1-5) -> points"
    )


class CommunitySettings(Section):
    """Helpers: routing, in-channel commands, points and ranks (docs/community.md)."""

    helpers_per_question: int = Field(default=2, ge=1, le=20)
    per_topic: dict[str, int] = Field(default_factory=dict, description="topic -> helpers to tag")
    urgent_extra: int = Field(default=1, ge=0, le=10, description="more helpers for high/urgent questions")
    command_prefixes: list[str] = Field(default_factory=lambda: ["/", "!"])
    first_response_within: Duration = Field(default=timedelta(hours=1))
    points: PointSettings = Field(default_factory=PointSettings)
    ranks: list[RankSettings] = Field(
        default_factory=lambda: [
            RankSettings(name="Newcomer", points=0),
            RankSettings(name="Helper", points=25),
            RankSettings(name="Expert", points=100),
            RankSettings(name="Guru", points=300),
        ]
    )
    announce_ranks: bool = Field(
        default=False, description="announce a rank-up (once) where the helper is active"
    )
    helpful_reactions: list[str] = Field(default_factory=lambda: ["👍", "❤️", "🙏"])
    claim_reactions: list[str] = Field(
        default_factory=lambda: ["🙋", "✋"], description="a helper takes the thread"
    )
    decline_reactions: list[str] = Field(default_factory=lambda: ["🙅", "⏭️"], description="a helper passes")
    flag_after_rejections: int = Field(default=3, ge=1)
    flag_below_acceptance: float = Field(default=0.34, ge=0, le=1)
    merge_confidence: float = Field(
        default=0.8, gt=0, le=1, description="a solved question this close to an entry joins its answer"
    )
    solved_keywords: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "en": [
                "thanks, that worked",
                "that worked",
                "that fixed it",
                "it works now",
                "solved",
                "problem solved",
            ],
            "de": ["danke, das hat funktioniert", "hat funktioniert", "es funktioniert jetzt", "gelöst"],
            "fr": ["merci, ça marche", "ça marche", "ça fonctionne", "résolu"],
            "es": ["gracias, funcionó", "funcionó", "ya funciona", "resuelto"],
            "it": ["grazie, ha funzionato", "ha funzionato", "ora funziona", "risolto"],
            "pt": ["obrigado, funcionou", "funcionou", "resolvido"],
            "nl": ["bedankt, het werkt", "het werkt", "opgelost"],
        },
        description="language -> phrases that, from the asker, mark the thread solved",
    )

    @field_validator("ranks")
    @classmethod
    def _ranks(cls, v: list[RankSettings]) -> list[RankSettings]:
        if [r.points for r in v] != sorted({r.points for r in v}):
            raise ValueError("ranks need increasing, distinct point thresholds")
        return v


class SandboxSettings(Section):
    """The local sandbox: fake Telegram, Discord and X plus a simulated community (docs/sandbox.md)."""

    enabled: bool | Literal["auto"] = Field(
        default="auto",
        description=(
            "auto: `unsource run` starts the sandbox when platform connectors are configured but none"
            " has its secrets set; true: always (like `unsource run --sandbox`); false: never"
        ),
    )
    speed: float = Field(default=1.0, gt=0, le=100, description="how fast the simulated community acts")
    first_response: Duration = Field(
        default=timedelta(seconds=60), description="the sandbox's SLA target, so escalations show quickly"
    )
    seed: int = Field(default=0, description="random seed of the simulated community")


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
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    community: CommunitySettings = Field(default_factory=CommunitySettings)


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

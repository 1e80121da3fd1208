"""``unsource run --sandbox`` and ``unsource sandbox``: the whole product on loopback.

The sandbox is the three platform fakes of :mod:`sandbox` plus a simulated community
(:mod:`sandbox.community`). Running the bot against it:

1. start the fakes on 127.0.0.1 (:class:`sandbox.compose.Sandbox`);
2. derive a sandbox configuration from the shipped ``config.yaml``: the same file, with an
   overlay that points the Telegram, Discord and X connectors at the fakes (sandbox tokens),
   puts the database under ``data/sandbox``, names the sandbox's helpers and staff, and
   shortens the SLA so reminders and escalations happen within a minute or two;
3. import the seed knowledge base (``sandbox/data/kb.jsonl``) when the database has none;
4. run the bot (:class:`bot.app.App`) and the community, and print where to look plus a live
   summary: questions per platform, auto-answered, helpers tagged, escalated, solved.

``sandbox: enabled: auto`` (the default) makes plain ``unsource run`` do this when the
configuration lists platform connectors but none of them has its secrets set: a newcomer's
first command shows the product working; with credentials the same command runs for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Config, load_config
from sandbox.compose import Endpoints, Sandbox

log = logging.getLogger("unsource.sandbox")

PLATFORM_TYPES = frozenset({"telegram", "discord", "twitter"})
CONNECTOR_IDS = {"telegram": "telegram", "discord": "discord", "twitter": "x"}


def sandbox_wanted(config: Config) -> bool:
    """``sandbox.enabled``: true/false, or auto = the config lists platform connectors and none is
    enabled (no credentials set). A config with only local connectors never starts the sandbox."""
    setting = config.settings.sandbox.enabled
    if setting != "auto":
        return bool(setting)
    platforms = [c for c in config.connectors if c.type in PLATFORM_TYPES]
    return bool(platforms) and not any(c.enabled for c in platforms)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _platform_ids(raw: dict[str, Any]) -> dict[str, str]:
    """Connector id used for each platform type in ``raw`` (the shipped names by default)."""
    ids = dict(CONNECTOR_IDS)
    for cid, entry in (raw.get("connectors") or {}).items():
        if isinstance(entry, dict) and entry.get("type") in PLATFORM_TYPES:
            ids[str(entry["type"])] = str(cid)
    return ids


def overlay(ep: Endpoints, data_dir: Path, *, first_response: str, ids: dict[str, str]) -> dict[str, Any]:
    """What the sandbox changes in the shipped configuration."""
    tg, dc, x = ids["telegram"], ids["discord"], ids["twitter"]
    helpers: list[dict[str, Any]] = []
    topics_of = {
        "ann": ["login", "app", "account"],
        "bo": ["login", "sync", "notifications"],
        "cleo": ["sync", "app"],
        "dee": ["export", "sharing"],
        "eli": ["notifications", "app"],
    }
    for p in ep.people.values():
        if p.role == "customer":
            continue
        entry: dict[str, Any] = {
            "name": p.name.title(),
            "identities": {tg: str(p.telegram_id), dc: p.discord_id, x: p.x_id},
            "handles": {tg: p.telegram_username, dc: p.discord_name, x: p.x_username},
        }
        if p.role == "staff":
            entry["role"] = "staff"
        else:
            entry["topics"] = topics_of.get(p.name, [])
        helpers.append(entry)
    return {
        "data_dir": str(data_dir),
        "storage": {"url": f"sqlite+aiosqlite:///{data_dir}/unsource.db"},
        "connectors": {
            "local": {"type": "jsonl", "enabled": False},
            tg: {
                "type": "telegram",
                "enabled": True,
                "settings": {
                    "token": ep.telegram_token,
                    "api_base_url": ep.telegram_url,
                    "mode": "polling",
                    "poll_timeout": 5,
                    "chats": [],
                },
            },
            dc: {
                "type": "discord",
                "enabled": True,
                "settings": {
                    "token": ep.discord_token,
                    "api_base_url": ep.discord_api,
                    "gateway_url": ep.discord_gateway,
                    "guild_ids": [ep.discord_guild],
                    "channel_ids": [ep.discord_support, ep.discord_forum],
                    "guild_ready_timeout": 0.2,
                    "identify_delay": 0.0,
                },
            },
            x: {
                "type": "twitter",
                "enabled": True,
                "settings": {
                    "api_base_url": ep.x_url,
                    "bearer_token": ep.x_bearer,
                    "consumer_key": ep.x_consumer_key,
                    "consumer_secret": ep.x_secret,
                    "access_token": ep.x_access_token,
                    "access_token_secret": ep.x_secret,
                    "bot_username": ep.x_bot_username,
                    "poll_interval_active": 3.0,
                    "poll_interval_idle": 10.0,
                    "dm_poll_interval_active": 60.0,
                    "dm_poll_interval_idle": 120.0,
                    "request_timeout": 5.0,
                },
            },
        },
        "staff": {"connector": tg, "conversation": str(ep.telegram_staff)},
        "helpers": helpers,
        "triage": {
            "topics": [
                {"name": "login", "keywords": ["login", "log in", "password", "2fa", "sign in"]},
                {"name": "sync", "keywords": ["sync", "syncing", "offline", "conflict"]},
                {"name": "export", "keywords": ["export", "import", "pdf", "markdown", "backup"]},
                {"name": "notifications", "keywords": ["notification", "notifications", "reminder"]},
                {"name": "sharing", "keywords": ["share", "shared", "invite"]},
                {"name": "account", "keywords": ["email", "account"]},
                {"name": "app", "keywords": ["dark mode", "widget", "tags", "font", "attachment"]},
            ]
        },
        "sla": {
            "sweep_interval": "2s",
            "policies": [
                {
                    "name": "sandbox",
                    "first_response": first_response,
                    "stages": [
                        {"at": "50%", "action": "remind"},
                        {"at": "100%", "action": "widen"},
                        {"at": "150%", "action": "escalate"},
                    ],
                }
            ],
        },
        "sandbox": {"enabled": False},
    }


def write_sandbox_config(
    source: Path,
    ep: Endpoints,
    data_dir: Path,
    *,
    first_response: str = "60s",
    extra: dict[str, Any] | None = None,
) -> Path:
    """The shipped config plus the sandbox overlay, written to ``data_dir/config.yaml``.

    ``${VAR}`` references stay as they are; the overlay replaces those the sandbox needs. The
    sandbox tokens are the fakes' own, not secrets."""
    raw = yaml.safe_load(source.read_text("utf-8")) or {}
    if not isinstance(raw, dict):
        raw = {}
    data_dir.mkdir(parents=True, exist_ok=True)
    merged = _deep_merge(raw, overlay(ep, data_dir, first_response=first_response, ids=_platform_ids(raw)))
    if extra:
        merged = _deep_merge(merged, extra)
    out = data_dir / "config.yaml"
    header = (
        f"{GENERATED_MARK} from {source}: the shipped configuration with the sandbox\n"
        "# overlay (connectors pointed at the local fakes, short SLAs). Rewritten on every start.\n"
    )
    out.write_text(header + yaml.safe_dump(merged, sort_keys=False, allow_unicode=True), "utf-8")
    return out


GENERATED_MARK = "# Generated by unsource's sandbox"


def reset_sandbox_dir(base_dir: Path) -> None:
    """Start every sandbox from a clean slate: the fakes are new (Telegram message and update ids
    start again), so a previous run's database, cursors and connector state must not be reused.
    Only a directory the sandbox made (it holds the generated config) is removed."""
    marker = base_dir / "config.yaml"
    if not base_dir.exists():
        return
    if not marker.exists() or not marker.read_text("utf-8").startswith(GENERATED_MARK):
        if any(base_dir.iterdir()):
            raise RuntimeError(f"{base_dir} exists and was not made by the sandbox; not touching it")
        return
    shutil.rmtree(base_dir)


async def seed_knowledge(config: Config, kb_file: Path | None = None) -> int:
    """Import the sandbox's seed knowledge base when the database has no entries yet."""
    from bot.knowledge import KnowledgeService
    from bot.storage import migrate
    from bot.storage.engine import create_engine, session_factory
    from sandbox.data import KB_FILE
    from triage.kb_import import parse_kb_file

    s = config.settings
    await migrate.upgrade(s.storage.url)
    engine = create_engine(s.storage.url)
    try:
        service = KnowledgeService(session_factory(engine), s.data_dir / "kb-index")
        await service.open()
        if (await service.stats()).get("active", 0) > 0:
            return 0
        parsed = parse_kb_file(kb_file or KB_FILE)
        await service.upsert(parsed.entries, source="sandbox")
        await service.refresh()
        return len(parsed.entries)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------- summary


@dataclass
class Summary:
    """What the bot did, read from its database (the truth), for the live view and tests."""

    questions: dict[str, int]  # platform -> threads opened
    auto_answered: int
    helpers_tagged: int
    private: int
    escalated: int
    solved: int

    @property
    def total(self) -> int:
        return sum(self.questions.values())


SUMMARY_SQL = {
    "auto_answered": "select count(distinct thread_id) from outbox where purpose = 'auto_answer'",
    "helpers_tagged": "select count(distinct thread_id) from outbox where purpose = 'tag_helpers'",
    "private": "select count(distinct thread_id) from outbox where purpose = 'route_private'",
    "escalated": (
        "select count(distinct thread_id) from sla_stage where action = 'escalate' and state = 'fired'"
    ),
    "solved": "select count(*) from thread where solved_at is not null",
}


async def read_summary(engine: AsyncEngine) -> Summary:
    async with engine.connect() as c:
        rows = (await c.execute(text("select platform, count(*) from thread group by platform"))).all()
        values: dict[str, int] = {}
        for key, sql in SUMMARY_SQL.items():
            try:
                values[key] = int((await c.execute(text(sql))).scalar() or 0)
            except Exception:  # a table another feature adds may be missing in older databases
                values[key] = 0
    return Summary(questions={str(p): int(n) for p, n in rows}, **values)


def render_summary(summary: Summary, where: list[str], community: dict[str, int] | None) -> Group:
    table = Table(title="unsource sandbox: what the bot did", expand=False)
    table.add_column("platform")
    table.add_column("questions", justify="right")
    order = {"telegram": 0, "discord": 1, "x": 2, "twitter": 2}
    for platform in sorted(summary.questions, key=lambda p: (order.get(p, 9), p)):
        table.add_row(platform, str(summary.questions[platform]))
    table.add_row("[bold]all[/]", f"[bold]{summary.total}[/]")
    outcome = Table(show_header=False, expand=False)
    for label, value in (
        ("auto-answered", summary.auto_answered),
        ("helpers tagged", summary.helpers_tagged),
        ("sent privately to staff", summary.private),
        ("escalated by SLA", summary.escalated),
        ("solved", summary.solved),
    ):
        outcome.add_row(label, str(value))
    parts: list[Any] = [table, outcome]
    if where:
        parts.insert(0, Panel("\n".join(where), title="where to look", expand=False))
    if community:
        parts.append(
            "community: "
            + ", ".join(f"{k} {v}" for k, v in sorted(community.items()) if v)
            + "  (Ctrl+C stops)"
        )
    return Group(*parts)


def sandbox_login(config: Config) -> tuple[str, str] | None:
    """When no dashboard users are configured, make a staff login valid for this sandbox run
    (a random password, hashed into the process environment only) so the newcomer can sign in."""
    import os
    import secrets

    from bot.web.auth import hash_password

    var = config.settings.web.users_env
    if os.environ.get(var):
        return None
    password = secrets.token_urlsafe(9)
    os.environ[var] = f"ops:staff:{hash_password(password)}"
    return "ops", password


def where_to_look(config: Config, ep: Endpoints) -> list[str]:
    s = config.settings
    lines = []
    if s.web.enabled:
        lines.append(f"dashboard:  http://{s.web.host}:{s.web.port}/")
    lines += [
        f"config:     {config.source}",
        f"database:   {s.storage.url}",
        f"telegram:   {ep.telegram_url}/_sandbox/sent   (fake Bot API)",
        f"discord:    {ep.discord_url}/_sandbox/sent   (fake REST + gateway)",
        f"x:          {ep.x_url}/_sandbox/bot/posts   (fake API v2)",
    ]
    return lines


# ---------------------------------------------------------------------------------- running


@contextlib.asynccontextmanager
async def started_sandbox(customers: int = 12) -> AsyncIterator[Sandbox]:
    sb = Sandbox(customers=customers)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


async def run_sandbox(
    source: Path,
    *,
    speed: float = 1.0,
    data_dir: Path | None = None,
    with_bot: bool = True,
    stop: asyncio.Event | None = None,
    console: Console | None = None,
    on_ready: Callable[[Config, Endpoints], None] | None = None,
) -> None:
    """Start the fakes and the community, and (``with_bot``) the bot against them, until ``stop``."""
    from bot.app import App, install_signal_handlers
    from bot.config_watch import ConfigHolder
    from sandbox.community import Community

    console = console or Console()
    stop = stop or asyncio.Event()
    shipped = load_config(source)
    base_dir = data_dir or shipped.settings.data_dir / "sandbox"
    sconf = shipped.settings.sandbox
    reset_sandbox_dir(base_dir)
    async with started_sandbox() as sb:
        ep = sb.endpoints
        path = write_sandbox_config(
            source, ep, base_dir, first_response=f"{int(sconf.first_response.total_seconds())}s"
        )
        config = load_config(path)
        seeded = await seed_knowledge(config)
        if seeded:
            console.print(f"imported {seeded} seed knowledge-base entries (sandbox/data/kb.jsonl)")
        holder = ConfigHolder(config)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            install_signal_handlers(stop, holder)
        community = Community(ep, speed=speed, seed=sconf.seed)
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(community.run(stop), name="community")]
        app: App | None = None
        engine: AsyncEngine | None = None
        login = sandbox_login(config) if with_bot else None
        if with_bot:
            app = App(holder, role="all")
            tasks.append(asyncio.create_task(app.run(stop), name="bot"))
            await asyncio.wait_for(app.ready.wait(), 60)
            from bot.storage.engine import create_engine

            engine = create_engine(config.settings.storage.url)
        if on_ready is not None:
            on_ready(config, ep)
        try:
            if engine is not None:
                where = where_to_look(config, ep)
                if login is not None:
                    where.insert(
                        1, f"sign in:    {login[0]} / {login[1]}   (a staff login for this sandbox run only)"
                    )
                # printed once, so it also reaches a log file or pipe (a live display does not)
                console.print(Panel("\n".join(where), title="where to look", expand=False))
                with Live(console=console, refresh_per_second=2, transient=False) as live:
                    while not stop.is_set():
                        summary = await read_summary(engine)
                        live.update(render_summary(summary, [], community.counts()))
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 1.0)
            else:
                (base_dir / "endpoints.json").write_text(ep.dumps(), "utf-8")
                lines = [
                    f"telegram:   {ep.telegram_url}  (token {ep.telegram_token}; test API /_sandbox/)",
                    f"discord:    {ep.discord_api}  gateway {ep.discord_gateway}  (test API /_sandbox/)",
                    f"x:          {ep.x_url}  (test API /_sandbox/)",
                    f"all ids:    {base_dir / 'endpoints.json'}",
                    f"run the bot against it: unsource run --config {path}",
                ]
                console.print(Panel("\n".join(lines), title="sandbox (Ctrl+C stops)", expand=False))
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 5.0)
                    console.print(
                        "community: " + ", ".join(f"{k} {v}" for k, v in community.counts().items())
                    )
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if engine is not None:
                await engine.dispose()

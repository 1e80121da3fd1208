"""The whole product against the sandbox: fakes in this process, the bot in process or as a real one.

The bot runs the sandbox configuration derived from the shipped ``config.yaml``
(:func:`bot.sandbox_mode.write_sandbox_config`), with all three real SDK connectors
(python-telegram-bot, discord.py, tweepy), the pipeline, triage with the seed knowledge base,
routing and the scheduler (SLA sweep). People act through the fakes' ``/_sandbox`` HTTP APIs
with the simulated community's own clients; results are read from the fakes' records.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.app import App
from bot.config_watch import ConfigHolder
from bot.sandbox_mode import seed_knowledge, write_sandbox_config
from bot.settings import Config, load_config
from sandbox.community.platforms import DiscordPeople, TelegramPeople, XPeople
from sandbox.compose import Endpoints, Sandbox

ROOT = Path(__file__).resolve().parents[2]

#: what the tests change besides the sandbox overlay: quick polling, no dashboard
FAST: dict[str, Any] = {
    "logging": {"level": "WARNING"},
    "web": {"enabled": False},
    "pipeline": {"idle_poll": "50ms", "knowledge_refresh": "5s"},
    "dispatcher": {"idle_poll": "50ms", "backoff_base": "200ms", "backoff_cap": "2s"},
    "connectors": {
        "telegram": {"settings": {"poll_timeout": 1}},
        "discord": {"settings": {"guild_ready_timeout": 0.05}},
        "x": {
            "settings": {
                "poll_interval_active": 0.5,
                "poll_interval_idle": 0.5,
                "poll_backoff_factor": 1.0,
                "backoff_base": 0.2,
                "rate_limit_margin": 0.05,
            }
        },
    },
}


@dataclass
class Stack:
    sandbox: Sandbox
    ep: Endpoints
    config: Config
    http: aiohttp.ClientSession

    @property
    def telegram(self) -> TelegramPeople:
        return TelegramPeople(self.ep, self.http)

    @property
    def x(self) -> XPeople:
        return XPeople(self.ep, self.http)

    def discord_people(self) -> DiscordPeople:
        return DiscordPeople(self.ep, self.http)

    def public_texts(self) -> list[str]:
        """Everything the bot said where customers can read it (all but the staff chat)."""
        staff = self.ep.telegram_staff
        tg = [s.text for s in self.sandbox.telegram.sent() if s.chat_id != staff]
        return tg + self.sandbox.discord.sent_texts() + self.sandbox.x.bot_texts()


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


async def prepare(tmp: Path, db_url: str, sb: Sandbox, extra: dict[str, Any] | None = None) -> Config:
    overrides = _merge(FAST, {"storage": {"url": db_url}})
    if extra:
        overrides = _merge(overrides, extra)
    path = write_sandbox_config(ROOT / "config.yaml", sb.endpoints, tmp / "data", extra=overrides)
    config = load_config(path, env={})
    await seed_knowledge(config)
    return config


@contextlib.asynccontextmanager
async def stack(tmp: Path, db_url: str, extra: dict[str, Any] | None = None) -> AsyncIterator[Stack]:
    async with Sandbox() as sb:
        config = await prepare(tmp, db_url, sb, extra)
        app = App(ConfigHolder(config), role="all")
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        await asyncio.wait_for(app.ready.wait(), 60)
        try:
            await asyncio.wait_for(sb.discord.wait_connected(), 20)
            async with aiohttp.ClientSession() as http:
                yield Stack(sb, sb.endpoints, config, http)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def until(cond: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not (value := cond()):
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def start_bot(config: Path) -> subprocess.Popen[bytes]:
    """The bot as a real process (``unsource run`` on the sandbox config)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config), "--no-sandbox"],
        stdout=subprocess.DEVNULL,
        stderr=open(config.with_suffix(".log"), "ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
    )

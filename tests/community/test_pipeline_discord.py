"""Discord prefix commands and routing through the whole App, with the real Discord connector
(discord.py) against the sandbox fake: a user joins as a helper by typing ``!join export``, a
customer's staff-only command is refused, and the customer's export question tags the new helper
with a real Discord mention and the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Config, load_config
from sandbox.discord import FakeDiscord
from tests.pipeline.test_pipeline import eventually, running

CONFIG = """\
data_dir: {data}
storage:
  url: {url}
logging:
  level: WARNING
connectors:
  dc:
    type: discord
    enabled: true
    settings:
      token: ${{DC_TOKEN}}
      api_base_url: {api}
      gateway_url: {gateway}
      guild_ids: ["{guild}"]
      channel_ids: ["{channel}"]
      guild_ready_timeout: 0.05
      identify_delay: 0
      start_timeout: 10
pipeline:
  workers: 1
  idle_poll: 50ms
dispatcher:
  idle_poll: 50ms
web:
  enabled: false
triage:
  topics:
    - name: export
      keywords: [export, csv, spreadsheet]
helpers:
  - {{ name: Erin, role: staff, identities: {{ dc: "{erin}" }} }}
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    f = FakeDiscord()
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


def make_config(tmp: Path, url: str, fake: FakeDiscord) -> Config:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(
        CONFIG.format(
            data=data,
            url=url,
            api=fake.api_base,
            gateway=fake.gateway_url,
            guild=fake.guild_id,
            channel=fake.text_channel_id,
            erin=fake.user("erin")["id"],
        ),
        encoding="utf-8",
    )
    return load_config(path, env={"DC_TOKEN": fake.token})


async def bot_message(fake: FakeDiscord, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            for m in fake.bot_messages():
                if pred(m):
                    return m
            await asyncio.sleep(0.05)


async def test_prefix_commands_and_a_real_mention_on_discord(
    tmp_path: Path, db_url: str, fake: FakeDiscord
) -> None:
    zed = fake.add_user("zed")
    channel = fake.text_channel_id
    async with running(make_config(tmp_path, db_url, fake)):
        await fake.post(channel, "!join export", author="zed")
        welcome = await bot_message(fake, lambda m: "Welcome" in m["content"])
        assert "export" in welcome["content"]
        await eventually(
            db_url, "select helper from community_identity where user_id = '" + zed["id"] + "'", "zed"
        )

        await fake.post(channel, "!retire kb-1", author="carol")
        await bot_message(fake, lambda m: "for staff only" in m["content"])

        await fake.post(channel, "How can I export the project list to a CSV spreadsheet?", author="carol")
        tag = await bot_message(fake, lambda m: "you know `export`" in m["content"])
        # the only helper who knows export is tagged (the asker shows up only as the reply's author)
        assert {u["username"] for u in tag["mentions"]} - {"carol"} == {"zed"}
        assert f"<@{zed['id']}>" in tag["content"], tag["content"]

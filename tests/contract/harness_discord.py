"""Contract harness for the Discord connector: real discord.py against sandbox.discord over 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from bot.models import InboundMessage, OutboundMessage
from connectors.base import AnyConnector, ConnectorContext
from connectors.discord import DiscordConnector, DiscordSettings
from sandbox.discord import FakeDiscord
from tests.contract.harness import Fault


class DiscordHarness:
    def __init__(self, fake: FakeDiscord, tmp: Path) -> None:
        self.fake = fake
        self.tmp = tmp
        self.settings = DiscordSettings(
            token=fake.token,  # type: ignore[arg-type]
            api_base_url=fake.api_base,
            gateway_url=fake.gateway_url,
            guild_ids=(fake.guild_id,),
            channel_ids=(fake.text_channel_id, fake.forum_channel_id),
            guild_ready_timeout=0.05,
            identify_delay=0.0,
            start_timeout=10.0,
        )

    def new_connector(self) -> AnyConnector:
        connector = DiscordConnector("discord-test", self.settings, ConnectorContext(data_dir=self.tmp))
        return connector  # type: ignore[return-value]

    async def post_customer_message(self, text: str) -> None:
        await self.fake.post(self.fake.text_channel_id, text, author="carol")

    async def sent_texts(self) -> list[str]:
        return self.fake.sent_texts()

    def reply_to(self, message: InboundMessage, text: str, key: str) -> OutboundMessage:
        return OutboundMessage(
            idempotency_key=key,
            connector_id=message.connector_id,
            conversation_id=message.conversation_id,
            thread_ref=message.thread_ref,
            reply_to_id=message.external_id,
            text=text,
        )

    async def inject_send_fault(self, fault: Fault) -> None:
        if fault == "rate_limit":
            # longer than max_ratelimit_wait: discord.py raises instead of sleeping
            self.fake.fail_next(429, retry_after=60.0)
        elif fault == "server_error":
            self.fake.fail_next(503)
        elif fault == "auth":
            self.fake.fail_next(401)


@contextlib.asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[DiscordHarness]:
    fake = FakeDiscord()
    await fake.start()
    try:
        yield DiscordHarness(fake, tmp_path)
    finally:
        await fake.stop()

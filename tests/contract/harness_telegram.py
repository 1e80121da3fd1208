"""Contract harness for the Telegram connector: real python-telegram-bot against the sandbox fake."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import SecretStr

from bot.models import InboundMessage, OutboundMessage
from connectors.base import AnyConnector
from connectors.telegram import TelegramConnector, TelegramSettings
from sandbox.telegram import FakeTelegram
from tests.contract.harness import Fault

GROUP = -1001000000001
CUSTOMER = 42


class TelegramHarness:
    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.settings = TelegramSettings(
            token=SecretStr(fake.token), api_base_url=fake.url, poll_timeout=1, request_timeout=5.0
        )

    def new_connector(self) -> AnyConnector:
        return TelegramConnector("telegram-test", self.settings)  # type: ignore[return-value]

    async def post_customer_message(self, text: str) -> None:
        self.fake.post(GROUP, CUSTOMER, text)

    async def sent_texts(self) -> list[str]:
        return [s.text for s in self.fake.sent()]

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
        kind = {"rate_limit": "rate_limit", "server_error": "server_error", "auth": "unauthorized"}[fault]
        self.fake.inject(kind, "sendMessage", retry_after=2)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[TelegramHarness]:
    fake = FakeTelegram()
    fake.add_user(CUSTOMER, "Alice", "alice")
    fake.add_group(GROUP, "Support", username="acme_support")
    await fake.start()
    try:
        yield TelegramHarness(fake)
    finally:
        await fake.stop()

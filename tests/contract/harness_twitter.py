"""Contract harness for the X connector: real tweepy against the sandbox fake over 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

from pydantic import SecretStr

from bot.models import InboundMessage, OutboundMessage
from connectors.base import AnyConnector, ConnectorContext
from connectors.twitter import TwitterConnector, TwitterSettings
from sandbox.x import FakeX, FaultKind
from tests.contract.harness import Fault


def settings_for(fake: FakeX, **overrides: object) -> TwitterSettings:
    values: dict[str, object] = {
        "api_base_url": fake.url,
        "bearer_token": SecretStr(fake.bearer_token),
        "consumer_key": SecretStr(fake.consumer_key),
        "consumer_secret": SecretStr("TEST-CONSUMER-SECRET"),
        "access_token": SecretStr(fake.access_token),
        "access_token_secret": SecretStr("TEST-ACCESS-SECRET"),
        "poll_interval_active": 0.05,
        "poll_interval_idle": 0.2,
        "dm_poll_interval_active": 0.05,
        "dm_poll_interval_idle": 0.2,
        "request_timeout": 5.0,
        "backoff_base": 0.2,
        "rate_limit_margin": 0.05,
        **overrides,
    }
    return TwitterSettings.model_validate(values)


class TwitterHarness:
    def __init__(self, fake: FakeX, tmp: Path) -> None:
        self.fake = fake
        self.tmp = tmp
        # the contract's long text needs ~10 numbered posts when no link is available
        self.settings = settings_for(fake, max_thread_parts=12)
        fake.add_user("customer")

    def new_connector(self) -> AnyConnector:
        connector = TwitterConnector("x-test", self.settings, ConnectorContext(data_dir=self.tmp))
        return cast(AnyConnector, connector)

    async def post_customer_message(self, text: str) -> None:
        self.fake.mention("customer", text)

    async def sent_texts(self) -> list[str]:
        return self.fake.bot_texts() + [str(e["text"]) for e in self.fake.bot_dms()]

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
        kinds: dict[Fault, FaultKind] = {
            "rate_limit": "rate_limit",
            "server_error": "server_error",
            "auth": "auth",
        }
        self.fake.inject(kinds[fault], "create_tweet", reset_in=1.0)


@contextlib.asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[TwitterHarness]:
    fake = FakeX()
    await fake.start()
    try:
        yield TwitterHarness(fake, tmp_path)
    finally:
        await fake.stop()

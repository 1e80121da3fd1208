"""Contract harness for the jsonl connector: the 'platform' is a pair of files."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from bot.errors import AuthError, RateLimited, TransientError
from bot.models import InboundMessage, OutboundMessage, SendReceipt
from connectors.base import AnyConnector
from connectors.jsonl import JsonlConnector, JsonlSettings
from tests.contract.harness import Fault


class FaultyJsonl(JsonlConnector):
    """The file 'platform' cannot fail on its own; the harness makes it, at the edge."""

    fault: Fault | None = None

    async def send(self, message: OutboundMessage) -> SendReceipt:
        fault, type(self).fault = type(self).fault, None
        if fault == "rate_limit":
            raise RateLimited(1.5)
        if fault == "server_error":
            raise TransientError("injected")
        if fault == "auth":
            raise AuthError("injected")
        return await super().send(message)


class JsonlHarness:
    def __init__(self, tmp: Path) -> None:
        self.settings = JsonlSettings(
            inbound=tmp / "in.jsonl", outbound=tmp / "out.jsonl", poll_interval=0.05
        )
        self.settings.inbound.touch()
        self.n = 0

    def new_connector(self) -> AnyConnector:
        return FaultyJsonl("jsonl-test", self.settings)

    async def post_customer_message(self, text: str) -> None:
        self.n += 1
        with self.settings.inbound.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": f"m{self.n}", "author": {"id": "u1"}, "text": text}) + "\n")

    async def sent_texts(self) -> list[str]:
        if not self.settings.outbound.exists():
            return []
        rows = [json.loads(line) for line in self.settings.outbound.read_text("utf-8").splitlines()]
        return [part for row in rows for part in row["parts"]]

    def reply_to(self, message: InboundMessage, text: str, key: str) -> OutboundMessage:
        return OutboundMessage(
            idempotency_key=key,
            connector_id=message.connector_id,
            conversation_id=message.conversation_id,
            reply_to_id=message.external_id,
            text=text,
        )

    async def inject_send_fault(self, fault: Fault) -> None:
        FaultyJsonl.fault = fault


@contextlib.asynccontextmanager
async def make_harness(tmp_path: Path) -> AsyncIterator[JsonlHarness]:
    yield JsonlHarness(tmp_path)

"""What a connector must provide to run the shared contract suite.

Each connector adds a module ``tests/contract/harness_<name>.py`` defining
``make_harness(tmp_path) -> AsyncContextManager[Harness]``; ``test_contract.py`` finds it by
name and runs every contract test against it. The harness talks to the connector's sandbox
fake (the real SDK over 127.0.0.1), never to a mock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Literal, Protocol

from bot.models import FetchResult, InboundMessage, OutboundMessage
from connectors.base import AnyConnector, PullConnector, PushConnector

Fault = Literal["rate_limit", "server_error", "auth"]


class Harness(Protocol):
    def new_connector(self) -> AnyConnector:
        """A fresh, unstarted connector instance on the same settings (a restart)."""
        ...

    async def post_customer_message(self, text: str) -> None:
        """A customer posts ``text`` on the platform where the connector listens, addressed to the bot."""
        ...

    async def sent_texts(self) -> list[str]:
        """Texts the platform received from the bot, in order (one entry per platform message)."""
        ...

    def reply_to(self, message: InboundMessage, text: str, key: str) -> OutboundMessage:
        """An outbound reply to ``message`` that this platform accepts."""
        ...

    async def inject_send_fault(self, fault: Fault) -> None:
        """Make the platform answer the next send with this fault (once)."""
        ...


async def collect(
    connector: AnyConnector, cursor: str | None, want: int, timeout: float = 15.0
) -> tuple[list[InboundMessage], str | None]:
    """Run a started connector until ``want`` messages arrived (or timeout); return them and the cursor."""
    got: list[InboundMessage] = []
    last = cursor

    async def run() -> None:
        nonlocal last
        if isinstance(connector, PullConnector):
            while len(got) < want:
                res: FetchResult = await connector.fetch(last)
                got.extend(res.messages)
                if res.cursor is not None:
                    last = res.cursor
                if not res.messages:
                    await asyncio.sleep(min(res.next_poll_after or 0.05, 0.2))
        else:
            assert isinstance(connector, PushConnector)
            done = asyncio.Event()

            async def sink(batch: Sequence[InboundMessage], new_cursor: str | None) -> None:
                nonlocal last
                got.extend(batch)
                if new_cursor is not None:
                    last = new_cursor
                if len(got) >= want:
                    done.set()

            task = asyncio.create_task(connector.listen(last, sink))
            try:
                waiter = asyncio.create_task(done.wait())
                finished, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if task in finished:
                    task.result()  # surface the listener's error
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), timeout)
    return got, last

"""The shared connector contract, run against every connector that ships a harness.

Add ``tests/contract/harness_<name>.py`` with ``make_harness(tmp_path)`` to enrol a connector.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest
from pydantic import ValidationError

import tests.contract as contract_pkg
from bot.errors import AuthError, RateLimited, TransientError
from bot.models import InboundMessage
from connectors import registry
from connectors.base import AnyConnector, PullConnector, PushConnector
from tests.contract.harness import Harness, collect

HARNESSES = sorted(
    m.name.removeprefix("harness_")
    for m in pkgutil.iter_modules(contract_pkg.__path__)
    if m.name.startswith("harness_")
)


@pytest.fixture(params=HARNESSES)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    module = importlib.import_module(f"tests.contract.harness_{request.param}")
    async with module.make_harness(tmp_path) as h:
        yield h


async def started(h: Harness) -> AnyConnector:
    c = h.new_connector()
    await c.start()
    return c


def test_every_builtin_has_a_harness() -> None:
    for name in ("jsonl", "telegram", "discord", "twitter"):
        try:
            registry.get(name)
        except registry.UnknownConnector:
            continue  # not built yet
        assert name in HARNESSES, f"connector {name} has no contract harness"


async def test_declares_itself(harness: Harness) -> None:
    c = harness.new_connector()
    cls = type(c)
    assert issubclass(cls, registry.get(cls.name))
    assert cls.capabilities.max_text_length > 0
    assert isinstance(c, PullConnector) == (cls.capabilities.mode == "pull")
    assert isinstance(c, PushConnector) == (cls.capabilities.mode == "push")
    with pytest.raises(ValidationError):
        cls.settings_model.model_validate({**c.settings.model_dump(), "no_such_key": 1})


async def test_receives_normalized_messages_once(harness: Harness) -> None:
    c = await started(harness)
    try:
        texts = [f"question {i}: how do I reset my password? ünïcødé ✅" for i in range(3)]
        for t in texts:
            await harness.post_customer_message(t)
        got, cursor = await collect(c, None, want=3)
    finally:
        await c.stop()
    assert [m.text for m in got] == texts
    assert len({m.external_id for m in got}) == 3
    for m in got:
        assert isinstance(m, InboundMessage)
        assert m.connector_id == c.id
        assert m.sent_at.tzinfo is not None and m.sent_at.utcoffset() == UTC.utcoffset(None)
        assert isinstance(m.author.id, str) and m.author.id
        assert isinstance(m.conversation_id, str) and m.conversation_id
    assert cursor is not None


async def test_resumes_from_cursor_without_loss(harness: Harness) -> None:
    c = await started(harness)
    try:
        await harness.post_customer_message("first")
        first, cursor = await collect(c, None, want=1)
    finally:
        await c.stop()
    assert [m.text for m in first] == ["first"]
    # down: two more arrive
    await harness.post_customer_message("second")
    await harness.post_customer_message("third")
    c2 = await started(harness)
    try:
        later, _ = await collect(c2, cursor, want=2)
    finally:
        await c2.stop()
    texts = [m.text for m in later]
    assert texts[-2:] == ["second", "third"]
    # anything delivered again must carry the same external id (the store dedupes on it)
    again = [m for m in later if m.text == "first"]
    assert all(m.external_id == first[0].external_id for m in again)


async def test_sends_a_reply(harness: Harness) -> None:
    c = await started(harness)
    try:
        await harness.post_customer_message("my app crashes on login")
        got, _ = await collect(c, None, want=1)
        receipt = await c.send(harness.reply_to(got[0], "Try clearing the cache: *_[ kept as typed", "k1"))
    finally:
        await c.stop()
    assert receipt.external_ids and all(isinstance(i, str) for i in receipt.external_ids)
    sent = await harness.sent_texts()
    assert any("Try clearing the cache" in s for s in sent)


async def test_long_text_respects_the_limit(harness: Harness) -> None:
    c = await started(harness)
    limit = type(c).capabilities.max_text_length
    try:
        await harness.post_customer_message("long one please")
        got, _ = await collect(c, None, want=1)
        para = "word " * 60
        text = "\n\n".join(f"Paragraph {i}. {para}" for i in range(limit // 200 + 4))
        receipt = await c.send(harness.reply_to(got[0], text, "long"))
    finally:
        await c.stop()
    sent = await harness.sent_texts()
    assert len(receipt.external_ids) >= 1
    assert sent and all(len(s) <= limit for s in sent)


@pytest.mark.parametrize(
    ("fault", "error"),
    [("rate_limit", RateLimited), ("server_error", TransientError), ("auth", AuthError)],
)
async def test_send_errors_are_translated(harness: Harness, fault: str, error: type[Exception]) -> None:
    c = await started(harness)
    try:
        await harness.post_customer_message("hello? anyone?")
        got, _ = await collect(c, None, want=1)
        await harness.inject_send_fault(fault)  # type: ignore[arg-type]
        with pytest.raises(error):
            await c.send(harness.reply_to(got[0], "an answer", f"fault-{fault}"))
    finally:
        await c.stop()

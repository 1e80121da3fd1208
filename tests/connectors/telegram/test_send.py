"""Sending through real PTB to the fake: threads, escaping, splitting, mentions, DMs, errors."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.errors import AuthError, PermanentSendError, RateLimited
from bot.models import HealthState, Mention, OutboundMessage
from connectors.telegram import TelegramConnector
from sandbox.telegram import FakeTelegram
from tests.connectors.telegram.conftest import ALICE, BO, CY, FORUM, GROUP

TRICKY = "Use *_[brackets]_* and <b>tags</b> & `code` (2 > 1) ~ | # + - = { } . ! \\ as typed"


def out(text: str, key: str, chat: int = GROUP, **kw: Any) -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=key,
        connector_id="tg-test",
        conversation_id=str(chat),
        text=text,
        **kw,
    )


@pytest.mark.parametrize("parse_mode", ["HTML", "MarkdownV2"])
async def test_customer_text_is_escaped(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector], parse_mode: str
) -> None:
    c = make_connector(parse_mode=parse_mode)
    await c.start()
    try:
        await c.send(out(TRICKY, "k"))
    finally:
        await c.stop()
    [sent] = fake.sent(GROUP)
    assert sent.parse_mode == parse_mode
    assert sent.text == TRICKY  # the platform shows exactly what was typed
    assert sent.entities == []  # and nothing was turned into formatting


async def test_unescaped_markup_is_refused_by_the_fake(fake: FakeTelegram) -> None:
    # the fake is strict like the real API, so the escaping test above can fail
    from sandbox.telegram.markup import EntityParseError, parse

    for mode, bad in (("HTML", "a <b"), ("HTML", "<x>y</x>"), ("MarkdownV2", "*_["), ("MarkdownV2", "1.5")):
        with pytest.raises(EntityParseError):
            parse(bad, mode)


async def test_reply_lands_in_the_topic_and_quotes_the_question(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    topic = fake.create_topic(FORUM, "Login")
    q = fake.post(FORUM, ALICE, "cannot log in", thread_id=topic)
    c = make_connector()
    await c.start()
    try:
        receipt = await c.send(
            out(
                "Try the reset link",
                "k",
                FORUM,
                thread_ref=f"{FORUM}:{topic}",
                reply_to_id=f"{FORUM}:{q['message_id']}",
            )
        )
    finally:
        await c.stop()
    [sent] = fake.sent(FORUM)
    assert (sent.thread_id, sent.reply_to) == (topic, q["message_id"])
    assert receipt.external_ids == (f"{FORUM}:{sent.message_id}",)
    assert receipt.permalink == f"https://t.me/c/1000000002/{topic}/{sent.message_id}"


async def test_reply_to_a_deleted_message_is_still_sent(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    c = make_connector()
    await c.start()
    try:
        await c.send(out("answer", "k", reply_to_id=f"{GROUP}:999"))
    finally:
        await c.stop()
    [sent] = fake.sent(GROUP)
    assert sent.reply_to is None and sent.text == "answer"


async def test_long_text_is_split_on_paragraphs_and_paced(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    paragraphs = [
        f"Step {i}: " + " ".join(["lorem ipsum <&>"] * 40) for i in range(16)
    ]  # ~10.5k visible chars
    text = "\n\n".join(paragraphs)
    c = make_connector()
    await c.start()
    try:
        receipt = await c.send(out(text, "long", reply_to_id=f"{GROUP}:1"))
    finally:
        await c.stop()
    sent = fake.sent(GROUP)
    assert len(sent) == len(receipt.external_ids) == 3
    assert all(len(s.text.encode("utf-16-le")) // 2 <= 4096 for s in sent)
    assert "\n\n".join(s.text for s in sent) == text  # cut only between paragraphs, nothing lost
    assert all(s.text.startswith("Step ") and s.text.endswith("<&>") for s in sent)
    assert [s.at for s in sent] == sorted(s.at for s in sent)
    assert all(b.at - a.at >= 0.95 for a, b in itertools.pairwise(sent))
    assert fake.violations == 0


async def test_mentions_notify_helpers(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    c = make_connector()
    await c.start()
    try:
        await c.send(
            out(
                "can you take this one?",
                "k",
                mentions=(
                    Mention(user_id=str(BO), handle="bo_helps"),
                    Mention(user_id=str(CY), display_name="Cy <3"),
                ),
            )
        )
    finally:
        await c.stop()
    [sent] = fake.sent(GROUP)
    assert sent.text == "@bo_helps Cy <3 can you take this one?"
    assert sent.mentioned_usernames == ["bo_helps"]
    assert sent.mentioned_user_ids == [CY]


async def test_private_message_and_refusals(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    fake.dm(ALICE, "hi")  # Alice opened a DM with the bot; Cy never did
    c = make_connector()
    await c.start()
    try:
        receipt = await c.send(
            out("About your card: ...", "p1", private_to=str(ALICE), reply_to_id=f"{GROUP}:1")
        )
        with pytest.raises(PermanentSendError, match="initiate"):
            await c.send(out("hello", "p2", private_to=str(CY)))
        with pytest.raises(PermanentSendError, match=r"(?i)chat not found"):
            await c.send(out("hello", "p3", chat=-100999))
        with pytest.raises(PermanentSendError):
            await c.send(out("   ", "p4"))
    finally:
        await c.stop()
    [dm] = fake.sent(ALICE)
    assert dm.text == "About your card: ..." and dm.reply_to is None
    assert receipt.external_ids == (f"{ALICE}:{dm.message_id}",)


async def test_same_key_is_sent_once_and_a_failed_split_resumes(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    text = "\n\n".join(["a" * 3000, "b" * 3000])
    c = make_connector(per_chat_interval=0.2)
    await c.start()
    try:
        first = await c.send(out("hello", "same"))
        again = await c.send(out("hello", "same"))
        fake.inject("slow", "sendMessage", delay=0.0)  # first part passes
        fake.inject("server_error", "sendMessage")  # second part fails
        with pytest.raises(Exception, match="Bad Gateway"):
            await c.send(out(text, "split"))
        receipt = await c.send(out(text, "split"))  # the dispatcher's retry
    finally:
        await c.stop()
    assert first == again
    texts = [s.text for s in fake.sent(GROUP)]
    assert texts == ["hello", "a" * 3000, "b" * 3000]
    assert len(receipt.external_ids) == 2


async def test_429_waits_in_that_chat_only(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    fake.dm(ALICE, "hi")
    c = make_connector()
    await c.start()
    try:
        fake.inject("rate_limit", "sendMessage", retry_after=2)
        with pytest.raises(RateLimited) as info:
            await c.send(out("one", "a1"))
        assert info.value.retry_after == 2
        t0 = time.monotonic()
        await c.send(out("other chat", "b1", chat=ALICE))
        assert time.monotonic() - t0 < 0.5  # not held up by the group's 429
        await c.send(out("one", "a1"))  # the group itself waits out retry_after
        assert time.monotonic() - t0 >= 1.8
    finally:
        await c.stop()
    assert [s.text for s in fake.sent()] == ["other chat", "one"]
    assert fake.violations == 0


async def test_revoked_token_on_send(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    c = make_connector()
    await c.start()
    try:
        fake.inject("unauthorized", "sendMessage")
        with pytest.raises(AuthError):
            await c.send(out("x", "k"))
        health = await c.health()
        assert health.state is HealthState.DOWN and "401" in health.detail
    finally:
        await c.stop()


async def test_bad_token_at_start(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    c = make_connector(token="999:WRONG")
    with pytest.raises(AuthError) as info:
        await c.start()
    assert "WRONG" not in str(info.value)  # the token never ends up in messages or logs
    assert (await c.health()).state is HealthState.DOWN


def test_settings_validation(fake: FakeTelegram) -> None:
    from pydantic import ValidationError

    from tests.connectors.telegram.conftest import settings_for

    for bad in (
        {"token": ""},
        {"token": "no-colon"},
        {"chats": ["@support"]},
        {"mode": "webhook"},
        {"api_base_url": "ftp://x"},
        {"mode": "webhook", "webhook": {"public_url": "https://x/y", "secret_token": "has space"}},
    ):
        with pytest.raises(ValidationError):
            settings_for(fake, **bad)
    s = settings_for(fake, chats=[-1001, "-1002"], api_base_url="http://127.0.0.1:1/")
    assert s.chats == ("-1001", "-1002") and s.api_base_url == "http://127.0.0.1:1"
    assert "TEST-TOKEN" not in repr(s) and "TEST-TOKEN" not in str(s.model_dump())

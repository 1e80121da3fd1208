"""Sending: replies, threads, mentions, splitting, embeds, buttons, DMs, idempotency, errors."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import PermanentSendError, TransientError
from bot.models import AnswerCard, Button, Mention, OutboundMessage
from connectors.discord import DiscordConnector
from sandbox.discord import FakeDiscord
from tests.connectors.discord.conftest import Store, running, settings_for


def out(fake: FakeDiscord, key: str, text: str, **kw: object) -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=key,
        connector_id="dc",
        conversation_id=str(kw.pop("conversation_id", fake.text_channel_id)),
        text=text,
        **kw,  # type: ignore[arg-type]
    )


async def test_reply_with_mentions_notifies_only_those_named(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        q = await fake.post(fake.text_channel_id, "how do I change my plan?", author="carol")
        await store.wait_for(lambda: q["id"] in store.messages)
        dave = fake.users["dave"]["id"]
        erin = fake.users["erin"]["id"]
        receipt = await c.send(
            out(
                fake,
                "m1",
                f"Can you help? (not you <@{erin}>, and no @everyone)",
                reply_to_id=q["id"],
                mentions=(Mention(user_id=dave, handle="dave"), Mention(user_id="helpers", role=True)),
                purpose="tag_helpers",
            )
        )
    [sent] = fake.bot_messages()
    assert sent["id"] == receipt.external_ids[0]
    assert sent["content"].startswith(f"<@{dave}> <@&{fake.helper_role_id}> Can you help?")
    assert sent["message_reference"]["message_id"] == q["id"]
    notified = {u["id"] for u in sent["mentions"]}
    assert notified == {dave, fake.users["carol"]["id"]}  # the helper, and the asker being replied to
    assert sent["mention_roles"] == [fake.helper_role_id]
    assert receipt.permalink and fake.guild_id in receipt.permalink


async def test_tag_helpers_without_names_mentions_the_helper_role(fake: FakeDiscord) -> None:
    c = DiscordConnector("dc", settings_for(fake))
    await c.start()
    try:
        await c.send(out(fake, "r1", "A new question needs you.", purpose="tag_helpers"))
    finally:
        await c.stop()
    [sent] = fake.bot_messages()
    assert sent["content"] == f"<@&{fake.helper_role_id}> A new question needs you."
    assert sent["mention_roles"] == [fake.helper_role_id]


async def test_long_answer_is_split_with_card_and_buttons_on_the_last_part(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    paragraphs = [f"Step {i}: " + "do the thing carefully " * 20 for i in range(10)]
    text = "\n\n".join(paragraphs)
    card = AnswerCard(
        question="How do I migrate my workspace?",
        answer=paragraphs[0],
        credit="Dave",
        link="https://discord.com/channels/1/2/3",
    )
    async with running(c, store):
        q = await fake.post(fake.text_channel_id, "migration?")
        await store.wait_for(lambda: q["id"] in store.messages)
        receipt = await c.send(
            out(
                fake,
                "long",
                text,
                reply_to_id=q["id"],
                card=card,
                buttons=(Button(label="Solved", data="solved"), Button(label="Not yet", data="notyet")),
            )
        )
    sent = fake.bot_messages()
    assert [m["id"] for m in sent] == list(receipt.external_ids) and len(sent) >= 3
    assert all(len(m["content"]) <= 2000 for m in sent)
    assert " ".join(" ".join(m["content"] for m in sent).split()) == " ".join(text.split())
    assert sent[0]["message_reference"]["message_id"] == q["id"]
    assert all("message_reference" not in m for m in sent[1:])
    assert all(not m["embeds"] and not m["components"] for m in sent[:-1])
    [embed] = sent[-1]["embeds"]
    assert embed["title"] == card.question and embed["url"] == card.link
    assert "description" not in embed  # the answer is already in the text
    assert embed["footer"]["text"] == "Answer by Dave"
    assert [b["custom_id"] for b in sent[-1]["components"][0]["components"]] == ["solved", "notyet"]


async def test_card_carries_the_answer_when_the_text_does_not(fake: FakeDiscord) -> None:
    c = DiscordConnector("dc", settings_for(fake))
    await c.start()
    try:
        card = AnswerCard(question="Reset password?", answer="Use the 'Forgot password' link.", credit="Dave")
        await c.send(out(fake, "card", "This was answered before:", card=card))
    finally:
        await c.stop()
    [sent] = fake.bot_messages()
    assert sent["content"] == "This was answered before:"
    assert sent["embeds"][0]["description"] == "Use the 'Forgot password' link."


async def test_a_lost_response_or_a_restart_never_sends_twice(fake: FakeDiscord) -> None:
    msg = out(fake, "thread-9:answer", "Here is the fix.")
    c = DiscordConnector("dc", settings_for(fake))
    await c.start()
    try:
        fake.fail_next(503, after_effect=True)  # Discord created it, the answer got lost
        with pytest.raises(TransientError):
            await c.send(msg)
        first = await c.send(msg)  # the dispatcher retries: Discord's nonce check returns the same message
        assert await c.send(msg) == first  # and again: remembered
    finally:
        await c.stop()
    restarted = DiscordConnector("dc", settings_for(fake))
    await restarted.start()
    try:
        again = await restarted.send(msg)  # a new process, same idempotency key
    finally:
        await restarted.stop()
    assert again.external_ids == first.external_ids
    assert fake.sent_texts() == ["Here is the fix."]


async def test_refusals_are_permanent(fake: FakeDiscord) -> None:
    c = DiscordConnector("dc", settings_for(fake))
    await c.start()
    try:
        with pytest.raises(PermanentSendError):
            await c.send(out(fake, "e1", "hello", conversation_id="123456789"))  # unknown channel
        with pytest.raises(PermanentSendError):
            await c.send(out(fake, "e2", "hello", conversation_id="general"))  # not a Discord id
        with pytest.raises(PermanentSendError):
            await c.send(out(fake, "e3", "   "))
        with pytest.raises(PermanentSendError):
            await c.send(
                out(fake, "e4", "x", buttons=(Button(label="a", data="same"), Button(label="b", data="same")))
            )
        fake.fail_next(403)
        with pytest.raises(PermanentSendError, match="403"):
            await c.send(out(fake, "e5", "no permission here"))
        fake.dms_closed.add(fake.users["erin"]["id"])
        with pytest.raises(PermanentSendError, match="50007"):
            await c.send(out(fake, "e7", "private", private_to=fake.users["erin"]["id"]))
        # a reply target that is gone is dropped rather than failing the answer
        receipt = await c.send(out(fake, "e6", "answer anyway", reply_to_id="42"))
        assert fake.by_id[receipt.external_ids[0]].get("message_reference") is None
    finally:
        await c.stop()


async def test_sends_start_the_connector_once_on_demand(fake: FakeDiscord) -> None:
    c = DiscordConnector("dc", settings_for(fake))  # never started explicitly
    try:
        receipts = await asyncio.gather(*(c.send(out(fake, f"d{i}", f"hello {i}")) for i in range(3)))
    finally:
        await c.stop()
    assert len({r.external_ids for r in receipts}) == 3
    assert fake.limits.counters.identifies == 1  # one client, one gateway session

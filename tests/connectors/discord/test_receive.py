"""Receiving: the real discord.py client against the fake gateway, normalized into the store."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import AuthError
from bot.models import Button, HealthState, MessageKind, OutboundMessage
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


async def test_question_in_text_channel_opens_its_thread(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake, thread_per_question=True))
    async with running(c, store):
        q = await fake.post(fake.text_channel_id, "How do I export my data to CSV?")
        await store.wait_for(lambda: q["id"] in store.messages)
        question = store.messages[q["id"]]
        assert question.kind == MessageKind.CHANNEL_POST
        assert question.conversation_id == fake.text_channel_id and question.thread_ref is None
        assert question.author.handle == "carol" and not question.author.is_bot
        assert question.sent_at.utcoffset() is not None

        receipt = await c.send(out(fake, "t1", "Looking for someone who knows.", reply_to_id=q["id"]))
        # the reply went into a thread grown from the question (thread id == question id)
        assert fake.channels[q["id"]]["parent_id"] == fake.text_channel_id
        assert fake.channels[q["id"]]["name"] == "How do I export my data to CSV?"
        assert [m["id"] for m in fake.bot_messages(q["id"])] == list(receipt.external_ids)

        follow = await fake.post(q["id"], "it's the web app, by the way", author="carol")
        answer = await fake.post(q["id"], "Settings > Export > CSV", author="dave", reply_to=follow["id"])
        await store.wait_for(lambda: answer["id"] in store.messages)
        f, a = store.messages[follow["id"]], store.messages[answer["id"]]
        assert (f.kind, f.thread_ref, f.reply_to_id, f.conversation_id) == (
            MessageKind.REPLY,
            q["id"],
            q["id"],
            fake.text_channel_id,
        )
        assert (a.kind, a.thread_ref, a.reply_to_id) == (MessageKind.REPLY, q["id"], follow["id"])
        assert a.raw["author_role_ids"] == [fake.helper_role_id]

        # a second reply to the same question reuses the thread
        await c.send(out(fake, "t2", "Glad it worked!", reply_to_id=q["id"]))
        assert len(fake.bot_messages(q["id"])) == 2
    assert not store.duplicates()


async def test_forum_post_has_title_tags_and_thread(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        thread, starter = await fake.forum_post(
            "Login fails on Android", "Since the update I get error 42", tags=["login"]
        )
        reply = await fake.post(thread["id"], "Clear the app cache, then log in again", author="dave")
        await store.wait_for(lambda: reply["id"] in store.messages)
        post, answer = store.messages[starter["id"]], store.messages[reply["id"]]
        assert post.title == "Login fails on Android"
        assert post.raw["forum_tags"] == ["login"]
        assert (post.kind, post.thread_ref, post.conversation_id, post.reply_to_id) == (
            MessageKind.CHANNEL_POST,
            thread["id"],
            fake.forum_channel_id,
            None,
        )
        assert (answer.kind, answer.thread_ref, answer.reply_to_id) == (
            MessageKind.REPLY,
            thread["id"],
            thread["id"],
        )

        receipt = await c.send(
            out(
                fake,
                "f1",
                "Did that help?",
                conversation_id=fake.forum_channel_id,
                thread_ref=thread["id"],
                reply_to_id=thread["id"],
            )
        )
        sent = fake.bot_messages(thread["id"])
        assert [m["id"] for m in sent] == list(receipt.external_ids)
        assert sent[0]["message_reference"]["message_id"] == thread["id"]  # a reply to the post itself


async def test_existing_thread_reactions_and_edits(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        m = await fake.post(fake.existing_thread_id, "still slow for me", author="carol")
        fix = await fake.post(fake.existing_thread_id, "restart sync from the tray icon", author="dave")
        await fake.react(fix["id"], "🎉", user="carol")  # not a watched emoji: ignored
        await fake.react(fix["id"], "✅", user="carol")
        await fake.react(fix["id"], "👍🏽", user="dave")  # a skin tone still counts as 👍
        await fake.edit(m["id"], "still slow for me (v2.3)")
        await fake.edit(m["id"], "still slow for me (v2.3, Windows)")
        await fake.delete(m["id"])
        await store.wait_for(lambda: len(store.of_kind(MessageKind.DELETE)) == 1)

        assert store.messages[m["id"]].thread_ref == fake.existing_thread_id
        solved, thumbs = sorted(store.of_kind(MessageKind.REACTION), key=lambda r: r.reaction != "✅")
        assert (thumbs.reaction, thumbs.raw["emoji"]) == ("👍", "👍🏽")
        assert (solved.reaction, solved.target_id, solved.author.id) == (
            "✅",
            fix["id"],
            fake.users["carol"]["id"],
        )
        assert solved.raw["message_author_id"] == fake.users["dave"]["id"]
        edits = store.of_kind(MessageKind.EDIT)
        assert [e.text for e in edits] == ["still slow for me (v2.3)", "still slow for me (v2.3, Windows)"]
        assert {e.target_id for e in edits} == {m["id"]} and len({e.external_id for e in edits}) == 2
        [deleted] = store.of_kind(MessageKind.DELETE)
        assert deleted.target_id == m["id"] and deleted.external_id == f"del:{m['id']}"


async def test_button_click_is_acknowledged_within_3s(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        q = await fake.post(fake.text_channel_id, "where is my invoice?")
        await store.wait_for(lambda: q["id"] in store.messages)
        receipt = await c.send(
            out(
                fake,
                "b1",
                "Invoices are under Billing > History.",
                reply_to_id=q["id"],
                buttons=(Button(label="Solved", data="solved:7"), Button(label="Not yet", data="unsolved:7")),
            )
        )
        bot_msg = fake.by_id[receipt.external_ids[-1]]
        row = bot_msg["components"][0]["components"]
        assert [(b["label"], b["custom_id"]) for b in row] == [
            ("Solved", "solved:7"),
            ("Not yet", "unsolved:7"),
        ]

        it = await fake.click(bot_msg["id"], "solved:7", user="carol")
        await store.wait_for(lambda: bool(store.of_kind(MessageKind.BUTTON)))
        for _ in range(100):
            if it.acked_at is not None:
                break
            await asyncio.sleep(0.01)
        assert it.acked_at is not None and it.acked_at - it.created < 3.0
        assert it.ack_type == 6
        [press] = store.of_kind(MessageKind.BUTTON)
        assert (press.button_data, press.target_id, press.author.id) == (
            "solved:7",
            bot_msg["id"],
            fake.users["carol"]["id"],
        )
        assert fake.limits.counters.interactions_late == 0


async def test_direct_messages_both_ways(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        dm = await fake.dm("my card was charged twice", author="carol")
        await store.wait_for(lambda: dm["id"] in store.messages)
        got = store.messages[dm["id"]]
        assert (got.kind, got.is_private, got.conversation_id) == (MessageKind.DM, True, dm["channel_id"])

        # private routing to a user who never wrote to the bot: a DM channel is opened
        receipt = await c.send(
            out(fake, "p1", "A customer needs billing help.", private_to=fake.users["erin"]["id"])
        )
        erin_dm = fake.dm_channel_for(fake.users["erin"]["id"])
        assert [m["id"] for m in fake.bot_messages(erin_dm["id"])] == list(receipt.external_ids)


async def test_unwatched_channels_and_own_messages_are_skipped(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake, dms=False))
    async with running(c, store):
        await fake.post(fake.other_channel_id, "off-topic chatter")
        await fake.dm("a DM while DMs are off")
        await c.send(out(fake, "o1", "the bot speaking"))
        last = await fake.post(fake.text_channel_id, "a real question")
        await store.wait_for(lambda: last["id"] in store.messages)
    assert store.texts() == ["a real question"]


async def test_without_message_content_intent_health_says_so(fake: FakeDiscord) -> None:
    fake.message_content_enabled = False
    strict = DiscordConnector("dc", settings_for(fake))
    with pytest.raises(AuthError, match="message content intent"):
        await strict.start()
    health = await strict.health()
    assert health.state == HealthState.DOWN and "message content intent" in health.detail
    await strict.stop()

    store = Store()
    lenient = DiscordConnector("dc", settings_for(fake, require_message_content=False))
    async with running(lenient, store):
        health = await lenient.health()
        assert health.state == HealthState.DEGRADED and "message content intent" in health.detail
        plain = await fake.post(fake.text_channel_id, "invisible without the intent")
        mention = await fake.post(fake.text_channel_id, "help please", mention_bot=True)
        await store.wait_for(lambda: mention["id"] in store.messages)
        assert store.messages[plain["id"]].text == ""
        assert store.messages[mention["id"]].text.endswith("help please")
        assert store.messages[mention["id"]].kind == MessageKind.MENTION

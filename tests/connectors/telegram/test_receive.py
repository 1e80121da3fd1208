"""Receiving through real PTB from the fake: groups, forum topics, DMs, replies, edits, buttons."""

from __future__ import annotations

from collections.abc import Callable

from bot.models import Button, MessageKind, OutboundMessage
from connectors.telegram import TelegramConnector
from sandbox.telegram import BOT_USERNAME, FakeTelegram
from tests.connectors.telegram.conftest import (
    ALICE,
    BASIC,
    BO,
    CY,
    FORUM,
    GROUP,
    Store,
    eventually,
    listening,
)


async def test_group_question(fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]) -> None:
    store = Store()
    async with listening(make_connector(), store):
        posted = fake.post(GROUP, ALICE, "How do I reset my password? *_[ keeps failing")
        [msg] = await store.wait_count(1)
    assert msg.external_id == f"{GROUP}:{posted['message_id']}"
    assert msg.conversation_id == str(GROUP)
    assert msg.kind is MessageKind.CHANNEL_POST
    assert msg.thread_ref is None and msg.reply_to_id is None
    assert msg.text == "How do I reset my password? *_[ keeps failing"
    assert (msg.author.id, msg.author.handle, msg.author.display_name) == (str(ALICE), "alice", "Alice")
    assert not msg.is_private and not msg.mentions_bot
    assert msg.permalink == f"https://t.me/acme_support/{posted['message_id']}"
    assert msg.sent_at.utcoffset() is not None and msg.sent_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert msg.raw["message"]["message_id"] == posted["message_id"]
    assert store.cursor is not None


async def test_mention_of_the_bot(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store = Store()
    async with listening(make_connector(), store):
        fake.post(GROUP, ALICE, f"@{BOT_USERNAME} my order is late")
        [msg] = await store.wait_count(1)
    assert msg.kind is MessageKind.MENTION and msg.mentions_bot


async def test_forum_topic_question_and_helper_reply(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    topic = fake.create_topic(FORUM, "Billing")
    store = Store()
    connector = make_connector()
    async with listening(connector, store):
        q = fake.post(FORUM, ALICE, "Why was I charged twice?", thread_id=topic)
        [question] = await store.wait_count(1)
        # the bot tags a helper in the topic, replying to the question
        await connector.send(
            OutboundMessage(
                idempotency_key="t1:tag",
                connector_id=connector.id,
                conversation_id=question.conversation_id,
                thread_ref=question.thread_ref,
                reply_to_id=question.external_id,
                text="Can someone help with this?",
            )
        )
        # the helper answers the question itself
        fake.post(FORUM, BO, "Refunds take 3 days", thread_id=topic, reply_to=q["message_id"])
        # someone else writes in the topic without replying to anything
        fake.post(FORUM, CY, "same here", thread_id=topic)
        msgs = await store.wait_count(3)
    question, answer, plain = msgs
    assert question.thread_ref == f"{FORUM}:{topic}"
    assert (
        question.kind is MessageKind.CHANNEL_POST and question.reply_to_id is None
    )  # topic root is no reply
    assert question.title == "Billing"
    assert question.permalink == f"https://t.me/c/1000000002/{topic}/{q['message_id']}"
    assert answer.kind is MessageKind.REPLY
    assert answer.reply_to_id == question.external_id
    assert answer.thread_ref == question.thread_ref
    assert plain.thread_ref == question.thread_ref and plain.reply_to_id is None
    [sent] = fake.sent(FORUM)
    assert sent.thread_id == topic and sent.reply_to == q["message_id"]


async def test_helper_reply_in_a_plain_group(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store = Store()
    async with listening(make_connector(), store):
        q = fake.post(BASIC, ALICE, "Is the app down?")
        fake.post(BASIC, BO, "No, try again", reply_to=q["message_id"])
        question, answer = await store.wait_count(2)
    assert answer.reply_to_id == question.external_id == f"{BASIC}:{q['message_id']}"
    assert answer.thread_ref is None and answer.kind is MessageKind.REPLY
    assert question.permalink is None  # basic groups have no links


async def test_dm(fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]) -> None:
    store = Store()
    async with listening(make_connector(), store):
        posted = fake.dm(CY, "my card was charged, help")
        [msg] = await store.wait_count(1)
    assert msg.kind is MessageKind.DM and msg.is_private and msg.mentions_bot
    assert msg.conversation_id == str(CY) and msg.external_id == f"{CY}:{posted['message_id']}"
    assert msg.author.handle is None and msg.author.display_name == "Cy"


async def test_edits_get_their_own_ids(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store = Store()
    async with listening(make_connector(), store):
        posted = fake.post(GROUP, ALICE, "how do I exprot data?")
        await store.wait_count(1)
        fake.edit(GROUP, posted["message_id"], "how do I export data?")
        fake.edit(GROUP, posted["message_id"], "how do I export my data?")
        msgs = await store.wait_count(3)
    original, first, second = msgs
    for edit, text in ((first, "how do I export data?"), (second, "how do I export my data?")):
        assert edit.kind is MessageKind.EDIT
        assert edit.target_id == original.external_id
        assert edit.text == text
        assert edit.external_id.startswith(f"{original.external_id}:edit:")
    assert first.external_id != second.external_id


async def test_button_press(fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]) -> None:
    store = Store()
    connector = make_connector(callback_answer_text="Thanks!")
    async with listening(connector, store):
        fake.post(GROUP, ALICE, "where is the export button?")
        [question] = await store.wait_count(1)
        receipt = await connector.send(
            OutboundMessage(
                idempotency_key="t2:auto",
                connector_id=connector.id,
                conversation_id=question.conversation_id,
                reply_to_id=question.external_id,
                text="Settings → Data → Export.\nDid this solve it?",
                buttons=(Button(label="Solved", data="solved:t2"), Button(label="Not yet", data="open:t2")),
                purpose="auto_answer",
            )
        )
        [bot_msg_id] = receipt.external_ids
        cb = fake.press(GROUP, int(bot_msg_id.split(":")[1]), ALICE, "solved:t2")
        await store.wait_count(2)
        await eventually(lambda: cb in fake.callback_answers)
    press = store.messages[f"cb:{cb}"]
    assert press.kind is MessageKind.BUTTON and press.button_data == "solved:t2"
    assert press.target_id == bot_msg_id and press.author.id == str(ALICE)
    assert fake.callback_answers[cb].get("text") == "Thanks!"
    keyboard = fake.sent(GROUP)[0].reply_markup
    assert keyboard is not None
    assert [b["callback_data"] for b in keyboard["inline_keyboard"][0]] == ["solved:t2", "open:t2"]


async def test_watch_list_and_mentions_only(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store = Store()
    connector = make_connector(chats=[GROUP], group_messages="mentions_only", accept_dms=False)
    async with listening(connector, store):
        fake.post(FORUM, ALICE, f"@{BOT_USERNAME} not a watched chat")
        fake.post(GROUP, ALICE, "chatter that does not address the bot")
        fake.dm(ALICE, "a DM while DMs are off")
        wanted = fake.post(GROUP, ALICE, f"hey @{BOT_USERNAME}, question")
        await eventually(lambda: fake.pending_updates() == [] and store.batches > 0)
        await store.wait_count(1)
    assert list(store.messages) == [f"{GROUP}:{wanted['message_id']}"]
    # everything was still acknowledged: the cursor moved past the skipped updates
    assert store.cursor is not None and int(store.cursor) == fake.updates[-1]["update_id"] + 1

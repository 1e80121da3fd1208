"""Mentions, conversations, replies and DMs: the real tweepy against the sandbox fake."""

from __future__ import annotations

import pytest

from bot.errors import PermanentSendError
from bot.models import AnswerCard, Mention, MessageKind, OutboundMessage
from connectors.twitter import TwitterConnector
from connectors.twitter.cursor import XCursor
from connectors.twitter.weighted import weighted_length
from sandbox.x import FakeX, WorldError
from tests.connectors.twitter.conftest import Clock, MakeConnector, fetch_all, reply


async def test_a_mention_opens_a_thread_and_replies_join_it(fake: FakeX, connector: TwitterConnector) -> None:
    root = fake.mention("ann", "my order #123 never arrived & I'm <annoyed>")
    got, cursor = await fetch_all(connector, None)
    assert len(got) == 1
    question = got[0]
    assert question.kind is MessageKind.MENTION
    assert question.external_id == root["id"]
    assert question.thread_ref == question.conversation_id == root["id"]
    assert question.reply_to_id is None and question.mentions_bot
    assert question.text == "my order #123 never arrived & I'm <annoyed>"  # addressing stripped, unescaped
    assert question.author.handle == "ann" and question.author.display_name == "Ann"
    assert question.permalink == f"https://x.com/ann/status/{root['id']}"

    # the bot answers; the asker and a helper reply in the same conversation
    receipt = await connector.send(reply(question, "Sorry! Which country was it shipped to?", "t1:ask"))
    (bot_post,) = fake.bot_posts()
    assert receipt.external_ids == (bot_post["id"],)
    assert bot_post["referenced_tweets"] == [{"type": "replied_to", "id": root["id"]}]
    asker = fake.reply("ann", bot_post["id"], "Germany")  # X prepends "@acme_support"
    helper = fake.reply("bo_helps", root["id"], "it's usually customs, give it 2 more days")
    unrelated = fake.mention("bo_helps", "different question")

    later, cursor2 = await fetch_all(connector, cursor)
    by_id = {m.external_id: m for m in later}
    assert set(by_id) == {asker["id"], helper["id"], unrelated["id"]}
    assert [m.external_id for m in later] == sorted(by_id, key=int)  # oldest first
    for mid, parent in ((asker["id"], bot_post["id"]), (helper["id"], root["id"])):
        m = by_id[mid]
        assert m.kind is MessageKind.REPLY
        assert m.thread_ref == question.thread_ref and m.conversation_id == question.conversation_id
        assert m.reply_to_id == parent
    assert by_id[asker["id"]].text == "Germany"
    assert by_id[helper["id"]].text == "it's usually customs, give it 2 more days"
    assert by_id[unrelated["id"]].thread_ref == unrelated["id"] != question.thread_ref
    assert XCursor.loads(cursor2).mentions == unrelated["id"]

    # nothing new: nothing returned, the cursor does not move, nothing re-read
    reads = connector.budget.usage.reads
    again = await connector.fetch(cursor2)
    assert again.messages == () and again.cursor is None
    assert connector.budget.usage.reads == reads


async def test_mentions_page_through_everything_since_the_cursor(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    c = make_connector(page_size=5)
    await c.start()
    try:
        fake.mention("ann", "first")
        _, cursor = await fetch_all(c, None)
        posted = [fake.mention("ann", f"question {i}")["id"] for i in range(12)]
        before = fake.request_count("mentions")
        got, _ = await fetch_all(c, cursor)
    finally:
        await c.stop()
    assert [m.external_id for m in got] == posted
    assert fake.request_count("mentions") - before == 3  # 5 + 5 + 2
    pages = [r.query for r in fake.requests if r.endpoint == "mentions"][-3:]
    assert all(q["since_id"] == XCursor.loads(cursor).mentions for q in pages)
    assert "pagination_token" not in pages[0] and all("pagination_token" in q for q in pages[1:])
    assert set(pages[0]["expansions"].split(",")) >= {"author_id", "referenced_tweets.id"}
    assert "conversation_id" in pages[0]["tweet.fields"]


async def test_reply_mentions_helpers_by_handle(fake: FakeX, connector: TwitterConnector) -> None:
    fake.mention("ann", "how do I export my data?")
    (question,), _ = await fetch_all(connector, None)
    bo = fake.world.find_user("bo_helps")
    assert bo is not None
    await connector.send(
        reply(question, "Can you help with this one?", "t1:tag", mentions=[Mention(user_id=bo["id"])])
    )
    (post,) = fake.bot_posts()
    # the reply addresses the asker, then the helper
    assert post["text"] == "@ann @bo_helps Can you help with this one?"
    assert [m["username"] for m in post["entities"]["mentions"]] == ["ann", "bo_helps"]
    assert fake.request_count("user_lookup") == 1  # the handle was unknown: looked up once


async def test_refuses_to_reply_to_a_post_that_does_not_mention_the_bot(
    fake: FakeX, connector: TwitterConnector
) -> None:
    stranger = fake.post("ann", "talking about acme without tagging them")
    message = OutboundMessage(
        idempotency_key="k",
        connector_id="x-main",
        conversation_id=stranger["id"],
        reply_to_id=stranger["id"],
        text="hi",
    )
    with pytest.raises(PermanentSendError, match="mention"):
        await connector.send(message)
    no_target = message.model_copy(update={"reply_to_id": None, "idempotency_key": "k2"})
    with pytest.raises(PermanentSendError):
        await connector.send(no_target)
    assert fake.request_count("create_tweet") == 0 and fake.bot_posts() == []


async def test_the_fake_enforces_the_mention_rule_too(fake: FakeX, connector: TwitterConnector) -> None:
    """If the connector's own check is wrong, X (the fake) refuses: translated, not leaked."""
    stranger = fake.post("ann", "no tag here")
    connector._remember_replyable(stranger["id"], True)  # a stale belief
    with pytest.raises(PermanentSendError, match="not been mentioned"):
        await connector.send(
            OutboundMessage(
                idempotency_key="k",
                connector_id="x-main",
                conversation_id="c",
                reply_to_id=stranger["id"],
                text="hi",
            )
        )
    assert fake.rejected and fake.bot_posts() == []


async def test_long_answer_with_a_link_is_a_short_reply(fake: FakeX, connector: TwitterConnector) -> None:
    fake.mention("ann", "how do I reset my password on every device?")
    (question,), _ = await fetch_all(connector, None)
    answer = " ".join(f"On device {i}, open Settings and choose Reset password." for i in range(1, 12))
    link = "https://community.acme.example/t/reset-password-everywhere/4242"
    card = AnswerCard(question=question.text, answer=answer, credit="bo", link=link)
    receipt = await connector.send(reply(question, answer, "t1:auto", card=card))
    (post,) = fake.bot_texts()
    assert len(receipt.external_ids) == 1
    assert post.endswith(f"More: {link}") and weighted_length(post) <= 280
    assert post.removesuffix(f" More: {link}").endswith("Reset password.")  # whole sentences


async def test_long_answer_without_a_link_is_a_numbered_chain(
    fake: FakeX, connector: TwitterConnector
) -> None:
    fake.mention("ann", "日本語で教えてください")
    (question,), _ = await fetch_all(connector, None)
    answer = "".join(
        f"手順{i}：設定画面を開き、アカウントを選んでパスワードを再設定してください。" for i in range(1, 13)
    )
    receipt = await connector.send(reply(question, answer, "t1:cjk"))
    posts = fake.bot_posts()
    assert len(posts) == len(receipt.external_ids) >= 3
    n = len(posts)
    texts = fake.bot_texts()
    assert all(t.endswith(f"({i}/{n})") for i, t in enumerate(texts, start=1))
    assert all(weighted_length(t) <= 280 for t in texts)
    assert any(len(t) < 150 for t in texts)  # counted by weight (CJK = 2), not by characters
    # a chain: each part replies to the previous one, the first to the question
    parents = [p["referenced_tweets"][0]["id"] for p in posts]
    assert parents == [question.external_id] + [p["id"] for p in posts[:-1]]
    assert all(p["conversation_id"] == question.conversation_id for p in posts)


async def test_sensitive_question_goes_to_dm_with_a_safe_public_reply(
    fake: FakeX, connector: TwitterConnector
) -> None:
    fake.mention("ann", "I was charged twice on card 4111 1111 1111 1111, please refund")
    (question,), cursor = await fetch_all(connector, None)
    private = OutboundMessage(
        idempotency_key="t1:private",
        connector_id="x-main",
        conversation_id=question.conversation_id,
        private_to=question.author.id,
        text="Hi Ann, billing here. We found the double charge on your card and refunded it; ref RF-99.",
        purpose="route_private",
    )
    public = reply(question, "We've sent you a DM so we can help with this privately.", "t1:notice")
    dm_receipt = await connector.send(private)
    await connector.send(public)
    (dm,) = fake.bot_dms()
    assert dm["text"] == private.text and dm["dm_conversation_id"] == f"1000-{question.author.id}"
    assert dm_receipt.external_ids == (f"dm:{dm['id']}",) and dm_receipt.permalink is None
    (post,) = fake.bot_texts()
    assert post == "@ann We've sent you a DM so we can help with this privately."
    assert "RF-99" not in post and "card" not in post

    # the customer answers by DM: a private follow-up in the DM thread
    fake.dm("ann", "thanks, got it!")
    got, _ = await fetch_all(connector, cursor)
    (follow_up,) = got
    assert follow_up.kind is MessageKind.DM and follow_up.is_private
    assert follow_up.conversation_id == dm["dm_conversation_id"]
    assert follow_up.thread_ref == f"dm:{dm['dm_conversation_id']}"
    assert follow_up.author.handle == "ann" and follow_up.text == "thanks, got it!"

    # the bot answers in that DM thread (thread_ref, no private_to)
    await connector.send(
        OutboundMessage(
            idempotency_key="t1:dm2",
            connector_id="x-main",
            conversation_id=follow_up.conversation_id,
            thread_ref=follow_up.thread_ref,
            text="Glad it worked!",
        )
    )
    assert [e["text"] for e in fake.bot_dms()] == [private.text, "Glad it worked!"]


async def test_dm_to_someone_who_does_not_accept_dms_is_refused(
    fake: FakeX, connector: TwitterConnector
) -> None:
    shy = fake.add_user("shy", accepts_dms=False)
    with pytest.raises(PermanentSendError, match="cannot send messages"):
        await connector.send(
            OutboundMessage(
                idempotency_key="k",
                connector_id="x-main",
                conversation_id="c",
                private_to=shy["id"],
                text="hi",
            )
        )


async def test_dms_are_read_once_and_the_bots_own_are_skipped(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    clock = Clock()
    c = make_connector(
        clock=clock, dm_poll_interval_active=5, dm_poll_interval_idle=60, poll_interval_active=0.1
    )
    await c.start()
    try:
        fake.dm("ann", "hello, private question")
        got, cursor = await fetch_all(c, None)
        assert [m.text for m in got] == ["hello, private question"]
        dm_polls = fake.request_count("dm_events")
        clock.now += 2
        await fetch_all(c, cursor)  # DMs are not due yet: only mentions are polled
        assert fake.request_count("dm_events") == dm_polls
        await c.send(
            OutboundMessage(
                idempotency_key="k",
                connector_id="x-main",
                conversation_id=got[0].conversation_id,
                private_to=got[0].author.id,
                text="answer in private",
            )
        )
        fake.dm("ann", "one more")
        clock.now += 5  # a DM conversation is active: the fast DM interval applies
        got2, _ = await fetch_all(c, cursor)
    finally:
        await c.stop()
    assert [m.text for m in got2] == ["one more"]  # the bot's own DM is not delivered


async def test_dms_are_not_polled_when_disabled(fake: FakeX, make_connector: MakeConnector) -> None:
    c = make_connector(dms_enabled=False)
    await c.start()
    try:
        fake.dm("ann", "hello")
        fake.mention("ann", "public")
        got, _ = await fetch_all(c, None)
    finally:
        await c.stop()
    assert [m.text for m in got] == ["public"]
    assert fake.request_count("dm_events") == 0


async def test_reply_settings_are_passed_to_x(fake: FakeX, make_connector: MakeConnector) -> None:
    c = make_connector(reply_settings="mentionedUsers")
    await c.start()
    try:
        fake.mention("ann", "question")
        (question,), _ = await fetch_all(c, None)
        await c.send(reply(question, "@ann here is how", "k"))
    finally:
        await c.stop()
    (post,) = fake.bot_posts()
    assert post["reply_settings"] == "mentionedUsers"
    fake.reply("ann", post["id"], "thanks")  # mentioned: may reply
    with pytest.raises(WorldError):
        fake.reply("bo_helps", post["id"], "me too")  # not mentioned: X's reply settings refuse


async def test_the_same_answer_to_two_people_is_two_posts(fake: FakeX, connector: TwitterConnector) -> None:
    """X refuses a post identical to an earlier one; replies address their asker, so the same
    acknowledgement to two customers goes out twice."""
    fake.mention("ann", "my export fails")
    fake.mention("cy", "my export fails too")
    questions, _ = await fetch_all(connector, None)
    assert len(questions) == 2
    for i, q in enumerate(questions):
        await connector.send(reply(q, "Thanks! Helpers have been asked.", f"t{i}:ack"))
    texts = sorted(p["text"] for p in fake.bot_posts())
    assert texts == ["@ann Thanks! Helpers have been asked.", "@cy Thanks! Helpers have been asked."]

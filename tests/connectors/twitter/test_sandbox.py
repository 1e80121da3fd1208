"""The fake itself: it must refuse what X refuses, and its /_sandbox/ HTTP API must work."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.errors import TransientError
from sandbox.x import FakeX, WorldError
from tests.connectors.twitter.conftest import MakeConnector, fetch_all, reply

OAUTH = 'OAuth oauth_consumer_key="TEST-CONSUMER-KEY", oauth_token="TEST-ACCESS-TOKEN", oauth_signature="x"'
BEARER = "Bearer TEST-BEARER"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_post_creation_rules(fake: FakeX, http: aiohttp.ClientSession) -> None:
    mention = fake.mention("ann", "help")
    stranger = fake.post("ann", "no tag")

    async def create(body: dict[str, object], auth: str = OAUTH) -> tuple[int, dict[str, object]]:
        async with http.post(f"{fake.url}/2/tweets", json=body, headers={"Authorization": auth}) as r:
            return r.status, await r.json()

    assert (await create({"text": "日" * 141, "reply": {"in_reply_to_tweet_id": mention["id"]}}))[0] == 400
    status, body = await create({"text": "hi", "reply": {"in_reply_to_tweet_id": stranger["id"]}})
    assert status == 403 and "not been mentioned" in str(body["detail"])
    assert (await create({"text": "hi", "reply": {"in_reply_to_tweet_id": "999"}}))[0] == 403
    assert (await create({"text": "hi"}, auth=BEARER))[0] == 403  # app-only auth cannot post
    assert (await create({"text": "ok", "reply": {"in_reply_to_tweet_id": mention["id"]}}))[0] == 201
    assert (await create({"text": "ok", "reply": {"in_reply_to_tweet_id": mention["id"]}}))[
        0
    ] == 403  # duplicate
    assert (await create({"text": "x", "reply_settings": "nobody"}))[0] == 400
    assert len(fake.rejected) == 5 and fake.bot_texts() == ["ok"]  # the bearer call failed auth first


async def test_mentions_endpoint_validates_and_pages(fake: FakeX, http: aiohttp.ClientSession) -> None:
    for i in range(7):
        fake.mention("ann", f"m{i}")
    url = f"{fake.url}/2/users/1000/mentions"
    async with http.get(url, params={"max_results": "4"}, headers={"Authorization": BEARER}) as r:
        assert r.status == 400  # X's minimum is 5
    async with http.get(url, params={"max_results": "5"}, headers={"Authorization": BEARER}) as r:
        page1 = await r.json()
        assert (
            r.headers["x-rate-limit-limit"] == "300" and r.headers["x-rate-limit-remaining"] == "298"
        )  # the refused one counted too
    assert [t["text"] for t in page1["data"]] == [f"@acme_support m{i}" for i in range(6, 1, -1)]
    assert set(page1["data"][0]) == {"id", "text", "edit_history_tweet_ids"}  # default fields only
    token = page1["meta"]["next_token"]
    async with http.get(
        url, params={"max_results": "5", "pagination_token": token}, headers={"Authorization": BEARER}
    ) as r:
        page2 = await r.json()
    assert [t["text"] for t in page2["data"]] == ["@acme_support m1", "@acme_support m0"]
    assert "next_token" not in page2["meta"]
    async with http.get(url, headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401


async def test_replies_carry_the_chain_handles_and_reply_settings_hold(fake: FakeX) -> None:
    root = fake.mention("ann", "question")
    answer = fake.reply("bo_helps", root["id"], "try this")
    assert answer["text"] == "@ann @acme_support try this"
    assert answer["conversation_id"] == root["id"]
    closed = fake.world.create_post("1000", "only for @ann", reply_settings="mentionedUsers")
    fake.reply("ann", closed["id"], "thanks")
    with pytest.raises(WorldError):
        fake.reply("bo_helps", closed["id"], "me too")


async def test_the_http_control_api_drives_a_real_connector(
    fake: FakeX, http: aiohttp.ClientSession, make_connector: MakeConnector
) -> None:
    async with http.post(f"{fake.url}/_sandbox/users", json={"username": "dee"}) as r:
        assert r.status == 200
    async with http.post(f"{fake.url}/_sandbox/mentions", json={"author": "dee", "text": "hello bot"}) as r:
        posted = await r.json()
    async with http.post(f"{fake.url}/_sandbox/dms", json={"author": "dee", "text": "psst"}) as r:
        assert r.status == 200
    c = make_connector()
    await c.start()
    try:
        got, _ = await fetch_all(c, None)
        assert sorted(m.text for m in got) == ["hello bot", "psst"]
        question = next(m for m in got if m.external_id == posted["id"])
        async with http.post(
            f"{fake.url}/_sandbox/faults", json={"kind": "server_error", "endpoint": "create_tweet"}
        ) as r:
            assert r.status == 200
        with pytest.raises(TransientError, match="500"):
            await c.send(reply(question, "hi dee", "k"))
        await c.send(reply(question, "hi dee", "k"))
    finally:
        await c.stop()
    async with http.get(f"{fake.url}/_sandbox/bot/posts") as r:
        assert [p["text"] for p in await r.json()] == ["@dee hi dee"]
    async with http.get(f"{fake.url}/_sandbox/stats") as r:
        stats = await r.json()
    assert stats["requests"]["create_tweet"] == 2 and stats["violations"] == {}
    async with http.post(f"{fake.url}/_sandbox/faults", json={"kind": "nope"}) as r:
        assert r.status == 400

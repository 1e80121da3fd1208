"""The sandbox fake itself: it must refuse and count what the real Bot API refuses and limits,
or the connector tests above could not fail."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import pytest

from sandbox.telegram import FakeTelegram, Limits
from sandbox.telegram.markup import EntityParseError, parse
from tests.connectors.telegram.conftest import ALICE, BO, FORUM, GROUP


async def call(fake: FakeTelegram, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """A bare Bot API call over HTTP, as form fields like PTB sends them."""
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{fake.url}/bot{fake.token}/{method}", data=form) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("mode", "text", "visible"),
    [
        ("HTML", '<b>bold</b> &lt;ok&gt; &amp; <a href="tg://user?id=7">Bo</a>', "bold <ok> & Bo"),
        ("MarkdownV2", "*bold* \\*not\\* [Bo](tg://user?id=7) 1\\.5", "bold *not* Bo 1.5"),
        (None, "*_[ <b> as is", "*_[ <b> as is"),
    ],
)
def test_markup_parses_like_the_api(mode: str | None, text: str, visible: str) -> None:
    assert parse(text, mode).text == visible


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        ("HTML", "<b>open"),
        ("HTML", "a < b <c"),
        ("HTML", "<i>x</b>"),
        ("MarkdownV2", "a_b"),
        ("MarkdownV2", "(x)"),
    ],
)
def test_markup_errors(mode: str, text: str) -> None:
    with pytest.raises(EntityParseError):
        parse(text, mode)


async def test_api_refusals(fake: FakeTelegram) -> None:
    status, body = await call(fake, "sendMessage", chat_id=GROUP, text="x" * 4097)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")
    status, _ = await call(
        fake, "sendMessage", chat_id=GROUP, text="<b>" + "x" * 4096 + "</b>", parse_mode="HTML"
    )
    assert status == 200  # the limit is on the visible text
    status, body = await call(fake, "sendMessage", chat_id=-100424242, text="hi")
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    status, body = await call(fake, "sendMessage", chat_id=GROUP, text="*_[", parse_mode="MarkdownV2")
    assert status == 400 and body["description"].startswith("Bad Request: can't parse entities")
    status, body = await call(fake, "sendMessage", chat_id=FORUM, text="hi", message_thread_id=999)
    assert (status, body["description"]) == (400, "Bad Request: message thread not found")
    status, body = await call(fake, "getMe")
    assert status == 200 and body["result"]["username"] == "support_test_bot"
    async with aiohttp.ClientSession() as http, http.post(f"{fake.url}/bot1:WRONG/getMe") as resp:
        assert resp.status == 401


async def test_unpaced_bursts_are_counted(fake: FakeTelegram) -> None:
    for i in range(3):
        assert (await call(fake, "sendMessage", chat_id=GROUP, text=f"burst {i}"))[0] == 200
    v = fake.rate.violations
    assert v.chat == 2 and v.by_chat[GROUP] == 2


async def test_group_and_overall_windows_are_counted() -> None:
    fake = FakeTelegram(limits=Limits(per_chat=100, per_group=3, per_group_window=60.0, overall=5))
    await fake.start()
    try:
        fake.add_group(GROUP, "g")
        fake.add_group(FORUM, "f")
        for i in range(4):
            await call(fake, "sendMessage", chat_id=GROUP, text=f"g{i}")
        for i in range(2):
            await call(fake, "sendMessage", chat_id=FORUM, text=f"f{i}")
    finally:
        await fake.stop()
    v = fake.rate.violations
    assert (v.group, v.overall) == (1, 1)


async def test_enforced_limits_answer_429_with_retry_after() -> None:
    fake = FakeTelegram(enforce_limits=True)
    await fake.start()
    try:
        fake.add_group(GROUP, "g")
        first = await call(fake, "sendMessage", chat_id=GROUP, text="one")
        second = await call(fake, "sendMessage", chat_id=GROUP, text="two")
    finally:
        await fake.stop()
    assert first[0] == 200
    assert second[0] == 429 and second[1]["parameters"]["retry_after"] == 1
    assert fake.violations == 0 and len(fake.sent()) == 1


async def test_long_poll_honours_offset_limit_timeout_and_allowed_updates(fake: FakeTelegram) -> None:
    for i in range(3):
        fake.post(GROUP, ALICE, f"m{i}")
    _, body = await call(fake, "getUpdates", limit=2, timeout=0)
    first = body["result"]
    assert [u["message"]["text"] for u in first] == ["m0", "m1"]
    _, body = await call(fake, "getUpdates", offset=first[-1]["update_id"] + 1, timeout=0)
    assert [u["message"]["text"] for u in body["result"]] == ["m2"]
    # edits only: the pending message is dropped from what this poll may see
    fake.edit(GROUP, int(body["result"][0]["message"]["message_id"]), "m2!")
    _, body = await call(fake, "getUpdates", allowed_updates=["edited_message"], timeout=0)
    assert [list(u)[1] for u in body["result"]] == ["edited_message"]
    # an empty long poll waits for its timeout, and wakes as soon as something arrives
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await call(fake, "getUpdates", offset=body["result"][-1]["update_id"] + 1, timeout=0.3)
    assert loop.time() - t0 >= 0.25
    loop.call_later(0.1, lambda: fake.edit(GROUP, 1, "again"))
    t0 = loop.time()
    _, body = await call(fake, "getUpdates", timeout=5)
    assert body["result"] and loop.time() - t0 < 2


async def test_control_api_over_http(fake: FakeTelegram) -> None:
    base = f"{fake.url}/_sandbox"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/topics", json={"chat_id": FORUM, "name": "Billing"}) as r:
            thread = (await r.json())["thread_id"]
        async with http.post(
            f"{base}/messages", json={"chat_id": FORUM, "user_id": ALICE, "text": "help", "thread_id": thread}
        ) as r:
            msg = await r.json()
        async with http.post(f"{base}/messages", json={"user_id": BO, "text": "a DM"}) as r:
            dm = await r.json()
        async with http.post(
            f"{base}/edits", json={"chat_id": FORUM, "message_id": msg["message_id"], "text": "help!"}
        ):
            pass
        async with http.post(f"{base}/messages", json={"chat_id": -1, "user_id": ALICE, "text": "x"}) as r:
            assert r.status == 400
        async with http.post(f"{base}/faults", json={"kind": "server_error", "method": "sendMessage"}) as r:
            assert r.status == 200
        status, _ = await call(fake, "sendMessage", chat_id=BO, text="reply")
        assert status == 502
        await call(fake, "sendMessage", chat_id=BO, text="reply")
        async with http.get(f"{base}/sent", params={"chat_id": str(BO)}) as r:
            sent = await r.json()
        async with http.get(f"{base}/stats") as r:
            stats = await r.json()
    assert msg["message_thread_id"] == thread and dm["chat"]["type"] == "private"
    assert [s["text"] for s in sent] == ["reply"]
    assert stats["pending_updates"] == 3 and stats["faults_served"] == {"server_error": 1}
    assert stats["violations"]["chat"] == 0


async def test_runs_standalone() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox.telegram", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        url = line.split(" on ")[1].split(" ")[0]
        async with aiohttp.ClientSession() as http, http.get(f"{url}/_sandbox/stats") as r:
            assert r.status == 200
    finally:
        proc.terminate()
        await proc.wait()


async def test_bot_edits_answers_and_chat_lookups(fake: FakeTelegram) -> None:
    markup = {"inline_keyboard": [[{"text": "Solved", "callback_data": "solved:1"}]]}
    _, body = await call(fake, "sendMessage", chat_id=GROUP, text="try this", reply_markup=markup)
    mid = body["result"]["message_id"]
    cb = fake.press(GROUP, mid, ALICE, "solved:1")
    with pytest.raises(ValueError):
        fake.press(GROUP, mid, ALICE, "not-a-button")
    assert (await call(fake, "answerCallbackQuery", callback_query_id=cb, text="ok"))[0] == 200
    assert (await call(fake, "answerCallbackQuery", callback_query_id=cb))[0] == 400  # answered already
    status, body = await call(fake, "editMessageReplyMarkup", chat_id=GROUP, message_id=mid, reply_markup={})
    assert status == 200 and "reply_markup" not in body["result"]
    status, body = await call(fake, "editMessageText", chat_id=GROUP, message_id=mid, text="try this")
    assert (status, body["description"]) == (400, "Bad Request: message is not modified")
    status, body = await call(fake, "editMessageText", chat_id=GROUP, message_id=mid, text="try that")
    assert status == 200 and body["result"]["text"] == "try that" and body["result"]["edit_date"]
    user_msg = fake.post(GROUP, ALICE, "mine")
    status, _ = await call(
        fake, "editMessageText", chat_id=GROUP, message_id=user_msg["message_id"], text="x"
    )
    assert status == 400  # a bot edits only its own messages
    long_data = {"inline_keyboard": [[{"text": "x", "callback_data": "d" * 65}]]}
    assert (await call(fake, "sendMessage", chat_id=GROUP, text="x", reply_markup=long_data))[0] == 400
    _, chat = await call(fake, "getChat", chat_id=FORUM)
    assert chat["result"]["is_forum"] is True and chat["result"]["type"] == "supergroup"
    _, member = await call(fake, "getChatMember", chat_id=GROUP, user_id=fake.bot_id)
    assert member["result"]["user"]["is_bot"] is True

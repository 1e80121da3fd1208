"""The fake keeps Discord's rules (so the connector is judged honestly), over raw HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp

from sandbox.discord import FakeDiscord, Limits


async def call(
    session: aiohttp.ClientSession, fake: FakeDiscord, method: str, path: str, body: Any = None
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with session.request(
        method, fake.api_base + path, json=body, headers={"Authorization": f"Bot {fake.token}"}
    ) as resp:
        data = await resp.json(content_type=None) if resp.status != 204 else None
        return resp.status, data, resp.headers


async def test_rest_rules(fake: FakeDiscord) -> None:
    ch = fake.text_channel_id
    async with aiohttp.ClientSession() as s:
        async with s.get(fake.api_base + "/users/@me", headers={"Authorization": f"Bot {fake.token}"}) as r:
            assert r.headers["Content-Type"] == "application/json"  # exactly: discord.py compares strings
        status, data, _ = await call(s, fake, "GET", "/users/@me")
        assert status == 200 and data["bot"] is True
        async with s.get(fake.api_base + "/users/@me", headers={"Authorization": "Bot wrong"}) as r:
            assert r.status == 401

        status, data, _ = await call(s, fake, "POST", f"/channels/{ch}/messages", {"content": "x" * 2001})
        assert (status, data["code"]) == (400, 50035)
        status, data, _ = await call(s, fake, "POST", f"/channels/{ch}/messages", {"content": ""})
        assert (status, data["code"]) == (400, 50006)
        status, data, _ = await call(
            s, fake, "POST", f"/channels/{fake.forum_channel_id}/messages", {"content": "x"}
        )
        assert (status, data["code"]) == (400, 50008)
        dup = {"type": 1, "components": [{"type": 2, "style": 1, "label": "a", "custom_id": "same"}] * 2}
        status, _, _ = await call(
            s, fake, "POST", f"/channels/{ch}/messages", {"content": "x", "components": [dup]}
        )
        assert status == 400

        # nonce + enforce_nonce: the same message back, not a second one
        body = {"content": "once", "nonce": "n-1", "enforce_nonce": True}
        _, first, _ = await call(s, fake, "POST", f"/channels/{ch}/messages", body)
        _, second, _ = await call(s, fake, "POST", f"/channels/{ch}/messages", body)
        assert first["id"] == second["id"] and fake.sent_texts(ch) == ["once"]

        # pace: 5 per window per channel, then a Discord-style 429 (Via, retry_after), counted
        statuses = []
        for i in range(6):
            status, data, headers = await call(
                s, fake, "POST", f"/channels/{ch}/messages", {"content": f"m{i}"}
            )
            statuses.append(status)
        assert statuses[:4] == [200] * 4 and statuses[-1] == 429
        assert headers["Via"] and data["retry_after"] > 0 and data["global"] is False
        assert fake.limits.counters.pace_violations[ch] >= 1

        # history with after=: oldest page after the id, newest first like Discord
        mine = [m["id"] for m in fake.history(ch)]
        status, page, _ = await call(s, fake, "GET", f"/channels/{ch}/messages?after={mine[0]}&limit=2")
        assert [m["id"] for m in page] == [mine[2], mine[1]]


async def test_interaction_deadline_and_single_ack(fake: FakeDiscord) -> None:
    msg = await fake.post(fake.text_channel_id, "pick one")
    msg["components"] = [
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "ok", "custom_id": "ok"}]}
    ]
    it = await fake.click(msg["id"], "ok")
    late = await fake.click(msg["id"], "ok")
    late.created -= 3.5
    async with aiohttp.ClientSession() as s:
        url = f"{fake.api_base}/interactions/{it.id}/{it.token}/callback"
        async with s.post(url, json={"type": 6}) as r:
            assert r.status == 204
        async with s.post(url, json={"type": 6}) as r:
            assert r.status == 400 and (await r.json())["code"] == 40060
        async with s.post(
            f"{fake.api_base}/interactions/{late.id}/{late.token}/callback", json={"type": 6}
        ) as r:
            assert r.status == 404 and (await r.json())["code"] == 10062
    assert fake.limits.counters.interactions_late == 1


async def test_invalid_requests_end_in_a_cloudflare_ban() -> None:
    fake = FakeDiscord(limits=Limits(ban_threshold=5))
    await fake.start()
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(5):
                async with s.get(fake.api_base + "/users/@me") as r:
                    assert r.status == 401
            async with s.get(
                fake.api_base + "/users/@me", headers={"Authorization": f"Bot {fake.token}"}
            ) as r:
                assert r.status == 429 and "Via" not in r.headers  # discord.py reads this as a ban
    finally:
        await fake.stop()


async def test_control_api_over_http(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(fake.url + "/_sandbox/state") as r:
            state = await r.json()
        assert state["text_channel_id"] == fake.text_channel_id and "carol" in state["users"]
        async with s.post(
            fake.url + "/_sandbox/messages", json={"content": "via http", "author": "dave"}
        ) as r:
            posted = await r.json()
        assert fake.by_id[posted["id"]]["author"]["username"] == "dave"
        async with s.post(
            fake.url + "/_sandbox/forum_posts", json={"title": "T", "content": "C", "tags": ["login"]}
        ) as r:
            post = await r.json()
        assert fake.channels[post["thread"]["id"]]["applied_tags"] == [fake.forum_tags[1]["id"]]
        async with s.post(fake.url + "/_sandbox/faults", json={"status": 503, "times": 2}) as r:
            assert (await r.json())["pending"] == 1
        async with s.post(fake.url + "/_sandbox/messages", json={"channel_id": "1", "content": "x"}) as r:
            assert r.status == 404
        async with s.get(fake.url + "/_sandbox/sent") as r:
            assert await r.json() == []

"""The pipeline end to end, in process, with real storage (SQLite; PostgreSQL in CI)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import App
from bot.config_watch import ConfigHolder
from bot.settings import Config
from bot.storage.engine import create_engine
from tests.pipeline.helpers import append, make_config, question, read_out


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[App]:
    app = App(ConfigHolder(config), role="all")
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    await asyncio.wait_for(app.ready.wait(), 30)
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def eventually(url: str, sql: str, expected: object, timeout: float = 20.0) -> None:
    """Poll ``sql`` until it returns ``expected``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (got := await scalar(url, sql)) != expected:
        if loop.time() > end:
            raise AssertionError(f"{sql!r} is {got!r}, expected {expected!r}")
        await asyncio.sleep(0.05)


async def scalar(url: str, sql: str) -> object:
    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            return (await c.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def test_question_is_stored_triaged_planned_and_sent_once(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    data = tmp_path / "data"
    append(data / "in.jsonl", [question(1), {"id": "c1", "author": "x", "text": "lol nice"}])
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 1)
        await asyncio.sleep(0.3)  # nothing more should come
    out = read_out(data / "out.jsonl")
    assert len(out) == 1
    [reply] = out
    assert reply["idempotency_key"] == "t1:open:tag"
    assert reply["reply_to_id"] == "q1"
    assert {m["user_id"] for m in reply["mentions"]} <= {"ann", "bo"} and reply["mentions"]
    assert await scalar(db_url, "select count(*) from message where author_is_bot = false") == 2
    assert await scalar(db_url, "select count(*) from decision") == 2
    assert await scalar(db_url, "select state from thread") == "awaiting_helper"
    assert await scalar(db_url, "select value from connector_cursor where connector_id='local'") is not None


async def test_helper_reply_answers_and_asker_button_solves(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    data = tmp_path / "data"
    append(data / "in.jsonl", [question(1)])
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 1)
        bot_msg = read_out(data / "out.jsonl")[0]["external_ids"][0]
        append(
            data / "in.jsonl",
            [{"id": "h1", "author": "ann", "text": "Use Settings > Reset", "reply_to_id": "q1"}],
        )
        await eventually(db_url, "select state from thread", "answered")
        assert await scalar(db_url, "select first_response_at is not null from thread")
        # the asker presses the button on the bot's message
        append(
            data / "in.jsonl",
            [
                {
                    "id": "b1",
                    "author": "cust1",
                    "kind": "button",
                    "button_data": "solved:1",
                    "target_id": bot_msg,
                    "text": "",
                }
            ],
        )
        await until(lambda: len(read_out(data / "out.jsonl")) >= 2)
    assert await scalar(db_url, "select state from thread") == "solved"
    assert await scalar(db_url, "select count(*) from thread") == 1
    assert await scalar(db_url, "select message_count from thread") == 3


async def test_redelivery_and_restart_never_duplicate(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    data = tmp_path / "data"
    append(data / "in.jsonl", [question(i) for i in range(20)])
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 20)
    # the same events again (a platform re-delivery), plus new ones, across a restart
    append(data / "in.jsonl", [question(i) for i in range(25)])
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 25)
        await asyncio.sleep(0.3)
    out = read_out(data / "out.jsonl")
    keys = [r["idempotency_key"] for r in out]
    assert len(keys) == len(set(keys)) == 25
    assert await scalar(db_url, "select count(*) from message where author_is_bot = false") == 25
    assert await scalar(db_url, "select count(*) from decision") == 25


async def test_malformed_lines_are_kept_aside_not_lost(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    data = tmp_path / "data"
    with (data / "in.jsonl").open("a") as fh:
        fh.write("{not json\n")
        fh.write('{"no_text": 1}\n')
        fh.write('{"id": "e", "text": ""}\n')
        fh.write('{"id": "u", "text": "caf\\u00e9 \\u202e \\ud83d\\ude00 app crashes on login"}\n')
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 1)
    rejected = (data / "in.jsonl.rejected").read_text().splitlines()
    assert len(rejected) == 2
    assert await scalar(db_url, "select count(*) from message where author_is_bot = false") == 2


@pytest.mark.parametrize("workers", [3])
async def test_several_workers_triage_each_message_once(tmp_path: Path, db_url: str, workers: int) -> None:
    cfg = make_config(tmp_path, db_url, workers=workers, batch=50)
    data = tmp_path / "data"
    append(data / "in.jsonl", [question(i) for i in range(300)])
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 300, timeout=60)
    assert await scalar(db_url, "select count(*) from decision") == 300
    assert await scalar(db_url, "select count(distinct message_id) from decision") == 300


async def test_new_question_in_an_answered_dm_opens_a_new_thread(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    data = tmp_path / "data"
    dm = {"conversation_id": "dm-kim", "is_private": True, "kind": "dm"}
    append(
        data / "in.jsonl",
        [{"id": "d1", "author": "kim", "text": "my app crashes on login, what can I do?", **dm}],
    )
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 1)
        append(
            data / "in.jsonl", [{"id": "d2", "author": "ann", "text": "Clear the cache, then sign in.", **dm}]
        )
        await eventually(db_url, "select state from thread", "answered")
        append(
            data / "in.jsonl",
            [
                {"id": "d3", "author": "kim", "text": "how do I export my notes as pdf?", **dm},
                {"id": "d4", "author": "kim", "text": "thanks, that worked", **dm},
            ],
        )
        await until(lambda: len(read_out(data / "out.jsonl")) >= 2)
        await eventually(db_url, "select count(*) from decision", 4)
    replies = {r["reply_to_id"]: r for r in read_out(data / "out.jsonl")}
    assert set(replies) == {"d1", "d3"}, "the new question gets its own answer"
    assert await scalar(db_url, "select count(*) from thread") == 2
    assert await scalar(db_url, "select root_external_id from thread where id <> 1") == "d3"
    # the thanks is no new thread, and it cannot "solve" the new question nobody answered yet
    assert await scalar(db_url, "select thread_id is not null from message where external_id = 'd4'")
    assert await scalar(db_url, "select state from thread where root_external_id = 'd3'") == "awaiting_helper"

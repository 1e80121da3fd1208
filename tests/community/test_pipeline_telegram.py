"""The community loop end to end: the real Telegram connector (python-telegram-bot) against the
sandbox fake, through the whole App (ingest, worker, dispatcher, knowledge refresh).

A question about a topic tags the two available helpers who know it (not the away one, not the
one at their cap, not the asker); a helper answers; the asker presses "Solved"; points are
awarded; the answer enters the knowledge base; the same question asked later is auto-answered
with credit to that helper.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.models import utcnow
from bot.settings import Config, load_config
from sandbox.telegram import FakeTelegram
from sandbox.telegram.fake import SentMessage
from tests.pipeline.test_pipeline import eventually, running, scalar

GROUP = -1001000000001
STAFF = -1001000000009
ANN, BO, CY, DI, EVE, GIL, ZED, FAY, HAL, SAM = 101, 102, 103, 104, 105, 106, 201, 202, 203, 900

CONFIG = """\
data_dir: {data}
storage:
  url: {url}
logging:
  level: WARNING
connectors:
  tg:
    type: telegram
    enabled: true
    settings:
      token: ${{TG_TOKEN}}
      api_base_url: {api}
      poll_timeout: 1
pipeline:
  workers: 1
  idle_poll: 50ms
  knowledge_refresh: 200ms
dispatcher:
  idle_poll: 50ms
  backoff_base: 100ms
  backoff_cap: 1s
web:
  enabled: false
staff:
  connector: tg
  conversation: "{staff}"
triage:
  topics:
    - name: export
      keywords: [export, csv, spreadsheet]
    - name: reports
      keywords: [report, reports, schedule]
    - name: billing-app
      keywords: [invoice, subscription]
helpers:
  - {{ name: Ann, identities: {{ tg: "{ann}" }}, handles: {{ tg: ann_helps }}, topics: [export] }}
  - {{ name: Bo, identities: {{ tg: "{bo}" }}, handles: {{ tg: bo_helps }}, topics: [export] }}
  - {{ name: Cy, identities: {{ tg: "{cy}" }}, handles: {{ tg: cy_helps }}, topics: [export] }}
  - {{ name: Di, identities: {{ tg: "{di}" }}, handles: {{ tg: di_helps }}, topics: [export, reports],
      max_open: 1 }}
  - {{ name: Eve, identities: {{ tg: "{eve}" }}, handles: {{ tg: eve_helps }}, topics: [export] }}
  - {{ name: Gil, identities: {{ tg: "{gil}" }}, handles: {{ tg: gil_helps }}, topics: [billing-app] }}
  - {{ name: Sam, role: staff, identities: {{ tg: "{sam}" }}, handles: {{ tg: sam_helps }} }}
"""


def make_config(tmp: Path, url: str, fake: FakeTelegram) -> Config:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(
        CONFIG.format(
            data=data,
            url=url,
            api=fake.url,
            staff=STAFF,
            ann=ANN,
            bo=BO,
            cy=CY,
            di=DI,
            eve=EVE,
            gil=GIL,
            sam=SAM,
        ),
        encoding="utf-8",
    )
    return load_config(path, env={"TG_TOKEN": fake.token})


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    f = FakeTelegram()
    for uid, name in (
        (ANN, "ann"), (BO, "bo"), (CY, "cy"), (DI, "di"), (EVE, "eve"),
        (GIL, "gil"), (ZED, "zed"), (FAY, "fay"), (HAL, "hal"), (SAM, "sam"),
    ):  # fmt: skip
        f.add_user(uid, name.title(), f"{name}_helps")
    f.add_group(GROUP, "Support", username="acme_support")
    f.add_group(STAFF, "Staff")
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


async def reply_to(
    fake: FakeTelegram, message_id: int, pred: Callable[[SentMessage], bool] = lambda s: True
) -> SentMessage:
    """Wait for the bot's message in reply to ``message_id`` (matching ``pred``)."""
    async with asyncio.timeout(30):
        while True:
            for s in fake.sent(GROUP):
                if s.reply_to == message_id and pred(s):
                    return s
            await asyncio.sleep(0.05)


def button(sent: SentMessage, prefix: str) -> str:
    rows = (sent.reply_markup or {}).get("inline_keyboard", [])
    return next(b["callback_data"] for row in rows for b in row if b["callback_data"].startswith(prefix))


async def test_tag_answer_solve_learn_and_auto_answer_with_credit(
    tmp_path: Path, db_url: str, fake: FakeTelegram
) -> None:
    cfg = make_config(tmp_path, db_url, fake)
    async with running(cfg) as app:
        # Cy goes away by command; Di gets a reports question, which takes her to her cap (1)
        away = fake.post(GROUP, CY, "/away")
        assert "away" in (await reply_to(fake, away["message_id"])).text
        first = fake.post(GROUP, ZED, "How do I schedule weekly reports for my team?")
        tag1 = await reply_to(fake, first["message_id"])
        assert tag1.mentioned_usernames == ["di_helps"], tag1.text

        # Eve (a helper herself) asks about export: Ann and Bo are tagged, each told why
        q = fake.post(GROUP, EVE, "How can I export the project list to a CSV spreadsheet?")
        tag = await reply_to(fake, q["message_id"])
        assert sorted(tag.mentioned_usernames) == ["ann_helps", "bo_helps"], tag.text
        assert "Ann: you know `export`" in tag.text and "Bo: you know `export`" in tag.text
        tid = int(button(tag, "solved:").split(":")[1])
        tagged = f"from community_tag where thread_id = {tid}"
        assert await scalar(db_url, f"select count(*) {tagged}") == 2
        assert await scalar(db_url, f"select min(helper) || ',' || max(helper) {tagged}") == "Ann,Bo"

        # Ann answers; Eve presses "Solved" on the bot's message
        fake.post(GROUP, ANN, "Open Settings > Data > Export and choose CSV.", reply_to=q["message_id"])
        await eventually(db_url, f"select state from thread where id = {tid}", "answered")
        fake.press(GROUP, tag.message_id, EVE, button(tag, "solved:"))
        await eventually(db_url, f"select state from thread where id = {tid}", "solved")
        await eventually(db_url, "select sum(points) from community_points where helper = 'Ann'", 12)
        assert await scalar(db_url, "select count(*) from community_points where helper <> 'Ann'") == 0
        assert (
            await scalar(db_url, f"select accepted_helper from community_thread where thread_id = {tid}")
            == "Ann"
        )
        entry = f"thread-{tid}"
        await eventually(db_url, f"select credit_helper from knowledge_entry where id = '{entry}'", "Ann")
        assert "Settings > Data > Export" in str(
            await scalar(db_url, f"select answer from knowledge_entry where id = '{entry}'")
        )

        # the running worker's index picks the entry up; the same question later is auto-answered
        async with asyncio.timeout(30):
            while app.knowledge is None or app.knowledge.index is None or entry not in app.knowledge.index:
                await asyncio.sleep(0.05)
        again = fake.post(GROUP, FAY, "How can I export the project list to a CSV spreadsheet?")
        auto = await reply_to(fake, again["message_id"])
        assert "Settings > Data > Export" in auto.text and "Ann" in auto.text, auto.text
        assert button(auto, "solved:") and button(auto, "notyet:")

        # Fay confirms: the entry is accepted once more and Ann is credited for the auto-answer;
        # the same phrasing does not pile up a copy in the knowledge base
        fake.press(GROUP, auto.message_id, FAY, button(auto, "solved:"))
        await eventually(db_url, f"select accepted from knowledge_entry where id = '{entry}'", 1)
        await eventually(db_url, "select sum(points) from community_points where helper = 'Ann'", 15)
        assert await scalar(db_url, "select count(*) from knowledge_entry") == 1

        # Hal says "Not yet": helpers are tagged with the rejected match shown; the entry weighs less
        hal = fake.post(GROUP, HAL, "How can I export the project list to a CSV spreadsheet?")
        auto2 = await reply_to(fake, hal["message_id"])
        fake.press(GROUP, auto2.message_id, HAL, button(auto2, "notyet:"))
        retag = await reply_to(fake, hal["message_id"], lambda s: bool(s.mentioned_usernames))
        assert f"kb#{entry} did not solve it" in retag.text, retag.text
        assert len(retag.mentioned_usernames) == 2
        await eventually(db_url, f"select rejected from knowledge_entry where id = '{entry}'", 1)

        stats = fake.post(GROUP, ANN, "/stats")
        assert "15 points" in (await reply_to(fake, stats["message_id"])).text
    export = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["community", "export", "--period", utcnow().strftime("%Y-%m"), "--config", str(cfg.source)],
        env={"TG_TOKEN": fake.token},
    )
    assert export.exit_code == 0, export.output
    lines = export.output.splitlines()
    assert lines[0] == "period,helper,points,awards,accepted,auto_accepted,first_response"
    assert lines[1].split(",")[1:4] == ["Ann", "15", "3"]

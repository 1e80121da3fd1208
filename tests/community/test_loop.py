"""The solved/learning loop through the whole App (jsonl connector, rule triage: no model):
a keyword reply solves, the answer is learned with PII redacted, a rank-up is announced once,
a decline tags a replacement, and the asker's words are matched in their language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Config, load_config
from responders.plan import says_solved
from tests.pipeline.helpers import append, read_out
from tests.pipeline.test_pipeline import eventually, running, scalar, until

CONFIG = """\
data_dir: {data}
storage:
  url: {url}
logging:
  level: WARNING
connectors:
  local:
    type: jsonl
    settings:
      inbound: {data}/in.jsonl
      outbound: {data}/out.jsonl
      poll_interval: 0.05
pipeline:
  workers: 1
  idle_poll: 50ms
  triage: rules
dispatcher:
  idle_poll: 50ms
web:
  enabled: false
staff:
  connector: local
  conversation: staff
community:
  helpers_per_question: 1
  announce_ranks: true
  ranks:
    - {{ name: Newcomer, points: 0 }}
    - {{ name: Helper, points: 10 }}
helpers:
  - {{ name: Ann, identities: {{ local: ann }}, handles: {{ local: ann }} }}
  - {{ name: Bo, identities: {{ local: bo }}, handles: {{ local: bo }} }}
  - {{ name: Sam, role: staff, identities: {{ local: sam }} }}
"""


def make_config(tmp: Path, url: str) -> Config:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "in.jsonl").touch()
    path = tmp / "config.yaml"
    path.write_text(CONFIG.format(data=data, url=url), encoding="utf-8")
    return load_config(path, env={})


async def test_decline_keyword_solve_learn_redacted_and_rank_up_once(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    data = tmp_path / "data"
    out = data / "out.jsonl"
    append(data / "in.jsonl", [{"id": "q1", "author": "cust", "text": "How do I export invoices to CSV?"}])
    async with running(cfg):
        await until(lambda: any(r["reply_to_id"] == "q1" for r in read_out(out)))
        [tag] = [r for r in read_out(out) if r["reply_to_id"] == "q1"]
        first = tag["mentions"][0]["user_id"]
        other = "bo" if first == "ann" else "ann"
        # the tagged helper passes: the other one is tagged, with why
        append(
            data / "in.jsonl",
            [
                {
                    "id": "d1",
                    "author": first,
                    "kind": "button",
                    "button_data": "decline:1",
                    "target_id": "x",
                    "text": "",
                }
            ],
        )
        await until(lambda: any(r["idempotency_key"] == "t1:decline:d1" for r in read_out(out)))
        [retag] = [r for r in read_out(out) if r["idempotency_key"] == "t1:decline:d1"]
        assert [m["user_id"] for m in retag["mentions"]] == [other]
        assert "you help with any topic" in retag["text"]
        # ... who claims it with a reaction on the question
        append(
            data / "in.jsonl",
            [
                {
                    "id": "c1",
                    "author": other,
                    "kind": "reaction",
                    "reaction": "🙋",
                    "target_id": "q1",
                    "text": "",
                }
            ],
        )
        await eventually(
            db_url, f"select state from community_tag where helper = '{other.title()}'", "claimed"
        )
        # the other answers (with an email address in it); the asker says thanks in their words
        append(
            data / "in.jsonl",
            [
                {"id": "a1", "author": other, "reply_to_id": "q1",
                 "text": "Billing > Export > CSV. If it fails, mail billing-help@example.com"},
                {"id": "t1", "author": "cust", "reply_to_id": "a1", "text": "Thanks, that worked!"},
            ],
        )  # fmt: skip
        await eventually(db_url, "select state from thread where id = 1", "solved")
        await eventually(
            db_url, "select credit_helper from knowledge_entry where id = 'thread-1'", other.title()
        )
        answer = str(await scalar(db_url, "select answer from knowledge_entry where id = 'thread-1'"))
        assert "Billing > Export > CSV" in answer and "[email]" in answer and "@example.com" not in answer
        assert (
            await scalar(
                db_url,
                f"select state from community_tag where helper = '{first.title()}'",
            )
            == "declined"
        )
        # 12 points (accepted + first response) cross the "Helper" rank at 10: announced once
        await until(lambda: any(r["idempotency_key"].startswith("rank:") for r in read_out(out)))
        [rank] = [r for r in read_out(out) if r["idempotency_key"].startswith("rank:")]
        assert rank["idempotency_key"] == f"rank:{other.title()}:Helper"
        assert f"{other.title()} reached the rank Helper" in rank["text"]
        assert (
            await scalar(db_url, f"select rank from community_helper where name = '{other.title()}'")
            == "Helper"
        )
        # staff reopen; more points later do not announce the same rank again
        append(data / "in.jsonl", [{"id": "r1", "author": "sam", "text": "/reopen 1"}])
        await eventually(db_url, "select state from thread where id = 1", "reopened")
        append(data / "in.jsonl", [{"id": "k1", "author": "cust", "text": f"/kudos @{other}"}])
        await eventually(db_url, f"select points from community_helper where name = '{other.title()}'", 14)
    assert sum(r["idempotency_key"].startswith("rank:") for r in read_out(out)) == 1


@pytest.mark.parametrize(
    ("text", "solved"),
    [
        ("Thanks, that worked!", True),
        ("that fixed it, cheers", True),
        ("SOLVED", True),
        ("Danke, das hat funktioniert", True),
        ("merci, ça marche !", True),
        ("not solved yet", False),
        ("that worked? no, still broken", False),
        ("it still doesn't work", False),
        ("thanks", False),  # thanks alone is not a confirmation
        ("", False),
    ],
)
def test_solved_words(text: str, solved: bool) -> None:
    from bot.settings import CommunitySettings

    phrases = tuple(p for ps in CommunitySettings().solved_keywords.values() for p in ps)
    assert says_solved(text, phrases) is solved

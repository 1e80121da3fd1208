"""The whole App in process: a question nobody answers is reminded then escalated, once; a
question a helper answers is not."""

from __future__ import annotations

from pathlib import Path

from tests.pipeline.helpers import append, make_config, question, read_out
from tests.pipeline.test_pipeline import eventually, running, scalar, until

SLA = """\
web:
  enabled: false
sla:
  sweep_interval: 5s          # the job is brought forward to the next due stage
  policies:
    - name: fast
      first_response: 4s        # long enough for the helper's reply to be processed first
      stages:
        - { at: "75%", action: remind }
        - { at: "100%", action: escalate }
"""


async def test_unanswered_question_escalates_once_answered_one_does_not(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url, extra=SLA)
    data = tmp_path / "data"
    out = data / "out.jsonl"
    append(data / "in.jsonl", [question(1), question(2)])
    async with running(cfg):
        await until(lambda: len(read_out(out)) >= 2)
        # a helper answers question 2 straight away
        append(
            data / "in.jsonl",
            [{"id": "h2", "author": "ann", "text": "Settings > Reset", "reply_to_id": "q2"}],
        )
        await until(lambda: any(r["purpose"] == "escalation" for r in read_out(out)), timeout=30)
        await eventually(db_url, "select count(*) from sla_stage where state = 'pending'", 0)

    sent = read_out(out)
    sla = [r for r in sent if ":sla:" in r["idempotency_key"]]
    keys = [r["idempotency_key"] for r in sla]
    assert len(keys) == len(set(keys))
    by_thread = {k.split(":")[0] for k in keys}
    assert by_thread == {"t1"}, "question 2 was answered: its clock stopped"
    (remind,) = [r for r in sla if r["purpose"] == "sla_remind"]
    assert remind["reply_to_id"] == "q1" and remind["mentions"]
    (esc,) = [r for r in sla if r["purpose"] == "escalation"]
    assert esc["conversation_id"] == "staff"
    assert "thread #1" in esc["text"] and "policy fast" in esc["text"] and "Tagged: @" in esc["text"]
    assert await scalar(db_url, "select state from thread where id = 1") == "escalated"
    assert (
        await scalar(db_url, "select count(*) from sla_stage where thread_id = 2 and state = 'cancelled'")
        == 2
    )

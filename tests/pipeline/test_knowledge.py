"""The knowledge base in the pipeline: import, persist, match, auto-answer with credit."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from typer.testing import CliRunner, Result

from bot.cli import app as cli
from tests.pipeline.helpers import append, make_config, read_out
from tests.pipeline.test_pipeline import eventually, running, until

KB_ROWS = [
    ("id", "question", "answer", "credit", "link"),
    (
        "kb-101",
        "How do I reset the app after it crashes on login?",
        "Go to Settings > Apps > Support App > Clear cache, then sign in again.",
        "Ann",
        "https://community.example/t/101",
    ),
    (
        "kb-102",
        "My card has not arrived yet",
        "Cards take 5-7 working days; after 10 days, order a replacement under Card > Lost.",
        "Bo",
        "https://community.example/t/102",
    ),
    (
        "kb-103",
        "How do I change the app language?",
        "Settings > Language, pick yours, restart the app.",
        "Ann",
        "https://community.example/t/103",
    ),
    ("kb-104", "", "a row without a question", "", ""),
]


async def unsource(*args: str) -> Result:
    """Run the CLI as a user would (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def import_kb(tmp_path: Path, config: Path) -> str:
    kb = tmp_path / "kb.csv"
    with kb.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(KB_ROWS)
    result = await unsource("kb", "import", str(kb), "--config", str(config))
    assert result.exit_code == 0, result.output
    return result.output


async def test_repeated_question_is_auto_answered_with_credit(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    assert cfg.source is not None
    output = await import_kb(tmp_path, cfg.source)
    assert "imported 3 entries, skipped 1" in output
    data = tmp_path / "data"
    append(
        data / "in.jsonl",
        [
            {"id": "q1", "author": "c1", "text": "How do I reset the app after it crashes on login?"},
            {"id": "q2", "author": "c2", "text": "Is there a dark mode for the web dashboard?"},
        ],
    )
    async with running(cfg):
        await until(lambda: len(read_out(data / "out.jsonl")) >= 2)
    by_reply = {r["reply_to_id"]: r for r in read_out(data / "out.jsonl")}
    auto = by_reply["q1"]
    assert auto["purpose"] == "auto_answer"
    assert (
        "Clear cache" in auto["text"] and "Ann" in auto["text"] and "community.example/t/101" in auto["text"]
    )
    assert [b["data"] for b in auto["buttons"]] == ["solved:1", "notyet:1"]
    assert auto["card"]["credit"] == "Ann"
    assert by_reply["q2"]["purpose"] == "tag_helpers"
    await eventually(db_url, "select state from thread where root_external_id = 'q1'", "auto_answered")


async def test_index_survives_restart_and_follows_retirement(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url)
    assert cfg.source is not None
    await import_kb(tmp_path, cfg.source)
    index_dir = tmp_path / "data" / "kb-index"
    assert (index_dir / "meta.json").exists()
    result = await unsource("kb", "retire", "kb-102", "--config", str(cfg.source))
    assert result.exit_code == 0, result.output
    data = tmp_path / "data"
    append(
        data / "in.jsonl",
        [
            {"id": "q1", "author": "c1", "text": "My card has not arrived yet"},
            {"id": "q2", "author": "c2", "text": "How do I change the app language?"},
        ],
    )
    async with running(cfg):  # a new process: loads the persisted index, then applies the retirement
        await until(lambda: len(read_out(data / "out.jsonl")) >= 2)
    by_reply = {r["reply_to_id"]: r for r in read_out(data / "out.jsonl")}
    assert by_reply["q1"]["purpose"] != "auto_answer", "a retired entry must not be served"
    assert by_reply["q2"]["purpose"] == "auto_answer"
    result = await unsource("kb", "retire", "kb-102", "--config", str(cfg.source))
    assert result.exit_code == 1

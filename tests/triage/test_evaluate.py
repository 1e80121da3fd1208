from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.commands.eval import app, eval_command
from triage.evaluate import RESULT_KEYS, run_eval


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    corpus = write(
        tmp_path / "corpus.jsonl",
        [
            {"id": "c1", "title": "My card has not arrived yet", "body": "", "answer_id": "card"},
            {"id": "c2", "title": "Still waiting for my card", "body": "", "answer_id": "card"},
            {"id": "c3", "title": "The app crashes when I log in", "body": "", "answer_id": "crash"},
            {"id": "c4", "title": "App closes after entering my password", "body": "", "answer_id": "crash"},
            {"id": "c5", "title": "How do I change the app language", "body": "", "answer_id": "lang"},
        ],
    )
    queries = write(
        tmp_path / "queries.jsonl",
        [
            {
                "id": "q1",
                "text": "card not arrived yet",
                "positives": ["c1", "c2"],
                "candidates": ["c1", "c3", "c5"],
            },
            {
                "id": "q2",
                "text": "app crashes on login",
                "positives": ["c3", "c4"],
                "candidates": ["c3", "c5"],
            },
            {
                "id": "q3",
                "text": "what is the meaning of life?",
                "positives": [],
                "candidates": [],
                "in_scope": False,
            },
        ],
    )
    return corpus, queries


@pytest.mark.parametrize("matcher", ["bm25", "dense", "hybrid"])
def test_run_eval_keys_and_figures(files: tuple[Path, Path], matcher: str, encoder: object) -> None:
    corpus, queries = files
    result = run_eval(corpus, queries, matcher=matcher, encoder=encoder, show_progress=False)  # type: ignore[arg-type]
    assert tuple(result) == RESULT_KEYS
    assert result["n"] == 3
    assert result["P@1"] == 100.0 and result["MRR"] == 100.0 and result["MAP"] == 100.0
    assert result["P@5"] == 40.0  # two positives each, five ranked
    assert result["R@10"] == 100.0
    assert result["oos_answer_rate"] == 0.0
    assert result["answer_precision"] in (0.0, 100.0)
    assert result["latency_ms_p95"] >= result["latency_ms_p50"] > 0
    assert result["rss_mb"] > 0 and result["build_s"] >= 0


def test_rerank_mode_ranks_only_candidates(files: tuple[Path, Path], encoder: object) -> None:
    corpus, queries = files
    result = run_eval(corpus, queries, mode="rerank", encoder=encoder, show_progress=False)  # type: ignore[arg-type]
    # q1: c1 first of its 3 candidates (1 of 2 positives present) -> AP 0.5; q2: c3 first -> AP 0.5
    assert result["MAP"] == 50.0 and result["P@1"] == 100.0


def test_eval_command_json(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    corpus, queries = files
    eval_command(corpus, queries, "full", "bm25", True)
    out = json.loads(capsys.readouterr().out)
    assert tuple(out) == RESULT_KEYS


def test_eval_cli_table_and_errors(files: tuple[Path, Path]) -> None:
    corpus, queries = files
    runner = CliRunner()
    ok = runner.invoke(app, ["--corpus", str(corpus), "--queries", str(queries), "--matcher", "bm25"])
    assert ok.exit_code == 0, ok.output
    assert "answer_precision" in ok.output and "latency_ms_p95" in ok.output
    bad = runner.invoke(app, ["--corpus", str(corpus), "--queries", str(queries), "--matcher", "nope"])
    assert bad.exit_code != 0

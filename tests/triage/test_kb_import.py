from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from triage.kb_import import detect_format, import_file, parse_kb_file
from triage.knowledge import KnowledgeIndex


def test_csv_with_skips(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "Question,Answer,Credit,URL,Topic,votes\n"
        "How do I reset my password?,Use the 'forgot password' link.,ana,https://f.example/1,account,3\n"
        ",An answer without a question,,,,\n"
        "A question without an answer,,,,,\n"
        '"Multi-line, quoted question","Line one\nline two",bo,,,x\n'
        "How do I reset my password?,Duplicate question,,,,\n"
        "How do I export data?,Statements > Export.,,,,\n",
        encoding="utf-8",
    )
    result = parse_kb_file(path)
    assert [e.title for e in result.entries] == ["How do I reset my password?", "How do I export data?"]
    first = result.entries[0]
    assert (first.answer, first.credit, first.link, first.topic, first.votes) == (
        "Use the 'forgot password' link.",
        "ana",
        "https://f.example/1",
        "account",
        3,
    )
    assert first.id.startswith("imp-")
    reasons = [(line, reason.split(":")[0]) for line, reason in result.skipped]
    assert reasons == [
        (3, "missing question"),
        (4, "missing answer"),
        (6, "votes is not a number"),
        (7, "duplicate id imp-" + first.id[4:]),
    ]


def test_jsonl_gz_with_ids_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "kb.jsonl.gz"
    lines = [
        json.dumps(
            {
                "id": "a1",
                "title": "Card not arrived",
                "body": "ordered 2 weeks ago",
                "answer": "Wait 7 days.",
                "answer_id": "cards",
            }
        ),
        "{not json",
        json.dumps(["a", "list"]),
        "",
        json.dumps(
            {"id": "a2", "question": "App crashes", "answer": "Update the app.", "author": "bo", "lang": "en"}
        ),
        json.dumps({"id": "a1", "question": "again", "answer": "dupe"}),
    ]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    result = parse_kb_file(path)
    assert [(e.id, e.title, e.body, e.answer_id, e.credit, e.language) for e in result.entries] == [
        ("a1", "Card not arrived", "ordered 2 weeks ago", "cards", None, None),
        ("a2", "App crashes", "", None, "bo", "en"),
    ]
    assert [(line, reason.split(":")[0]) for line, reason in result.skipped] == [
        (2, "invalid JSON"),
        (3, "not a JSON object"),
        (6, "duplicate id a1"),
    ]


def test_format_detection() -> None:
    assert detect_format(Path("x.CSV")) == "csv"
    assert detect_format(Path("x.ndjson.gz")) == "jsonl"
    with pytest.raises(ValueError):
        detect_format(Path("x.xlsx"))


def test_import_into_index_reports_progress(tmp_path: Path, encoder: object) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"id": f"q{i}", "question": f"question number {i}", "answer": "a"}) for i in range(300)
        )
    )
    index = KnowledgeIndex(encoder)  # type: ignore[arg-type]
    seen: list[tuple[int, int]] = []
    result = import_file(index, path, progress=lambda done, total: seen.append((done, total)))
    assert len(result.entries) == 300 and not result.skipped
    assert len(index) == 300
    assert seen[-1] == (300, 300) and len(seen) >= 2

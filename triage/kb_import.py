"""``unsource kb import FILE``: question/answer pairs from CSV or JSON Lines.

Fields (CSV header or JSON keys; case-insensitive): ``question`` (or ``title``), ``body``
(optional details), ``answer`` (required), and optionally ``id``, ``answer_id``, ``credit`` (or
``author``), ``link`` (or ``url``), ``topic``, ``language``, ``votes``. Rows without an id get
a stable one from the question text. Bad rows are skipped with ``(line, reason)``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage.knowledge import KnowledgeEntry, KnowledgeIndex

MAX_FIELD_CHARS = 20_000
_ALIASES = {
    "question": ("question", "title", "q", "subject"),
    "body": ("body", "details", "description"),
    "answer": ("answer", "a", "reply", "solution"),
    "id": ("id", "entry_id"),
    "answer_id": ("answer_id",),
    "credit": ("credit", "author", "answered_by"),
    "link": ("link", "url", "permalink"),
    "topic": ("topic", "category"),
    "language": ("language", "lang"),
    "votes": ("votes", "score"),
}


@dataclass
class KbImport:
    entries: list[KnowledgeEntry] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, reason)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ValueError(f"{path.name}: expected a .csv or .jsonl file (optionally .gz)")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row dict) or (line number, error reason)."""
    fmt = detect_format(path)
    with _open_text(path) as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                return
            for row in reader:
                yield reader.line_num, {str(k).strip().lower(): v for k, v in row.items() if k is not None}
            return
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"invalid JSON: {exc.msg}"
                continue
            if not isinstance(value, dict):
                yield number, "not a JSON object"
                continue
            yield number, {str(k).strip().lower(): v for k, v in value.items()}


def _pick(row: dict[str, Any], name: str) -> str:
    for key in _ALIASES[name]:
        value = row.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def entry_from_row(row: dict[str, Any]) -> KnowledgeEntry | str:
    """A validated entry, or the reason the row cannot be one."""
    question, answer = _pick(row, "question"), _pick(row, "answer")
    if not question:
        return "missing question"
    if not answer:
        return "missing answer"
    body = _pick(row, "body")
    if max(len(question), len(body), len(answer)) > MAX_FIELD_CHARS:
        return f"a field is longer than {MAX_FIELD_CHARS} characters"
    votes_text = _pick(row, "votes") or "0"
    try:
        votes = int(float(votes_text))
    except ValueError:
        return f"votes is not a number: {votes_text!r}"
    entry_id = (
        _pick(row, "id")
        or "imp-" + hashlib.sha1(f"{question}\n{body}".encode(), usedforsecurity=False).hexdigest()[:16]
    )
    return KnowledgeEntry(
        id=entry_id,
        title=question,
        body=body,
        answer=answer,
        answer_id=_pick(row, "answer_id") or None,
        credit=_pick(row, "credit") or None,
        link=_pick(row, "link") or None,
        topic=_pick(row, "topic") or None,
        language=_pick(row, "language") or None,
        votes=votes,
    )


def parse_kb_file(path: Path) -> KbImport:
    """Parse a whole file. Duplicate ids: the first wins, later ones are skipped."""
    result = KbImport()
    seen: set[str] = set()
    for line, row in _rows(path):
        if isinstance(row, str):
            result.skipped.append((line, row))
            continue
        entry = entry_from_row(row)
        if isinstance(entry, str):
            result.skipped.append((line, entry))
        elif entry.id in seen:
            result.skipped.append((line, f"duplicate id {entry.id}"))
        else:
            seen.add(entry.id)
            result.entries.append(entry)
    return result


def import_file(
    index: KnowledgeIndex, path: Path, *, progress: Callable[[int, int], None] | None = None
) -> KbImport:
    """Parse ``path`` and add its entries to ``index``; ``progress(done, total)`` after each batch."""
    parsed = parse_kb_file(path)
    total = len(parsed.entries)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    index.add_many(parsed.entries, progress=step)
    return parsed


def import_with_progress(index: KnowledgeIndex, path: Path) -> KbImport:
    """``import_file`` with a rich progress bar and a summary of what was skipped and why."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("import", total=None)
        result = import_file(
            index, path, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    console.print(f"imported {len(result.entries)} entries, skipped {len(result.skipped)}")
    reasons: dict[str, list[int]] = {}
    for line, reason in result.skipped:
        reasons.setdefault(reason.split(":")[0], []).append(line)
    for reason, lines in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(map(str, lines[:10])) + (" ..." if len(lines) > 10 else "")
        console.print(f"  {len(lines)} x {reason} (lines {shown})")
    return result

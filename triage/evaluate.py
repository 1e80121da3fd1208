"""``unsource eval``: build a fresh knowledge base from a corpus and score the matcher and gate.

Corpus lines: ``{"id", "title", "body", "answer_id"?}``. Query lines: ``{"id", "text",
"title"?, "body"?, "positives": [ids], "candidates": [ids], "in_scope"?: bool}``.

Ranking metrics (percentages over queries with positives): ``MAP`` (full mode: AP over the
top 10, normalised by min(|positives|, 10); rerank mode: AP over all given candidates),
``MRR``, ``P@1``, ``P@5``, ``R@10``. Gate metrics come from the real ``triage.decide`` on each
query, as the bot would see it (a message addressed to the bot and known to be a question;
sensitivity routing off, so that the matcher and its gate are what is measured):
``answer_rate`` (auto-answered share of in-scope queries), ``answer_precision`` (share of
auto-answers whose match is a positive, over all queries), ``oos_answer_rate``
(auto-answered share of out-of-scope queries). ``latency_ms_*`` time the whole ``decide``
call, one query at a time. ``rss_mb`` is the peak resident memory.
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bot.models import Author, DecisionKind, InboundMessage, MessageKind
from triage.config import MatcherSettings, TriageSettings
from triage.context import TriageContext
from triage.decider import decide, question_text
from triage.embedder import Encoder, shared_encoder
from triage.knowledge import KnowledgeEntry, KnowledgeIndex
from triage.matcher import MatcherKind

Mode = Literal["full", "rerank"]
RESULT_KEYS = (
    "n", "MAP", "MRR", "P@1", "P@5", "R@10", "answer_rate", "answer_precision", "oos_answer_rate",
    "build_s", "latency_ms_p50", "latency_ms_p95", "rss_mb",
)  # fmt: skip
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Lines of a ``.jsonl`` or ``.jsonl.gz`` file (blank lines skipped)."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def corpus_entries(path: Path) -> list[KnowledgeEntry]:
    return [
        KnowledgeEntry(
            id=str(row["id"]),
            title=str(row.get("title") or ""),
            body=str(row.get("body") or ""),
            answer=str(row.get("answer") or ""),
            answer_id=str(row["answer_id"]) if row.get("answer_id") is not None else None,
        )
        for row in read_jsonl(path)
    ]


def query_message(query: dict[str, Any]) -> InboundMessage:
    """A query as the bot would receive it: addressed to it, with a title when it has one."""
    title, body = query.get("title") or "", query.get("body") or ""
    if title and body:
        text, subject = str(body), str(title)
    else:
        text, subject = str(query.get("text") or title or body), None
    return InboundMessage(
        connector_id="eval",
        platform="eval",
        external_id=str(query["id"]),
        conversation_id="eval",
        kind=MessageKind.MENTION,
        author=Author(id="eval-user"),
        text=text,
        title=subject,
        sent_at=_EPOCH,
        mentions_bot=True,
    )


def _average_precision(ranked: Sequence[str], positives: set[str], denominator: int) -> float:
    hits, total = 0, 0.0
    for i, entry_id in enumerate(ranked):
        if entry_id in positives:
            hits += 1
            total += hits / (i + 1)
    return total / denominator if denominator else 0.0


def run_eval(
    corpus: Path,
    queries: Path,
    *,
    mode: Mode = "full",
    matcher: MatcherKind = "hybrid",
    settings: TriageSettings | None = None,
    encoder: Encoder | None = None,
    show_progress: bool = True,
) -> dict[str, float | int]:
    """Build a knowledge base from ``corpus``, run ``queries``; return the figures (see module doc)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    base = settings or TriageSettings()
    settings = base.model_copy(
        update={"sensitive": (), "matcher": base.matcher.model_copy(update={"kind": matcher})}
    )
    MatcherSettings.model_validate(settings.matcher.model_dump())
    entries = corpus_entries(corpus)
    rows = list(read_jsonl(queries))
    index = KnowledgeIndex(encoder or shared_encoder())
    progress = (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=None,
            transient=False,
        )
        if show_progress
        else None
    )
    ap, rr, p1, p5, r10 = [], [], [], [], []
    latencies: list[float] = []
    answered_in, in_scope, answered_oos, oos, answered, correct = 0, 0, 0, 0, 0, 0
    with progress or nullcontext():
        build_task = progress.add_task("building knowledge base", total=len(entries)) if progress else None
        start = time.perf_counter()
        index.add_many(
            entries,
            progress=(lambda n: progress.advance(build_task, n))
            if progress and build_task is not None
            else None,
        )
        build_s = time.perf_counter() - start
        # Every query is a question by construction: what is measured is the matcher and its gate.
        ctx = TriageContext(settings=settings, index=index, known_question=True)
        query_task = progress.add_task("running queries", total=len(rows)) if progress else None
        for row in rows:
            positives = {str(p) for p in row.get("positives") or ()}
            message = query_message(row)
            t0 = time.perf_counter()
            decision = decide(message, ctx)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            auto = decision.kind is DecisionKind.AUTO_ANSWER and decision.match is not None
            if row.get("in_scope", True):
                in_scope += 1
                answered_in += auto
            else:
                oos += 1
                answered_oos += auto
            if auto and decision.match is not None:
                answered += 1
                correct += decision.match.entry_id in positives
            if positives:
                candidates = [str(c) for c in row.get("candidates") or ()] if mode == "rerank" else None
                k = max(10, len(candidates or ()))
                title = message.title if message.title and message.text.strip() else None
                ranking = index.search(
                    question_text(message),
                    title=title,
                    matcher=matcher,
                    k=k,
                    candidates=candidates,
                    params=settings.matcher.params(),
                )
                ranked = [h.entry_id for h in ranking.hits]
                denominator = len(positives) if mode == "rerank" else min(len(positives), 10)
                ap.append(_average_precision(ranked, positives, denominator))
                rr.append(next((1.0 / (i + 1) for i, e in enumerate(ranked) if e in positives), 0.0))
                p1.append(float(bool(ranked) and ranked[0] in positives))
                p5.append(sum(e in positives for e in ranked[:5]) / 5.0)
                r10.append(sum(e in positives for e in ranked[:10]) / len(positives))
            if progress and query_task is not None:
                progress.advance(query_task)

    def pct(values: Sequence[float]) -> float:
        return round(100.0 * float(np.mean(values)), 2) if values else 0.0

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = peak_kb / 1024.0 if sys.platform != "darwin" else peak_kb / 1024.0 / 1024.0
    lat = np.array(latencies) if latencies else np.zeros(1)
    result: dict[str, float | int] = {
        "n": len(rows),
        "MAP": pct(ap),
        "MRR": pct(rr),
        "P@1": pct(p1),
        "P@5": pct(p5),
        "R@10": pct(r10),
        "answer_rate": round(100.0 * answered_in / in_scope, 2) if in_scope else 0.0,
        "answer_precision": round(100.0 * correct / answered, 2) if answered else 0.0,
        "oos_answer_rate": round(100.0 * answered_oos / oos, 2) if oos else 0.0,
        "build_s": round(build_s, 2),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "rss_mb": round(rss_mb, 1),
    }
    assert tuple(result) == RESULT_KEYS
    return result

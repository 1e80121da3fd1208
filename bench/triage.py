"""Triage benchmark: import of 100,000 short entries, decision latency against them, memory.

    .venv/bin/python bench/triage.py [--entries 100000] [--queries 500] [--eval]

Prints: import time (with the import command's progress bar), triage decision latency
p50/p95 (the whole ``triage.decide``, one message at a time, hybrid matcher), resident
memory, and with ``--eval`` the dev-split quality table (three datasets x three matchers).
Entries are synthetic but realistic: real support questions from the public dev corpora
(banking77, clinc150), recombined with product names and details, so that they are short,
varied and share vocabulary the way a real knowledge base does. Deterministic (seed 0).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

from triage import TriageContext, TriageSettings, decide
from triage.embedder import shared_encoder
from triage.evaluate import query_message, run_eval
from triage.kb_import import import_with_progress
from triage.knowledge import KnowledgeIndex

DATA = Path(os.environ.get("UNSOURCE_EVAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PRODUCTS = [
    "app",
    "card",
    "account",
    "web dashboard",
    "API",
    "plugin",
    "router",
    "watch",
    "tablet",
    "subscription",
]
DETAILS = [
    "", "", "", "since yesterday", "on android", "on iphone", "after the update", "in the EU",
    "for my business account", "again", "on the website", "with the new version", "abroad",
]  # fmt: skip


def load_titles() -> list[str]:
    titles: list[str] = []
    for name in ("banking77", "clinc150"):
        with gzip.open(DATA / name / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
            titles.extend(json.loads(line)["title"] for line in fh)
    return titles


def write_kb(path: Path, count: int, titles: list[str]) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            base = titles[i % len(titles)]
            detail = rng.choice(DETAILS)
            product = rng.choice(PRODUCTS)
            question = f"{base} ({product}{', ' + detail if detail else ''})" if i >= len(titles) else base
            fh.write(
                json.dumps({"id": f"kb{i}", "question": question, "answer": f"Answer {i % 997}."}) + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--eval", action="store_true", help="also print the dev-split quality table")
    args = parser.parse_args()
    console = Console()
    proc = psutil.Process()

    titles = load_titles()
    encoder = shared_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        kb_file = Path(tmp) / "kb.jsonl"
        write_kb(kb_file, args.entries, titles)
        index = KnowledgeIndex(encoder)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = import_with_progress(index, kb_file)
        import_s, import_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        start = time.perf_counter()
        index.save(Path(tmp) / "index")
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        KnowledgeIndex.load(Path(tmp) / "index", encoder)
        load_s = time.perf_counter() - start

    queries: list[dict[str, object]] = []
    for name in ("banking77", "clinc150"):
        with gzip.open(DATA / name / "queries_dev.jsonl.gz", "rt", encoding="utf-8") as fh:
            queries.extend(json.loads(line) for line in fh)
    random.Random(1).shuffle(queries)
    messages = [query_message(q) for q in queries[: args.queries]]
    ctx = TriageContext(settings=TriageSettings(), index=index)
    for m in messages[:20]:  # warm-up
        decide(m, ctx)
    latencies, cpu_ms = [], []
    kinds: dict[str, int] = {}
    for m in messages:
        t0, c0 = time.perf_counter(), time.process_time()
        decision = decide(m, ctx)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        cpu_ms.append((time.process_time() - c0) * 1000.0)
        kinds[decision.kind.value] = kinds.get(decision.kind.value, 0) + 1
    lat = np.array(latencies)

    table = Table(title=f"triage benchmark ({os.cpu_count()} cores)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("entries imported", f"{len(result.entries):,} (skipped {len(result.skipped)})", "100,000")
    table.add_row(
        "import time",
        f"{import_s:.1f} s ({import_s / max(len(result.entries), 1) * 1000:.2f} ms/entry)",
        "< 600 s",
    )
    table.add_row("import CPU time (all threads)", f"{import_cpu:.1f} s", "")
    table.add_row("index save / load", f"{save_s:.1f} s / {load_s:.1f} s", "")
    table.add_row("decision latency p50", f"{np.percentile(lat, 50):.1f} ms", "")
    table.add_row("decision latency p95", f"{np.percentile(lat, 95):.1f} ms", "<= 20 ms")
    table.add_row("decision latency max", f"{lat.max():.1f} ms", "")
    table.add_row(
        "decision CPU p50 / p95", f"{np.percentile(cpu_ms, 50):.1f} / {np.percentile(cpu_ms, 95):.1f} ms", ""
    )
    table.add_row("decisions", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())), "")
    table.add_row("resident memory now", f"{proc.memory_info().rss / 2**20:.0f} MB", "< 1024 MB")
    table.add_row(
        "load average", " ".join(f"{x:.1f}" for x in os.getloadavg()), "(other work on the machine)"
    )
    console.print(table)

    if args.eval:
        quality = Table(title="dev-split quality (unsource eval)")
        for col in (
            "dataset",
            "mode",
            "matcher",
            "MAP",
            "P@1",
            "answer_rate",
            "answer_precision",
            "oos_answer_rate",
        ):
            quality.add_column(col, justify="right")
        for name, mode in (("banking77", "full"), ("semeval16b", "rerank"), ("clinc150", "full")):
            for matcher in ("bm25", "dense", "hybrid"):
                figures = run_eval(
                    DATA / name / "corpus.jsonl.gz", DATA / name / "queries_dev.jsonl.gz",
                    mode=mode, matcher=matcher, show_progress=False,  # type: ignore[arg-type]
                )  # fmt: skip
                quality.add_row(
                    name, mode, matcher,
                    *(f"{figures[k]}" for k in ("MAP", "P@1", "answer_rate", "answer_precision", "oos_answer_rate")),  # noqa: E501
                )  # fmt: skip
        console.print(quality)


if __name__ == "__main__":
    main()

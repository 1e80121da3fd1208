"""The sandbox's sample community: questions, answers and the seed knowledge base.

Everything here was written for this project (a fictional note-taking app, "Acme Notes");
see ``README.md`` in this folder. :func:`load_scenario` reads ``community.json``;
:func:`kb_rows` turns its intents into knowledge-base rows for ``unsource kb import``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIO_FILE = Path(__file__).with_name("community.json")
KB_FILE = Path(__file__).with_name("kb.jsonl")
LINK = "https://community.acme-notes.example/t/{n}"


@dataclass(frozen=True)
class Intent:
    """One thing customers ask about, with its accepted answer and how people phrase it."""

    id: str
    topic: str
    credit: str
    answer: str
    kb: tuple[str, ...]  # phrasings already in the knowledge base (past solved threads)
    asks: tuple[str, ...]  # the same question in new words, as the community asks it


@dataclass(frozen=True)
class NewQuestion:
    topic: str
    text: str
    answer: str  # what a helper replies


@dataclass(frozen=True)
class Scenario:
    product: str
    intents: tuple[Intent, ...]
    new_questions: tuple[NewQuestion, ...]
    sensitive: tuple[str, ...]
    angry: tuple[str, ...]
    not_questions: tuple[str, ...]

    @property
    def topics(self) -> tuple[str, ...]:
        seen = dict.fromkeys([i.topic for i in self.intents] + [q.topic for q in self.new_questions])
        return tuple(seen)


def load_scenario(path: Path = SCENARIO_FILE) -> Scenario:
    d: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return Scenario(
        product=str(d["product"]),
        intents=tuple(
            Intent(
                id=str(i["id"]),
                topic=str(i["topic"]),
                credit=str(i["credit"]),
                answer=str(i["answer"]),
                kb=tuple(i["kb"]),
                asks=tuple(i["asks"]),
            )
            for i in d["intents"]
        ),
        new_questions=tuple(
            NewQuestion(str(q["topic"]), str(q["text"]), str(q["answer"])) for q in d["new_questions"]
        ),
        sensitive=tuple(d["sensitive"]),
        angry=tuple(d["angry"]),
        not_questions=tuple(d["not_questions"]),
    )


def kb_rows(scenario: Scenario) -> list[dict[str, str]]:
    """Knowledge-base rows (the columns ``unsource kb import`` reads): one per past phrasing."""
    rows: list[dict[str, str]] = []
    n = 100
    for intent in scenario.intents:
        for j, question in enumerate(intent.kb):
            n += 1
            rows.append(
                {
                    "id": f"sandbox-{intent.id}-{j + 1}",
                    "question": question,
                    "answer": intent.answer,
                    "answer_id": intent.id,
                    "credit": intent.credit,
                    "link": LINK.format(n=n),
                    "topic": intent.topic,
                }
            )
    return rows


def write_kb(path: Path, scenario: Scenario | None = None) -> int:
    rows = kb_rows(scenario or load_scenario())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)

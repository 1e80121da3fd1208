"""Seed data for the dashboard tests: a handful of threads whose outcomes are known by design.

Rows are inserted directly (the shape the worker writes: message, thread, decision with the
Decision payload, outbox), at times relative to ``now`` so every figure is predictable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Decision, DecisionKind
from bot.settings import Config, load_config
from bot.storage.tables import DecisionRow, MessageRow, OutboxRow, ThreadRow
from bot.web.auth import hash_password

M = MessageRow.__table__  # type: ignore[attr-defined]
T = ThreadRow.__table__  # type: ignore[attr-defined]
D = DecisionRow.__table__  # type: ignore[attr-defined]
OB = OutboxRow.__table__  # type: ignore[attr-defined]

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
  tg:
    type: telegram
    enabled: true
    settings:
      token: ${{TG_TOKEN}}
staff:
  connector: local
  conversation: staff
helpers:
  - name: Ann
    identities: {{ local: ann }}
    handles: {{ local: ann }}
    topics: [login]
  - name: Bo
    identities: {{ local: bo }}
  - name: Sam
    role: staff
    identities: {{ local: sam }}
sla:
  policies:
    - name: default
      first_response: 1h
web:
  cost_per_staff_contact: 10
  queue_refresh: 300ms
  trends:
    bucket: 1h
    window: 24
    min_history: 12
"""
TG_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
PASSWORDS = {"sam": "staff-password-1", "vic": "viewer-password-1"}


def make_config(tmp: Path, url: str) -> Config:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(CONFIG.format(data=data, url=url), encoding="utf-8")
    return load_config(path, env={"TG_TOKEN": TG_TOKEN})


def users_env() -> dict[str, str]:
    users = ",".join(
        f"{n}:{'staff' if n == 'sam' else 'viewer'}:{hash_password(p, iterations=1000)}"
        for n, p in PASSWORDS.items()
    )
    return {"UNSOURCE_WEB_USERS": users, "UNSOURCE_WEB_SECRET": "s" * 32}


@dataclass(frozen=True)
class Seeded:
    """Threads by name -> id, and the outcome each is designed to have."""

    ids: dict[str, int]
    outcomes: dict[str, str]  # within the 7-day window only
    pii_email: str = "joe.customer@example.com"
    pii_phone: str = "+1 415 555 0199"
    asker_handle: str = "joecustomer"


# name: (minutes ago opened, kind, state, asker, text, replies [(author, minutes after open)], outcome)
THREADS: list[tuple[str, int, DecisionKind, str, str, str, list[tuple[str, int]], str | None]] = [
    (
        "auto",
        120,
        DecisionKind.AUTO_ANSWER,
        "auto_answered",
        "cust1",
        "how do I reset my password?",
        [],
        "auto",
    ),
    (
        "helped",
        300,
        DecisionKind.TAG_HELPERS,
        "answered",
        "cust2",
        "app crashes on login",
        [("ann", 10)],
        "community",
    ),
    (
        "private",
        240,
        DecisionKind.ROUTE_PRIVATE,
        "with_staff",
        "cust3",
        "refund to card 4111 1111 1111 1111 please",
        [("sam", 120)],
        "staff",
    ),
    (
        "pii",
        30,
        DecisionKind.TAG_HELPERS,
        "awaiting_helper",
        "joecustomer",
        "cannot sign in, mail me at joe.customer@example.com or +1 415 555 0199",
        [],
        "waiting",
    ),
    (
        "late",
        180,
        DecisionKind.TAG_HELPERS,
        "awaiting_helper",
        "cust5",
        "where is my invoice?",
        [],
        "waiting",
    ),
    ("old", 60 * 24 * 9, DecisionKind.TAG_HELPERS, "solved", "cust6", "old question", [("bo", 5)], None),
]


async def seed(session: AsyncSession, now: datetime, connector: str = "local") -> Seeded:
    ids: dict[str, int] = {}
    outcomes: dict[str, str] = {}
    mid = 0
    for tid, (name, ago, kind, state, asker, text, replies, outcome) in enumerate(THREADS, start=1):
        opened = now - timedelta(minutes=ago)
        mid += 1
        root = mid
        await session.execute(
            insert(M).values(**_msg(root, (connector, f"q{tid}", tid), asker, text, opened))
        )
        first = None
        for author, after in replies:
            mid += 1
            at = opened + timedelta(minutes=after)
            first = first or at
            await session.execute(
                insert(M).values(**_msg(mid, (connector, f"r{mid}", tid), author, "try this", at))
            )
        private = kind is DecisionKind.ROUTE_PRIVATE
        await session.execute(
            insert(T).values(
                id=tid,
                connector_id=connector,
                platform="jsonl",
                conversation_id="c1",
                root_message_id=root,
                root_external_id=f"q{tid}",
                asker_id=asker,
                asker_handle=asker,
                is_private=private,
                state=state,
                topic="login" if "sign in" in text or "login" in text else None,
                priority="normal",
                sensitive="billing" if private else None,
                message_count=1 + len(replies),
                opened_at=opened,
                updated_at=opened,
                first_response_at=first,
                solved_at=opened + timedelta(minutes=30) if state == "solved" else None,
            )
        )
        decision = Decision(kind=kind, is_question=True, redacted_text=_redacted(text), reasons=("seeded",))
        await session.execute(
            insert(D).values(
                message_id=root,
                thread_id=tid,
                kind=kind.value,
                payload={**decision.model_dump(mode="json"), "plan": []},
                decided_by="seed",
                created_at=opened,
            )
        )
        if kind is DecisionKind.TAG_HELPERS:
            await session.execute(
                insert(OB).values(
                    idempotency_key=f"t{tid}:open:tag",
                    connector_id=connector,
                    conversation_id="c1",
                    thread_id=tid,
                    message_id=root,
                    purpose="tag_helpers",
                    payload={
                        "text": "can someone help?",
                        "mentions": [{"user_id": "ann", "display_name": "Ann"}],
                    },
                    state="sent",
                    next_try_at=opened,
                    created_at=opened,
                    sent_at=opened,
                )
            )
        ids[name] = tid
        if outcome is not None:
            outcomes[name] = outcome
    return Seeded(ids, outcomes)


def _redacted(text: str) -> str:
    from triage.pii import redact

    return redact(text)[0]


def _msg(mid: int, where: tuple[str, str, int], author: str, text: str, at: datetime) -> dict[str, Any]:
    connector, ext, tid = where
    return {
        "id": mid,
        "connector_id": connector,
        "external_id": ext,
        "platform": "jsonl",
        "conversation_id": "c1",
        "kind": "channel_post" if ext.startswith("q") else "reply",
        "author_id": author,
        "author_handle": author,
        "text": text,
        "sent_at": at,
        "received_at": at,
        "raw": {},
        "thread_id": tid,
    }

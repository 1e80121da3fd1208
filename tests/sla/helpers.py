"""Seeding real storage for SLA tests: threads with their root message, decision and tag."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config_watch import ConfigHolder
from bot.models import Mention, OutboundMessage, ThreadState, ThreadView
from bot.settings import Config, load_config
from bot.sla.hooks import SlaEvent, apply
from bot.sla.policy import Planner
from bot.storage import outbox
from bot.storage.tables import DecisionRow, MessageRow, ThreadRow

_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
_THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]
_DECISION: Table = DecisionRow.__table__  # type: ignore[attr-defined]

ANN = Mention(user_id="ann", handle="ann", display_name="Ann")

CONFIG = """\
data_dir: {data}
storage:
  url: {url}
logging:
  level: {level}
web:
  enabled: false
connectors:
  local:
    type: jsonl
    settings:
      inbound: {data}/in.jsonl
      outbound: {data}/out.jsonl
      poll_interval: 0.05
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
    handles: {{ local: bo }}
    topics: [login]
  - name: Cy
    identities: {{ local: cy }}
    handles: {{ local: cy }}
  - name: Sam
    role: staff
    identities: {{ local: sam }}
triage:
  topics:
    - name: login
      keywords: [login, password]
sla:
  offline_after: 60s
  link: "https://ops.example/t/{{thread}}"
  topic_channels:
    login: {{ connector: local, conversation: helpers-login }}
{extra}
"""

POLICIES = """\
  policies:
    - name: default
      first_response: 10m
      resolution: 1d
      stages:
        - { at: "50%", action: remind }
        - { at: "100%", action: widen }
        - { at: "150%", action: escalate }
        - { at: "100%", action: escalate, clock: resolution }
    """


def sla_config(tmp: Any, url: str, extra: str = POLICIES, *, level: str = "WARNING") -> Config:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "in.jsonl").touch()
    path = tmp / "config.yaml"
    path.write_text(CONFIG.format(data=data, url=url, extra=extra, level=level), encoding="utf-8")
    return load_config(path, env={})


def holder(config: Config) -> ConfigHolder:
    return ConfigHolder(config)


def view(tid: int, opened_at: datetime, **kw: Any) -> ThreadView:
    values: dict[str, Any] = {
        "id": tid,
        "state": ThreadState.AWAITING_HELPER,
        "connector_id": "local",
        "platform": "jsonl",
        "conversation_id": "general",
        "root_external_id": f"q{tid}",
        "asker_id": f"cust{tid}",
        "asker_handle": f"cust{tid}",
        "topic": "login",
        "priority": "normal",
        "opened_at": opened_at,
    }
    values.update(kw)
    return ThreadView(**values)


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    planner: Planner,
    ids: Sequence[int],
    opened_at: datetime,
    *,
    tagged: Sequence[Mention] = (ANN,),
    sensitive: str | None = None,
    **kw: Any,
) -> list[ThreadView]:
    """Threads as the worker leaves them (message, thread, decision, tag in the outbox), and
    their SLA clocks started through the worker's hook."""
    views = [view(i, opened_at, **kw) for i in ids]
    async with sessions() as s, s.begin():
        await s.execute(
            insert(_MESSAGE),
            [
                {
                    "id": v.id,
                    "connector_id": v.connector_id,
                    "external_id": v.root_external_id,
                    "platform": v.platform,
                    "conversation_id": v.conversation_id,
                    "thread_ref": v.thread_ref,
                    "kind": "channel_post",
                    "author_id": v.asker_id,
                    "author_handle": v.asker_handle,
                    "text": f"my card 4111 1111 1111 1111 fails at login #{v.id}",
                    "sent_at": opened_at,
                    "received_at": opened_at,
                    "raw": {},
                    "thread_id": v.id,
                    "is_private": v.is_private,
                }
                for v in views
            ],
        )
        if s.get_bind().dialect.name == "postgresql":  # explicit ids: move the sequence past them
            await s.execute(
                text("select setval(pg_get_serial_sequence('message', 'id'), max(id)) from message")
            )
        await s.execute(
            insert(_THREAD),
            [
                {
                    "id": v.id,
                    "connector_id": v.connector_id,
                    "platform": v.platform,
                    "conversation_id": v.conversation_id,
                    "thread_ref": v.thread_ref,
                    "root_message_id": v.id,
                    "root_external_id": v.root_external_id,
                    "asker_id": v.asker_id,
                    "asker_handle": v.asker_handle,
                    "is_private": v.is_private,
                    "state": v.state.value,
                    "topic": v.topic,
                    "priority": v.priority,
                    "sensitive": sensitive,
                    "opened_at": opened_at,
                    "updated_at": opened_at,
                }
                for v in views
            ],
        )
        await s.execute(
            insert(_DECISION),
            [
                {
                    "message_id": v.id,
                    "thread_id": v.id,
                    "kind": "tag_helpers",
                    "payload": {
                        "redacted_text": f"my card [card] fails at login #{v.id}",
                        "sensitive": sensitive,
                    },
                    "decided_by": "test",
                    "created_at": opened_at,
                }
                for v in views
            ],
        )
        if tagged:
            await outbox.enqueue_many(
                s,
                [
                    (
                        OutboundMessage(
                            idempotency_key=f"t{v.id}:open:tag",
                            connector_id=v.connector_id,
                            conversation_id=v.conversation_id,
                            reply_to_id=v.root_external_id,
                            text="helpers, please",
                            mentions=tuple(tagged),
                            purpose="tag_helpers",
                        ),
                        v.id,
                        v.id,
                    )
                    for v in views
                ],
            )
        await apply(s, [SlaEvent("opened", v, v.id, opened_at) for v in views], planner)
    return views

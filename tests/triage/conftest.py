"""Fixtures for the triage tests: one real ONNX encoder per session, a tiny knowledge base."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.models import Author, InboundMessage, MessageKind
from triage.embedder import MiniLMEncoder, shared_encoder
from triage.knowledge import KnowledgeEntry, KnowledgeIndex

TINY_KB = (
    KnowledgeEntry(
        id="kb1",
        title="My card has not arrived yet",
        answer="Cards take up to 7 working days to arrive; after that, order a replacement in the app.",
        answer_id="card_arrival",
        credit="ana",
        link="https://forum.example/t/1",
        topic="cards",
    ),
    KnowledgeEntry(
        id="kb2",
        title="Still waiting for my new card to be delivered",
        answer="Cards take up to 7 working days to arrive; after that, order a replacement in the app.",
        answer_id="card_arrival",
        credit="ana",
    ),
    KnowledgeEntry(
        id="kb3",
        title="The app crashes when I log in",
        answer="Update to the latest version and clear the app cache; this fixes the login crash.",
        answer_id="app_crash",
        credit="bo",
        topic="app",
    ),
    KnowledgeEntry(
        id="kb4",
        title="App closes immediately after entering my password",
        answer="Update to the latest version and clear the app cache; this fixes the login crash.",
        answer_id="app_crash",
    ),
    KnowledgeEntry(
        id="kb5",
        title="How do I change the language of the app",
        answer="Settings > General > Language.",
        answer_id="language",
    ),
    KnowledgeEntry(
        id="kb6",
        title="Can I switch the app to Spanish",
        answer="Settings > General > Language.",
        answer_id="language",
    ),
    KnowledgeEntry(
        id="kb7",
        title="How do I export my transaction history as CSV",
        answer="Statements > Export > CSV.",
        answer_id="export",
    ),
    KnowledgeEntry(
        id="kb8",
        title="Where can I download a statement of my account activity",
        answer="Statements > Export > CSV.",
        answer_id="export",
    ),
)


@pytest.fixture(scope="session")
def encoder() -> MiniLMEncoder:
    return shared_encoder()


@pytest.fixture()
def tiny_index(encoder: MiniLMEncoder) -> KnowledgeIndex:
    index = KnowledgeIndex(encoder)
    index.add_many(TINY_KB)
    return index


def message(
    text: str,
    *,
    kind: MessageKind = MessageKind.CHANNEL_POST,
    author_id: str = "u1",
    is_bot: bool = False,
    title: str | None = None,
    mentions_bot: bool = False,
    handle: str | None = None,
) -> InboundMessage:
    return InboundMessage(
        connector_id="test",
        platform="test",
        external_id="m1",
        conversation_id="c1",
        kind=kind,
        author=Author(id=author_id, handle=handle, is_bot=is_bot),
        text=text,
        title=title,
        sent_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        mentions_bot=mentions_bot,
    )

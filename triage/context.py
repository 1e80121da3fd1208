"""What ``decide`` may know besides the message: settings, the knowledge index, thread facts."""

from __future__ import annotations

from dataclasses import dataclass, field

from triage.config import TriageSettings
from triage.knowledge import KnowledgeIndex


@dataclass(frozen=True)
class TriageContext:
    """Everything ``triage.decide`` reads. Built by the core per message; holds no I/O handles.

    ``is_new_thread``: the message opens a thread (a new question) rather than continuing one.
    ``ask_count``: how many times the asker has asked in this thread, this message included.
    ``known_question``: the caller already knows the message is a question (an ``/ask``
    command, a Q&A-only forum channel, evaluation): question detection is skipped.
    """

    settings: TriageSettings = field(default_factory=TriageSettings)
    index: KnowledgeIndex | None = None
    own_author_ids: frozenset[str] = frozenset()
    is_new_thread: bool = True
    ask_count: int = 1
    known_question: bool = False

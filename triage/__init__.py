"""triage: the pure decision layer (question? language? topic? sensitive? priority? match?).

Imports only ``bot.models`` and ``bot.errors`` from the core. ``decide`` does no I/O; the
knowledge index's ``save``/``load`` do file I/O and are called by the core.
"""

from triage.config import TriageSettings
from triage.context import TriageContext
from triage.decider import decide, question_text
from triage.knowledge import KnowledgeEntry, KnowledgeIndex, index_exists

__all__ = [
    "KnowledgeEntry",
    "KnowledgeIndex",
    "TriageContext",
    "TriageSettings",
    "decide",
    "index_exists",
    "question_text",
]

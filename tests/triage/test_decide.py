"""decide(): the gate, routing, follow-ups, bots, and failing closed."""

from __future__ import annotations

import pytest

from bot.models import DecisionKind, MessageKind, Priority
from triage import TriageContext, TriageSettings, decide
from triage.config import MatcherSettings, PrioritySettings, TopicSettings
from triage.knowledge import KnowledgeIndex

from .conftest import message


def ctx_with(index: KnowledgeIndex | None, **settings: object) -> TriageContext:
    return TriageContext(
        settings=TriageSettings.model_validate(settings), index=index, own_author_ids=frozenset({"bot"})
    )


def test_high_confidence_answers_with_credit_and_link(tiny_index: KnowledgeIndex) -> None:
    d = decide(message("card not arrived yet"), ctx_with(tiny_index))
    assert d.kind is DecisionKind.AUTO_ANSWER
    assert d.is_question and d.match is not None
    assert d.match.entry_id in {"kb1", "kb2"}
    assert d.match.confidence >= 0.9
    assert d.match.answer.startswith("Cards take up to 7 working days")
    assert any(r.startswith(f"matched kb#{d.match.entry_id} at ") for r in d.reasons)
    assert d.language == "en"


def test_medium_confidence_tags_helpers_and_keeps_the_match(tiny_index: KnowledgeIndex) -> None:
    settings = {"matcher": {"high_confidence": 0.9999999, "medium_confidence": 0.5}}
    d = decide(message("app crashes on login"), ctx_with(tiny_index, **settings))
    assert d.kind is DecisionKind.TAG_HELPERS
    assert d.match is not None and d.match.entry_id in {"kb3", "kb4"}
    assert any("medium: show helpers" in r for r in d.reasons)


def test_low_confidence_tags_helpers_without_a_match(tiny_index: KnowledgeIndex) -> None:
    d = decide(message("what is the meaning of life?"), ctx_with(tiny_index))
    assert d.kind is DecisionKind.TAG_HELPERS
    assert d.match is None
    assert any("(low: not shown)" in r for r in d.reasons)


def test_empty_or_missing_knowledge_base_tags_helpers(encoder: object) -> None:
    for index in (None, KnowledgeIndex(encoder)):  # type: ignore[arg-type]
        d = decide(message("app crashes on login"), ctx_with(index))
        assert d.kind is DecisionKind.TAG_HELPERS
        assert d.match is None
        assert "match: empty knowledge base" in d.reasons


def test_sensitive_goes_private_even_with_a_perfect_match(tiny_index: KnowledgeIndex) -> None:
    d = decide(
        message("my card has not arrived yet and I want a refund, card 4111 1111 1111 1111"),
        ctx_with(tiny_index),
    )
    assert d.kind is DecisionKind.ROUTE_PRIVATE
    assert d.sensitive == "refunds"
    assert d.match is None
    assert "4111" not in d.redacted_text and "[card]" in d.redacted_text
    assert "sensitive: refunds keyword 'refund'" in d.reasons


def test_rejections_lower_confidence_until_no_auto_answer(tiny_index: KnowledgeIndex) -> None:
    ctx = ctx_with(tiny_index, matcher={"high_confidence": 0.9, "medium_confidence": 0.3})
    first = decide(message("app crashes on login"), ctx)
    assert first.kind is DecisionKind.AUTO_ANSWER and first.match is not None
    for _ in range(2):
        tiny_index.record_feedback(first.match.entry_id, accepted=False)
    again = decide(message("app crashes on login"), ctx)
    assert again.kind is DecisionKind.TAG_HELPERS
    assert again.match is not None and again.match.confidence < first.match.confidence * 0.6
    assert any("2 rejected" in r for r in again.reasons)


@pytest.mark.parametrize(
    ("text", "kind", "author", "is_bot", "reason"),
    [
        (
            "thanks, that worked!",
            MessageKind.CHANNEL_POST,
            "u1",
            False,
            "not a question: greeting, thanks or chatter",
        ),
        ("app crashes on login", MessageKind.CHANNEL_POST, "bot", False, "ignored: our own message"),
        ("app crashes on login", MessageKind.CHANNEL_POST, "other", True, "ignored: bot author"),
        ("app crashes on login", MessageKind.REACTION, "u1", False, "not a question: a reaction"),
        ("app crashes on login", MessageKind.EDIT, "u1", False, "not a question: an edit"),
    ],
)
def test_ignored(  # noqa: PLR0917 - one parameter per table column
    text: str, kind: MessageKind, author: str, is_bot: bool, reason: str, tiny_index: KnowledgeIndex
) -> None:
    d = decide(message(text, kind=kind, author_id=author, is_bot=is_bot), ctx_with(tiny_index))
    assert d.kind is DecisionKind.IGNORE
    assert not d.is_question
    assert reason in d.reasons


def test_known_question_skips_question_detection(tiny_index: KnowledgeIndex) -> None:
    ctx = TriageContext(index=tiny_index, known_question=True)
    d = decide(message("premium plan details"), ctx)
    assert d.is_question and d.kind is DecisionKind.TAG_HELPERS
    assert "question: known to the caller" in d.reasons
    assert decide(message("premium plan details"), ctx_with(tiny_index)).kind is DecisionKind.IGNORE


def test_configured_bot_ids_are_ignored(tiny_index: KnowledgeIndex) -> None:
    d = decide(message("app crashes on login", author_id="b2"), ctx_with(tiny_index, bot_author_ids=["b2"]))
    assert d.kind is DecisionKind.IGNORE


def test_follow_up_in_a_thread_keeps_priority_and_redaction(tiny_index: KnowledgeIndex) -> None:
    ctx = TriageContext(settings=TriageSettings(), index=tiny_index, is_new_thread=False, ask_count=3)
    d = decide(message("still nothing, my number is +44 20 7946 0958"), ctx)
    assert d.kind is DecisionKind.FOLLOW_UP
    assert d.priority is Priority.HIGH
    assert d.redacted_text == "still nothing, my number is [phone]"
    assert d.match is None


def test_topic_priority_and_title(tiny_index: KnowledgeIndex) -> None:
    settings = TriageSettings(
        topics=(TopicSettings(name="mobile", keywords=("app",)),),
        priority=PrioritySettings(vip_authors=("vip",)),
    )
    ctx = TriageContext(settings=settings, index=tiny_index)
    d = decide(message("crashes on login", title="App problem", author_id="vip"), ctx)
    assert d.topic == "mobile" and d.topic_score >= 0.6
    assert d.priority is Priority.HIGH
    assert d.redacted_text == "App problem\ncrashes on login"
    assert d.match is not None and d.match.entry_id in {"kb3", "kb4"}


def test_topic_falls_back_to_the_matched_entry(tiny_index: KnowledgeIndex) -> None:
    d = decide(message("card not arrived yet"), ctx_with(tiny_index))
    assert d.topic == "cards"


class _Broken:
    """An index whose search raises: the match signal fails."""

    def __len__(self) -> int:
        return 1

    def search(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError("index corrupted")


def test_fails_closed_when_the_matcher_raises() -> None:
    ctx = TriageContext(index=_Broken())  # type: ignore[arg-type]
    d = decide(message("app crashes on login, mail me at a@b.example"), ctx)
    assert d.kind is DecisionKind.NEEDS_HUMAN
    assert d.match is None
    assert d.reasons[-1] == "match failed: RuntimeError: index corrupted"
    assert d.redacted_text == "app crashes on login, mail me at [email]"


@pytest.mark.parametrize(
    "signal",
    [
        "detect_language",
        "classify_topic",
        "assess_priority",
        "detect_sensitive",
        "is_support_question",
        "redact",
    ],
)
def test_fails_closed_when_any_signal_raises(
    signal: str, tiny_index: KnowledgeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    import triage.decider as module

    def boom(*args: object, **kwargs: object) -> object:
        raise ValueError(f"{signal} exploded")

    monkeypatch.setattr(module, signal, boom)
    d = decide(message("app crashes on login"), ctx_with(tiny_index))
    assert d.kind is DecisionKind.NEEDS_HUMAN
    assert d.match is None
    assert d.reasons[-1].endswith(f"ValueError: {signal} exploded")
    if signal == "redact":
        assert d.redacted_text == "[redaction failed]"


def test_matcher_choice_from_settings(tiny_index: KnowledgeIndex) -> None:
    for kind in ("bm25", "dense", "hybrid"):
        settings = TriageSettings(matcher=MatcherSettings(kind=kind))
        d = decide(message("app crashes on login"), TriageContext(settings=settings, index=tiny_index))
        assert d.match is not None and d.match.entry_id in {"kb3", "kb4"}, kind


def test_empty_settings_are_valid() -> None:
    settings = TriageSettings.model_validate({})
    assert settings.matcher.kind == "hybrid"
    assert {c.name for c in settings.sensitive} == {
        "billing",
        "payments",
        "refunds",
        "account_access",
        "personal_data",
        "legal",
        "health",
    }
    with pytest.raises(ValueError):
        TriageSettings.model_validate({"matcher": {"high_confidence": 0.5, "medium_confidence": 0.8}})
    with pytest.raises(ValueError):
        TriageSettings.model_validate({"unknown": 1})
    with pytest.raises(ValueError, match="duplicate topic"):
        TriageSettings.model_validate({"topics": [{"name": "a"}, {"name": "a"}]})

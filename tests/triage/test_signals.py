"""Table-driven tests for language, topic, sensitivity and priority."""

from __future__ import annotations

import pytest

from bot.models import Priority
from triage.config import PrioritySettings, SensitiveCategory, TopicSettings, TriageSettings
from triage.language import detect_language
from triage.priority import assess_priority
from triage.sensitive import detect_sensitive
from triage.topic import classify_topic


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card has not arrived yet, what should I do", "en"),
        ("how do i reset my password", "en"),
        ("mi tarjeta no ha llegado todavía", "es"),
        ("ma carte n'est pas arrivée", "fr"),
        ("meine Karte ist noch nicht angekommen", "de"),
        ("a minha conta foi bloqueada, o que faço", "pt"),
        ("как сбросить пароль", "ru"),
        ("カードが届きません", "ja"),
        ("ok", "en"),  # too little text: the default
        ("👍👍", "en"),
    ],
)
def test_language(text: str, expected: str) -> None:
    assert detect_language(text, default="en")[0] == expected


def test_language_default_and_restriction() -> None:
    assert detect_language("hi", default="de")[0] == "de"
    lang, _, reason = detect_language(
        "mi tarjeta no ha llegado todavía", languages=("en", "fr"), default="en"
    )
    assert lang in {"en", "fr"}
    assert reason.startswith("language:")


TOPICS = (
    TopicSettings(
        name="cards",
        keywords=("card", "debit card", "pin"),
        examples=("my card has not arrived", "how do I activate my card"),
        helpers=("ana",),
        sla_policy="fast",
    ),
    TopicSettings(
        name="app",
        keywords=("crash", "crashes", "update"),
        examples=("the app crashes on login", "app is slow after the update"),
    ),
    TopicSettings(name="shipping", examples=("where is my parcel", "delivery is late")),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card never came", "cards"),
        ("what is my PIN", "cards"),
        ("app crashes on login", "app"),
        ("the parcel delivery is late", "shipping"),
        ("what's the weather like", None),
        ("", None),
    ],
)
def test_topic(text: str, expected: str | None) -> None:
    topic, score, reason = classify_topic(text, TOPICS, min_score=0.35)
    assert topic == expected, reason
    assert (score >= 0.35) if expected else True


def test_topic_none_configured() -> None:
    assert classify_topic("anything at all", (), 0.35) == (None, 0.0, "topic: none")


DEFAULTS = TriageSettings().sensitive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I want a refund for last month", "refunds"),
        ("I was charged twice for my subscription", "billing"),
        ("my invoice shows the wrong amount", "billing"),
        ("my credit card was declined at checkout", "payments"),
        ("my account was hacked", "account_access"),
        ("I'm locked out of my account", "account_access"),
        ("I lost access to my email and 2fa", "account_access"),
        ("please delete my data under GDPR", "personal_data"),
        ("I will contact my lawyer about this", "legal"),
        ("the product caused an allergic reaction", "health"),
        ("app crashes on login", None),
        ("how do I change the language", None),
        ("the password field is too small", None),
    ],
)
def test_sensitive_defaults(text: str, expected: str | None) -> None:
    found = detect_sensitive(text, DEFAULTS)
    assert (found[0] if found else None) == expected
    if found:
        assert found[1].startswith(f"sensitive: {expected} ")


def test_sensitive_configurable_patterns() -> None:
    custom = (SensitiveCategory(name="tax", keywords=("vat",), patterns=(r"\btax\s+id\b",)),)
    assert detect_sensitive("what's your tax  id?", custom) == ("tax", "sensitive: tax pattern 'tax  id'")
    assert detect_sensitive("VAT number please", custom) == ("tax", "sensitive: tax keyword 'vat'")
    assert detect_sensitive("I want a refund", custom) is None
    with pytest.raises(ValueError, match="invalid regular expression"):
        SensitiveCategory(name="bad", patterns=("(unclosed",))


PRIO = PrioritySettings(vip_authors=("vip1", "bigcustomer"))


@pytest.mark.parametrize(
    ("text", "author", "asks", "expected"),
    [
        ("app crashes on login", "u1", 1, Priority.NORMAL),
        ("this is URGENT, app crashes on login", "u1", 1, Priority.HIGH),
        ("this app is useless and the support is terrible", "u1", 1, Priority.HIGH),
        ("WHY DOES THIS NEVER WORK", "u1", 1, Priority.HIGH),
        ("still broken!!!", "u1", 1, Priority.HIGH),
        ("app crashes on login", "u1", 2, Priority.HIGH),
        ("app crashes on login", "u1", 4, Priority.URGENT),
        ("app crashes on login", "vip1", 1, Priority.HIGH),
        ("urgent: this is unacceptable, production down", "u1", 1, Priority.URGENT),
        ("need this asap", "vip1", 1, Priority.URGENT),
    ],
)
def test_priority(text: str, author: str, asks: int, expected: Priority) -> None:
    priority, reasons = assess_priority(text, PRIO, author_ids=(author,), ask_count=asks)
    assert priority is expected, reasons
    assert bool(reasons) is (expected is not Priority.NORMAL)


def test_priority_vip_by_handle() -> None:
    priority, reasons = assess_priority("hello?", PRIO, author_ids=("123", "bigcustomer"))
    assert priority is Priority.HIGH
    assert "VIP author bigcustomer" in reasons[0]

"""Triage settings: the ``triage:`` section of config.yaml. Every field has a default."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from triage.matcher import MatcherKind, MatcherParams

MatcherChoice = MatcherKind


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
    return patterns


class TopicSettings(_Model):
    """An ops-defined topic: matched by keywords and by similarity to example questions."""

    name: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()  # words or phrases, case-insensitive, whole words
    examples: tuple[str, ...] = ()  # a few typical questions
    helpers: tuple[str, ...] = ()  # helper ids or handles covering the topic
    roles: tuple[str, ...] = ()  # platform roles covering it (e.g. a Discord role id)
    sla_policy: str | None = None  # name of the SLA policy that applies


class SensitiveCategory(_Model):
    """A category of questions that must go privately to staff."""

    name: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()  # whole words/phrases, case-insensitive
    patterns: tuple[str, ...] = ()  # regular expressions, case-insensitive

    _valid = field_validator("patterns")(_check_patterns)


def _default_sensitive() -> tuple[SensitiveCategory, ...]:
    return (
        SensitiveCategory(
            name="billing",
            keywords=(
                "billing",
                "invoice",
                "invoiced",
                "overcharged",
                "charged twice",
                "double charged",
                "subscription fee",
                "billed",
            ),
            patterns=(r"\bcharged?\b.{0,30}\b(twice|wrong|extra|again)\b",),
        ),
        SensitiveCategory(
            name="payments",
            keywords=(
                "payment",
                "payments",
                "card declined",
                "credit card",
                "debit card",
                "bank transfer",
                "chargeback",
                "top up",
                "top-up",
                "withdrawal",
                "transaction",
            ),
            patterns=(r"\b(pay|paid|paying)\b",),
        ),
        SensitiveCategory(
            name="refunds",
            keywords=("refund", "refunds", "refunded", "money back", "reimburse", "reimbursement"),
        ),
        SensitiveCategory(
            name="account_access",
            keywords=(
                "hacked",
                "locked out",
                "can't log in",
                "cannot log in",
                "can't login",
                "reset my password",
                "password reset",
                "forgot my password",
                "2fa",
                "two-factor",
                "account suspended",
                "account banned",
                "compromised",
                "stolen account",
                "verification code",
            ),
            patterns=(r"\b(lost|lose|no)\s+access\b", r"\bsomeone\b.{0,30}\b(logged|log)\s*in"),
        ),
        SensitiveCategory(
            name="personal_data",
            keywords=(
                "gdpr",
                "personal data",
                "delete my data",
                "my data",
                "data breach",
                "privacy",
                "passport",
                "social security",
                "ssn",
                "home address",
                "date of birth",
                "identity",
                "id document",
            ),
        ),
        SensitiveCategory(
            name="legal",
            keywords=(
                "lawyer",
                "attorney",
                "lawsuit",
                "sue",
                "legal action",
                "court",
                "subpoena",
                "police",
                "fraud",
                "scam",
                "scammed",
                "regulator",
                "ombudsman",
            ),
        ),
        SensitiveCategory(
            name="health",
            keywords=(
                "medical",
                "diagnosis",
                "medication",
                "prescription",
                "pregnant",
                "suicide",
                "self-harm",
                "overdose",
                "allergic reaction",
                "doctor",
                "hospital",
                "injury",
                "injured",
            ),
        ),
    )


class PiiPattern(_Model):
    """An extra pattern to mask, e.g. order numbers: ``{name: order_id, pattern: '#?\\d{3}-\\d{7}'}``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    pattern: str

    _valid = field_validator("pattern")(lambda v: _check_patterns((v,))[0])


def _default_pii() -> tuple[PiiPattern, ...]:
    return (
        PiiPattern(name="order_id", pattern=r"(?i)\border\s*(?:no\.?|number|id|#)?\s*[:#]?\s*[A-Z0-9-]{5,}"),
    )


class PrioritySettings(_Model):
    urgent_words: tuple[str, ...] = (
        "urgent",
        "urgently",
        "asap",
        "emergency",
        "immediately",
        "right now",
        "critical",
        "outage",
        "down for everyone",
        "production down",
        "deadline",
        "time sensitive",
    )
    complaint_words: tuple[str, ...] = (
        "terrible",
        "awful",
        "horrible",
        "worst",
        "useless",
        "ridiculous",
        "unacceptable",
        "disgusting",
        "furious",
        "angry",
        "pathetic",
        "scam",
        "rip off",
        "ripoff",
        "fed up",
        "sick of",
        "joke",
        "never again",
        "cancel my",
        "disappointed",
        "frustrated",
        "frustrating",
        "wtf",
        "still waiting",
        "no one answers",
        "still broken",
        "still not working",
        "again and again",
        "nobody answers",
        "garbage",
        "trash",
    )
    vip_authors: tuple[str, ...] = ()  # author ids (or handles) whose questions are high priority
    repeat_high: int = 2  # asked this many times in the thread -> high
    repeat_urgent: int = 4  # ... -> urgent


class MatcherSettings(_Model):
    kind: MatcherChoice = "hybrid"
    high_confidence: float = Field(default=0.90, ge=0.0, le=1.0)  # auto-answer in channel
    medium_confidence: float = Field(default=0.60, ge=0.0, le=1.0)  # tag helpers, show the match
    lexical_weight: float = Field(default=0.2, ge=0.0)
    vote_weight: float = Field(default=0.2, ge=0.0)
    vote_k: int = Field(default=10, ge=1)
    min_question_chars: int = Field(default=3, ge=1)

    def params(self) -> MatcherParams:
        return MatcherParams(
            lexical_weight=self.lexical_weight, vote_weight=self.vote_weight, vote_k=self.vote_k
        )

    @model_validator(mode="after")
    def _ordered(self) -> MatcherSettings:
        if self.medium_confidence > self.high_confidence:
            raise ValueError("medium_confidence must not exceed high_confidence")
        return self


class TriageSettings(_Model):
    """The ``triage:`` section. An empty section is valid: every field has a default."""

    topics: tuple[TopicSettings, ...] = ()
    topic_min_score: float = Field(default=0.35, ge=0.0, le=1.0)
    sensitive: tuple[SensitiveCategory, ...] = Field(default_factory=_default_sensitive)
    pii_patterns: tuple[PiiPattern, ...] = Field(default_factory=_default_pii)
    priority: PrioritySettings = PrioritySettings()
    matcher: MatcherSettings = MatcherSettings()
    languages: tuple[str, ...] = ()  # restrict language detection to these ISO 639-1 codes
    default_language: str = "en"
    bot_author_ids: tuple[str, ...] = ()  # other bots to ignore (our own ids come from the core)

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, topics: tuple[TopicSettings, ...]) -> tuple[TopicSettings, ...]:
        names = [t.name for t in topics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate topic names: {', '.join(dupes)}")
        return topics

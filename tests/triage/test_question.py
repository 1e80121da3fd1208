from __future__ import annotations

import pytest

from triage.question import is_support_question

QUESTIONS = [
    "card not arrived yet",
    "app crashes on login",
    "How do I reset my password",
    "where is my parcel",
    "my payment is pending since monday",
    "login broken again",
    "Any idea why sync stopped",
    "new phone, need to move my account",
    "Is there a dark mode?",
    "the export button does nothing",
    "can't upload photos",
    "still no confirmation email",
    "je n'arrive pas à me connecter?",
    "I'd like to close my account",
    "help, the app keeps freezing",
    "My card was stolen",
    "I forgot my PIN number.",
    "I was overcharged one extra pound!",
    "The exchange rate was incorrect for this item I bought.",
    "There is a Direct Debit that looks suspicious.",
]

NOT_QUESTIONS = [
    "thanks!",
    "Thank you so much 🙏",
    "good morning everyone",
    "lol same here",
    "hi",
    "hey @support",
    "ok got it, thanks",
    "see you tomorrow",
    "not bad",
    "no worries",
    "nice work team",
    "I love this app",
    "👍",
    "",
    "check out this airdrop https://x.example/claim",
    "Earn money from home, DM me for details",
    "https://a.example https://b.example https://c.example",
]


@pytest.mark.parametrize("text", QUESTIONS)
def test_questions_and_problem_reports(text: str) -> None:
    is_question, reason = is_support_question(text)
    assert is_question, reason


@pytest.mark.parametrize("text", NOT_QUESTIONS)
def test_chatter_greetings_thanks_spam(text: str) -> None:
    is_question, reason = is_support_question(text)
    assert not is_question, reason
    assert reason.startswith("not a question")


@pytest.mark.parametrize(
    ("text", "addressed", "expected"),
    [
        ("cancel my subscription plan", True, True),
        ("premium plan details", True, True),
        ("premium plan details", False, False),
        ("thanks a lot", True, False),
    ],
)
def test_addressed_to_the_bot_lowers_the_bar(text: str, addressed: bool, expected: bool) -> None:
    assert is_support_question(text, addressed=addressed)[0] is expected

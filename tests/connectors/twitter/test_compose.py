"""Long answers: a short reply with a link, or a numbered chain, by weighted length."""

from __future__ import annotations

import re

import pytest

from bot.errors import PermanentSendError
from connectors.twitter.compose import plan_dm, plan_public
from connectors.twitter.weighted import weighted_length

SENTENCES = [
    f"Step {i}: open Settings, then Account, then tap the blue button labelled Reset." for i in range(1, 9)
]
LONG = " ".join(SENTENCES)
LINK = "https://help.acme.example.com/answers/how-to-reset-your-password-on-every-device"


def plan(text: str, handles: tuple[str, ...] = (), **kw: object) -> list[str]:
    options: dict[str, object] = {
        "link": None,
        "mode": "link",
        "max_parts": 6,
        "lead": "The full answer is here:",
    }
    options.update(kw)
    return plan_public(text, handles, **options)  # type: ignore[arg-type]


def test_short_answer_is_one_post_with_mentions_first() -> None:
    assert plan("Try clearing the cache.", ("bo_helps", "cy")) == ["@bo_helps @cy Try clearing the cache."]


def test_long_answer_with_link_becomes_whole_sentences_and_the_link() -> None:
    (post,) = plan(LONG, ("bo_helps",), link=LINK)
    assert weighted_length(post) <= 280
    assert post.startswith("@bo_helps Step 1:") and post.endswith(f"More: {LINK}")
    body = post.removeprefix("@bo_helps ").removesuffix(f" More: {LINK}")
    assert body in LONG and body.endswith(".")  # whole sentences only
    assert body == " ".join(SENTENCES[: body.count("Step")])


def test_link_reply_uses_the_lead_when_no_sentence_fits() -> None:
    (post,) = plan("word " * 100, link=LINK)
    assert post == f"The full answer is here: {LINK}"


def test_long_answer_without_link_becomes_a_numbered_chain() -> None:
    posts = plan(LONG, ("bo_helps",))
    n = len(posts)
    assert 2 <= n <= 6
    assert all(weighted_length(p) <= 280 for p in posts)
    assert [re.search(r"\((\d+)/(\d+)\)$", p).groups() for p in posts] == [  # type: ignore[union-attr]
        (str(i), str(n)) for i in range(1, n + 1)
    ]
    assert posts[0].startswith("@bo_helps ") and not any(p.startswith("@") for p in posts[1:])
    rebuilt = " ".join(re.sub(r" \(\d+/\d+\)$", "", p) for p in posts).removeprefix("@bo_helps ")
    assert rebuilt == LONG  # nothing lost, nothing cut inside a word


def test_thread_mode_prefers_the_chain_even_with_a_link() -> None:
    posts = plan(LONG, link=LINK, mode="thread")
    assert len(posts) > 1 and LINK not in " ".join(posts)


def test_too_long_for_a_chain_falls_back_to_the_link_or_refuses() -> None:
    huge = LONG * 6
    assert plan(huge, link=LINK, mode="thread") == [plan(huge, link=LINK)[0]]
    with pytest.raises(PermanentSendError):
        plan(huge, max_parts=3)


def test_cjk_is_split_by_weight_not_by_characters() -> None:
    text = "。".join(["パスワードを再設定するには設定画面を開いてください"] * 12) + "。"
    assert len(text) < 400 < weighted_length(text)
    posts = plan(text)
    assert len(posts) >= 3
    assert all(weighted_length(p) <= 280 for p in posts)
    assert any(len(p) <= 140 < weighted_length(p) for p in posts)  # by characters it would look fine
    assert all(re.sub(r" \(\d+/\d+\)$", "", p).endswith("。") for p in posts)  # cut at sentence ends


def test_urls_count_23_when_packing() -> None:
    url = "https://example.com/" + "x" * 300
    text = "see " + url + " " + "ok " * 79 + "ok"  # long in characters, 268 in weight
    assert len(text) > 280
    assert plan(text) == [text]


def test_empty_answer_is_refused() -> None:
    with pytest.raises(PermanentSendError):
        plan("   ")


def test_dm_splits_only_past_ten_thousand_characters() -> None:
    assert plan_dm("short", ()) == ["short"]
    parts = plan_dm("word " * 3000, ("bo",))
    assert len(parts) == 2 and all(len(p) <= 10_000 for p in parts) and parts[0].startswith("@bo word")

"""X's weighted length (twitter-text config v3): a table, checked against both implementations."""

from __future__ import annotations

import pytest

from connectors.twitter.weighted import MAX_WEIGHTED_LENGTH, find_urls, fits, weighted_length
from sandbox.x.textlen import weighted_length as fake_weighted_length

CASES = [
    ("", 0),
    ("hello", 5),
    ("a" * 280, 280),
    ("привет мир", 10),  # Cyrillic is below 4352: weight 1
    ("שלום", 4),  # Hebrew: weight 1
    ("日本語", 6),  # CJK: weight 2 each
    ("한국어", 6),  # Hangul: weight 2
    ("こんにちは", 10),  # Hiragana: weight 2
    ("—", 1),  # U+2014 em dash: in 8208..8223
    ("’", 1),  # U+2019: in 8208..8223
    ("…", 2),  # U+2026 ellipsis: outside the light ranges
    ("‰", 2),  # U+2030 = 8240: just below the 8242..8247 block
    ("′", 1),  # U+2032 prime = 8242: in the block
    ("e\u0301", 1),  # NFC folds e + combining acute into é
    ("https://example.com/a/very/long/path/that/goes/on?and=on&on=1", 23),
    ("http://a.co", 23),
    ("see https://a.co.", 4 + 23 + 1),  # the trailing full stop is not part of the URL
    ("(https://x.com/a_(b))", 1 + 23 + 1),  # balanced parentheses stay in the URL
    ("example.com", 23),  # bare domains are links too
    ("www.example.org/help", 23),
    ("two https://a.co/1 https://b.co/2", 4 + 23 + 1 + 23),
    ("mail a@b.com", 12),  # an email address is not a link
    ("node.js", 7),  # .js is not a top-level domain
    ("😀", 2),
    ("👍🏽", 2),  # skin tone: one emoji
    ("👨\u200d👩\u200d👧\u200d👦", 2),  # ZWJ family: one emoji
    ("🇯🇵", 2),  # flag: two regional indicators, one emoji
    ("1\ufe0f\u20e3", 2),  # keycap
    ("☀\ufe0f", 2),  # text-default symbol with VS16
    ("❤\ufe0f\u200d🔥", 2),
    ("©", 1),  # plain copyright sign is text, weight 1
    ("©\ufe0f", 2),  # with VS16 it is an emoji
    ("ok 👍 日本 https://x.com", 3 + 2 + 1 + 4 + 1 + 23),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_weighted_length(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_the_fake_measures_the_same(text: str, expected: int) -> None:
    assert fake_weighted_length(text) == expected


def test_limit_boundaries() -> None:
    assert fits("a" * 280) and not fits("a" * 281)
    assert fits("日" * 140) and not fits("日" * 141)
    long_url = "https://example.com/" + "p" * 200  # 220 characters, weighs 23
    assert weighted_length("x" * 256 + " " + long_url) == MAX_WEIGHTED_LENGTH
    assert not fits("x" * 257 + " " + long_url)


def test_url_extraction() -> None:
    assert find_urls("read https://docs.acme.io/reset, then example.com.") == [
        "https://docs.acme.io/reset",
        "example.com",
    ]

"""X's weighted text length (twitter-text configuration v3).

X does not count characters: it counts *weight*. The v3 configuration says:

* the text is NFC-normalized first, then measured by Unicode code point;
* code points in ``0..4351`` (Latin, Greek, Cyrillic, Hebrew, Arabic, Indic ...) and in three
  small punctuation blocks (``8192..8205``, ``8208..8223``, ``8242..8247``) weigh 1;
  everything else (CJK, Hangul, most symbols, emoji, ``…``) weighs 2;
* every URL weighs 23 (``transformedURLLength``), however long it is;
* an emoji *sequence* (skin tones, ZWJ families, flags, keycaps) weighs 2 in total;
* a post may weigh at most 280.

URLs are recognised with a pragmatic subset of twitter-text's extractor: anything starting with
``http://`` / ``https://``, and bare domains on common top-level domains (``example.com/x``).
"""

from __future__ import annotations

import re
import unicodedata

MAX_WEIGHTED_LENGTH = 280
URL_WEIGHT = 23
EMOJI_WEIGHT = 2
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))

_TLDS = (
    "com|net|org|info|biz|edu|gov|mil|int|io|co|ai|app|dev|me|ly|gl|gg|tv|fm|so|sh|to|cc|us|uk|de|fr|es|"
    "it|nl|be|ch|at|se|no|dk|fi|pl|cz|ru|ua|jp|cn|kr|in|br|mx|ar|ca|au|nz|za|ie|pt|gr|tr|il|sg|hk|tw|id|"
    "my|th|vn|ph|eu|xyz|online|site|tech|store|shop|blog|cloud|page|link|news|live|help|support|ly"
)
_URL_RE = re.compile(
    r"(?<![\w@$#/.\-])"
    r"(?:https?://[^\s<>\"]+"
    r"|(?:www\.)?(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:" + _TLDS + r")(?::\d{1,5})?(?:/[^\s<>\"]*)?"
    r")(?![\w\-])",
    re.IGNORECASE,
)
_TRAILING = ".,:;!?'\"”’»"

_SMP = "\U0001f000-\U0001faff"
_BMP_SYMBOLS = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a-\u23ff\u24c2"
    "\u25aa-\u27bf\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299"
)
_MOD = "[\U0001f3fb-\U0001f3ff]"
_TAGS = "[\U000e0020-\U000e007f]*"
# a text-default BMP symbol is an emoji only with VS16 or a skin tone; SMP pictographs always are
_ELEM = f"(?:[{_SMP}]\ufe0f?{_MOD}?|[{_BMP_SYMBOLS}](?:\ufe0f{_MOD}?|{_MOD}))"
_CONT = f"(?:[{_SMP}]\ufe0f?{_MOD}?|[{_BMP_SYMBOLS}]\ufe0f?{_MOD}?)"
_EMOJI_RE = re.compile(
    "[\U0001f1e6-\U0001f1ff]{2}"  # flags: a pair of regional indicators
    "|[#*0-9]\ufe0f?\u20e3"  # keycaps
    f"|{_ELEM}{_TAGS}(?:\u200d{_CONT})*"  # pictographs, modifiers, tag sequences, ZWJ sequences
)


def url_spans(text: str) -> list[tuple[int, int]]:
    """Start/end offsets of the URLs X would shorten to t.co links."""
    spans: list[tuple[int, int]] = []
    for match in _URL_RE.finditer(text):
        start, end = match.span()
        while end > start and (text[end - 1] in _TRAILING or _unbalanced_close(text[start:end])):
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _unbalanced_close(url: str) -> bool:
    last = url[-1]
    pairs = {")": "(", "]": "[", "}": "{"}
    if last not in pairs:
        return False
    return url.count(last) > url.count(pairs[last])


def code_point_weight(char: str) -> int:
    cp = ord(char)
    if cp <= 4351:
        return 1
    return 1 if any(lo <= cp <= hi for lo, hi in _LIGHT_RANGES) else 2


def weighted_length(text: str) -> int:
    """The length X counts against the 280 limit."""
    text = unicodedata.normalize("NFC", text)
    urls = dict(url_spans(text))
    total = 0
    i = 0
    while i < len(text):
        end = urls.get(i)
        if end is not None:
            total += URL_WEIGHT
            i = end
            continue
        char = text[i]
        emoji = _EMOJI_RE.match(text, i) if char >= "\x80" or char in "#*0123456789" else None
        if emoji is not None:
            total += EMOJI_WEIGHT
            i = emoji.end()
            continue
        total += code_point_weight(char)
        i += 1
    return total


def cumulative_weights(text: str) -> list[int]:
    """``result[i]`` is the weight of ``text[:i]`` (URLs and emoji count whole from their first
    character). Computed once, it makes "the longest prefix that fits" a binary search. Measured
    without NFC, so it never under-counts."""
    urls = dict(url_spans(text))
    out = [0] * (len(text) + 1)
    total = 0
    i = 0
    while i < len(text):
        end = urls.get(i)
        char = text[i]
        if end is None:
            emoji = _EMOJI_RE.match(text, i) if char >= "\x80" or char in "#*0123456789" else None
            if emoji is not None:
                end, unit = emoji.end(), EMOJI_WEIGHT
            else:
                end, unit = i + 1, code_point_weight(char)
        else:
            unit = URL_WEIGHT
        total += unit
        for j in range(i + 1, end + 1):
            out[j] = total
        i = end
    return out


def fits(text: str, limit: int = MAX_WEIGHTED_LENGTH) -> bool:
    return weighted_length(text) <= limit


def find_urls(text: str) -> list[str]:
    return [text[s:e] for s, e in url_spans(text)]

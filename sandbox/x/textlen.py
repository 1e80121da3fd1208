"""The fake's own measure of a post's weighted length (twitter-text config v3).

The sandbox imports nothing from the bot, so this is an independent implementation of the
rule the real API enforces: NFC, code points in 0..4351 / 8192..8205 / 8208..8223 / 8242..8247
weigh 1, others 2; a URL weighs 23; an emoji sequence weighs 2. Posts over 280 are refused.
"""

from __future__ import annotations

import re
import unicodedata

LIMIT = 280
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_TLD = (
    "com|net|org|info|biz|edu|gov|mil|int|io|co|ai|app|dev|me|ly|gl|gg|tv|fm|so|sh|to|cc|us|uk|de|fr|es|"
    "it|nl|be|ch|at|se|no|dk|fi|pl|cz|ru|ua|jp|cn|kr|in|br|mx|ar|ca|au|nz|za|ie|pt|gr|tr|il|sg|hk|tw|id|"
    "my|th|vn|ph|eu|xyz|online|site|tech|store|shop|blog|cloud|page|link|news|live|help|support"
)
_URL = re.compile(
    r"(?<![\w@$#/.\-])(?:https?://[^\s<>\"]+|(?:www\.)?(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:"
    + _TLD
    + r")(?::\d{1,5})?(?:/[^\s<>\"]*)?)(?![\w\-])",
    re.IGNORECASE,
)
_SYM = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a-\u23ff\u24c2"
    "\u25aa-\u27bf\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299"
)
_MOD = "[\U0001f3fb-\U0001f3ff]"
_EMOJI = re.compile(
    "[\U0001f1e6-\U0001f1ff]{2}|[#*0-9]\ufe0f?\u20e3"
    f"|(?:[\U0001f000-\U0001faff]\ufe0f?{_MOD}?|[{_SYM}](?:\ufe0f{_MOD}?|{_MOD}))[\U000e0020-\U000e007f]*"
    f"(?:\u200d(?:[\U0001f000-\U0001faff]|[{_SYM}])\ufe0f?{_MOD}?)*"
)


def weighted_length(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    url_at: dict[int, int] = {}
    for found in _URL.finditer(text):
        start, end = found.span()
        while end > start and (
            text[end - 1] in ".,:;!?'\"”’»"
            or (text[end - 1] == ")" and text[start:end].count(")") > text[start:end].count("("))
        ):
            end -= 1
        url_at[start] = end
    total, i = 0, 0
    while i < len(text):
        if i in url_at:
            total, i = total + 23, url_at[i]
            continue
        m = _EMOJI.match(text, i)
        if m:
            total, i = total + 2, m.end()
            continue
        cp = ord(text[i])
        total += 1 if any(lo <= cp <= hi for lo, hi in _LIGHT) else 2
        i += 1
    return total

"""Parse-mode handling like the Bot API's: formatted text -> (visible text, entities).

Telegram measures its limits on the *visible* text (after the markup is parsed) and refuses
markup it cannot parse with ``400 Bad Request: can't parse entities: ...``. This module does
the same for ``HTML`` and ``MarkdownV2``, strictly enough that unescaped user text such as
``*_[`` or ``<b`` is refused, as the real API refuses it. Offsets are UTF-16 code units.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any


class EntityParseError(ValueError):
    """The markup cannot be parsed (the real API answers 400 "can't parse entities")."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Parsed:
    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_HREF_RE = re.compile(r"""href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


def parse(text: str, parse_mode: str | None) -> Parsed:
    """Parse ``text`` in ``parse_mode`` (None, "HTML", "MarkdownV2"); raise EntityParseError."""
    if not parse_mode:
        return Parsed(text)
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        raise EntityParseError("legacy Markdown is not supported by this sandbox; use MarkdownV2")
    raise EntityParseError(f"unsupported parse_mode {parse_mode!r}")


def _entity(kind: str, start: int, end: int, url: str | None = None) -> dict[str, Any]:
    ent: dict[str, Any] = {"type": kind, "offset": start, "length": end - start}
    if url is not None:
        ent["url"] = url
    return ent


def parse_html(src: str) -> Parsed:
    out: list[str] = []
    pos = 0  # UTF-16 position in the visible text
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, str | None]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "<":
            j = src.find(">", i)
            if j < 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {i}")
            inner = src[i + 1 : j].strip()
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise EntityParseError(f'Unexpected end tag "{name}" at byte offset {i}')
                open_name, start, url = stack.pop()
                if open_name != name:
                    raise EntityParseError(
                        f'Unmatched end tag at byte offset {i}, expected "</{open_name}>", found "</{name}>"'
                    )
                if pos > start:
                    entities.append(_entity(HTML_TAGS[open_name], start, pos, url))
            else:
                name = inner.split(None, 1)[0].lower() if inner else ""
                if name not in HTML_TAGS:
                    raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {i}')
                url = None
                if name == "a":
                    m = _HREF_RE.search(inner)
                    if m is None:
                        raise EntityParseError(f"Tag <a> without href at byte offset {i}")
                    url = html.unescape(next(g for g in m.groups() if g is not None))
                stack.append((name, pos, url))
            i = j + 1
            continue
        if c == "&":
            m = _ENTITY_RE.match(src, i)
            if m is not None:
                decoded = html.unescape(m.group(0))
                out.append(decoded)
                pos += utf16_len(decoded)
                i = m.end()
                continue
        out.append(c)
        pos += utf16_len(c)
        i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return Parsed("".join(out), entities)


MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD_MARKERS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def parse_markdown_v2(src: str) -> Parsed:
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    open_marks: dict[str, int] = {}
    link_start: int | None = None
    i, n = 0, len(src)

    def emit(s: str) -> None:
        nonlocal pos
        out.append(s)
        pos += utf16_len(s)

    while i < n:
        c = src[i]
        if c == "\\":
            if i + 1 < n and ord(src[i + 1]) <= 126:
                emit(src[i + 1])
                i += 2
                continue
            emit(c)
            i += 1
            continue
        two = src[i : i + 2]
        marker = two if two in ("__", "||") else (c if c in ("*", "_", "~") else None)
        if marker is not None:
            if marker in open_marks:
                start = open_marks.pop(marker)
                if pos > start:
                    entities.append(_entity(_MD_MARKERS[marker], start, pos))
            else:
                open_marks[marker] = pos
            i += len(marker)
            continue
        if c == "`":
            fence = "```" if src.startswith("```", i) else "`"
            end = i + len(fence)
            body: list[str] = []
            while True:
                if end >= n:
                    raise EntityParseError(f"Can't find end of code entity at byte offset {i}")
                if src[end] == "\\" and end + 1 < n:
                    body.append(src[end + 1])
                    end += 2
                    continue
                if src.startswith(fence, end):
                    break
                body.append(src[end])
                end += 1
            start = pos
            emit("".join(body))
            entities.append(_entity("pre" if fence == "```" else "code", start, pos))
            i = end + len(fence)
            continue
        if c == "[":
            if link_start is not None:
                raise EntityParseError(
                    "Character '[' is reserved and must be escaped with the preceding '\\'"
                )
            link_start = pos
            i += 1
            continue
        if c == "]" and link_start is not None:
            if src[i + 1 : i + 2] != "(":
                raise EntityParseError(
                    "Character ']' is reserved and must be escaped with the preceding '\\'"
                )
            close = src.find(")", i + 2)
            if close < 0:
                raise EntityParseError(f"Can't find end of a URL at byte offset {i}")
            url = src[i + 2 : close].replace("\\)", ")").replace("\\\\", "\\")
            entities.append(_entity("text_link", link_start, pos, url))
            link_start = None
            i = close + 1
            continue
        if c == ">" and (i == 0 or src[i - 1] == "\n"):
            i += 1  # a blockquote line; the marker itself is not shown
            continue
        if c in MDV2_RESERVED:
            raise EntityParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        emit(c)
        i += 1
    if open_marks or link_start is not None:
        what = next(iter(open_marks), "[")
        raise EntityParseError(f"Can't find end of {_MD_MARKERS.get(what, 'text_link')} entity")
    return Parsed("".join(out), entities)

"""In-channel commands: parsing and permissions (pure; executed by :mod:`bot.community.stage`).

A command is a message whose text starts with a prefix (``/`` or ``!`` by default) and a known
command word: ``/join billing-app``, ``!away 3d``. Telegram's ``/join@yourbot`` form works too.
The same text works on every connector: Telegram bot commands, Discord prefix commands, and
X direct messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Who = Literal["anyone", "helper", "staff", "asker", "asker_or_staff"]
Caller = Literal["user", "helper", "staff"]


@dataclass(frozen=True)
class Spec:
    who: Who
    usage: str
    summary: str


COMMANDS: dict[str, Spec] = {
    "help": Spec("anyone", "help", "list the commands"),
    "join": Spec("anyone", "join [topic ...]", "become a community helper"),
    "leave": Spec("helper", "leave", "stop being a helper"),
    "topics": Spec("helper", "topics [topic ...]", "show or set the topics you help with"),
    "languages": Spec("helper", "languages [code ...]", "show or set the languages you read"),
    "hours": Spec("helper", "hours 09:00-17:00 [Europe/Berlin]", "your hours (and time zone); 'any' clears"),
    "away": Spec("helper", "away [duration]", "pause tagging (for a while, e.g. 3d)"),
    "back": Spec("helper", "back", "resume tagging"),
    "max": Spec("helper", "max <n>", "most open threads you want at once"),
    "stats": Spec("helper", "stats", "your points, rank and answers"),
    "claim": Spec("helper", "claim [thread]", "take a thread"),
    "decline": Spec("helper", "decline [thread]", "pass on a thread; someone else is tagged"),
    "kudos": Spec("anyone", "kudos @helper (or reply to their message)", "thank a helper"),
    "leaderboard": Spec("anyone", "leaderboard [week|month|all] [topic]", "top helpers"),
    "rate": Spec("asker", "rate <1-5>", "rate the help on your solved question"),
    "solved": Spec("asker_or_staff", "solved [thread]", "mark a thread solved"),
    "add": Spec("staff", "add @user [name] (or reply to them)", "make someone a helper"),
    "remove": Spec("staff", "remove <helper>", "remove a helper"),
    "reopen": Spec("staff", "reopen <thread>", "reopen a solved thread"),
    "retire": Spec("staff", "retire <entry id>", "take a knowledge entry out of auto-answers"),
}


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


_WORD = re.compile(r"^([A-Za-z]+)(?:@[A-Za-z0-9_]+)?$")


def parse(text: str, prefixes: Sequence[str] = ("/", "!")) -> Command | None:
    """A known command, or None (anything else goes through triage as usual)."""
    body = text.strip()
    for prefix in sorted(prefixes, key=len, reverse=True):
        if prefix and body.startswith(prefix):
            tail = body[len(prefix) :]
            rest = tail.split()
            if not rest or tail[0].isspace():
                return None
            m = _WORD.match(rest[0])
            if m is None:
                return None
            name = m.group(1).lower()
            if name not in COMMANDS:
                return None
            return Command(name, tuple(rest[1:]))
    return None


def refusal(name: str, caller: Caller, *, is_asker: bool) -> str | None:
    """None when ``caller`` may run ``name``; else the clear message to show them."""
    who = COMMANDS[name].who
    if who == "anyone":
        return None
    if who == "helper":
        return (
            None if caller in ("helper", "staff") else f"/{name} is for community helpers: send /join first."
        )
    if who == "staff":
        return None if caller == "staff" else f"Sorry, /{name} is for staff only."
    if who == "asker":
        return None if is_asker else f"Only the person who asked can use /{name} here."
    return None if is_asker or caller == "staff" else f"Only the person who asked (or staff) can use /{name}."


_DURATION = re.compile(r"^(\d+)\s*(m|min|h|d|w)$")


def parse_duration(text: str) -> timedelta | None:
    m = _DURATION.match(text.strip().lower())
    if m is None:
        return None
    n, unit = int(m.group(1)), m.group(2)
    return {
        "m": timedelta(minutes=n),
        "min": timedelta(minutes=n),
        "h": timedelta(hours=n),
        "d": timedelta(days=n),
        "w": timedelta(weeks=n),
    }[unit]


_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


def valid_hours(text: str) -> bool:
    return bool(_HOURS.match(text))


def thread_arg(args: Sequence[str]) -> int | None:
    for a in args:
        digits = a.lstrip("#")
        if digits.isdigit():
            return int(digits)
    return None


def help_text(caller: Caller) -> str:
    lines = ["Commands (start with / or !):"]
    for spec in COMMANDS.values():
        if spec.who == "staff" and caller != "staff":
            continue
        if spec.who == "helper" and caller == "user":
            continue
        lines.append(f"/{spec.usage} — {spec.summary}")
    return "\n".join(lines)

"""Sign-in for the dashboard: users from the environment, signed session cookies, CSRF.

Users come only from an environment variable (``web.users_env``, default
``UNSOURCE_WEB_USERS``): comma-separated ``name:role:hash`` entries where role is ``viewer``
or ``staff`` and hash is ``pbkdf2_sha256$<iterations>$<salt>$<digest>`` (make one with
``python -m bot.web.auth hash``). Plain-text passwords are refused.

The session is a cookie holding ``{user, role, expiry, csrf}`` signed with HMAC-SHA256 using
the key in ``web.secret_env`` (default ``UNSOURCE_WEB_SECRET``); without it, a random key is
made per process (a warning is logged; sessions end at restart). Every POST must carry the
session's CSRF token in a ``csrf`` form field or ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import logging
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("unsource.web")

Role = Literal["viewer", "staff"]
ROLES: tuple[Role, ...] = ("viewer", "staff")
SCHEME = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 600_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, iters, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iters))
        return hmac.compare_digest(got, _unb64(digest))
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    password_hash: str = field(repr=False)


def parse_users(value: str) -> tuple[dict[str, User], list[str]]:
    """``(users, problems)`` from the env value; bad entries are skipped and reported."""
    users: dict[str, User] = {}
    problems: list[str] = []
    for i, raw in enumerate(p.strip() for p in value.split(",")):
        if not raw:
            continue
        parts = raw.split(":")
        if len(parts) != 3:
            problems.append(f"entry {i + 1}: expected name:role:{SCHEME}$...")
            continue
        name, role, hashed = (p.strip() for p in parts)
        if role not in ROLES:
            problems.append(f"entry {i + 1} ({name}): role must be viewer or staff")
        elif not hashed.startswith(SCHEME + "$") or hashed.count("$") != 3:
            problems.append(f"entry {i + 1} ({name}): not a {SCHEME} hash (plain-text passwords are refused)")
        elif not name:
            problems.append(f"entry {i + 1}: empty name")
        else:
            users[name] = User(name, role, hashed)
    return users, problems


def load_users(env: Mapping[str, str], var: str) -> dict[str, User]:
    users, problems = parse_users(env.get(var, ""))
    for p in problems:
        log.error("%s: %s", var, p)
    if not users:
        log.warning("no dashboard users in %s: nobody can sign in", var)
    return users


def signing_key(env: Mapping[str, str], var: str) -> bytes:
    value = env.get(var, "")
    if len(value) >= 16:
        return value.encode()
    if value:
        log.warning("%s is shorter than 16 characters: using a random per-process key instead", var)
    else:
        log.warning("%s not set: using a random per-process key (sessions end at restart)", var)
    return secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    user: str | None = None
    role: Role | None = None
    expires: float = 0.0

    @property
    def signed_in(self) -> bool:
        return self.user is not None and self.expires > time.time()


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def dumps(self, s: Session) -> str:
        body = _b64(json.dumps({"c": s.csrf, "u": s.user, "r": s.role, "e": s.expires}).encode())
        return f"{body}.{_b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())}"

    def loads(self, token: str | None) -> Session | None:
        if not token or "." not in token:
            return None
        body, sig = token.rsplit(".", 1)
        good = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig, good):
            return None
        try:
            d = json.loads(_unb64(body))
            s = Session(csrf=str(d["c"]), user=d["u"], role=d["r"], expires=float(d["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if s.user is not None and s.expires <= time.time():
            return Session(csrf=s.csrf)  # expired: keep the CSRF token, drop the user
        return s


def new_session() -> Session:
    return Session(csrf=secrets.token_urlsafe(24))


class Throttle:
    """At most ``limit`` failed sign-ins per name per ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._fails: dict[str, list[float]] = {}

    def blocked(self, name: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._fails.get(name, []) if now - t < self.window]
        self._fails[name] = recent
        return len(recent) >= self.limit

    def failed(self, name: str) -> None:
        self._fails.setdefault(name, []).append(time.monotonic())

    def clear(self, name: str) -> None:
        self._fails.pop(name, None)


def main(argv: list[str]) -> int:
    """``python -m bot.web.auth hash``: read a password (twice) and print its hash."""
    if argv[:1] != ["hash"]:
        print("usage: python -m bot.web.auth hash", file=sys.stderr)
        return 2
    pw = getpass.getpass("password: ")
    if pw != getpass.getpass("again: "):
        print("passwords differ", file=sys.stderr)
        return 1
    if len(pw) < 10:
        print("use at least 10 characters", file=sys.stderr)
        return 1
    print(hash_password(pw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

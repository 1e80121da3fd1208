"""The one error tree of unsource.

Everything the bot raises on purpose derives from :class:`UnsourceError`. Connectors
translate their SDK's exceptions into the :class:`ConnectorError` branch at their edge;
nothing above ``connectors/`` catches an SDK exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class UnsourceError(Exception):
    """Base of every error unsource raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a configuration file, with where it is."""

    path: str  # dotted path with indexes, e.g. "sla.policies[2].first_response"
    message: str
    source: str | None = None  # file name
    line: int | None = None  # 1-based line in the file, when known

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = f"{self.source}:{self.line}" if self.line is not None else self.source
            where += " "
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigError(UnsourceError):
    """A configuration is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        count = len(self.problems)
        head = f"{count} configuration error{'s' if count != 1 else ''}"
        super().__init__(head + "".join(f"\n  {p}" for p in self.problems))


class StorageError(UnsourceError):
    """The database could not do what was asked (after its own retries)."""


class ConnectorError(UnsourceError):
    """Base of what a connector raises; the dispatcher picks a retry policy by subclass."""


class RateLimited(ConnectorError):
    """The platform asked us to wait. ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float, message: str = "rate limited", *, scope: str = "") -> None:
        self.retry_after = max(0.0, float(retry_after))
        self.scope = scope
        super().__init__(f"{message} (retry after {self.retry_after:.1f}s{', ' + scope if scope else ''})")


class TransientError(ConnectorError):
    """A temporary failure (network, 5xx, timeout): retry with backoff."""


class AuthError(ConnectorError):
    """Credentials are wrong or revoked: stop the connector and mark it unhealthy."""


class PermanentSendError(ConnectorError):
    """The platform refused this message for good (unknown chat, too long, not allowed)."""


class MalformedPayload(ConnectorError):
    """The platform sent something we cannot parse. The raw payload is kept for audit."""


class ConflictError(ConnectorError):
    """Another consumer holds the platform session (e.g. a second Telegram poller: 409)."""


class TriageError(UnsourceError):
    """A triage signal failed. Triage fails closed: the decision becomes 'needs a human'."""

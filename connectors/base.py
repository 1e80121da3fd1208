"""The connector contract.

A connector turns one platform into normalized :class:`~bot.models.InboundMessage` values
and sends :class:`~bot.models.OutboundMessage` values. It is either *pull* (the core calls
:meth:`PullConnector.fetch` with the stored cursor, on a schedule) or *push* (the core calls
:meth:`PushConnector.listen` once; the connector hands batches to a :class:`Sink`).

Rules every connector keeps (the shared contract suite checks them):

* Nothing is acknowledged to the platform before it is stored. A pull connector's cursor is
  returned with the messages and stored in the same transaction; a push connector awaits
  ``sink(messages, cursor)``, which returns only after the commit.
* Re-delivery is harmless: ``external_id`` is stable for the same platform event.
* ``send`` raises only the :mod:`bot.errors` connector tree (``RateLimited``,
  ``TransientError``, ``AuthError``, ``PermanentSendError``); SDK exceptions never leak.
* Platform ids are strings; datetimes are aware UTC.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from bot.models import (
    Capabilities,
    FetchResult,
    Health,
    HealthState,
    InboundMessage,
    OutboundMessage,
    SendReceipt,
)


class ConnectorSettings(BaseModel):
    """Base of every connector's typed settings model (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


SettingsT = TypeVar("SettingsT", bound=ConnectorSettings)

#: ``await sink(messages, cursor)`` stores the messages and the new cursor in one transaction
#: and returns only once they are committed. ``cursor=None`` leaves the stored cursor as is.
Sink = Callable[[Sequence[InboundMessage], str | None], Awaitable[None]]


@dataclass(frozen=True)
class ConnectorContext:
    """What the core gives a connector besides its settings."""

    data_dir: Path = Path("data")
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("unsource.connector"))


class Connector(abc.ABC, Generic[SettingsT]):
    """Base class. Subclass :class:`PullConnector` or :class:`PushConnector`."""

    #: registry name, e.g. "telegram"; also the ``type:`` in config.yaml
    name: ClassVar[str]
    #: the platform this connector speaks for (usually equal to ``name``)
    platform: ClassVar[str]
    settings_model: ClassVar[type[ConnectorSettings]]
    capabilities: ClassVar[Capabilities]

    def __init__(
        self, connector_id: str, settings: SettingsT, context: ConnectorContext | None = None
    ) -> None:
        self.id = connector_id
        self.settings = settings
        self.context = context or ConnectorContext()
        self.log = self.context.logger.getChild(connector_id)
        self._health = Health(state=HealthState.STARTING)

    async def start(self) -> None:
        """Open sessions / log in. Raise ``AuthError`` for bad credentials."""

    async def stop(self) -> None:
        """Release everything; called once, in reverse start order."""

    async def health(self) -> Health:
        return self._health

    def set_health(self, state: HealthState, detail: str = "", **metrics: float) -> None:
        self._health = Health(state=state, detail=detail, metrics=metrics)

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Send one message (splitting it if the platform needs), or raise the error tree."""


class PullConnector(Connector[SettingsT]):
    """A connector the core polls: ``fetch(cursor) -> FetchResult``."""

    #: seconds between polls when the connector gives no hint
    default_poll_interval: ClassVar[float] = 5.0

    @abc.abstractmethod
    async def fetch(self, cursor: str | None) -> FetchResult:
        """Return what arrived after ``cursor`` and the cursor after it. Must not move any
        platform-side acknowledgement: the core stores the result, then calls again."""


class PushConnector(Connector[SettingsT]):
    """A connector that receives events itself (gateway, webhook, long poll loop)."""

    @abc.abstractmethod
    async def listen(self, cursor: str | None, sink: Sink) -> None:
        """Run until cancelled, awaiting ``sink`` for every batch. On (re)connect, backfill
        from ``cursor`` (the last cursor this connector gave the sink) where the platform
        allows it."""


AnyConnector = Connector[ConnectorSettings]

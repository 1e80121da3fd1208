"""Connector registry: built-ins registered explicitly, third parties by entry point.

A third-party package exposes a connector class in its ``pyproject.toml``::

    [project.entry-points."unsource.connectors"]
    mastodon = "unsource_mastodon:MastodonConnector"
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from bot.errors import UnsourceError
from connectors.base import Connector, ConnectorSettings

log = logging.getLogger("unsource.connectors")

ENTRY_POINT_GROUP = "unsource.connectors"

# name -> "module:Class"; imported lazily so that a missing optional SDK only breaks its own connector
_BUILTINS: dict[str, str] = {
    "jsonl": "connectors.jsonl:JsonlConnector",
    "telegram": "connectors.telegram:TelegramConnector",
    "discord": "connectors.discord:DiscordConnector",
    "twitter": "connectors.twitter:TwitterConnector",
}

_registered: dict[str, type[Connector[ConnectorSettings]]] = {}


class UnknownConnector(UnsourceError):
    pass


def register(cls: type[Connector[ConnectorSettings]]) -> type[Connector[ConnectorSettings]]:
    """Register a connector class under ``cls.name`` (usable as a decorator)."""
    _registered[cls.name] = cls
    return cls


def _load(ref: str) -> type[Connector[ConnectorSettings]]:
    module_name, _, attr = ref.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise UnknownConnector(f"{ref} is not a Connector subclass")
    return cls


def available() -> list[str]:
    names = set(_BUILTINS) | set(_registered)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def get(name: str) -> type[Connector[ConnectorSettings]]:
    """The connector class registered as ``name``."""
    if name in _registered:
        return _registered[name]
    if name in _BUILTINS:
        try:
            cls = _load(_BUILTINS[name])
        except (ImportError, AttributeError) as exc:
            raise UnknownConnector(f"connector {name!r} cannot be loaded here ({exc})") from exc
        _registered[name] = cls
        return cls
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Connector)):
                raise UnknownConnector(f"entry point {ep.value} is not a Connector subclass")
            _registered[name] = cls
            return cls
    raise UnknownConnector(f"unknown connector type {name!r}; known: {', '.join(available())}")

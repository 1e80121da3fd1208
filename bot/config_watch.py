"""Hot reload: a valid new config.yaml is swapped in atomically; an invalid one is rejected
with its errors logged, and the running config stays."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from bot.errors import ConfigError
from bot.settings import Config, load_config

log = logging.getLogger("unsource.config")


def secrets_of(config: Config) -> list[str]:
    """Every SecretStr value in the enabled connectors' settings (for log scrubbing)."""
    out: list[str] = []
    for c in config.connectors:
        if c.settings is None:
            continue
        for value in c.settings.__dict__.values():
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
    return out


class ConfigHolder:
    def __init__(self, config: Config) -> None:
        self._current = config
        self.last_error: ConfigError | None = None
        self.reloads = 0
        self.listeners: list[Callable[[Config, Config], None]] = []

    @property
    def current(self) -> Config:
        return self._current

    def reload(self) -> bool:
        path = self._current.source
        if path is None:
            return False
        try:
            new = load_config(path)
        except ConfigError as exc:
            self.last_error = exc
            log.error("config reload rejected; still running the previous config:\n%s", exc)
            return False
        old, self._current = self._current, new  # one assignment: readers see old or new, never half
        self.last_error = None
        self.reloads += 1
        changed = {c.id for c in old.connectors} ^ {c.id for c in new.connectors} or any(
            a != b for a, b in zip(old.connectors, new.connectors, strict=False)
        )
        if changed:
            log.warning("connector changes in %s take effect after a restart", path)
        if old.settings.storage != new.settings.storage:
            log.warning("storage changes in %s take effect after a restart", path)
        log.info("config reloaded from %s", path)
        for fn in self.listeners:
            fn(old, new)
        return True

    async def watch(self, stop: asyncio.Event | None = None) -> None:
        """Reload when the file changes (watchfiles), until cancelled."""
        from watchfiles import awatch

        path = self._current.source
        if path is None:
            return
        directory = path.absolute().parent
        # editors often write a new file and rename it over the old one: match by name
        async for changes in awatch(directory, stop_event=stop, debounce=300, recursive=False):
            if any(Path(p).name == path.name for _, p in changes):
                self.reload()

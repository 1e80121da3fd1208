"""Named, supervised tasks with graceful shutdown in reverse start order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("unsource.supervisor")


@dataclass
class _Entry:
    name: str
    factory: Callable[[], Awaitable[None]]
    restart: bool
    task: asyncio.Task[None] | None = None


class Supervisor:
    """Starts coroutines as named tasks; restarts crashed ones (with backoff) if asked;
    ``stop()`` cancels them in reverse start order and waits for each."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._stopping = False
        self.failures: dict[str, int] = {}

    def start(self, name: str, factory: Callable[[], Awaitable[None]], *, restart: bool = True) -> None:
        entry = _Entry(name, factory, restart)
        self._entries.append(entry)
        entry.task = asyncio.create_task(self._run(entry), name=name)

    async def _run(self, entry: _Entry) -> None:
        delay = 0.5
        while True:
            try:
                await entry.factory()
                if not entry.restart or self._stopping:
                    return
                log.warning("task %s returned; restarting", entry.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures[entry.name] = self.failures.get(entry.name, 0) + 1
                log.exception("task %s crashed", entry.name)
                if not entry.restart or self._stopping:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    def begin_stop(self) -> None:
        """From now on, tasks that return are not restarted."""
        self._stopping = True

    async def join(self, names: list[str], timeout: float) -> None:
        """Wait up to ``timeout`` for the named tasks to return by themselves."""
        tasks = [
            e.task for e in self._entries if e.name in names and e.task is not None and not e.task.done()
        ]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning(
                    "still running after %.0fs: %s", timeout, ", ".join(t.get_name() for t in pending)
                )

    def names(self) -> list[str]:
        return [e.name for e in self._entries if e.task is not None and not e.task.done()]

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        for entry in reversed(self._entries):
            if entry.task is None or entry.task.done():
                continue
            entry.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(entry.task, timeout)
            log.info("stopped %s", entry.name)

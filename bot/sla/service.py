"""The SLA job each scheduling process runs: sweep due stages, send webhook/e-mail deliveries,
and wake up again at the next due time (never later than ``sla.sweep_interval``).

APScheduler 3.11 holds only this interval job, in memory, with ``misfire_grace_time=None``:
deadlines live in the database, so a missed run loses nothing (the next sweep finds every
stage that is due, however late) and several processes never share a job store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config_watch import ConfigHolder
from bot.models import utcnow
from bot.settings import Config
from bot.sla.deliver import DeliveryResult, deliver_due
from bot.sla.sweep import SlaRuntime, SweepResult, sweep

log = logging.getLogger("unsource.sla")

JOB_ID = "sla:sweep"
MIN_GAP = timedelta(milliseconds=50)


class SlaService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: ConfigHolder | Callable[[], Config],
        instance: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        if isinstance(config, ConfigHolder):
            holder = config
            self._get: Callable[[], Config] = lambda: holder.current
        else:
            self._get = config
        self.instance = instance
        self.clock = clock
        self._rt: SlaRuntime | None = None
        self._rt_for: Config | None = None
        self._http: aiohttp.ClientSession | None = None
        self.last: SweepResult | None = None
        self.total_fired = 0

    def runtime(self) -> SlaRuntime:
        config = self._get()
        if self._rt is None or self._rt_for is not config:
            self._rt = SlaRuntime.from_config(config)
            self._rt_for = config
        return self._rt

    async def tick(self) -> SweepResult:
        rt = self.runtime()
        result = await sweep(self.sessions, rt, f"{self.instance}:sla", clock=self.clock)
        self.last = result
        self.total_fired += result.fired
        if result.fired or result.cancelled:
            late = max(result.lateness, default=0.0)
            log.info(
                "sla sweep",
                extra={"fired": result.fired, "cancelled": result.cancelled, "max_late_s": round(late, 3)},
            )
        if result.external or rt.settings.targets:
            await self.deliver()
        return result

    async def deliver(self) -> DeliveryResult:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return await deliver_due(self.sessions, self.runtime().settings, f"{self.instance}:sla", self._http)

    async def run_job(self, scheduler: BaseScheduler, job_id: str = JOB_ID) -> None:
        """One scheduled run; then bring the job forward to the next due stage if that is sooner."""
        try:
            result = await self.tick()
        except asyncio.CancelledError:  # shutdown: the transaction rolled back, nothing is lost
            log.debug("sla sweep cancelled by shutdown")
            return
        except Exception:
            log.exception("sla sweep failed (retried at the next run)")
            return
        job = scheduler.get_job(job_id)
        if job is None or result.next_due is None or job.next_run_time is None:
            return
        at = max(result.next_due, self.clock() + MIN_GAP)
        if at < job.next_run_time:
            job.modify(next_run_time=at)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

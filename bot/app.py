"""Wiring: the one place that puts connectors, storage, pipeline, triage and scheduler together.

Roles (``unsource run --role``): ``ingest`` runs the connectors (listen/poll) and the
dispatcher (sending needs the connectors' sessions); ``worker`` runs triage workers;
``scheduler`` runs the periodic sweeps; ``all`` runs everything in one process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.community.stage import build_env as build_community_env
from bot.config_watch import ConfigHolder, secrets_of
from bot.errors import AuthError, ConnectorError
from bot.knowledge import KnowledgeService
from bot.logging_setup import SCRUBBER
from bot.models import HealthState
from bot.pipeline.dispatcher import Dispatcher, RetryPolicy
from bot.pipeline.ingest import Ingestor
from bot.pipeline.roles import Directory
from bot.pipeline.triage_stage import ProductTriager, RuleTriager, Triager
from bot.pipeline.worker import Worker, WorkerEnv
from bot.settings import Config
from bot.sla.policy import Planner
from bot.sla.service import JOB_ID as SLA_JOB
from bot.sla.service import SlaService
from bot.storage import migrate, outbox, work
from bot.storage.engine import create_engine, session_factory
from bot.supervisor import Supervisor
from connectors.base import AnyConnector, ConnectorContext, PullConnector, PushConnector
from triage.embedder import set_shared_threads

log = logging.getLogger("unsource.app")

Role = Literal["all", "ingest", "worker", "scheduler"]

#: how long shutdown waits for running jobs, workers and sends to finish before cancelling them
SHUTDOWN_GRACE_S = 10.0
TRIAGE_SWITCH_INTERVAL_S = 0.001  # see App.run
ROLLUP_INTERVAL_S = 600.0  # the dashboard's first 30-day view of a day reads stored figures


def build_worker_env(config: Config, triager: Triager | None = None) -> WorkerEnv:
    s = config.settings
    return WorkerEnv(
        triager=triager or RuleTriager(),
        directory=Directory(tuple(s.helpers)),
        staff_connector=s.staff.connector,
        staff_conversation=s.staff.conversation,
        sla=Planner(s.sla),
        community=build_community_env(config, triager),  # helpers, commands, points (bot/community)
    )


@dataclass
class App:
    holder: ConfigHolder
    role: Role = "all"
    upgrade: bool | None = None  # None: follow storage.auto_upgrade
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    triager_factory: Callable[[Config], Triager] | None = None

    def __post_init__(self) -> None:
        self.connectors: dict[str, AnyConnector] = {}
        self.workers: list[Worker] = []
        self.dispatcher: Dispatcher | None = None
        self.ingestor: Ingestor | None = None
        self.supervisor = Supervisor()
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
        self.ready = asyncio.Event()
        self._env: WorkerEnv | None = None
        self._jobs: set[asyncio.Task[None]] = set()  # scheduler jobs running now (awaited at shutdown)
        self._stopping = False
        self.sla: SlaService | None = None  # the SLA sweep, in scheduling roles (bot/sla)
        self.knowledge: KnowledgeService | None = None
        #: extra ASGI routes the dashboard's server also serves (platform webhooks mount here)
        self.web_routes: list[Any] = []
        self.web: Any = None  # bot.web.server.WebServer when the dashboard runs in this process
        self.holder.listeners.append(lambda _old, new: self._on_reload(new))

    def _triager(self, config: Config) -> Triager:
        if self.triager_factory is not None:
            return self.triager_factory(config)
        if config.settings.pipeline.triage == "rules" or self.knowledge is None:
            return RuleTriager()
        kb = self.knowledge
        return ProductTriager(config.settings.triage, lambda: kb.index)

    def _on_reload(self, config: Config) -> None:
        SCRUBBER.update(secrets_of(config))
        self._env = build_worker_env(config, self._triager(config))

    def env(self) -> WorkerEnv:
        assert self._env is not None
        return self._env

    async def run(self, stop: asyncio.Event) -> None:
        config = self.holder.current
        s = config.settings
        url = s.storage.url
        if self.upgrade if self.upgrade is not None else s.storage.auto_upgrade:
            await migrate.upgrade(url)
        engine = create_engine(
            url, pool_size=s.storage.pool_size, busy_timeout_s=s.storage.busy_timeout.total_seconds()
        )
        sessions = session_factory(engine)
        if self.role in ("all", "worker") and s.pipeline.triage == "product":
            # Triage runs in a thread beside a busy event loop and takes the GIL back after every
            # model and numpy call; with the default 5 ms switch interval each take waits for the
            # loop's slice, stretching a ~7 ms decision to ~30 ms at 50 questions/s (bench/e2e.py).
            sys.setswitchinterval(TRIAGE_SWITCH_INTERVAL_S)
            set_shared_threads(1)  # see triage.embedder.set_shared_threads
            self.knowledge = KnowledgeService(sessions, s.data_dir / "kb-index")
            await self.knowledge.open()
            self.scheduler.add_job(
                self._knowledge_job,
                "interval",
                seconds=s.pipeline.knowledge_refresh.total_seconds(),
                id="knowledge-refresh",
                misfire_grace_time=None,
            )
        self._on_reload(config)
        started: list[AnyConnector] = []
        try:
            if self.role in ("all", "worker"):
                for i in range(s.pipeline.workers):
                    w = Worker(
                        f"{self.instance}:w{i}",
                        sessions,
                        self.env,
                        batch=s.pipeline.claim_batch,
                        lease=s.pipeline.lease,
                        idle=s.pipeline.idle_poll.total_seconds(),
                    )
                    self.workers.append(w)
            if self.role in ("all", "ingest"):
                self.ingestor = Ingestor(sessions, on_stored=self._wake_workers)
                for cc in config.enabled_connectors:
                    assert cc.cls is not None and cc.settings is not None
                    connector = cc.cls(cc.id, cc.settings, ConnectorContext(data_dir=s.data_dir))
                    try:
                        await connector.start()
                    except AuthError as exc:
                        connector.set_health(HealthState.DOWN, f"authentication failed: {exc}")
                        log.error("connector %s: authentication failed at start: %s", cc.id, exc)
                    except ConnectorError as exc:
                        connector.set_health(HealthState.DOWN, str(exc))
                        log.error("connector %s failed to start: %s", cc.id, exc)
                    started.append(connector)
                    self.connectors[cc.id] = connector
                d = s.dispatcher
                self.dispatcher = Dispatcher(
                    f"{self.instance}:dispatch",
                    sessions,
                    self.connectors,
                    policy=RetryPolicy(d.max_attempts, d.backoff_base, d.backoff_cap),
                    concurrency=d.concurrency,
                    idle=d.idle_poll.total_seconds(),
                )
                await self.dispatcher.recover(older_than=timedelta(0))
                for w in self.workers:
                    w.on_planned = self.dispatcher.wake
                for cid, connector in self.connectors.items():
                    if isinstance(connector, PushConnector):
                        self.supervisor.start(f"listen:{cid}", partial(self.ingestor.listen, connector))
                    elif isinstance(connector, PullConnector):
                        self.scheduler.add_job(
                            self._poll_job,
                            "interval",
                            seconds=60,
                            args=[cid],
                            id=f"poll:{cid}",
                            next_run_time=datetime.now(UTC),
                            misfire_grace_time=None,
                        )
                self.supervisor.start("dispatcher", self.dispatcher.run)
                if s.web.enabled:  # the dashboard (bot/web, docs/dashboard.md)
                    from bot.web.server import start_web

                    self.web = start_web(self, sessions)
            for i, w in enumerate(self.workers):
                self.supervisor.start(f"worker:{i}", w.run)
            if self.role in ("all", "scheduler"):
                self.scheduler.add_job(
                    self._report_job, "interval", seconds=60, args=[], id="report", misfire_grace_time=None
                )
                self._sessions = sessions
                # SLA: deadlines live in the database; every scheduling process sweeps (bot/sla)
                self.sla = SlaService(sessions, self.holder, self.instance)
                self.scheduler.add_job(
                    self._sla_job,
                    "interval",
                    seconds=s.sla.sweep_interval.total_seconds(),
                    id=SLA_JOB,
                    next_run_time=datetime.now(UTC),
                    misfire_grace_time=None,
                )
                if s.web.enabled:  # keep the overview's daily roll-ups warm (bot/analytics/rollup.py)
                    self.scheduler.add_job(
                        self._rollup_job,
                        "interval",
                        seconds=ROLLUP_INTERVAL_S,
                        id="overview-rollups",
                        next_run_time=datetime.now(UTC) + timedelta(seconds=30),
                        misfire_grace_time=None,
                    )
                if s.web.trends.alert:  # trend spikes to the staff channel (bot/analytics/alerts.py)
                    self.scheduler.add_job(
                        self._trends_job,
                        "interval",
                        seconds=s.web.trends.interval.total_seconds(),
                        id="trend-alerts",
                        misfire_grace_time=None,
                    )
            if config.source is not None:
                self.supervisor.start("config-watch", self.holder.watch)
            self.scheduler.start()
            log.info(
                "unsource running",
                extra={
                    "role": self.role,
                    "instance": self.instance,
                    "connectors": ",".join(self.connectors) or "-",
                },
            )
            # What start-up loaded (the model, the knowledge index, the SDKs, the config) lives
            # as long as the process: out of the cyclic collector's sight, its full passes stop
            # stalling the event loop ~0.2 s every ~20 s at 50 questions/s (bench/e2e.py).
            # Refcounting still frees anything of it that is dropped later.
            gc.freeze()
            self.ready.set()
            await stop.wait()
        finally:
            log.info("shutting down")
            self._stopping = True
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            # let running jobs finish their transaction; cancel only what overstays
            if self._jobs:
                _, overstaying = await asyncio.wait(set(self._jobs), timeout=SHUTDOWN_GRACE_S)
                for job in overstaying:
                    job.cancel()
                await asyncio.gather(*overstaying, return_exceptions=True)
            # workers finish their batch, the dispatcher its current sends; the rest is cancelled
            self.supervisor.begin_stop()
            for w in self.workers:
                w.request_stop()
            if self.dispatcher is not None:
                self.dispatcher.request_stop()
            await self.supervisor.join(
                [f"worker:{i}" for i in range(len(self.workers))] + ["dispatcher"], SHUTDOWN_GRACE_S
            )
            await self.supervisor.stop()
            if self.sla is not None:
                await self.sla.close()
            for connector in reversed(started):
                try:
                    await connector.stop()
                except Exception:
                    log.exception("connector %s failed to stop cleanly", connector.id)
            await engine.dispose()
            log.info("stopped")

    def _wake_workers(self) -> None:
        for w in self.workers:
            w.wake()

    async def _tracked(self, coro: Coroutine[Any, Any, object]) -> None:
        """Run a scheduler job so that shutdown can cancel and await it before the engine goes."""
        if self._stopping:
            coro.close()  # shutting down: the job does not start
            return
        task = asyncio.current_task()
        assert task is not None
        self._jobs.add(task)
        try:
            await coro
        finally:
            self._jobs.discard(task)

    async def _poll_job(self, connector_id: str) -> None:
        connector = self.connectors.get(connector_id)
        if not isinstance(connector, PullConnector) or self.ingestor is None:
            return
        ingestor = self.ingestor

        async def poll() -> None:
            next_after = await ingestor.poll_once(connector)
            job = self.scheduler.get_job(f"poll:{connector_id}")
            if job is not None and not self._stopping:
                job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=next_after))

        await self._tracked(poll())

    async def _knowledge_job(self) -> None:
        if self.knowledge is not None:
            await self._tracked(self.knowledge.refresh())

    async def _rollup_job(self) -> None:
        from bot.analytics.rollup import warm

        await self._tracked(warm(self._sessions, self.holder.current.settings))

    async def _trends_job(self) -> None:
        from bot.analytics.alerts import post_spike_alerts

        await self._tracked(post_spike_alerts(self._sessions, self.holder.current.settings))

    async def _sla_job(self) -> None:
        if self.sla is not None:
            await self._tracked(self.sla.run_job(self.scheduler))

    async def _report_job(self) -> None:
        async with self._sessions() as s:
            w = await work.counts(s)
            o = await outbox.counts(s)
        log.info("queue", extra={"work": w, "outbox": o})


def install_signal_handlers(stop: asyncio.Event, holder: ConfigHolder) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, holder.reload)

"""The dashboard as a Starlette app: server-rendered pages, a little JS, inline SVG charts.

``create_app(holder, sessions, runtime=..., env=...)`` builds it for a given configuration and
database, so tests run it in process (httpx) or under uvicorn (Playwright). In the bot it is
started by :func:`bot.web.server.start_web` in roles ``all`` and ``ingest``.

Platform webhooks mount here too: pass them as ``extra_routes`` (the App's ``web_routes``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlparse

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.analytics import queries
from bot.analytics.stats import OUTCOMES, human_duration
from bot.analytics.trends import load_trends
from bot.config_types import parse_duration
from bot.config_watch import ConfigHolder
from bot.models import HealthState, ThreadState, utcnow
from bot.settings import redact_url
from bot.web import charts, data
from bot.web.auth import Session, Signer, Throttle, load_users, new_session, signing_key, verify_password
from bot.web.mask import mask_text, pseudonym
from bot.web.metrics import render_metrics

log = logging.getLogger("unsource.web")

HERE = Path(__file__).parent
COOKIE = "unsource_session"
Handler = Callable[[Request], Awaitable[Response]]


class Runtime(Protocol):
    """What the dashboard reads from a running App (health, metrics)."""

    @property
    def connectors(self) -> Mapping[str, Any]: ...

    @property
    def scheduler(self) -> Any: ...


@dataclass
class Web:
    holder: ConfigHolder
    sessions: async_sessionmaker[AsyncSession]
    runtime: Runtime | None
    env: Mapping[str, str]
    signer: Signer = field(init=False)
    users: dict[str, Any] = field(init=False)
    throttle: Throttle = field(default_factory=Throttle)
    started_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        w = self.holder.current.settings.web
        self.users = load_users(self.env, w.users_env)
        self.signer = Signer(signing_key(self.env, w.secret_env))
        self.jinja = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
        )
        self.jinja.filters.update(ago=ago, dur=human_duration, countdown=countdown, pct=pct, ts=ts)

    @property
    def settings(self) -> Any:
        return self.holder.current.settings


# ------------------------------------------------------------------ formatting


def ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def ago(value: datetime | None) -> str:
    if value is None:
        return "-"
    return human_duration((utcnow() - value).total_seconds()) + " ago"


def countdown(value: datetime | None) -> str:
    if value is None:
        return "-"
    left = (value - utcnow()).total_seconds()
    return f"in {human_duration(left)}" if left >= 0 else f"overdue {human_duration(-left)}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


# ------------------------------------------------------------------ sessions, auth, CSRF


def current_session(web: Web, request: Request) -> tuple[Session, bool]:
    s = web.signer.loads(request.cookies.get(COOKIE))
    return (s, False) if s is not None else (new_session(), True)


def set_session(web: Web, response: Response, s: Session) -> None:
    response.set_cookie(
        COOKIE,
        web.signer.dumps(s),
        max_age=int(web.settings.web.session_ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=web.settings.web.secure_cookies,
        path="/",
    )


def render(web: Web, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    s, fresh = current_session(web, request)
    body = web.jinja.get_template(name).render(
        request=request,
        user=s.user if s.signed_in else None,
        role=s.role if s.signed_in else None,
        staff=s.signed_in and s.role == "staff",
        csrf=s.csrf,
        path=request.url.path,
        **ctx,
    )
    resp = HTMLResponse(body, status_code=status)
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    if fresh:
        set_session(web, resp, s)
    return resp


def _origin_ok(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlparse(origin).netloc == request.headers.get("host", "")


async def csrf_ok(web: Web, request: Request, s: Session) -> bool:
    if not _origin_ok(request):
        return False
    token = request.headers.get("x-csrf-token")
    if token is None:
        form = await request.form()
        value = form.get("csrf")
        token = value if isinstance(value, str) else None
    import hmac

    return token is not None and hmac.compare_digest(token, s.csrf)


def page(web: Web, role: str = "viewer") -> Callable[[Handler], Handler]:
    """Require a signed-in user with ``role`` (staff > viewer); POSTs also need the CSRF token."""

    def wrap(fn: Handler) -> Handler:
        async def handler(request: Request) -> Response:
            s, _ = current_session(web, request)
            if request.method == "POST" and not await csrf_ok(web, request, s):
                return render(
                    web, request, "error.html", 403, title="Refused", message="Invalid or missing CSRF token."
                )
            if not s.signed_in:
                if request.method == "GET":
                    return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
                return render(
                    web, request, "error.html", 401, title="Sign in", message="Please sign in first."
                )
            if role == "staff" and s.role != "staff":
                return render(
                    web,
                    request,
                    "error.html",
                    403,
                    title="Staff only",
                    message="This action needs the staff role.",
                )
            request.state.session = s
            return await fn(request)

        return handler

    return wrap


def is_staff(request: Request) -> bool:
    s: Session = request.state.session
    return s.role == "staff"


def actor(request: Request) -> str:
    s: Session = request.state.session
    return s.user or "?"


# ------------------------------------------------------------------ the app


def create_app(
    holder: ConfigHolder,
    sessions: async_sessionmaker[AsyncSession],
    *,
    runtime: Runtime | None = None,
    env: Mapping[str, str] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    web = Web(holder, sessions, runtime, dict(os.environ) if env is None else env)

    def shown(request: Request, text_: str | None) -> str:
        """Message text as this user may see it (viewers: personal data masked)."""
        if is_staff(request):
            return text_ or ""
        return mask_text(text_ or "", web.settings.triage.pii_patterns)

    def who(request: Request, author_id: str | None, handle: str | None, connector: str) -> str:
        for h in web.settings.helpers:
            if author_id is not None and h.identities.get(connector) == author_id:
                return f"{h.name} ({h.role})"
        if is_staff(request):
            return f"@{handle}" if handle else str(author_id)
        return pseudonym("user", f"{connector}:{author_id}")

    def since_of(request: Request, default: str = "7d") -> tuple[timedelta, str]:
        raw = request.query_params.get("since", default)
        try:
            span = parse_duration(raw)
        except (ValueError, TypeError):
            span, raw = parse_duration(default), default
        return min(max(span, timedelta(hours=1)), timedelta(days=400)), raw

    # ---------------------------------------------------------- sign-in

    async def login_form(request: Request) -> Response:
        return render(web, request, "login.html", next=request.query_params.get("next", "/"), error=None)

    async def login(request: Request) -> Response:
        s, _ = current_session(web, request)
        if not await csrf_ok(web, request, s):
            return render(
                web, request, "error.html", 403, title="Refused", message="Invalid or missing CSRF token."
            )
        form = await request.form()
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        nxt = str(form.get("next", "/"))
        if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:  # no open redirect
            nxt = "/"
        user = web.users.get(name)
        if web.throttle.blocked(name):
            return render(
                web, request, "login.html", 429, next=nxt, error="Too many attempts; try again later."
            )
        import asyncio

        good = user is not None and await asyncio.to_thread(verify_password, password, user.password_hash)
        if not good or user is None:
            web.throttle.failed(name)
            log.warning("dashboard sign-in failed for %r", name)
            return render(web, request, "login.html", 401, next=nxt, error="Wrong name or password.")
        web.throttle.clear(name)
        fresh = new_session()  # a new CSRF token at sign-in (no fixation)
        signed = Session(
            csrf=fresh.csrf,
            user=user.name,
            role=user.role,
            expires=time.time() + web.settings.web.session_ttl.total_seconds(),
        )
        resp = RedirectResponse(nxt, 303)
        set_session(web, resp, signed)
        log.info("dashboard sign-in: %s (%s)", user.name, user.role)
        return resp

    async def logout(request: Request) -> Response:
        s, _ = current_session(web, request)
        if not await csrf_ok(web, request, s):
            return render(
                web, request, "error.html", 403, title="Refused", message="Invalid or missing CSRF token."
            )
        resp = RedirectResponse("/login", 303)
        set_session(web, resp, new_session())
        return resp

    # ---------------------------------------------------------- pages

    @page(web)
    async def overview(request: Request) -> Response:
        span, raw = since_of(request)
        now = utcnow()
        async with web.sessions() as s:
            ov = await queries.load_overview(s, web.settings, now - span, now)
        shares: dict[str, float] = {o: ov.deflection.share(o) for o in OUTCOMES}
        return render(
            web,
            request,
            "overview.html",
            ov=ov,
            since=raw,
            shares=shares,
            volume_svg=Markup(charts.stacked_bars(ov.buckets, ov.volume, title="questions per platform")),
            share_svg=Markup(charts.share_bar(shares)),
        )

    def queue_filter(request: Request) -> data.QueueFilter:
        q = request.query_params
        return data.QueueFilter(
            platform=q.get("platform") or None,
            state=q.get("state") or None,
            topic=q.get("topic") or None,
            priority=q.get("priority") or None,
            show_snoozed=q.get("snoozed") == "1",
        )

    options: dict[str, Any] = {"at": -1e9, "value": ([], [])}

    async def load_queue(request: Request) -> data.Queue:
        async with web.sessions() as s:
            q = await data.queue(s, web.settings, queue_filter(request), utcnow())
            if time.monotonic() - options["at"] > 60:  # filter choices: refreshed once a minute
                options["value"], options["at"] = await data.filter_options(s), time.monotonic()
        q.platforms, q.topics = options["value"]
        return q

    def queue_ctx(request: Request, q: data.Queue) -> dict[str, Any]:
        rows = [
            {
                "r": r,
                "asker": who(request, r.asker_id, r.asker, r.connector_id),
                "preview": (
                    shown(request, r.text) if is_staff(request) else shown(request, r.redacted or r.text)
                )[:140],
                "overdue": r.sla_due is not None and r.sla_due < utcnow(),
            }
            for r in q.rows
        ]
        return {
            "q": q,
            "rows": rows,
            "f": queue_filter(request),
            "states": queries.OPEN_STATES,
            "refresh_ms": int(web.settings.web.queue_refresh.total_seconds() * 1000),
        }

    @page(web)
    async def queue_page(request: Request) -> Response:
        q = await load_queue(request)
        return render(web, request, "queue.html", **queue_ctx(request, q))

    @page(web)
    async def queue_rows(request: Request) -> Response:
        q = await load_queue(request)
        resp = render(web, request, "queue_rows.html", **queue_ctx(request, q))
        resp.headers["X-Queue-Total"] = str(q.total)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @page(web)
    async def thread_page(request: Request) -> Response:
        tid = int(request.path_params["tid"])
        async with web.sessions() as s:
            d = await data.thread_detail(s, tid)
        if d is None:
            return render(web, request, "error.html", 404, title="Not found", message=f"No thread {tid}.")
        t = d.thread
        messages = [
            {
                "m": m,
                "who": who(request, m.author_id, m.author_handle, m.connector_id),
                "text": shown(request, m.text),
            }
            for m in d.messages
        ]
        decisions = [
            {
                "d": dec,
                "p": dec.payload or {},
                "text": shown(request, (dec.payload or {}).get("redacted_text", "")),
            }
            for dec in d.decisions
        ]
        sends = [
            {"o": o, "text": shown(request, (o.payload or {}).get("text", "")), "p": o.payload or {}}
            for o in d.outbox
        ]
        return render(
            web,
            request,
            "thread.html",
            t=t,
            asker=who(request, t.asker_id, t.asker_handle, t.connector_id),
            messages=messages,
            decisions=decisions,
            sends=sends,
            actions=d.actions,
            stages=d.sla_stages,
            sla_thread=d.sla_thread,
            helpers=[h for h in web.settings.helpers if t.connector_id in h.identities],
            nonce=data.new_nonce(),
            has_sla=d.sla_stages is not None,
            notice=request.query_params.get("done"),
        )

    @page(web, "staff")
    async def thread_action(request: Request) -> Response:
        tid = int(request.path_params["tid"])
        action = request.path_params["action"]
        form = await request.form()
        ok: bool | str | None = False
        async with web.sessions() as s, s.begin():
            if action == "solve":
                ok = await data.set_state(s, tid, ThreadState.SOLVED, actor(request))
            elif action == "reopen":
                ok = await data.set_state(s, tid, ThreadState.REOPENED, actor(request))
            elif action == "snooze":
                try:
                    span = parse_duration(str(form.get("for", "1h")))
                except (ValueError, TypeError):
                    span = timedelta(hours=1)
                ok = await data.snooze(s, tid, utcnow() + span, actor(request))
            elif action == "reassign":
                name = str(form.get("helper", ""))
                helper = next((h for h in web.settings.helpers if h.name == name), None)
                if helper is not None:
                    ok = await data.reassign(
                        s, tid, helper, actor(request), str(form.get("nonce") or data.new_nonce())
                    )
            elif action == "reply":
                body = str(form.get("text", "")).strip()
                if body:
                    ok = await data.reply(
                        s, tid, body[:4000], actor(request), str(form.get("nonce") or data.new_nonce())
                    )
            else:
                return render(web, request, "error.html", 404, title="Not found", message="Unknown action.")
        if not ok:
            return render(
                web,
                request,
                "error.html",
                409,
                title="Not done",
                message=f"Could not {action} thread {tid} here.",
            )
        return RedirectResponse(f"/thread/{tid}?done={action}", 303)

    @page(web)
    async def helpers_page(request: Request) -> Response:
        span, raw = since_of(request, "7d")
        now = utcnow()
        async with web.sessions() as s:
            stats = await data.helpers(s, web.settings, now - span, now)
        return render(web, request, "helpers.html", helpers=stats, since=raw)

    @page(web)
    async def knowledge_page(request: Request) -> Response:
        async with web.sessions() as s:
            entries = await data.knowledge(s)
        return render(
            web,
            request,
            "knowledge.html",
            entries=entries,
            mask=lambda t: shown(request, t),
            notice=request.query_params.get("done"),
        )

    @page(web, "staff")
    async def knowledge_action(request: Request) -> Response:
        action = request.path_params["action"]
        form = await request.form()
        entry = str(form.get("id", ""))
        async with web.sessions() as s, s.begin():
            if await data.knowledge(s, limit=1) is None:
                ok = False
            elif action in ("retire", "restore"):
                ok = await data.knowledge_retire(s, entry, actor(request), retired=action == "retire")
            elif action == "edit":
                ok = await data.knowledge_edit(
                    s,
                    entry,
                    str(form.get("title", ""))[:500],
                    str(form.get("answer", ""))[:8000],
                    actor(request),
                )
            elif action == "merge":
                ok = await data.knowledge_merge(s, str(form.get("keep", "")), entry, actor(request))
            else:
                ok = False
        if not ok:
            return render(
                web, request, "error.html", 409, title="Not done", message=f"Could not {action} {entry!r}."
            )
        return RedirectResponse(f"/knowledge?done={action}", 303)

    @page(web)
    async def trends_page(request: Request) -> Response:
        now = utcnow()
        ts_ = web.settings.web.trends
        async with web.sessions() as s:
            trends = await load_trends(s, ts_, now)
            ids = sorted({i for t in trends if t.is_recent() for i in t.examples})
            examples: dict[int, str] = {}
            if ids:
                from sqlalchemy import select

                rows = (
                    await s.execute(
                        select(queries.THREAD.c.id, queries.MESSAGE.c.text)
                        .join(queries.MESSAGE, queries.MESSAGE.c.id == queries.THREAD.c.root_message_id)
                        .where(queries.THREAD.c.id.in_(ids))
                    )
                ).all()
                examples = {int(r[0]): shown(request, r[1])[:200] for r in rows}
        items = [
            {
                "t": t,
                "spark": Markup(
                    charts.sparkline(
                        t.counts, mark_from=t.latest.start if t.is_recent() and t.latest else None
                    )
                ),
                "examples": [examples[i] for i in t.examples if i in examples],
            }
            for t in trends
        ]
        return render(web, request, "trends.html", items=items, settings=ts_)

    @page(web)
    async def config_page(request: Request) -> Response:
        cfg = holder.current
        dump = cfg.settings.model_dump(mode="json")
        dump["storage"]["url"] = redact_url(cfg.settings.storage.url)
        dump["connectors"] = {
            c.id: {
                "type": c.type,
                "enabled": c.enabled,
                "note": c.note,
                "settings": hide_secrets(c.settings.model_dump(mode="json"))
                if c.settings is not None
                else None,
            }
            for c in cfg.connectors
        }
        if not is_staff(request):
            dump["helpers"] = [
                {**h, "identities": "(hidden)", "handles": "(hidden)"} for h in dump.get("helpers", [])
            ]
        return render(
            web,
            request,
            "config.html",
            cfg=cfg,
            text=yaml.safe_dump(hide_secrets(dump), sort_keys=False, allow_unicode=True),
            error=holder.last_error,
            reloads=holder.reloads,
        )

    async def healthz(request: Request) -> Response:
        checks: dict[str, Any] = {}
        ok = True
        try:
            async with web.sessions() as s:
                await s.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            ok = False
            checks["database"] = f"down: {type(exc).__name__}"
        rt = web.runtime
        if rt is not None:
            conns: dict[str, Any] = {}
            for cid, c in rt.connectors.items():
                h = await c.health()
                conns[cid] = {"state": h.state.value, "detail": h.detail}
                if h.state not in (HealthState.OK, HealthState.STARTING):
                    ok = False
            checks["connectors"] = conns
            running = bool(getattr(rt.scheduler, "running", False))
            checks["scheduler"] = "running" if running else "stopped"
            ok = ok and running
        return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        async with web.sessions() as s:
            m = await data.metrics_data(s)
        health: dict[str, Any] = {}
        if web.runtime is not None:
            for cid, c in web.runtime.connectors.items():
                health[cid] = await c.health()
        body, ctype = render_metrics(m, health)
        return Response(body, media_type=ctype)

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found", 404)

    routes: list[BaseRoute] = [
        Route("/", overview),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/queue", queue_page),
        Route("/queue/rows", queue_rows),
        Route("/thread/{tid:int}", thread_page),
        Route("/thread/{tid:int}/{action:str}", thread_action, methods=["POST"]),
        Route("/helpers", helpers_page),
        Route("/knowledge", knowledge_page),
        Route("/knowledge/{action:str}", knowledge_action, methods=["POST"]),
        Route("/trends", trends_page),
        Route("/config", config_page),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        *extra_routes,
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found})
    app.state.web = web
    return app


SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "private_key", "webhook_secret", "bearer")


def hide_secrets(value: Any, key: str = "") -> Any:
    """Mask values under secret-looking keys (SecretStr already dumps as ``**********``)."""
    if isinstance(value, dict):
        return {k: hide_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [hide_secrets(v, key) for v in value]
    if isinstance(value, str) and value and any(w in key.lower() for w in SECRET_WORDS):
        return "**********"
    if isinstance(value, str) and "://" in value and "@" in value:
        return redact_url(value)
    return value

"""Webhook and e-mail escalations: claimed from ``sla_delivery``, sent, retried with backoff.

Webhooks are HTTP POSTs of JSON with ``X-Unsource-Signature: sha256=<hex>``, the HMAC-SHA256
of ``"<timestamp>." + body`` under the target's secret, plus ``X-Unsource-Timestamp`` and
``X-Unsource-Delivery`` (the idempotency key: receivers de-duplicate on it, since a crash in
the middle of a POST re-sends it after the lease). 2xx is done; 408, 425, 429, 5xx and
network errors are retried (honouring ``Retry-After``); other 4xx fail at once.
E-mail goes over SMTP (STARTTLS and login when configured) with a Message-ID derived from the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiohttp
from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import utcnow
from bot.settings import SlaSettings, SlaTarget, SmtpSettings
from bot.storage.dialect import dialect_of
from bot.storage.sla_tables import SlaDeliveryRow

log = logging.getLogger("unsource.sla.deliver")

_DELIVERY: Table = SlaDeliveryRow.__table__  # type: ignore[attr-defined]
LEASE = timedelta(minutes=5)
_RETRY_STATUS = {408, 425, 429}


class Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Permanent(Exception):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and what the tests check)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class DeliveryResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0


async def claim(session: AsyncSession, worker: str, now: datetime, limit: int) -> list[Any]:
    due = or_(
        and_(_DELIVERY.c.state.in_(("pending", "retry")), _DELIVERY.c.next_try_at <= now),
        and_(_DELIVERY.c.state == "sending", _DELIVERY.c.claimed_at < now - LEASE),
    )
    pick = select(_DELIVERY.c.id).where(due).order_by(_DELIVERY.c.next_try_at).limit(limit)
    if dialect_of(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(_DELIVERY)
        .where(_DELIVERY.c.id.in_(pick.scalar_subquery()))
        .values(state="sending", claimed_by=worker, claimed_at=now, attempts=_DELIVERY.c.attempts + 1)
        .returning(*_DELIVERY.c)
    )
    return list((await session.execute(stmt)).all())


async def post_webhook(
    http: aiohttp.ClientSession,
    target: SlaTarget,
    settings: SlaSettings,
    *,
    key: str,
    data: Any,
    now: datetime,
) -> None:
    assert target.url is not None
    body = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    ts = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", "X-Unsource-Timestamp": ts, "X-Unsource-Delivery": key}
    if target.secret is not None:
        headers[settings.webhook.signature_header] = sign(target.secret.get_secret_value(), ts, body)
    try:
        async with http.post(
            target.url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=settings.webhook.timeout.total_seconds()),
        ) as resp:
            if 200 <= resp.status < 300:
                return
            text = (await resp.text())[:200]
            if resp.status in _RETRY_STATUS or resp.status >= 500:
                after = resp.headers.get("Retry-After")
                raise Retry(
                    f"HTTP {resp.status}: {text}", float(after) if after and after.isdigit() else None
                )
            raise Permanent(f"HTTP {resp.status}: {text}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Retry(f"{type(exc).__name__}: {exc}") from exc


def _send_mail(smtp: SmtpSettings, target: SlaTarget, key: str, subject: str, text: str) -> None:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(target.to)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@unsource>"
    msg["X-Unsource-Delivery"] = key
    msg.set_content(text)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout.total_seconds()) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username and smtp.password is not None:
                client.login(smtp.username, smtp.password.get_secret_value())
            client.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise Permanent(f"recipients refused: {exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise Retry(f"{type(exc).__name__}: {exc}") from exc


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession],
    settings: SlaSettings,
    worker: str,
    http: aiohttp.ClientSession,
    *,
    now: datetime | None = None,
    limit: int = 50,
) -> DeliveryResult:
    """Send the due webhook/e-mail deliveries once each (concurrently) and record the outcome."""
    now = now or utcnow()
    async with sessions() as s, s.begin():
        rows = await claim(s, worker, now, limit)
    result = DeliveryResult()
    if not rows:
        return result
    outcomes = await asyncio.gather(*(_deliver_one(r, settings, http, now) for r in rows))
    wh = settings.webhook
    async with sessions() as s, s.begin():
        for r, outcome in zip(rows, outcomes, strict=True):
            values: dict[str, Any]
            if outcome is None:
                values = {"state": "sent", "sent_at": utcnow(), "last_error": None}
                result.sent += 1
            elif isinstance(outcome, Retry) and r.attempts < wh.max_attempts:
                delay = outcome.after or min(
                    wh.backoff_base.total_seconds() * 2 ** (r.attempts - 1), wh.backoff_cap.total_seconds()
                )
                values = {
                    "state": "retry",
                    "next_try_at": utcnow() + timedelta(seconds=delay),
                    "last_error": str(outcome)[:2000],
                }
                result.retried += 1
            else:
                values = {"state": "failed", "last_error": str(outcome)[:2000]}
                result.failed += 1
                log.error("sla delivery %s to %s failed: %s", r.idempotency_key, r.target, outcome)
            await s.execute(
                update(_DELIVERY)
                .where(_DELIVERY.c.id == r.id, _DELIVERY.c.claimed_by == worker)
                .values(**values)
            )
    return result


async def _deliver_one(
    r: Any, settings: SlaSettings, http: aiohttp.ClientSession, now: datetime
) -> Exception | None:
    target = settings.targets.get(r.target)
    payload = r.payload or {}
    try:
        if target is None:
            raise Permanent(f"target {r.target!r} is no longer configured")
        if r.kind == "webhook" and target.type == "webhook":
            await post_webhook(
                http, target, settings, key=r.idempotency_key, data=payload.get("data") or {}, now=now
            )
        elif r.kind == "email" and target.type == "email" and settings.smtp is not None:
            await asyncio.to_thread(
                _send_mail,
                settings.smtp,
                target,
                r.idempotency_key,
                str(payload.get("subject") or ""),
                str(payload.get("text") or ""),
            )
        else:
            raise Permanent(f"target {r.target!r} cannot take a {r.kind} delivery")
    except (Retry, Permanent) as exc:
        return exc
    return None

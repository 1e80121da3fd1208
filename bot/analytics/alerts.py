"""Post each new trend spike once to the staff channel (through the outbox).

Once per spike: the outbox key is ``trend:<kind>:<name>:<spike start>``, unique, so re-running
the job (or several schedulers) never posts twice; and a spike whose start shifts by a bucket
or two as the window slides is recognised as the same one (a recent alert for the same name
suppresses it).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.analytics.queries import OUTBOX
from bot.analytics.trends import Trend, load_trends
from bot.models import OutboundMessage, utcnow
from bot.settings import Settings
from bot.storage import outbox

log = logging.getLogger("unsource.trends")


def alert_key(trend: Trend) -> str:
    assert trend.latest is not None
    return f"trend:{trend.kind}:{trend.name}:{trend.spike_start(trend.latest):%Y%m%dT%H%M}"


def alert_text(trend: Trend) -> str:
    s = trend.latest
    assert s is not None
    if trend.kind == "topic":
        what = f"topic '{trend.name}'" + (f" (common words: {', '.join(trend.words)})" if trend.words else "")
    else:
        what = "new questions mentioning " + " + ".join(f"'{w}'" for w in trend.words or (trend.name,))
    return (
        f"Trend alert: {what} is above its usual volume since {trend.spike_start(s):%Y-%m-%d %H:%M} UTC: "
        f"{s.peak_count} in one period against about {s.expected:.1f} expected (p={s.p_value:.1e}). "
        "See the dashboard's Trends page for example questions."
    )


async def post_spike_alerts(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> int:
    """Enqueue an alert for every recent spike not alerted yet; returns how many were new."""
    staff = settings.staff
    if staff.connector is None or staff.conversation is None:
        return 0
    now = now or utcnow()
    bucket = settings.web.trends.bucket
    posted = 0
    async with sessions() as s, s.begin():
        for trend in await load_trends(s, settings.web.trends, now):
            if not trend.is_recent() or trend.latest is None or trend.covered_by is not None:
                continue
            start = trend.spike_start(trend.latest)
            prefix = f"trend:{trend.kind}:{trend.name}:"
            recent = (
                await s.execute(
                    select(func.count()).where(
                        OUTBOX.c.idempotency_key.startswith(prefix, autoescape=True),
                        OUTBOX.c.created_at >= start - 3 * bucket,
                    )
                )
            ).scalar_one()
            if recent:
                continue
            msg = OutboundMessage(
                idempotency_key=alert_key(trend),
                connector_id=staff.connector,
                conversation_id=staff.conversation,
                text=alert_text(trend),
                purpose="trend_alert",
            )
            n = await outbox.enqueue(s, [msg])
            if n:
                log.warning("trend spike: %s %s (peak %d)", trend.kind, trend.name, trend.latest.peak_count)
            posted += n
    return posted

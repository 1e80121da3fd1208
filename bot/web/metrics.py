"""``/metrics`` in the Prometheus text format (prometheus-client), built per scrape from the
database (counts that survive restarts) and the running connectors' health metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from bot.models import Health, HealthState
from bot.web.data import MetricsData

#: connector health metric names that count platform rate-limit answers (HTTP 429 and the like)
RATE_LIMIT_KEYS = ("rate_limited", "throttled", "ratelimited", "http_429", "429s")
#: connector health metric names that carry an estimated API spend in USD (X pay-per-use)
COST_KEYS = ("est_cost_usd",)


class _Snapshot(Collector):
    def __init__(self, m: MetricsData, health: Mapping[str, Health]) -> None:
        self.m, self.health = m, health

    def collect(self) -> Iterator[Metric]:
        m = self.m
        c = CounterMetricFamily(
            "unsource_messages_in",
            "Inbound events stored (the bot's own posts too when a platform echoes them)",
            labels=["connector"],
        )
        for k, v in sorted(m.messages_in.items()):
            c.add_metric([k], v)
        yield c
        c = CounterMetricFamily("unsource_messages_out", "Outbound messages sent", labels=["connector"])
        for k, v in sorted(m.messages_out.items()):
            c.add_metric([k], v)
        yield c
        c = CounterMetricFamily("unsource_decisions", "Triage decisions", labels=["kind"])
        for k, v in sorted(m.decisions.items()):
            c.add_metric([k], v)
        yield c
        g = GaugeMetricFamily("unsource_outbox_depth", "Outbox rows by state", labels=["state"])
        # the usual states always (0 when empty), and any other state the outbox has
        for state in sorted(
            {"pending", "claimed", "sending", "retry", "sent", "failed"} | set(m.outbox_depth)
        ):
            g.add_metric([state], m.outbox_depth.get(state, 0))
        yield g
        yield GaugeMetricFamily("unsource_open_threads", "Threads not solved or closed", value=m.open_threads)
        if m.sla_breaches is not None:
            yield CounterMetricFamily(
                "unsource_sla_breaches", "SLA stages fired at or past 100% of target", value=m.sla_breaches
            )
        up = GaugeMetricFamily(
            "unsource_connector_up", "1 when the connector is healthy", labels=["connector", "state"]
        )
        limited = CounterMetricFamily(
            "unsource_platform_rate_limited",
            "Rate-limit answers from the platform (429s)",
            labels=["connector"],
        )
        cost = GaugeMetricFamily(
            "unsource_x_api_cost_usd", "Estimated X API spend this month", labels=["connector"]
        )
        raw = GaugeMetricFamily(
            "unsource_connector_metric", "Connector health metrics", labels=["connector", "name"]
        )
        for cid, h in sorted(self.health.items()):
            up.add_metric(
                [cid, h.state.value], 1.0 if h.state in (HealthState.OK, HealthState.STARTING) else 0.0
            )
            hits = [float(h.metrics[k]) for k in RATE_LIMIT_KEYS if k in h.metrics]
            if hits:
                limited.add_metric([cid], sum(hits))
            for k in COST_KEYS:
                if k in h.metrics:
                    cost.add_metric([cid], float(h.metrics[k]))
            for name, value in sorted(h.metrics.items()):
                raw.add_metric([cid, name], float(value))
        yield up
        yield limited
        yield cost
        yield raw


def render_metrics(m: MetricsData, health: Mapping[str, Health]) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(m, health))
    # the classic text format (names are plain ASCII), understood by every Prometheus version
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4

"""SLA policies: which policy a thread gets (first match wins) and when each stage falls due.

Pure: no I/O, no clock. ``Planner`` is built once per configuration (and on reload).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config_types import parse_duration
from bot.settings import SlaPolicy, SlaSettings, SlaStage
from bot.sla.calendar import BusinessCalendar

# The clocks a thread can have running. A clock is started by an event (the question, an
# asker's new message, a reopen) identified by ``cycle`` (that message's id), so a restarted
# clock is a new set of stages and never collides with the stages that already fired.
FIRST_RESPONSE = "first_response"
NEXT_RESPONSE = "next_response"
RESOLUTION = "resolution"
RESPONSE_CLOCKS = (FIRST_RESPONSE, NEXT_RESPONSE)
CLOCKS = (FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION)

_PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


def priority_rank(priority: str) -> int:
    return _PRIORITY_RANK.get(priority, 1)


@dataclass(frozen=True, slots=True)
class ThreadFacts:
    """What policy matching looks at."""

    connector_id: str
    conversation_id: str
    topic: str | None
    priority: str


@dataclass(frozen=True, slots=True)
class PlannedStage:
    policy: str
    clock: str
    cycle: int
    stage: int  # index in the policy's ladder
    action: str
    at: str  # "50%" or "45m", as configured
    started_at: datetime
    due_at: datetime


def matches(policy: SlaPolicy, t: ThreadFacts) -> bool:
    """Every non-empty criterion must hold; an empty one matches anything."""
    m = policy.match
    if m.priority and t.priority not in m.priority:
        return False
    if m.topic and t.topic not in m.topic:
        return False
    if m.connector and t.connector_id not in m.connector:
        return False
    return not m.channel or (
        t.conversation_id in m.channel or f"{t.connector_id}:{t.conversation_id}" in m.channel
    )


def stage_offset(stage: SlaStage, target: timedelta) -> timedelta:
    """``"50%"`` of the target, or a fixed duration like ``"45m"`` (both in open time)."""
    if stage.at.endswith("%"):
        return target * (float(stage.at[:-1]) / 100.0)
    return parse_duration(stage.at)


def stage_applies(stage: SlaStage, clock: str) -> bool:
    if stage.clock == "response":
        return clock in RESPONSE_CLOCKS
    return stage.clock == clock


class Planner:
    """Policies and calendars of one configuration."""

    def __init__(self, settings: SlaSettings) -> None:
        self.settings = settings
        self.policies = tuple(settings.policies)
        self.by_name = {p.name: p for p in self.policies}
        self.calendars: dict[str, BusinessCalendar] = {"24/7": BusinessCalendar.always()}
        for name, cal in settings.calendars.items():
            self.calendars[name] = BusinessCalendar.from_hours(
                name, cal.timezone, {str(k): v for k, v in cal.hours.items()}, cal.holidays
            )

    def match(self, t: ThreadFacts) -> SlaPolicy | None:
        for p in self.policies:
            if matches(p, t):
                return p
        return None

    def calendar(self, policy: SlaPolicy) -> BusinessCalendar:
        return self.calendars.get(policy.calendar, self.calendars["24/7"])

    @staticmethod
    def target(policy: SlaPolicy, clock: str) -> timedelta | None:
        if clock == FIRST_RESPONSE:
            return policy.first_response
        if clock == NEXT_RESPONSE:
            return policy.next_response or policy.first_response
        return policy.resolution

    def plan(self, policy: SlaPolicy, clock: str, cycle: int, started_at: datetime) -> list[PlannedStage]:
        """The stages of ``clock`` started at ``started_at``, with their due times."""
        target = self.target(policy, clock)
        if target is None:
            return []
        cal = self.calendar(policy)
        out: list[PlannedStage] = []
        for i, st in enumerate(policy.stages):
            if not stage_applies(st, clock):
                continue
            due = cal.add(started_at, stage_offset(st, target))
            out.append(PlannedStage(policy.name, clock, cycle, i, st.action, st.at, started_at, due))
        return out

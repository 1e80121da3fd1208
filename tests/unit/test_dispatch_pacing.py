"""The dispatcher's pacer (bot/pipeline/pacing.py): windows per destination, forgotten when idle."""

from __future__ import annotations

from bot.models import OutboundMessage, RateLimit
from bot.pipeline.pacing import PRUNE_EVERY, Pacer

LIMITS = (
    RateLimit(scope="conversation", limit=1, per_seconds=1.0),
    RateLimit(scope="conversation", limit=20, per_seconds=60.0),
    RateLimit(scope="connector", limit=30, per_seconds=1.0),
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def to(chat: str) -> OutboundMessage:
    return OutboundMessage(idempotency_key=f"k{chat}", connector_id="tg", conversation_id=chat, text="hi")


def test_windows_of_quiet_destinations_are_forgotten_and_limits_still_hold() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    group = Pacer.keys_for(to("-100"), LIMITS)
    for _ in range(20):  # a group fills its 20-per-minute window (one per second: t = 0..19)
        clock.now += pacer.reserve(group)
    assert clock.now == 19.0
    dms = 0

    def answer_dms(n: int) -> None:  # distinct DM chats, ~29 per second (under 30/s: no waits)
        nonlocal dms
        for _ in range(n):
            clock.now += 0.034
            assert pacer.reserve(Pacer.keys_for(to(f"dm{dms}"), LIMITS)) == 0.0
            dms += 1

    answer_dms(PRUNE_EVERY + 100)  # a prune ran at t ~ 54: inside the group's minute
    assert abs(pacer.delay(group) - (60.0 - clock.now)) < 1e-9, "the group's window was kept"
    answer_dms(3 * PRUNE_EVERY)
    remembered = len(pacer)
    # without forgetting: 3 windows per DM chat ever answered, 3 for the group, 1 shared
    assert remembered < 0.5 * (3 * dms + 4), remembered
    # what is kept is what still constrains: the last DM cannot get a second message this second
    last = Pacer.keys_for(to(f"dm{dms - 1}"), LIMITS)
    assert abs(pacer.delay(last) - 1.0) < 0.035

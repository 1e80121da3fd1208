"""SLA and escalation: policies, business-hours deadlines, the claimed sweep, escalation targets.

Deadlines live in the ``sla_stage`` table (one row per stage of a running clock); the worker
(re)plans them in its own transaction (:mod:`bot.sla.hooks`); every scheduling process runs a
short APScheduler interval job that claims due stages atomically (:mod:`bot.sla.sweep`) and
writes their messages to the outbox; webhooks and e-mail go through :mod:`bot.sla.deliver`.
"""

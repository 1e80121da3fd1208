"""The ops dashboard: a Starlette app served by the bot (see docs/dashboard.md)."""

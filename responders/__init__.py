"""Pure planning: a triage decision on a thread becomes outbound messages and a new state."""

from responders.plan import AuthorRole, Plan, ResponderContext, plan

__all__ = ["AuthorRole", "Plan", "ResponderContext", "plan"]

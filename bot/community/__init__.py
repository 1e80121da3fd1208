"""Community helpers: profiles, routing (triage/route.py), in-channel commands, the
solved/learning loop, kudos, points and ranks. See docs/community.md."""

"""``python -m sandbox.data``: regenerate ``kb.jsonl`` from ``community.json``."""

from sandbox.data import KB_FILE, write_kb

print(f"wrote {write_kb(KB_FILE)} entries to {KB_FILE}")

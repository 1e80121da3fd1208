"""End-to-end tests run on SQLite only (the default storage).

They are about the platforms, the pipeline and the people, and they are the slowest tests in
CI (2 cores); the storage layer's PostgreSQL behaviour, including crash recovery, is covered by
tests/pipeline on both databases.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/unsource.db"

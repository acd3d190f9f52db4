"""What an idle daemon keeps in memory: the libraries its path must not import.

Each library costs megabytes of resident memory for as long as the daemon runs (see
``bench/bench_daemon_idle.py``). Each test runs in a fresh interpreter, so that what other
tests imported does not hide an import.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from postscheduler.store import migrate


def loaded_after(code: str, watched: tuple[str, ...]) -> list[str]:
    """Run ``code`` in a fresh interpreter; the modules of ``watched`` it left imported."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {watched!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [name for name in result.stdout.strip().split(",") if name]


def test_the_store_uses_sqlalchemy_core_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    migrate.upgrade(url)
    code = (
        "from postscheduler.store.opening import open_store\n"
        f"store = open_store({url!r}, upgrade=True)\n"
        "store.next_due(); store.campaigns(); store.file_versions('none')\n"
        "store.engine.dispose()"
    )
    assert loaded_after(code, ("sqlalchemy", "sqlalchemy.orm", "alembic")) == ["sqlalchemy"]

"""Shared fixtures: paths to the shipped example and a writer for throwaway campaigns."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postscheduler.store.database import normalise_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "campaign.toml"


@pytest.fixture
def example_campaign() -> Path:
    """The example campaign shipped in config/."""
    return EXAMPLE


@pytest.fixture
def write_campaign(tmp_path: Path) -> Callable[..., Path]:
    """Write a campaign file (and optional extra files) into a fresh folder; return its path."""

    def write(text: str, files: dict[str, str | bytes] | None = None) -> Path:
        for name, content in (files or {}).items():
            target = tmp_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        path = tmp_path / "campaign.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


# -- databases ------------------------------------------------------------------------------

POSTGRES_ENV = "POSTSCHEDULER_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    """The PostgreSQL server the tests use, from ``POSTSCHEDULER_TEST_POSTGRES_URL``.

    `.ci/run` sets it (CI must test PostgreSQL); a developer without PostgreSQL leaves it
    unset and those tests skip with one line saying so.
    """
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL, checked reachable once: configured but unreachable fails."""
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (set by .ci/run)")
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure to connect is the finding
        pytest.fail(f"{POSTGRES_ENV} is set but PostgreSQL does not answer: {error}")
    finally:
        engine.dispose()
    return normalise_url(url)


@pytest.fixture
def postgres_schema_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty PostgreSQL schema, dropped afterwards."""
    name = f"ps_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(postgres_server).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()

"""Shared fixtures: paths to the shipped example and a writer for throwaway campaigns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

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

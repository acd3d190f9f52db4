"""The layout is the architecture: the domain is pure and imports no I/O library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "postscheduler"
DOMAIN = sorted((SRC / "domain").glob("*.py"))

#: Libraries that do I/O or scheduling: the domain must not know them.
BANNED = ("sqlalchemy", "httpx", "mastodon", "apscheduler", "requests", "alembic", "psycopg")
#: What the domain may import besides the standard library and itself.
ALLOWED_THIRD_PARTY = ("pydantic", "regex")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_the_domain_imports_no_io_library(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top not in BANNED, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_the_domain_imports_only_itself_stdlib_pydantic_and_regex(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top == "postscheduler":
            assert name.startswith("postscheduler.domain"), f"{path.name} imports {name}"
        else:
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (
                f"{path.name} imports {name}"
            )


def test_there_is_a_domain_to_check() -> None:
    assert len(DOMAIN) >= 8


def test_help_does_not_import_the_heavy_libraries() -> None:
    code = (
        "import sys; from postscheduler.cli import build_parser; build_parser(); "
        "print(','.join(m for m in ('pydantic','sqlalchemy','httpx','mastodon','apscheduler') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""

"""The sandbox stands apart: it imports nothing of postscheduler but itself.

So that when the client's counting and the sandbox's agree, it is two implementations
agreeing, not one agreeing with itself.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SANDBOX = Path(__file__).resolve().parents[2] / "src" / "postscheduler" / "sandbox"
FILES = sorted(SANDBOX.rglob("*.py"))
ALLOWED_THIRD_PARTY = {"regex"}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(level, module) of every import in ``source``, ``importlib.import_module("x")`` too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((0, str(node.args[0].value)))
    return found


def forbidden_imports(source: str) -> list[str]:
    """The modules ``source`` imports that the sandbox may not import."""
    forbidden = []
    for level, module in imported_modules(source):
        if level > 0:
            continue  # relative: inside the sandbox package
        top = module.split(".")[0]
        if top == "postscheduler":
            if not (
                module == "postscheduler.sandbox" or module.startswith("postscheduler.sandbox.")
            ):
                forbidden.append(module)
        elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY:
            forbidden.append(module)
    return forbidden


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_sandbox_imports_only_itself_the_stdlib_and_regex(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from postscheduler.domain.text import count",
        "import postscheduler.errors",
        "from postscheduler import store",
        "import httpx",
        "importlib.import_module('postscheduler.domain.hashtags')",
        "def f():\n    from pydantic import BaseModel\n",
        "from postscheduler.sandboxes import x",
    ],
)
def test_the_scan_reports_a_forbidden_import(source: str) -> None:
    assert forbidden_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import json",
        "import regex",
        "from postscheduler.sandbox.text import find_urls",
        "from . import x",
    ],
)
def test_the_scan_allows_the_stdlib_regex_and_the_sandbox(source: str) -> None:
    assert forbidden_imports(source) == []


def test_the_scan_sees_every_module() -> None:
    names = {path.name for path in FILES}
    assert {"core.py", "text.py", "handler.py", "server.py", "personalities.py"} <= names

"""The shape of the house, checked: small modules, small functions, one direction of imports.

These are the rules docs/DESIGN.md states; a change that breaks one fails here, with the
place named, rather than in a reviewer's read.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import PROJECT

PACKAGES = ("mediasite", "transforms", "streaming")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (PROJECT / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.fixture(scope="module")
def trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sources()}


def test_no_module_is_over_400_lines():
    lengths = {str(path.relative_to(PROJECT)): len(path.read_text().splitlines()) for path in sources()}
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_is_over_60_lines(trees):
    long = [
        f"{path.relative_to(PROJECT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_streaming_never_imports_transforms(trees):
    found = []
    for path, tree in trees.items():
        if path.relative_to(PROJECT).parts[0] != "streaming":
            continue
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(name.split(".")[0] == "transforms" for name in names):
                found.append(f"{path.relative_to(PROJECT)}:{node.lineno}")
    assert found == []

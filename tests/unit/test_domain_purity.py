"""The domain stays plain: no boto3, no environment, no clock (STYLE practice 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOMAIN_FILES = sorted((ROOT / "shared" / "domain").glob("*.py"))
FORBIDDEN_MODULES = {"boto3", "botocore", "os", "time", "aws_lambda_powertools"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
CLOCK_OWNERS = {"datetime", "date", "time"}


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: p.name)
def test_domain_module_has_no_io_or_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & FORBIDDEN_MODULES
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in FORBIDDEN_MODULES, node.module
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in CLOCK_OWNERS
        ):
            assert node.func.attr not in CLOCK_CALLS, f"{path.name}:{node.lineno} reads the clock"


def test_the_scan_sees_the_domain() -> None:
    assert {p.name for p in DOMAIN_FILES} >= {"window.py", "orders.py", "events.py", "program.py"}

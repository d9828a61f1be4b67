"""The layers hold: the domain stays plain (no boto3, no environment, no clock), and the use
cases in shared/logic reach storage only through the store protocols they are
given, never through shared.dal, the composition module or boto3."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOMAIN_FILES = sorted((ROOT / "shared" / "domain").glob("*.py"))
FORBIDDEN_MODULES = {"boto3", "botocore", "os", "time", "aws_lambda_powertools"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
CLOCK_OWNERS = {"datetime", "date", "time"}

LOGIC = ROOT / "shared" / "logic"
LOGIC_FILES = sorted(LOGIC.rglob("*.py"))
LOGIC_FORBIDDEN = ("shared.dal", "shared.composition", "boto3", "botocore", "mypy_boto3")


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


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Every module ``path`` imports, relative imports resolved (``from ..dal import x`` in
    shared/logic/perks.py is ``shared.dal.x``), names included (``from shared import dal``)."""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def forbidden_imports(path: Path, root: Path = ROOT) -> list[str]:
    return sorted(
        module
        for module in set(imported_modules(path, root))
        for forbidden in LOGIC_FORBIDDEN
        if module == forbidden or module.startswith(f"{forbidden}.")
    )


def _name(path: Path) -> str:
    return path.relative_to(LOGIC).as_posix()


@pytest.mark.parametrize("path", LOGIC_FILES, ids=_name)
def test_use_cases_reach_storage_only_through_their_protocols(path: Path) -> None:
    found = forbidden_imports(path)
    assert not found, f"shared/logic/{_name(path)} imports {found}: take a store protocol instead"


def test_the_layer_check_finds_what_it_forbids(tmp_path: Path) -> None:
    """The scan itself: absolute, relative and package imports of the forbidden layers."""
    sample = tmp_path / "shared" / "logic" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text(
        "import boto3\n"
        "from botocore.exceptions import ClientError\n"
        "from ..dal.perks import PerkRepository\n"
        "from shared import composition\n"
        "from . import ports\n"
        "from shared.domain.keys import MEMBER_SK\n"
    )
    assert forbidden_imports(sample, root=tmp_path) == [
        "boto3",
        "botocore.exceptions",
        "botocore.exceptions.ClientError",
        "shared.composition",
        "shared.dal.perks",
        "shared.dal.perks.PerkRepository",
    ]


def test_the_scan_sees_the_use_cases() -> None:
    assert {_name(p) for p in LOGIC_FILES} >= {
        "ingestion.py",
        "perks.py",
        "members.py",
        "moderation/ratings.py",
    }

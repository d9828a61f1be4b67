"""Each function's cold-start child (bench/coldstart.py) runs: its module imports as Lambda
imports it and its first client is made, in a fresh process with no network (the guard fails
the child on any socket call). Timing is the bench's business, not this test's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import coldstart

FUNCTIONS = sorted(path.parent.name for path in coldstart.FUNCTIONS.glob("*/app.py"))


def test_every_function_names_the_factory_of_its_first_client() -> None:
    assert set(coldstart.FIRST_CLIENT) == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_cold_start_child_imports_and_makes_its_client(name: str, tmp_path: Path) -> None:
    environment = coldstart.lambda_environment(name, str(tmp_path))
    (wall, cpu), _ = coldstart.run_child(
        coldstart._GUARD + coldstart.function_script(name), environment
    )
    assert wall > 0 and cpu > 0

"""Session-wide: record the AWS calls the functions' handlers make (tests/iam_calls.py), and
run the test that compares them with the roles (tests/test_roles_cover_calls.py) last."""

from __future__ import annotations

import pytest

from tests import iam_calls

LAST = "test_roles_cover_calls.py"


def pytest_configure(config: pytest.Config) -> None:
    iam_calls.install()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name == LAST)

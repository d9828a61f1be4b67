"""shared.observability: the X-Ray SDK is loaded only when TRACING_SDK asks for it; settings."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from shared.observability import Tracing, tracing_sdk_enabled
from shared.settings import MissingConfiguration, settings
from tests.helpers import ROOT


def _handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"echo": event}


def test_without_the_sdk_the_handler_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACING_SDK", raising=False)
    assert not tracing_sdk_enabled()
    tracing = Tracing()
    assert tracing.sdk is None
    assert tracing.capture_lambda_handler(_handler) is _handler


def test_tracing_sdk_true_loads_powertools_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING_SDK", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")  # no daemon in tests
    assert tracing_sdk_enabled()
    tracing = Tracing()
    assert tracing.sdk is not None
    traced = tracing.capture_lambda_handler(_handler)
    assert traced is not _handler
    assert traced({"a": 1}, None) == {"echo": {"a": 1}}


def test_importing_observability_does_not_import_the_xray_sdk() -> None:
    code = (
        "import sys; import shared.observability; "
        "print(any(name.startswith('aws_xray_sdk') for name in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("table_name", ["", "ab", "x" * 256])
def test_settings_refuse_a_missing_or_malformed_table_name(
    monkeypatch: pytest.MonkeyPatch, table_name: str
) -> None:
    monkeypatch.setenv("TABLE_NAME", table_name)
    settings.cache_clear()
    try:
        with pytest.raises(MissingConfiguration, match="TABLE_NAME"):
            settings()
    finally:
        settings.cache_clear()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "loyalty-dev")
    monkeypatch.setenv("EVENT_BUS_NAME", "bus")
    monkeypatch.delenv("PROGRAM_ID", raising=False)
    settings.cache_clear()
    try:
        current = settings()
        assert (current.table_name, current.event_bus_name, current.program_id) == (
            "loyalty-dev",
            "bus",
            "cart-star",
        )
    finally:
        settings.cache_clear()

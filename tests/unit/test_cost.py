"""bench/cost.py: the arithmetic, on a small made-up results set (not the committed figures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cost
from bench.common import update_readme
from bench.cost import FunctionConfig, Line, Model, Workload, build
from shared.dal.tiers import CHECK_SHARDS

CONFIGS = {
    name: FunctionConfig(memory_mb=1024, timeout_s=30)
    for name in (
        "order_ingestion",
        "rating_moderation",
        "member_api",
        "perk_redemption",
        "tier_recalculation",
        "event_publisher",
    )
}
WORKLOAD = Workload(members=1_000_000, orders_per_day=1_000_000)


def units(read: float, write: float) -> dict[str, Any]:
    return {
        "read_units": {"min": read, "max": read, "mean": read},
        "write_units": {"min": write, "max": write, "mean": write},
    }


def perk_row(label: str, read: float, write: float, ms: float = 10.0) -> dict[str, Any]:
    return {"label": label, **units(read, write), "handler_median_ms": ms}


def made_up_results() -> dict[str, Any]:
    order = {**units(0, 2), "handler_median_ms": 10.0}
    return {
        "ingestion": {
            "date": "2000-01-01",
            "new_member": order,
            "member_with_5000_orders": order,
            "naive_design": {"write_units_mean": 6.0},
        },
        "tiers": {
            "date": "2000-01-01",
            "stream": {
                "samples": 100,
                "upgrades": 10,
                "read_units_per_evaluation": {"mean": 0.0, "max": 0.0},
                "write_units_per_evaluation_mean": 0.5,
            },
            "daily_sweep": {
                "due_today": 100,
                "evaluated": 100,
                "changed": 50,
                "sweep_read_units": 100.0,
                "sweep_write_units": 300.0,
                "sweep_calls": {"UpdateItem": 100},
                "sweep_seconds": 1.0,
                "full_scan_read_units": 1000.0,
                "full_scan_items": 10_000,
            },
            "phase_seconds": {"stream": 1.0},
        },
        "ratings": {
            "date": "2000-01-01",
            "counted": {**units(4, 10), "handler_median_ms": 20.0},
            "excluded": {**units(4, 6), "handler_median_ms": 20.0},
            "retroactive_rater_with_50_ratings": {**units(50, 100), "handler_median_ms": 500.0},
        },
        "perks": {
            "date": "2000-01-01",
            "rows": [
                perk_row("POST /v1/me/redemptions: a care day, confirmed", 0, 8),
                perk_row("POST /v1/me/redemptions: a code (its discount needs the tier)", 1, 8),
                perk_row("POST /v1/me/redemptions: a second code this month, refused", 1, 1),
                perk_row("DELETE /v1/me/redemptions/{id}: cancelled", 1, 4),
                perk_row("GET /v1/me: a member with 5,000 orders", 1, 0),
                perk_row("GET /v1/members/{id}/entitlements (services)", 0.5, 0),
                perk_row("GET /v1/members/{id}/badge (services)", 0.5, 0),
                perk_row("GET /v1/me/perks", 3, 0),
                perk_row("GET /v1/me/redemptions", 1, 0),
                perk_row("FuelPurchaseReported: cashback credited", 1, 4),
                perk_row("GET /v1/me/ledger (a page of 50)", 1.5, 0),
            ],
            "ledger_projection": {"write_units": {"min": 1.0, "max": 1.0}},
        },
    }


def line(model: Model, what: str, unit: str) -> Line:
    (found,) = [item for item in model.lines if item.what == what and item.unit == unit]
    return found


def test_known_units_give_known_dollars() -> None:
    model = build(made_up_results(), CONFIGS, WORKLOAD)

    # 1,000,000 orders x 2 write units = 2 million units at $0.625 a million.
    order = line(model, "OrderCompleted (ingestion)", "WRU")
    assert order.dollars_per_day == pytest.approx(2 * 0.625)
    # 1,000,000 members x 1 GET /v1/me x 1 read unit at $0.125 a million.
    assert line(model, "GET /v1/me", "RRU").dollars_per_day == pytest.approx(0.125)
    # The sweep: 1 % of 1,000,000 members due, 3 write units each (300 for 100 in the bench).
    sweep = line(model, "daily sweep, per member due", "WRU")
    assert sweep.per_day == pytest.approx(10_000)
    assert sweep.dollars_per_day == pytest.approx(30_000 * 0.625 / 1e6)
    # Lambda: 1,000,000 orders of 10 ms at 1 GB = 10,000 GB-s, and $0.20 a million requests.
    duration = line(model, "`order_ingestion`: orders, duration (1024 MB)", "GB-s")
    assert duration.dollars_per_day == pytest.approx(10_000 * 0.0000133334)
    requests = line(model, "`order_ingestion`: orders, requests", "request")
    assert requests.dollars_per_day == pytest.approx(0.20)
    # A month is 30 days.
    assert model.per_month() == pytest.approx(model.per_day() * 30 + model.storage_per_month())


def test_doubling_orders_doubles_the_order_lines_and_not_the_members() -> None:
    results = made_up_results()
    one = build(results, CONFIGS, WORKLOAD)
    two = build(results, CONFIGS, WORKLOAD.scaled(2))

    assert two.workload.orders_per_day == 2 * one.workload.orders_per_day
    for what, unit in (
        ("OrderCompleted (ingestion)", "WRU"),
        ("ledger entry (projection)", "WRU"),
        ("RatingSubmitted, counted", "WRU"),
        ("RatingSubmitted, counted", "RRU"),
        ("GET /v1/members/{id}/entitlements", "RRU"),
        ("events in: OrderCompleted", "event"),
        ("`order_ingestion`: orders, duration (1024 MB)", "GB-s"),
    ):
        assert line(two, what, unit).dollars_per_day == pytest.approx(
            2 * line(one, what, unit).dollars_per_day
        ), what
    for what, unit in (
        ("GET /v1/me", "RRU"),
        ("daily sweep, per member due", "WRU"),
        ("FuelPurchaseReported, credited", "WRU"),
    ):
        assert line(two, what, unit).dollars_per_day == pytest.approx(
            line(one, what, unit).dollars_per_day
        ), what
    # What the orders drive, per million orders, stays the same when only they double.
    order_lines = [item for item in one.lines if item.order_path]
    assert order_lines
    assert two.order_path_per_million() == pytest.approx(one.order_path_per_million())


def test_naive_design_priced_from_its_measured_figures() -> None:
    model = build(made_up_results(), CONFIGS, WORKLOAD)
    ingestion, sweep = model.naive

    assert (ingestion.ours, ingestion.naive) == (2.0, 6.0)
    assert ingestion.naive * ingestion.per_day * ingestion.dollars_per_unit == pytest.approx(
        6 * 0.625
    )
    # A full Scan: 0.1 read unit a member (1,000 for 10,000) x 1,000,000 members.
    assert sweep.naive == pytest.approx(100_000)
    assert sweep.ours == pytest.approx(10_000)


def test_hot_keys_against_partition_limits() -> None:
    model = build(made_up_results(), CONFIGS, WORKLOAD)
    sweep = model.hot_keys[0]

    # 100 members/s; (300 - 100 member writes) / 100 = 2 index units each.
    assert sweep.peak_per_second == pytest.approx(200)
    assert sweep.limit == 1_000
    # The model's shard count is the code's.
    assert WORKLOAD.check_shards == CHECK_SHARDS


def test_sweep_beyond_its_timeout_is_said() -> None:
    slow = {**CONFIGS, "tier_recalculation": FunctionConfig(memory_mb=512, timeout_s=60)}
    # 10,000 due at 0.01 s each = 100 s > 60 s.
    model = build(made_up_results(), slow, WORKLOAD)
    assert any("beyond the function's 60 s timeout" in note for note in model.notes)
    roomy = {**CONFIGS, "tier_recalculation": FunctionConfig(memory_mb=512, timeout_s=300)}
    assert not any("timeout" in note for note in build(made_up_results(), roomy, WORKLOAD).notes)


def test_coldstart_results_are_optional(tmp_path: Path) -> None:
    for name, data in made_up_results().items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    without = cost.load_results(tmp_path)
    assert "coldstart" not in without
    assert not [item for item in build(without, CONFIGS, WORKLOAD).lines if "cold" in item.what]

    rows = [{"function": "order_ingestion", "wall": {"seconds": 0.5}, "cpu": {"seconds": 0.4}}]
    (tmp_path / "coldstart.json").write_text(json.dumps({"date": "2000-01-01", "rows": rows}))
    model = build(cost.load_results(tmp_path), CONFIGS, WORKLOAD)
    (cold,) = [item for item in model.lines if "cold" in item.what]
    # 0.5 s at 1 GB per start; one environment, recycled every 2 hours: 12 starts a day.
    assert cold.quantity == pytest.approx(0.5)
    assert cold.per_day == pytest.approx(12)


def test_the_doc_is_rewritten_between_its_markers_only(tmp_path: Path) -> None:
    results = made_up_results()
    doc = tmp_path / "cost.md"
    doc.write_text(
        "intro\n"
        + "".join(
            f"<!-- bench:{name}:start -->\nSTALE TABLE\n<!-- bench:{name}:end -->\nprose {name}\n"
            for name in cost.BLOCKS
        )
    )
    blocks = cost.render(build(results, CONFIGS, WORKLOAD), results)
    for name, block in blocks.items():
        update_readme(doc, name, block)
    first = doc.read_text()
    for name, block in blocks.items():
        update_readme(doc, name, block)

    assert doc.read_text() == first
    assert "STALE TABLE" not in first
    assert first.startswith("intro\n")
    assert all(f"prose {name}" in first for name in cost.BLOCKS)


def test_template_memory_sizes_are_read() -> None:
    configs = cost.function_configs()
    assert configs["order_ingestion"].memory_mb > 0
    assert set(CONFIGS) <= set(configs)


def test_every_workload_figure_has_its_meaning() -> None:
    assert set(vars(WORKLOAD)) == set(cost.MEANINGS)

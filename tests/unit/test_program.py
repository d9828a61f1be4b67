"""The program configuration validates, and the default program holds the documented numbers."""

from __future__ import annotations

import json

import pytest

from shared.domain.errors import ProgramConfigError
from shared.domain.program import Program, WindowMode
from shared.programs import PROGRAMS_DIR, load_program, parse_program


def test_default_program_is_cart_star(program: Program) -> None:
    assert program.rule_version == "cart-star@1"
    assert [(t.id, t.min_points) for t in program.tiers] == [
        ("gold", 200),
        ("platinum", 1000),
        ("diamond", 2000),
    ]
    assert program.window.mode is WindowMode.ROLLING and program.window.days == 90
    assert str(program.rating.floor) == "4.7" and program.rating.last_n == 100
    assert program.earning.points_per_order == 10
    care = next(p for p in program.perks if p.id == "care_days")
    assert care.quota is not None and care.quota.count == 2 and care.tiers == ("diamond",)


def _document(**changes: object) -> str:
    document = json.loads(
        json.dumps(load_program("cart-star").model_dump(mode="json", by_alias=True))
    )
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "tiers": [
                    {"id": "gold", "name": "G", "minPoints": 500},
                    {"id": "plat", "name": "P", "minPoints": 200},
                ]
            },
            "tiers",
        ),
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"version": 0}, "version"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_programs_are_rejected_with_the_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ProgramConfigError) as caught:
        parse_program(_document(**changes), source="test.json")
    assert caught.value.field == field


def test_perk_naming_an_unknown_tier_is_rejected() -> None:
    document = json.loads(_document())
    document["perks"][0]["tiers"] = ["emerald"]
    with pytest.raises(ProgramConfigError) as caught:
        parse_program(json.dumps(document))
    assert "emerald" in caught.value.message


def test_json_and_yaml_load_alike() -> None:
    yaml_program = parse_program((PROGRAMS_DIR / "cart-star.yaml").read_text())
    assert parse_program(_document()) == yaml_program


def test_unknown_program_id_is_a_clear_error() -> None:
    with pytest.raises(ProgramConfigError, match="no program configuration named 'nope'"):
        load_program("nope")


def test_earning_rules_must_fit_a_day_in_its_packed_bucket() -> None:
    """A day holds 99,999 points (5 digits of a packed block): a program whose orders could
    exceed it in 288 orders a day is refused, naming the rules; the default fits easily."""
    assert load_program("cart-star").earning.max_points_per_order == 30
    rush = {"id": "rush", "factor": "2", "start": "17:00", "end": "21:00"}
    fits = {"pointsPerOrder": 100, "maxBatchSize": 3, "bonuses": []}
    assert parse_program(_document(earning=fits)).earning.max_points_per_order == 300
    with pytest.raises(ProgramConfigError) as caught:
        parse_program(_document(earning={**fits, "bonuses": [rush]}))
    assert caught.value.field == "earning"
    assert "99,999 points a day" in caught.value.message


def test_limits_have_defaults_and_are_validated() -> None:
    document = json.loads(_document())
    del document["limits"]
    limits = parse_program(json.dumps(document), source="test.json").limits
    assert (
        str(limits.max_order_total),
        str(limits.max_fuel_purchase),
        str(limits.max_cashback_per_purchase),
        str(limits.max_cashback_per_month),
    ) == ("10000.00", "500.00", "25.00", "100.00")
    for bad in ("0", "-1.00", "1.001", "abc"):
        with pytest.raises(ProgramConfigError) as caught:
            parse_program(_document(limits={"maxFuelPurchase": bad}), source="test.json")
        assert caught.value.field == "limits.maxFuelPurchase", bad
    with pytest.raises(ProgramConfigError, match="maxCashbackPerMonth"):
        parse_program(
            _document(limits={"maxCashbackPerPurchase": "30.00", "maxCashbackPerMonth": "20.00"}),
            source="test.json",
        )

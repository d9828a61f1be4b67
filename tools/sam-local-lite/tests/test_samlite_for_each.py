"""Fn::ForEach expansion (AWS::LanguageExtensions) and the other template-reading rules the local
stack and the lint scripts share: samlite.cfn.expand_for_each, load_template, resolve_intrinsics,
and SAM's Globals merge (samlite.template.merge_globals)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from samlite.cfn import (
    TemplateError,
    Unresolved,
    expand_for_each,
    load_template,
    resolve_intrinsics,
)
from samlite.template import merge_globals

ROOT = Path(__file__).resolve().parents[2]
TRANSFORM = ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


def _template(resources: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {"Transform": list(TRANSFORM), "Resources": resources, **sections}


def _queue(name: Any) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}


# --------------------------------------------------------------------------- expansion


def test_a_loop_makes_one_entry_per_value_with_the_identifier_substituted() -> None:
    template = _template(
        {
            "Fn::ForEach::Queues": [
                "Name",
                ["Orders", "order.events-v2"],
                {
                    "&{Name}Queue": {
                        "Type": "AWS::SQS::Queue",
                        "Properties": {
                            "QueueName": {"Fn::Sub": "${Stage}-${Name}"},
                            "Tags": [{"Key": "name", "Value": {"Ref": "Name"}}],
                            "Other": {"Ref": "Stage"},
                        },
                    }
                },
            ],
            "Kept": _queue("kept"),
        }
    )

    expanded, warnings = expand_for_each(template)

    assert warnings == []
    assert set(expanded["Resources"]) == {"OrdersQueue", "ordereventsv2Queue", "Kept"}
    dotted = expanded["Resources"]["ordereventsv2Queue"]["Properties"]
    # ${Name} keeps the value as it is; &{Name} (keys) drops non-alphanumeric characters.
    assert dotted["QueueName"] == {"Fn::Sub": "${Stage}-order.events-v2"}
    assert dotted["Tags"] == [{"Key": "name", "Value": "order.events-v2"}]
    assert dotted["Other"] == {"Ref": "Stage"}  # other Refs are untouched
    assert expanded["Resources"]["OrdersQueue"]["Properties"]["QueueName"] == {
        "Fn::Sub": "${Stage}-Orders"
    }
    assert expanded["Resources"]["Kept"] == _queue("kept")
    assert expanded["Transform"] == ["AWS::Serverless-2016-10-31"]


def test_the_input_template_is_not_changed() -> None:
    template = _template({"Fn::ForEach::Q": ["N", ["A"], {"${N}Queue": _queue({"Ref": "N"})}]})
    before = copy.deepcopy(template)

    expand_for_each(template)

    assert template == before


def test_ref_and_getatt_given_by_a_sub_name_the_logical_id() -> None:
    template = _template(
        {
            "Fn::ForEach::Alarms": [
                "Name",
                ["Orders"],
                {
                    "${Name}Alarm": {
                        "Type": "AWS::CloudWatch::Alarm",
                        "Properties": {
                            "Function": {"Ref": {"Fn::Sub": "${Name}Function"}},
                            "Queue": {"Fn::GetAtt": [{"Fn::Sub": "${Name}Queue"}, "QueueName"]},
                            "ByRef": {"Fn::GetAtt": [{"Ref": "Name"}, "Arn"]},
                            # A Sub that still has a variable stays a Sub.
                            "Staged": {"Ref": {"Fn::Sub": "${Name}${Stage}"}},
                            "Text": {"Fn::Sub": "${Name}"},
                        },
                    }
                },
            ]
        }
    )

    properties = expand_for_each(template)[0]["Resources"]["OrdersAlarm"]["Properties"]

    assert properties["Function"] == {"Ref": "OrdersFunction"}
    assert properties["Queue"] == {"Fn::GetAtt": ["OrdersQueue", "QueueName"]}
    assert properties["ByRef"] == {"Fn::GetAtt": ["Orders", "Arn"]}
    assert properties["Staged"] == {"Ref": {"Fn::Sub": "Orders${Stage}"}}
    assert properties["Text"] == {"Fn::Sub": "Orders"}  # only Ref/GetAtt names are collapsed


def test_nested_loops_and_loops_in_properties_conditions_and_outputs() -> None:
    template = _template(
        {
            "Fn::ForEach::Tables": [
                "Table",
                ["Orders", "Members"],
                {
                    "Fn::ForEach::Envs": [
                        "Env",
                        ["Dev", "Prod"],
                        {
                            "${Table}${Env}": {
                                "Type": "AWS::SQS::Queue",
                                "Properties": {
                                    "Fn::ForEach::Tags": [
                                        "Tag",
                                        ["a", "b"],
                                        {"Tag${Tag}": {"Fn::Sub": "${Table}-${Env}-${Tag}"}},
                                    ]
                                },
                            }
                        },
                    ]
                },
            ]
        },
        Conditions={
            "Fn::ForEach::IsStage": [
                "Stage",
                ["dev", "prod"],
                {"Is${Stage}": {"Fn::Equals": [{"Ref": "StageName"}, {"Ref": "Stage"}]}},
            ]
        },
        Outputs={
            "Fn::ForEach::Out": [
                "Table",
                ["Orders"],
                {"${Table}DevArn": {"Value": {"Fn::GetAtt": [{"Fn::Sub": "${Table}Dev"}, "Arn"]}}},
            ]
        },
    )

    expanded, warnings = expand_for_each(template)

    assert warnings == []
    assert set(expanded["Resources"]) == {"OrdersDev", "OrdersProd", "MembersDev", "MembersProd"}
    assert expanded["Resources"]["MembersProd"]["Properties"] == {
        "Taga": {"Fn::Sub": "Members-Prod-a"},
        "Tagb": {"Fn::Sub": "Members-Prod-b"},
    }
    assert expanded["Conditions"] == {
        "Isdev": {"Fn::Equals": [{"Ref": "StageName"}, "dev"]},
        "Isprod": {"Fn::Equals": [{"Ref": "StageName"}, "prod"]},
    }
    assert expanded["Outputs"] == {"OrdersDevArn": {"Value": {"Fn::GetAtt": ["OrdersDev", "Arn"]}}}


def test_collections_from_parameters_defaults_and_values() -> None:
    template = _template(
        {"Fn::ForEach::Q": ["N", {"Ref": "Names"}, {"${N}Queue": _queue({"Ref": "N"})}]},
        Parameters={"Names": {"Type": "CommaDelimitedList", "Default": "Orders, Ratings"}},
    )

    by_default = expand_for_each(template)[0]["Resources"]
    given = expand_for_each(template, {"Names": ["Perks"]})[0]["Resources"]

    assert set(by_default) == {"OrdersQueue", "RatingsQueue"}
    assert by_default["RatingsQueue"]["Properties"]["QueueName"] == "Ratings"
    assert set(given) == {"PerksQueue"}


def test_collection_items_may_be_functions_numbers_and_booleans() -> None:
    template = _template(
        {
            "Fn::ForEach::Q": [
                "N",
                [{"Fn::Sub": "${Stage}x"}, 7, True],
                {"Q${N}": _queue({"Ref": "N"})},
            ]
        },
        Parameters={"Stage": {"Type": "String", "Default": "dev"}},
    )

    resources = expand_for_each(template)[0]["Resources"]

    assert {name: r["Properties"]["QueueName"] for name, r in resources.items()} == {
        "Qdevx": "devx",
        "Q7": "7",
        "Qtrue": "true",
    }


def test_a_collection_without_a_local_value_is_a_warning_not_a_silent_drop(
    tmp_path: Path,
) -> None:
    template = _template(
        {
            "Fn::ForEach::FromStack": [
                "N",
                {"Fn::GetAtt": ["Somewhere", "Names"]},
                {"${N}Queue": _queue("x")},
            ],
            "Fn::ForEach::FromParameter": ["N", {"Ref": "Names"}, {"${N}Other": _queue("y")}],
            "Fn::ForEach::FromItem": [
                "N",
                ["a", {"Fn::ImportValue": "shared-names"}],
                {"${N}Third": _queue("z")},
            ],
            "Kept": _queue("kept"),
        },
        Parameters={"Names": {"Type": "CommaDelimitedList"}},  # no default
    )

    expanded, warnings = expand_for_each(template)

    assert list(expanded["Resources"]) == ["Kept"]
    assert len(warnings) == 3
    assert all("left out" in warning for warning in warnings)
    assert "Resources.Fn::ForEach::FromStack" in warnings[0]
    assert "Resources.Fn::ForEach::FromParameter" in warnings[1]
    assert "Fn::ImportValue" in warnings[2]
    # load_template (strict) refuses what it cannot expand, naming the loop.
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template), encoding="utf-8")
    with pytest.raises(TemplateError, match="FromStack"):
        load_template(path)
    assert "Fn::ForEach::FromStack" in load_template(path, expand=False)["Resources"]
    parameters = {"Names": ["p"]}
    with pytest.raises(TemplateError, match="FromStack"):
        load_template(path, parameters=parameters)


@pytest.mark.parametrize(
    ("loop", "message"),
    [
        (["N", ["a"]], "expected \\[Identifier, Collection"),
        ("N", "expected \\[Identifier, Collection"),
        (["", ["a"], {"${N}Q": {}}], "identifier must be a non-empty string"),
        (["Stage", ["a"], {"${Stage}Q": {}}], "also a parameter name"),
        (["N", ["a"], []], "fragment must be a mapping"),
        (["N", "a,b", {"${N}Q": {}}], "collection must be a list"),
        (["N", {"Fn::Equals": ["a", "a"]}, {"${N}Q": {}}], "collection must be a list"),
        (["N", [["nested"]], {"${N}Q": {}}], "items must be strings"),
        (["N", ["a", "b"], {"Same": {}}], "Same is produced twice"),
        (["N", ["Kept"], {"${N}": {}}], "Kept is produced twice"),
    ],
)
def test_loops_cloudformation_would_reject_raise(loop: Any, message: str) -> None:
    template = _template(
        {"Kept": _queue("k"), "Fn::ForEach::Bad": loop},
        Parameters={"Stage": {"Type": "String", "Default": "dev"}},
    )
    with pytest.raises(TemplateError, match=message):
        expand_for_each(template)


def test_loops_need_the_transform_and_a_section_that_allows_them() -> None:
    loop = {"Fn::ForEach::Q": ["N", ["A"], {"${N}Queue": _queue("q")}]}
    without = {"Transform": "AWS::Serverless-2016-10-31", "Resources": dict(loop)}
    with pytest.raises(TemplateError, match="AWS::LanguageExtensions transform"):
        expand_for_each(without)
    misplaced = _template({}, Mappings={"M": dict(loop)})
    with pytest.raises(TemplateError, match="Mappings: Fn::ForEach is only allowed in"):
        expand_for_each(misplaced)
    # The transform alone (a string) is removed; a template without loops is left as it is.
    only = {"Transform": "AWS::LanguageExtensions", "Resources": {"Kept": _queue("k")}}
    assert expand_for_each(only) == ({"Resources": {"Kept": _queue("k")}}, [])
    plain = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Kept": _queue("k")}}
    assert expand_for_each(plain) == (plain, [])


def test_load_template_reads_short_forms_inside_loops(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        """
Transform:
  - AWS::LanguageExtensions
  - AWS::Serverless-2016-10-31
Resources:
  Fn::ForEach::Alarms:
    - Queue
    - - Orders
      - Ratings
    - ${Queue}Alarm:
        Type: AWS::CloudWatch::Alarm
        Properties:
          QueueName: !GetAtt [!Ref Queue, QueueName]
          Description: !FindInMap [Descriptions, !Ref Queue, Text]
          Function:
            Ref: !Sub ${Queue}Function
""",
        encoding="utf-8",
    )

    resources = load_template(path)["Resources"]

    assert set(resources) == {"OrdersAlarm", "RatingsAlarm"}
    assert resources["RatingsAlarm"]["Properties"] == {
        "QueueName": {"Fn::GetAtt": ["Ratings", "QueueName"]},
        "Description": {"Fn::FindInMap": ["Descriptions", "Ratings", "Text"]},
        "Function": {"Ref": "RatingsFunction"},
    }


# --------------------------------------------------------------------------- intrinsics


def test_language_extensions_functions_resolve() -> None:
    template = {
        "Parameters": {
            "Names": {"Type": "CommaDelimitedList", "Default": "a,b,c"},
            "Stage": {"Type": "String", "Default": "dev"},
        }
    }
    parameters = {"Names": ["a", "b", "c"]}

    def resolve(value: Any) -> Any:
        return resolve_intrinsics(value, template, parameters)

    assert resolve({"Fn::Length": {"Ref": "Names"}}) == 3
    assert resolve({"Fn::Length": [1, {"Ref": "Stage"}]}) == 2
    assert resolve({"Fn::ToJsonString": {"a": {"Ref": "Stage"}, "n": [1]}}) == '{"a":"dev","n":[1]}'
    assert resolve({"Ref": {"Fn::Sub": "Sta${Suffix}"}}) == Unresolved(
        {"Ref": {"Fn::Sub": "Sta${Suffix}"}}
    )
    assert resolve({"Ref": {"Fn::Join": ["", ["Sta", "ge"]]}}) == "dev"
    assert isinstance(resolve({"Fn::Length": {"Ref": "Stage"}}), Unresolved)


# --------------------------------------------------------------------------- Globals


def test_globals_merge_as_sam_merges_them() -> None:
    globals_function = {
        "Handler": "app.lambda_handler",
        "Timeout": 30,
        "Layers": [{"Ref": "SharedLayer"}],
        "Architectures": ["arm64"],
        "LoggingConfig": {"LogFormat": "JSON"},
        "Environment": {"Variables": {"TABLE_NAME": {"Ref": "Table"}, "LEVEL": "INFO"}},
        "Tracing": {"Fn::If": ["IsProd", "Active", "PassThrough"]},
    }
    own = {
        "Timeout": 900,
        "Layers": [{"Ref": "OtherLayer"}],
        "Architectures": ["x86_64"],
        "LoggingConfig": {"LogGroup": {"Ref": "Logs"}},
        "Environment": {"Variables": {"LEVEL": "DEBUG", "QUEUE": {"Ref": "Queue"}}},
        "Tracing": "Active",
    }

    merged = merge_globals(globals_function, own)

    assert merged == {
        "Handler": "app.lambda_handler",
        "Timeout": 900,
        "Layers": [{"Ref": "SharedLayer"}, {"Ref": "OtherLayer"}],
        "Architectures": ["x86_64"],
        "LoggingConfig": {"LogFormat": "JSON", "LogGroup": {"Ref": "Logs"}},
        "Environment": {
            "Variables": {
                "TABLE_NAME": {"Ref": "Table"},
                "LEVEL": "DEBUG",
                "QUEUE": {"Ref": "Queue"},
            }
        },
        "Tracing": "Active",
    }
    # An intrinsic function is a value, not a mapping to merge into.
    assert merge_globals(
        {"Environment": {"Variables": {"A": "1"}}}, {"Environment": {"Fn::If": ["C", {}, {}]}}
    ) == {"Environment": {"Fn::If": ["C", {}, {}]}}
    assert merge_globals(globals_function, {}) == globals_function


# --------------------------------------------------------------------------- the repository's files

"""Create the DynamoDB table of a CloudFormation/SAM template against any endpoint.

:func:`load_template` parses a template with CloudFormation's short-form tags (``!Ref``,
``!Sub``, ``!GetAtt`` ...) turned into their long form (``{"Ref": ...}``,
``{"Fn::Sub": ...}``). :func:`table_definition` turns the ``AWS::DynamoDB::Table``
resource into ``create_table`` keyword arguments (without ``TableName``, which the
caller chooses), keeping only what DynamoDB Local accepts; :func:`create_table` creates
the table, waits until it is ACTIVE and enables TTL when the template sets it.

A template that declares the ``AWS::LanguageExtensions`` transform is read as CloudFormation
reads it: :func:`expand_for_each` (which :func:`load_template` applies) expands its
``Fn::ForEach`` loops first.

Intrinsic functions are resolved where that needs no deployed stack: ``Ref`` to a
parameter (its default, or the value passed in ``parameters``) or to a pseudo parameter,
``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``, ``Fn::If``
with the template's ``Conditions``, ``Fn::Base64``, ``Fn::Length``, ``Fn::ToJsonString``,
``AWS::NoValue``. Anything else (``Fn::GetAtt``, ``Fn::ImportValue`` ...) becomes an
:class:`Unresolved` value; an optional table property holding one is dropped, a required
one raises :class:`TemplateError`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import yaml

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = [
    "LANGUAGE_EXTENSIONS",
    "TABLE_TYPE",
    "TemplateError",
    "TemplateSource",
    "Unresolved",
    "create_table",
    "expand_for_each",
    "load_template",
    "resolve_intrinsics",
    "table_definition",
    "table_logical_ids",
    "ttl_attribute",
]

TABLE_TYPE: Final = "AWS::DynamoDB::Table"
LANGUAGE_EXTENSIONS: Final = "AWS::LanguageExtensions"
FOR_EACH_PREFIX: Final = "Fn::ForEach::"

TemplateSource = str | os.PathLike[str] | Mapping[str, Any]
"""A template's path, or a template already loaded by :func:`load_template`."""

PSEUDO_PARAMETERS: Final[Mapping[str, str]] = {
    "AWS::AccountId": "000000000000",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "local",
    "AWS::StackId": (
        "arn:aws:cloudformation:us-east-1:000000000000:stack/local/"
        "00000000-0000-0000-0000-000000000000"
    ),
}

# Short-form tag -> long-form key. Every other "!Name" tag becomes {"Fn::Name": ...}.
SHORT_FORM_TAGS: Final[Mapping[str, str]] = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub",
            "GetAtt",
            "If",
            "Equals",
            "Not",
            "Select",
            "Join",
            "Split",
            "FindInMap",
            "ImportValue",
            "And",
            "Or",
            "Base64",
            "Cidr",
            "GetAZs",
        )
    },
}


class TemplateError(ValueError):
    """The template is not usable for creating the table."""


# --------------------------------------------------------------------------- loading


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation short-form tags; dates stay strings like in CFN."""


# CloudFormation reads `Version: 2012-10-17` as a string, not a date.
_TemplateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(  # pragma: no cover - no other node kinds
        None, None, f"unexpected YAML node {node!r}", node.start_mark
    )


def _long_form(tag_name: str) -> str:
    return SHORT_FORM_TAGS.get(tag_name, f"Fn::{tag_name}")


def _construct_short_form(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    key = _long_form(tag_suffix)
    value = _construct_node(loader, node)
    if key == "Fn::GetAtt" and isinstance(value, str):
        # `!GetAtt Resource.Attribute` is `{"Fn::GetAtt": ["Resource", "Attribute"]}`.
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {key: value}


_TemplateLoader.add_multi_constructor("!", _construct_short_form)


def load_template(
    path: str | os.PathLike[str],
    *,
    expand: bool = True,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML (or JSON) template, short-form tags included.

    With ``expand`` (the default), ``Fn::ForEach`` loops are expanded (:func:`expand_for_each`,
    with ``parameters`` for collections given by a parameter); a loop that cannot be expanded
    raises :class:`TemplateError`. ``expand=False`` returns the document as written.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: a template must be a mapping, got {type(document).__name__}")
    template = cast(dict[str, Any], document)
    if not expand:
        return template
    expanded, problems = expand_for_each(template, parameters)
    if problems:
        raise TemplateError(f"{path}: " + "; ".join(problems))
    return expanded


def _as_template(template: TemplateSource) -> Mapping[str, Any]:
    if isinstance(template, Mapping):
        return template
    return load_template(template)


# --------------------------------------------------------------------------- intrinsics


@dataclass(frozen=True)
class Unresolved:
    """An intrinsic function that cannot be evaluated without a deployed stack."""

    expression: Any


class _NoValue:
    """``Ref: AWS::NoValue``: the enclosing property or list item disappears."""


_NO_VALUE: Final = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class _Resolver:
    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.template = template
        self.parameters = parameters
        self._conditions: dict[str, bool | Unresolved] = {}

    # -- helpers --------------------------------------------------------------
    def _section(self, name: str) -> Mapping[str, Any]:
        section = self.template.get(name) or {}
        return section if isinstance(section, Mapping) else {}

    def ref(self, name: Any) -> Any:
        # AWS::LanguageExtensions: the name may be given by a function (`Ref: !Sub ...`).
        target = self.resolve(name) if isinstance(name, Mapping) else name
        if not isinstance(target, str):
            return Unresolved({"Ref": name})
        name = target
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        declared = self._section("Parameters").get(name)
        if isinstance(declared, Mapping) and "Default" in declared:
            return self.resolve(declared["Default"])
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        return Unresolved({"Ref": name})

    def condition(self, name: Any) -> bool | Unresolved:
        if not isinstance(name, str):
            return Unresolved({"Condition": name})
        if name not in self._conditions:
            self._conditions[name] = Unresolved({"Condition": name})  # guards cycles
            definition = self._section("Conditions").get(name)
            if definition is None:
                return self._conditions[name]
            value = self.resolve(definition)
            self._conditions[name] = (
                value if isinstance(value, bool | Unresolved) else Unresolved(definition)
            )
        return self._conditions[name]

    # -- functions ------------------------------------------------------------
    def _sub(self, argument: Any) -> Any:
        if isinstance(argument, str):
            text, variables = argument, {}
        elif isinstance(argument, list) and len(argument) == 2:
            text, raw_variables = argument
            if not isinstance(text, str) or not isinstance(raw_variables, Mapping):
                return Unresolved({"Fn::Sub": argument})
            variables = {key: self.resolve(value) for key, value in raw_variables.items()}
        else:
            return Unresolved({"Fn::Sub": argument})
        failed = False

        def replace(match: re.Match[str]) -> str:
            nonlocal failed
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            value = variables[name] if name in variables else self.ref(name)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return str(value)
            failed = True
            return match.group(0)

        result = _SUB_VARIABLE.sub(replace, text)
        return Unresolved({"Fn::Sub": argument}) if failed else result

    def _if(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            return Unresolved({"Fn::If": argument})
        chosen = self.condition(argument[0])
        if isinstance(chosen, Unresolved):
            return Unresolved({"Fn::If": argument})
        return self.resolve(argument[1] if chosen else argument[2])

    def _function(self, key: str, argument: Any) -> Any:
        special = {
            "Ref": self.ref,
            "Condition": self.condition,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
        }.get(key)
        if special is not None:
            return special(argument)
        expression = {key: argument}
        value = self.resolve(argument)
        if _contains_unresolved(value):
            return Unresolved(expression)
        evaluate = _EVALUATORS.get(key)
        result = evaluate(value, self._section("Mappings")) if evaluate is not None else None
        return Unresolved(expression) if result is None else result

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key in {"Ref", "Condition"} or str(key).startswith("Fn::"):
                    return self._function(str(key), argument)
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not _NO_VALUE}
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        return value


def _truthy(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _pair(value: Any) -> tuple[Any, Any] | None:
    return (value[0], value[1]) if isinstance(value, list) and len(value) == 2 else None


def _equals(value: Any, _: Mapping[str, Any]) -> bool | None:
    pair = _pair(value)
    if pair is None:
        return None
    left, right = (str(item) if isinstance(item, int | float) else item for item in pair)
    return bool(left == right)


def _not(value: Any, _: Mapping[str, Any]) -> bool | None:
    if not (isinstance(value, list) and len(value) == 1):
        return None
    flag = _truthy(value[0])
    return None if flag is None else not flag


def _and(value: Any, _: Mapping[str, Any]) -> bool | None:
    flags = [_truthy(item) for item in value] if isinstance(value, list) and value else [None]
    return None if None in flags else all(flags)


def _or(value: Any, _: Mapping[str, Any]) -> bool | None:
    flags = [_truthy(item) for item in value] if isinstance(value, list) and value else [None]
    return None if None in flags else any(flags)


def _join(value: Any, _: Mapping[str, Any]) -> str | None:
    pair = _pair(value)
    if pair is None or not isinstance(pair[0], str) or not isinstance(pair[1], list):
        return None
    return pair[0].join(str(item) for item in pair[1])


def _select(value: Any, _: Mapping[str, Any]) -> Any:
    pair = _pair(value)
    if pair is None or not isinstance(pair[1], list) or not str(pair[0]).isdigit():
        return None
    index, items = int(pair[0]), pair[1]
    return items[index] if index < len(items) else None


def _split(value: Any, _: Mapping[str, Any]) -> list[str] | None:
    pair = _pair(value)
    if pair is None or not isinstance(pair[0], str) or not isinstance(pair[1], str):
        return None
    return pair[1].split(pair[0])


def _find_in_map(value: Any, mappings: Mapping[str, Any]) -> Any:
    if not (isinstance(value, list) and len(value) in (3, 4)):
        return None
    name, top, second = value[:3]
    found = mappings.get(name, {})
    found = found.get(top, {}) if isinstance(found, Mapping) else {}
    if isinstance(found, Mapping) and second in found:
        return found[second]
    if len(value) == 4 and isinstance(value[3], Mapping):
        return value[3].get("DefaultValue")
    return None


def _base64(value: Any, _: Mapping[str, Any]) -> str | None:
    return base64.b64encode(value.encode()).decode() if isinstance(value, str) else None


def _length(value: Any, _: Mapping[str, Any]) -> int | None:
    return len(value) if isinstance(value, list) else None


def _to_json_string(value: Any, _: Mapping[str, Any]) -> str | None:
    if not isinstance(value, Mapping | list):
        return None
    return json.dumps(value, separators=(",", ":"))


# Evaluate a function whose argument is fully resolved; None means "cannot".
_EVALUATORS: Final[Mapping[str, Callable[[Any, Mapping[str, Any]], Any]]] = {
    "Fn::Equals": _equals,
    "Fn::Not": _not,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": _base64,
    "Fn::Length": _length,
    "Fn::ToJsonString": _to_json_string,
}


def _contains_unresolved(value: Any) -> bool:
    if isinstance(value, Unresolved):
        return True
    if isinstance(value, Mapping):
        return any(_contains_unresolved(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_unresolved(item) for item in value)
    return False


def resolve_intrinsics(
    value: Any, template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
) -> Any:
    """``value`` with the intrinsic functions that need no deployed stack evaluated.

    The rest become :class:`Unresolved`; ``Ref: AWS::NoValue`` removes its key or item.
    """
    return _Resolver(template, parameters or {}).resolve(value)


# --------------------------------------------------------------------------- Fn::ForEach

_FOR_EACH_SECTIONS: Final = ("Conditions", "Resources", "Outputs")
_NON_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


def expand_for_each(
    template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The template with its ``Fn::ForEach`` loops expanded, as ``AWS::LanguageExtensions`` does.

    ``"Fn::ForEach::<Name>": [Identifier, [values...], {"<Key${Identifier}>": ...}]`` becomes
    one ``<Key...>`` entry per value, in the Conditions, Resources and Outputs sections
    (resource properties included; loops nest). In each copy, ``${Identifier}`` is replaced by
    the value and ``&{Identifier}`` by the value without its non-alphanumeric characters, in
    keys and in every string (so in ``Fn::Sub`` strings), and ``{"Ref": "Identifier"}`` by the
    value; a ``Fn::Sub`` left with no variable inside ``Ref`` or ``Fn::GetAtt`` becomes the
    plain logical id it names. The collection is a list, or a function of the parameters
    (``!Ref`` of a ``CommaDelimitedList``), resolved with ``parameters`` as
    :func:`resolve_intrinsics` does. ``AWS::LanguageExtensions`` leaves ``Transform``.

    Returns the expanded template (the input is not changed) and what could not be expanded
    locally (a collection that needs a deployed stack, or a parameter without a value): each
    such loop is left out, and said so. A loop CloudFormation would reject (its shape, a key
    produced twice, no ``AWS::LanguageExtensions`` transform) raises :class:`TemplateError`.
    """
    expander = _ForEachExpander(template, parameters or {})
    expanded: dict[str, Any] = dict(template)
    for section in _FOR_EACH_SECTIONS:
        if isinstance(template.get(section), Mapping):
            expanded[section] = expander.walk(template[section], section)
    for section, value in template.items():
        if section not in _FOR_EACH_SECTIONS and _has_loop(value):
            raise TemplateError(
                f"{section}: Fn::ForEach is only allowed in Conditions, Resources and Outputs"
            )
    transforms = _transforms(template.get("Transform"))
    if LANGUAGE_EXTENSIONS in transforms:
        rest = [name for name in transforms if name != LANGUAGE_EXTENSIONS]
        if rest:
            expanded["Transform"] = rest if isinstance(template["Transform"], list) else rest[0]
        else:
            del expanded["Transform"]
    elif expander.loops:
        raise TemplateError(
            f"Fn::ForEach needs the {LANGUAGE_EXTENSIONS} transform "
            f"(Transform: [{LANGUAGE_EXTENSIONS}, ...])"
        )
    return expanded, expander.problems


def _transforms(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _has_loop(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(
            str(key).startswith(FOR_EACH_PREFIX) or _has_loop(item) for key, item in value.items()
        )
    if isinstance(value, list):
        return any(_has_loop(item) for item in value)
    return False


class _ForEachExpander:
    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.template = template
        self.parameters = parameters
        self.declared = set(template.get("Parameters") or {})
        self.loops = 0
        self.problems: list[str] = []

    def walk(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [self.walk(item, f"{where}[{index}]") for index, item in enumerate(value)]
        if not isinstance(value, Mapping):
            return value
        result: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.startswith(FOR_EACH_PREFIX):
                entries = self.loop(key, item, where)
            else:
                entries = {key: self.walk(item, f"{where}.{key}")}
            for name, entry in entries.items():
                if name in result:
                    raise TemplateError(f"{where}.{key}: {name} is produced twice")
                result[name] = entry
        return result

    def loop(self, key: str, spec: Any, where: str) -> dict[str, Any]:
        self.loops += 1
        here = f"{where}.{key}"
        if not (isinstance(spec, list) and len(spec) == 3):
            raise TemplateError(f"{here}: expected [Identifier, Collection, {{OutputKey: ...}}]")
        identifier, collection, body = spec
        if not isinstance(identifier, str) or not identifier:
            raise TemplateError(f"{here}: the identifier must be a non-empty string")
        if identifier in self.declared:
            raise TemplateError(f"{here}: the identifier {identifier} is also a parameter name")
        if not isinstance(body, Mapping) or not body:
            raise TemplateError(f"{here}: the fragment must be a mapping of OutputKey: OutputValue")
        values = self.collection(collection, here)
        if values is None:
            return {}
        result: dict[str, Any] = {}
        for value in values:
            copy = _substitute(body, identifier, value)
            for name, entry in self.walk(copy, here).items():
                if name in result:
                    raise TemplateError(
                        f"{here}: {name} is produced twice (put ${{{identifier}}} or "
                        f"&{{{identifier}}} in the key)"
                    )
                result[name] = entry
        return result

    def collection(self, value: Any, where: str) -> list[str] | None:
        items: Any
        if isinstance(value, list):
            items = [resolve_intrinsics(item, self.template, self.parameters) for item in value]
        elif not isinstance(value, Mapping):
            raise TemplateError(f"{where}: the collection must be a list, got {value!r}")
        else:
            items = resolve_intrinsics(value, self.template, self.parameters)
            if isinstance(items, str):  # a CommaDelimitedList parameter's default
                items = [item.strip() for item in items.split(",")]
        if not isinstance(items, list):
            if _contains_unresolved(items):
                self.problems.append(
                    f"{where}: the collection {value!r} cannot be resolved locally "
                    "(a parameter without a value, or a function that needs a deployed "
                    "stack); the loop is left out"
                )
                return None
            raise TemplateError(f"{where}: the collection must be a list, got {items!r}")
        texts: list[str] = []
        for item in items:
            if isinstance(item, Unresolved):
                self.problems.append(
                    f"{where}: the collection item {item.expression!r} cannot be resolved "
                    "locally; the loop is left out"
                )
                return None
            if isinstance(item, bool):
                texts.append("true" if item else "false")
            elif isinstance(item, str | int | float):
                texts.append(str(item))
            else:
                raise TemplateError(f"{where}: collection items must be strings, got {item!r}")
        return texts


def _substitute(value: Any, identifier: str, item: str) -> Any:
    """``value`` with the loop's identifier replaced by ``item`` (see :func:`expand_for_each`)."""
    if isinstance(value, str):
        return value.replace(f"${{{identifier}}}", item).replace(
            f"&{{{identifier}}}", _NON_ALPHANUMERIC.sub("", item)
        )
    if isinstance(value, list):
        return [_substitute(element, identifier, item) for element in value]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1 and value.get("Ref") == identifier:
        return item
    result = {
        _substitute(key, identifier, item): _substitute(element, identifier, item)
        for key, element in value.items()
    }
    if len(result) == 1 and "Ref" in result:
        result["Ref"] = _literal_sub(result["Ref"])
    elif len(result) == 1 and isinstance(result.get("Fn::GetAtt"), list):
        result["Fn::GetAtt"] = [_literal_sub(element) for element in result["Fn::GetAtt"]]
    return result


def _literal_sub(value: Any) -> Any:
    """``{"Fn::Sub": "Name"}`` (no variable left) is ``"Name"``; anything else is unchanged."""
    if isinstance(value, Mapping) and len(value) == 1:
        text = value.get("Fn::Sub")
        if isinstance(text, str) and "${" not in text:
            return text
    return value


# --------------------------------------------------------------------------- tables


def table_logical_ids(template: TemplateSource) -> list[str]:
    """Logical ids of the ``AWS::DynamoDB::Table`` resources, in template order."""
    resources = _as_template(template).get("Resources") or {}
    if not isinstance(resources, Mapping):
        raise TemplateError("Resources must be a mapping")
    return [
        logical_id
        for logical_id, resource in resources.items()
        if isinstance(resource, Mapping) and resource.get("Type") == TABLE_TYPE
    ]


def _table_properties(
    template: Mapping[str, Any], logical_id: str | None, parameters: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    ids = table_logical_ids(template)
    if logical_id is None:
        if len(ids) != 1:
            raise TemplateError(
                f"expected exactly one {TABLE_TYPE} resource, found {len(ids)} "
                f"({', '.join(ids) or 'none'}): pass logical_id"
            )
        logical_id = ids[0]
    elif logical_id not in ids:
        raise TemplateError(
            f"{logical_id!r} is not a {TABLE_TYPE} resource (tables: {', '.join(ids) or 'none'})"
        )
    properties = template["Resources"][logical_id].get("Properties") or {}
    if not isinstance(properties, Mapping):
        raise TemplateError(f"{logical_id}: Properties must be a mapping")
    resolved = resolve_intrinsics(properties, template, parameters)
    return logical_id, cast(dict[str, Any], resolved)


def _required(logical_id: str, name: str, value: Any) -> Any:
    if value is None:
        raise TemplateError(f"{logical_id}: {name} is required")
    if _contains_unresolved(value):
        raise TemplateError(
            f"{logical_id}: {name} uses intrinsic functions that cannot be resolved"
        )
    return value


def _throughput(value: Any) -> dict[str, int]:
    return {
        "ReadCapacityUnits": int(value["ReadCapacityUnits"]),
        "WriteCapacityUnits": int(value["WriteCapacityUnits"]),
    }


def _projection(value: Any) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": value.get("ProjectionType", "ALL")}
    if value.get("NonKeyAttributes"):
        projection["NonKeyAttributes"] = list(value["NonKeyAttributes"])
    return projection


def _index(logical_id: str, index: Any, provisioned: bool) -> dict[str, Any]:
    name = _required(logical_id, "IndexName", index.get("IndexName"))
    where = f"index {name}"
    definition: dict[str, Any] = {
        "IndexName": name,
        "KeySchema": _required(logical_id, f"{where} KeySchema", index.get("KeySchema")),
        "Projection": _projection(
            _required(logical_id, f"{where} Projection", index.get("Projection"))
        ),
    }
    if provisioned and index.get("ProvisionedThroughput") is not None:
        definition["ProvisionedThroughput"] = _throughput(
            _required(logical_id, f"{where} ProvisionedThroughput", index["ProvisionedThroughput"])
        )
    return definition


def table_definition(
    template_path: TemplateSource,
    logical_id: str | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``create_table`` keyword arguments for a table of the template, except TableName.

    ``logical_id=None`` takes the template's only ``AWS::DynamoDB::Table``. Kept:
    KeySchema, AttributeDefinitions, BillingMode (PAY_PER_REQUEST unless the template
    says PROVISIONED), ProvisionedThroughput, Global/LocalSecondaryIndexes and
    StreamSpecification. Dropped: TableName, TimeToLiveSpecification (see
    :func:`ttl_attribute`) and what DynamoDB Local does not take or need, such as
    PointInTimeRecoverySpecification, SSESpecification, Tags, DeletionProtectionEnabled.
    """
    template = _as_template(template_path)
    logical_id, props = _table_properties(template, logical_id, parameters)
    billing_mode = props.get("BillingMode")
    if not isinstance(billing_mode, str):
        billing_mode = "PROVISIONED" if props.get("ProvisionedThroughput") else "PAY_PER_REQUEST"
    provisioned = billing_mode == "PROVISIONED"
    definition: dict[str, Any] = {
        "AttributeDefinitions": _required(
            logical_id, "AttributeDefinitions", props.get("AttributeDefinitions")
        ),
        "KeySchema": _required(logical_id, "KeySchema", props.get("KeySchema")),
        "BillingMode": billing_mode,
    }
    if provisioned:
        definition["ProvisionedThroughput"] = _throughput(
            _required(logical_id, "ProvisionedThroughput", props.get("ProvisionedThroughput"))
        )
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = props.get(key)
        if indexes:
            definition[key] = [
                _index(logical_id, index, provisioned and key == "GlobalSecondaryIndexes")
                for index in _required(logical_id, key, indexes)
            ]
    stream = props.get("StreamSpecification")
    view_type = stream.get("StreamViewType") if isinstance(stream, Mapping) else None
    if isinstance(view_type, str) and view_type:
        definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
    return definition


def ttl_attribute(
    template_path: TemplateSource,
    logical_id: str | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
) -> str | None:
    """The TTL attribute the template enables on the table, or None."""
    template = _as_template(template_path)
    _, props = _table_properties(template, logical_id, parameters)
    spec = props.get("TimeToLiveSpecification")
    if not isinstance(spec, Mapping) or _truthy(spec.get("Enabled")) is not True:
        return None
    name = spec.get("AttributeName")
    return name if isinstance(name, str) and name else None


def create_table(
    client: DynamoDBClient,
    template_path: TemplateSource,
    table_name: str,
    logical_id: str | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Create ``table_name`` as the template defines it, wait until ACTIVE, enable TTL.

    Returns the final ``DescribeTable`` ``Table`` description.
    """
    template = _as_template(template_path)
    definition = table_definition(template, logical_id, parameters=parameters)
    client.create_table(TableName=table_name, **definition)
    description = _wait_active(client, table_name, timeout)
    ttl = ttl_attribute(template, logical_id, parameters=parameters)
    if ttl is not None:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True},
        )
    return description


def _wait_active(client: DynamoDBClient, table_name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        table = cast(dict[str, Any], client.describe_table(TableName=table_name)["Table"])
        indexes = table.get("GlobalSecondaryIndexes", [])
        if table.get("TableStatus") == "ACTIVE" and all(
            index.get("IndexStatus") == "ACTIVE" for index in indexes
        ):
            return table
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table_name} not ACTIVE after {timeout:.0f}s: {table}")
        time.sleep(0.1)

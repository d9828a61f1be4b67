"""EventBridge event patterns (also Lambda's event filtering): does a pattern match an event?

Supported, as EventBridge documents them: exact values (strings, numbers, booleans, null),
arrays as "any of", nested objects, ``prefix``, ``suffix``, ``anything-but`` (values, prefix,
suffix, wildcard), ``numeric`` ranges, ``exists``, ``equals-ignore-case``, ``wildcard``, ``cidr``
(IPv4) and ``$or``. When the event's value is an array, the pattern matches if any element does.
"""

from __future__ import annotations

import ipaddress
import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["PatternError", "matches", "parse_pattern"]

_MISSING: Final = object()
_COMPARISONS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}


class PatternError(ValueError):
    """The pattern is not a valid EventBridge event pattern."""


def parse_pattern(value: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A pattern from its JSON text (or the mapping itself); raises PatternError."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise PatternError(f"not JSON: {exc}") from exc
    if not isinstance(value, Mapping):
        raise PatternError("an event pattern is a JSON object")
    return value


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Whether ``event`` (a decoded JSON object) matches ``pattern``."""
    if not isinstance(event, Mapping):
        return False
    for key, expected in pattern.items():
        if key == "$or":
            if not isinstance(expected, list) or not any(
                matches(alternative, event) for alternative in expected
            ):
                return False
            continue
        actual = event.get(key, _MISSING)
        if isinstance(expected, Mapping):
            if not matches(expected, actual if isinstance(actual, Mapping) else {}):
                return False
            if actual is _MISSING and not _only_absence(expected):
                return False
        elif isinstance(expected, list):
            if not _matches_any(expected, actual):
                return False
        else:
            raise PatternError(f"{key}: pattern values are arrays or objects, not {expected!r}")
    return True


def _only_absence(pattern: Mapping[str, Any]) -> bool:
    """A nested pattern that an absent object satisfies: every leaf is ``exists: false``."""
    for value in pattern.values():
        if isinstance(value, Mapping):
            if not _only_absence(value):
                return False
        elif not (
            isinstance(value, list)
            and value
            and all(isinstance(item, Mapping) and item.get("exists") is False for item in value)
        ):
            return False
    return True


def _matches_any(matchers: list[Any], actual: Any) -> bool:
    if actual is _MISSING:
        return any(isinstance(m, Mapping) and m.get("exists") is False for m in matchers)
    values = actual if isinstance(actual, list) else [actual]
    for matcher in matchers:
        if isinstance(matcher, Mapping) and "exists" in matcher:
            if matcher["exists"] is True:
                return True
            continue
        if isinstance(matcher, Mapping) and "anything-but" in matcher:
            # "anything-but" holds when no element of an array is excluded.
            if values and all(_anything_but(matcher["anything-but"], value) for value in values):
                return True
            continue
        if any(_match_one(matcher, value) for value in values):
            return True
    return False


def _equal(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return expected is value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return bool(expected == value)


def _match_one(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, Mapping):
        return _equal(matcher, value)
    if len(matcher) != 1:
        raise PatternError(f"a matcher has exactly one key: {matcher!r}")
    ((kind, argument),) = matcher.items()
    test = _MATCHERS.get(kind)
    if test is None:
        raise PatternError(f"unknown matcher {kind!r}")
    return test(argument, value)


def _affix(argument: Any, value: Any, test: Callable[[str, str], bool]) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(argument, Mapping) and "equals-ignore-case" in argument:
        return test(value.casefold(), str(argument["equals-ignore-case"]).casefold())
    return test(value, str(argument))


def _wildcard(pattern: str, value: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _numeric(argument: Any, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not isinstance(argument, list) or len(argument) % 2:
        raise PatternError(f"numeric takes operator/value pairs: {argument!r}")
    for index in range(0, len(argument), 2):
        compare = _COMPARISONS.get(str(argument[index]))
        if compare is None:
            raise PatternError(f"unknown numeric operator {argument[index]!r}")
        if not compare(float(value), float(argument[index + 1])):
            return False
    return True


def _cidr(network: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


_MATCHERS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "prefix": lambda argument, value: _affix(argument, value, str.startswith),
    "suffix": lambda argument, value: _affix(argument, value, str.endswith),
    "equals-ignore-case": lambda argument, value: (
        isinstance(value, str) and value.casefold() == str(argument).casefold()
    ),
    "wildcard": lambda argument, value: isinstance(value, str) and _wildcard(str(argument), value),
    "numeric": _numeric,
    "cidr": lambda argument, value: _cidr(str(argument), value),
}


def _anything_but(argument: Any, value: Any) -> bool:
    """True when ``value`` is none of what ``anything-but`` excludes."""
    if isinstance(argument, list):
        return not any(_equal(excluded, value) for excluded in argument)
    if isinstance(argument, Mapping):
        if "equals-ignore-case" in argument:
            excluded = argument["equals-ignore-case"]
            options = excluded if isinstance(excluded, list) else [excluded]
            return not (
                isinstance(value, str)
                and any(value.casefold() == str(option).casefold() for option in options)
            )
        if "prefix" in argument:
            return not _affix(argument["prefix"], value, str.startswith)
        if "suffix" in argument:
            return not _affix(argument["suffix"], value, str.endswith)
        if "wildcard" in argument:
            options = argument["wildcard"]
            options = options if isinstance(options, list) else [options]
            return not (
                isinstance(value, str) and any(_wildcard(str(option), value) for option in options)
            )
        raise PatternError(f"unknown anything-but matcher {argument!r}")
    return not _equal(argument, value)

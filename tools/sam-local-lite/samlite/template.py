"""Read a SAM template into what the local stack serves: a :class:`StackModel`.

Nothing here is specific to this project's functions: a function, route, rule, schedule, queue
or mapping added to the template appears in the model without changing the runner.

Read from the template:

- ``Fn::ForEach`` loops (``AWS::LanguageExtensions``), expanded first with the parameters'
  values (:func:`samlite.cfn.expand_for_each`).
- ``AWS::Serverless::Function`` (Python runtimes): ``CodeUri`` + ``Handler``, ``Runtime``,
  ``Timeout``, ``MemorySize``, ``Environment``, ``EventInvokeConfig``, each from the function
  or from ``Globals.Function`` (merged as SAM merges them: mappings key by key, lists
  concatenated, any other value replaced by the function's own); its ``Events`` of type
  ``HttpApi``, ``EventBridgeRule``/``CloudWatchEvent``, ``Schedule``, ``ScheduleV2``, ``SQS``
  and ``DynamoDB``.
- ``AWS::Serverless::HttpApi`` (``Auth``: JWT authorizers, ``DefaultAuthorizer``, IAM; with
  ``Globals.HttpApi`` merged in).
- ``AWS::Events::Rule`` (pattern or schedule; targets that are functions or queues),
  ``AWS::Scheduler::Schedule``, ``AWS::Lambda::EventSourceMapping``.
- ``AWS::DynamoDB::Table``, ``AWS::SQS::Queue`` (``RedrivePolicy``), ``AWS::Events::EventBus``.

Intrinsic functions are resolved with :func:`.cfn.resolve_intrinsics`, with the
parameters' defaults (or overrides), resources' ``Condition``, and every ``Ref``/``Fn::GetAtt``
of a resource mapped to its local value (a table's name, a queue's local URL, ARNs in the
local account ``000000000000``). What the local stack cannot serve is listed in
:attr:`StackModel.warnings` instead of failing (a loop whose collection has no local value
among them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

from .cfn import Unresolved, expand_for_each, load_template, resolve_intrinsics

__all__ = [
    "ACCOUNT",
    "LOCAL_AUDIENCE",
    "LOCAL_ISSUER",
    "REGION",
    "AuthorizerSpec",
    "BusSpec",
    "FunctionSpec",
    "MappingSpec",
    "QueueSpec",
    "RouteSpec",
    "RuleSpec",
    "ScheduleSpec",
    "StackModel",
    "TableSpec",
    "Target",
    "merge_globals",
    "read_stack",
]

ACCOUNT: Final = "000000000000"
REGION: Final = "us-east-1"
LOCAL_ISSUER: Final = "https://auth.samlite.local"
"""Issuer of the local JWT authorizer when the template's issuer has no value locally."""
LOCAL_AUDIENCE: Final = "samlite-local"
"""Audience of the local JWT authorizer when the template's audience has no value locally."""
DEFAULT_BUS: Final = "default"

_FUNCTION_TYPES = ("AWS::Serverless::Function",)
_SUPPORTED_EVENTS = (
    "HttpApi",
    "EventBridgeRule",
    "CloudWatchEvent",
    "Schedule",
    "ScheduleV2",
    "SQS",
    "DynamoDB",
)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: float
    memory: int
    environment: Mapping[str, str]
    max_retry_attempts: int = 2
    """Asynchronous invocations (EventBridge, schedules): retries after a function error."""
    max_event_age: int = 21600
    on_failure: str | None = None
    """Destination ARN for asynchronous invocations that still failed after the retries."""
    on_success: str | None = None

    @property
    def aliases(self) -> frozenset[str]:
        """Names that designate the function on the command line."""
        names = {self.logical_id, self.name, self.code_dir.name}
        service = self.environment.get("POWERTOOLS_SERVICE_NAME")
        if service:
            names.add(service)
        return frozenset(names)


@dataclass(frozen=True)
class Target:
    """What a rule or schedule delivers to: a function (by ARN) or a queue (by ARN)."""

    arn: str
    input: str | None = None
    input_path: str | None = None
    input_transformer: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule with an event pattern."""

    source: str
    """Where the template declares it: ``Function.Event`` or the resource's logical id."""
    name: str
    arn: str
    bus: str
    pattern: Mapping[str, Any]
    targets: tuple[Target, ...]
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule: an EventBridge rule's ``ScheduleExpression`` or an EventBridge Scheduler one."""

    source: str
    event_name: str
    """The event's name in the function's ``Events`` (or the resource's logical id)."""
    kind: Literal["events", "scheduler"]
    name: str
    arn: str
    expression: str
    timezone: str
    targets: tuple[Target, ...]
    enabled: bool = True


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    url: str
    arn: str
    visibility_timeout: int = 30
    retention: int = 345600
    delay: int = 0
    fifo: bool = False
    dead_letter_arn: str | None = None
    max_receive_count: int | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    arn: str
    stream_arn: str
    """A placeholder ARN that names the table's stream in the template's references."""


@dataclass(frozen=True)
class BusSpec:
    name: str
    arn: str
    logical_id: str | None = None


@dataclass(frozen=True)
class MappingSpec:
    """An event source mapping: a queue or a table's stream feeding a function."""

    source: str
    function: str
    """The function's logical id."""
    kind: Literal["sqs", "dynamodb"]
    source_id: str
    """The queue's or table's logical id."""
    batch_size: int
    batching_window: float = 0.0
    starting_position: str = "LATEST"
    max_retry_attempts: int = -1
    bisect_on_error: bool = False
    max_record_age: int = -1
    report_batch_item_failures: bool = False
    filters: tuple[Mapping[str, Any], ...] = ()
    on_failure: str | None = None
    enabled: bool = True
    max_concurrency: int | None = None


@dataclass(frozen=True)
class AuthorizerSpec:
    name: str
    issuer: str
    audience: tuple[str, ...]
    identity_source: str = "$request.header.Authorization"
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteSpec:
    api: str
    method: str
    """An HTTP method in capitals, or ``ANY``."""
    path: str
    """``/v1/me``, ``/v1/members/{memberId}``, ``/{proxy+}``, or ``$default``."""
    function: str
    auth: Literal["NONE", "AWS_IAM", "JWT"]
    authorizer: AuthorizerSpec | None = None
    scopes: tuple[str, ...] = ()
    timeout_ms: int = 30000

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass
class StackModel:
    template_path: Path
    stack_name: str
    region: str
    account: str
    parameters: dict[str, Any]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    buses: dict[str, BusSpec] = field(default_factory=dict)
    """By bus name; ``default`` is always there."""
    rules: list[RuleSpec] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    mappings: list[MappingSpec] = field(default_factory=list)
    routes: list[RouteSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def function_by_arn(self, arn: str) -> FunctionSpec | None:
        for spec in self.functions.values():
            if arn in (spec.arn, spec.name):
                return spec
        return None

    def queue_by_arn(self, arn: str) -> QueueSpec | None:
        for spec in self.queues.values():
            if arn in (spec.arn, spec.url, spec.name):
                return spec
        return None

    def find_function(self, name: str) -> FunctionSpec:
        """A function by logical id, function name, code folder or service name."""
        found = [spec for spec in self.functions.values() if name in spec.aliases]
        if len(found) != 1:
            known = ", ".join(sorted(self.functions)) or "none"
            problem = "is ambiguous" if found else "is not a function of the template"
            raise KeyError(f"{name!r} {problem} (functions: {known})")
        return found[0]


# --------------------------------------------------------------------------- resolving


def _parameter_values(
    template: Mapping[str, Any], overrides: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """Each parameter's value (override, else default); list types become lists."""
    values: dict[str, Any] = {}
    missing: list[str] = []
    declared = template.get("Parameters") or {}
    for name, spec in declared.items():
        if not isinstance(spec, Mapping):
            continue
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            missing.append(name)
            continue
        kind = str(spec.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            if isinstance(raw, list):
                values[name] = [str(item) for item in raw]
            else:
                values[name] = [item.strip() for item in str(raw).split(",")]
        else:
            values[name] = raw if isinstance(raw, str) else str(raw)
    for name, value in overrides.items():
        values.setdefault(name, value)
    return values, missing


def _substitute_get_att(value: Any, attributes: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping):
        if len(value) == 1 and "Fn::GetAtt" in value:
            argument = value["Fn::GetAtt"]
            if isinstance(argument, str):
                argument = argument.split(".", 1)
            if isinstance(argument, list) and len(argument) == 2:
                key = f"{argument[0]}.{argument[1]}"
                if key in attributes:
                    return attributes[key]
            return value
        return {key: _substitute_get_att(item, attributes) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute_get_att(item, attributes) for item in value]
    return value


def _unresolved(value: Any) -> bool:
    if isinstance(value, Unresolved):
        return True
    if isinstance(value, Mapping):
        return any(_unresolved(item) for item in value.values())
    if isinstance(value, list):
        return any(_unresolved(item) for item in value)
    return False


class _Resolver:
    def __init__(self, template: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        self.template = template
        self.values: dict[str, Any] = dict(values)

    def __call__(self, value: Any) -> Any:
        return resolve_intrinsics(
            _substitute_get_att(value, self.values), self.template, self.values
        )

    def condition(self, name: Any) -> bool:
        if name is None:
            return True
        result = self({"Condition": name})
        return result is not False


def _as_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, bool) or value is None or isinstance(value, Unresolved):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _pattern(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else None


def _input_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


_REPLACED_LISTS: Final = frozenset({"Architectures"})
"""Lists a resource's own value replaces instead of adding to Globals' (SAM's rule)."""


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, Mapping) and len(value) == 1):
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def merge_globals(global_value: Any, own: Any, path: str = "") -> Any:
    """A resource's property merged with its ``Globals`` value, as SAM merges them.

    Two mappings merge key by key (recursively); two lists are concatenated, Globals' items
    first (except ``Architectures``, replaced); anything else, an intrinsic function included,
    is the resource's own value.
    """
    if _is_intrinsic(global_value) or _is_intrinsic(own):
        return own
    if isinstance(global_value, Mapping) and isinstance(own, Mapping):
        merged = dict(global_value)
        for key, value in own.items():
            child = f"{path}.{key}" if path else str(key)
            merged[key] = merge_globals(merged[key], value, child) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(own, list) and path not in _REPLACED_LISTS:
        return [*global_value, *own]
    return own


# --------------------------------------------------------------------------- reading


class _Reader:
    def __init__(
        self,
        template_path: Path,
        *,
        stack_name: str,
        region: str,
        account: str,
        parameters: Mapping[str, str],
        services_url: str,
        http_url: str,
    ) -> None:
        self.template_path = template_path.resolve()
        self.root = self.template_path.parent
        written = load_template(self.template_path, expand=False)
        self.stack_name = stack_name
        self.region = region
        self.account = account
        self.services_url = services_url.rstrip("/")
        self.http_url = http_url.rstrip("/")
        values, self.missing_parameters = _parameter_values(written, parameters)
        values.update({"AWS::Region": region, "AWS::AccountId": account})
        values["AWS::StackName"] = stack_name
        # Fn::ForEach first, with the parameters' local values (as AWS::LanguageExtensions does
        # with the stack's); a loop that cannot be expanded is a warning.
        self.template, loop_warnings = expand_for_each(written, values)
        self.resolve = _Resolver(self.template, values)
        resources = self.template.get("Resources") or {}
        self.resources: dict[str, Mapping[str, Any]] = {
            lid: resource
            for lid, resource in resources.items()
            if isinstance(resource, Mapping) and self.resolve.condition(resource.get("Condition"))
        }
        self.model = StackModel(
            template_path=self.template_path,
            stack_name=stack_name,
            region=region,
            account=account,
            parameters=values,
            warnings=list(loop_warnings),
        )
        self.globals_function: Mapping[str, Any] = (self.template.get("Globals") or {}).get(
            "Function"
        ) or {}
        self.globals_http: Mapping[str, Any] = (self.template.get("Globals") or {}).get(
            "HttpApi"
        ) or {}

    # -- helpers ------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        self.model.warnings.append(message)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def props(self, logical_id: str) -> Mapping[str, Any]:
        properties = self.resources[logical_id].get("Properties") or {}
        return properties if isinstance(properties, Mapping) else {}

    def physical_name(self, logical_id: str, key: str, suffix: str = "") -> str:
        """The resource's name property, resolved from parameters; else ``<stack>-<id>``."""
        value = self.resolve(self.props(logical_id).get(key))
        if isinstance(value, str) and value:
            return value
        return f"{self.stack_name}-{logical_id}{suffix}"

    # -- pass 1: names and attributes ---------------------------------------------------------

    def name_resources(self) -> None:
        values = self.resolve.values
        values.setdefault(DEFAULT_BUS, DEFAULT_BUS)
        default_arn = self.arn("events", "event-bus/default")
        self.model.buses[DEFAULT_BUS] = BusSpec(DEFAULT_BUS, default_arn)
        for lid, resource in self.resources.items():
            kind = str(resource.get("Type"))
            for attribute, value in self.attributes(lid, kind).items():
                values[f"{lid}.{attribute}" if attribute else lid] = value
        # Queues need the names of their dead-letter queues: read them once all are named.
        for lid, resource in self.resources.items():
            if resource.get("Type") == "AWS::SQS::Queue":
                self.read_queue(lid)

    def attributes(self, lid: str, kind: str) -> dict[str, Any]:  # noqa: PLR0911 - per type
        """The resource's local ``Ref`` value (key "") and ``Fn::GetAtt`` attributes."""
        if kind == "AWS::DynamoDB::Table":
            name = self.physical_name(lid, "TableName")
            arn = self.arn("dynamodb", f"table/{name}")
            table = TableSpec(lid, name, arn, f"{arn}/stream/local")
            self.model.tables[lid] = table
            return {"": name, "Arn": arn, "StreamArn": table.stream_arn}
        if kind == "AWS::SQS::Queue":
            fifo = _as_bool(self.resolve(self.props(lid).get("FifoQueue")), False)
            name = self.physical_name(lid, "QueueName", ".fifo" if fifo else "")
            url = f"{self.services_url}/{self.account}/{name}"
            return {"": url, "Arn": self.arn("sqs", name), "QueueName": name, "QueueUrl": url}
        if kind == "AWS::Events::EventBus":
            name = self.physical_name(lid, "Name")
            arn = self.arn("events", f"event-bus/{name}")
            self.model.buses[name] = BusSpec(name, arn, lid)
            return {"": name, "Name": name, "Arn": arn}
        if kind in (*_FUNCTION_TYPES, "AWS::Lambda::Function"):
            name = self.physical_name(lid, "FunctionName")
            for event_name in self.props(lid).get("Events") or {}:
                generated = f"{lid}{event_name}"  # the rule or schedule SAM generates
                self.resolve.values.setdefault(generated, f"{self.stack_name}-{generated}")
                self.resolve.values.setdefault(
                    f"{generated}.Arn", self.arn("events", f"rule/{self.stack_name}-{generated}")
                )
            return {"": name, "Arn": self.arn("lambda", f"function:{name}")}
        if kind in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
            return {"": lid, "ApiEndpoint": self.http_url, "ApiId": lid}
        named = {
            "AWS::Events::Rule": ("Name", "events", "rule/{}"),
            "AWS::SNS::Topic": ("TopicName", "sns", "{}"),
            "AWS::Logs::LogGroup": ("LogGroupName", "logs", "log-group:{}:*"),
        }
        if kind in named:
            key, service, resource = named[kind]
            name = self.physical_name(lid, key)
            arn = self.arn(service, resource.format(name))
            return {"": arn if kind == "AWS::SNS::Topic" else name, "Arn": arn}
        return {"": self.arn("local", lid) if "Layer" in kind else lid}

    def read_queue(self, lid: str) -> None:
        props = self.resolve(self.props(lid))
        values = self.resolve.values
        redrive = props.get("RedrivePolicy")
        if isinstance(redrive, str):
            redrive = _pattern(redrive)
        dead_letter_arn = None
        max_receive = None
        if isinstance(redrive, Mapping):
            target = redrive.get("deadLetterTargetArn")
            dead_letter_arn = target if isinstance(target, str) else None
            max_receive = _as_int(redrive.get("maxReceiveCount"), 10)
        self.model.queues[lid] = QueueSpec(
            logical_id=lid,
            name=str(values[f"{lid}.QueueName"]),
            url=str(values[lid]),
            arn=str(values[f"{lid}.Arn"]),
            visibility_timeout=_as_int(props.get("VisibilityTimeout"), 30),
            retention=_as_int(props.get("MessageRetentionPeriod"), 345600),
            delay=_as_int(props.get("DelaySeconds"), 0),
            fifo=_as_bool(props.get("FifoQueue"), False),
            dead_letter_arn=dead_letter_arn,
            max_receive_count=max_receive,
        )

    # -- pass 2: functions and their events ---------------------------------------------------

    def function_properties(self, lid: str) -> dict[str, Any]:
        return cast(dict[str, Any], merge_globals(self.globals_function, self.props(lid)))

    def read_functions(self) -> None:
        for lid, resource in self.resources.items():
            kind = resource.get("Type")
            if kind == "AWS::Lambda::Function":
                self.warn(f"{lid}: AWS::Lambda::Function is not served locally (use SAM's).")
            if kind not in _FUNCTION_TYPES:
                continue
            props = self.function_properties(lid)
            spec = self.read_function(lid, props)
            if spec is None:
                continue
            self.model.functions[lid] = spec
            events = props.get("Events") or {}
            for event_name, event in events.items():
                if isinstance(event, Mapping):
                    self.read_function_event(spec, str(event_name), event)

    def read_function(self, lid: str, raw: Mapping[str, Any]) -> FunctionSpec | None:
        props = {key: value for key, value in raw.items() if key != "Events"}
        runtime = str(self.resolve(props.get("Runtime", "")))
        code_uri = self.resolve(props.get("CodeUri"))
        handler = self.resolve(props.get("Handler"))
        if not runtime.startswith("python"):
            self.warn(f"{lid}: runtime {runtime or '?'} is not served locally (Python only).")
            return None
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            self.warn(f"{lid}: CodeUri and Handler must be a local folder and a handler name.")
            return None
        code_dir = (self.root / code_uri).resolve()
        if not code_dir.is_dir():
            self.warn(f"{lid}: CodeUri {code_uri} is not a folder.")
            return None
        environment: dict[str, str] = {}
        variables = self.resolve((props.get("Environment") or {}).get("Variables") or {})
        for key, value in variables.items():
            text = _text(value)
            if text is None:
                self.warn(f"{lid}: environment variable {key} has no local value; left unset.")
            else:
                environment[str(key)] = text
        invoke = self.resolve(props.get("EventInvokeConfig") or {})
        destinations = invoke.get("DestinationConfig") or {}
        name = str(self.resolve.values[lid])
        return FunctionSpec(
            logical_id=lid,
            name=name,
            arn=str(self.resolve.values[f"{lid}.Arn"]),
            code_dir=code_dir,
            handler=handler,
            runtime=runtime,
            timeout=float(_as_int(self.resolve(props.get("Timeout")), 3)),
            memory=_as_int(self.resolve(props.get("MemorySize")), 128),
            environment=environment,
            max_retry_attempts=_as_int(invoke.get("MaximumRetryAttempts"), 2),
            max_event_age=_as_int(invoke.get("MaximumEventAgeInSeconds"), 21600),
            on_failure=_destination(destinations.get("OnFailure")),
            on_success=_destination(destinations.get("OnSuccess")),
        )

    def read_function_event(self, spec: FunctionSpec, name: str, event: Mapping[str, Any]) -> None:
        kind = str(event.get("Type"))
        where = f"{spec.logical_id}.{name}"
        if kind not in _SUPPORTED_EVENTS:
            self.warn(f"{where}: event type {kind} is not served locally.")
            return
        props = self.resolve(event.get("Properties") or {})
        generated = f"{spec.logical_id}{name}"
        target = Target(
            arn=spec.arn,
            input=_input_text(props.get("Input")),
            input_path=props.get("InputPath") if isinstance(props.get("InputPath"), str) else None,
            input_transformer=props.get("InputTransformer")
            if isinstance(props.get("InputTransformer"), Mapping)
            else None,
        )
        enabled = _as_bool(props.get("Enabled"), True) and props.get("State", "ENABLED") in (
            "ENABLED",
            True,
        )
        if kind in ("EventBridgeRule", "CloudWatchEvent"):
            self.add_rule(
                where,
                props.get("RuleName") or self.resolve.values[generated],
                props.get("EventBusName"),
                props.get("Pattern"),
                (target,),
                enabled,
            )
        elif kind in ("Schedule", "ScheduleV2"):
            expression = props.get("Schedule" if kind == "Schedule" else "ScheduleExpression")
            self.add_schedule(
                where,
                name,
                "events" if kind == "Schedule" else "scheduler",
                str(props.get("Name") or self.resolve.values[generated]),
                expression,
                props.get("ScheduleExpressionTimezone"),
                (target,),
                enabled,
            )
        elif kind in ("SQS", "DynamoDB"):
            source = props.get("Queue" if kind == "SQS" else "Stream")
            self.add_mapping(where, spec.logical_id, source, props)
        elif kind == "HttpApi":
            self.add_route(where, spec, props)

    # -- rules, schedules, mappings, routes ---------------------------------------------------

    def bus_name(self, value: Any) -> str:
        if value is None or value == "":
            return DEFAULT_BUS
        text = str(value)
        return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text

    def add_rule(
        self,
        where: str,
        name: Any,
        bus: Any,
        pattern: Any,
        targets: tuple[Target, ...],
        enabled: bool,
    ) -> None:
        parsed = _pattern(pattern)
        if parsed is None or _unresolved(parsed):
            self.warn(f"{where}: the event pattern cannot be resolved locally; rule skipped.")
            return
        bus_name = self.bus_name(bus)
        if bus_name not in self.model.buses:
            self.warn(f"{where}: bus {bus_name} is not declared; served as a local bus.")
            self.model.buses[bus_name] = BusSpec(
                bus_name, self.arn("events", f"event-bus/{bus_name}")
            )
        rule_name = str(name)
        self.model.rules.append(
            RuleSpec(
                source=where,
                name=rule_name,
                arn=self.arn("events", f"rule/{rule_name}"),
                bus=bus_name,
                pattern=parsed,
                targets=targets,
                enabled=enabled,
            )
        )

    def add_schedule(
        self,
        where: str,
        event_name: str,
        kind: Literal["events", "scheduler"],
        name: str,
        expression: Any,
        timezone: Any,
        targets: tuple[Target, ...],
        enabled: bool,
    ) -> None:
        if not isinstance(expression, str):
            self.warn(f"{where}: the schedule expression cannot be resolved locally; skipped.")
            return
        service = "events" if kind == "events" else "scheduler"
        resource = f"rule/{name}" if kind == "events" else f"schedule/default/{name}"
        self.model.schedules.append(
            ScheduleSpec(
                source=where,
                event_name=event_name,
                kind=kind,
                name=name,
                arn=self.arn(service, resource),
                expression=expression,
                timezone=timezone if isinstance(timezone, str) and timezone else "UTC",
                targets=targets,
                enabled=enabled,
            )
        )

    def source_of(self, arn: Any) -> tuple[Literal["sqs", "dynamodb"], str] | None:
        if not isinstance(arn, str):
            return None
        for table in self.model.tables.values():
            if arn in (table.stream_arn, table.arn):
                return "dynamodb", table.logical_id
        queue = self.model.queue_by_arn(arn)
        if queue is not None:
            return "sqs", queue.logical_id
        return None

    def add_mapping(self, where: str, function: str, arn: Any, props: Mapping[str, Any]) -> None:
        source = self.source_of(arn)
        if source is None:
            self.warn(f"{where}: event source {arn!r} is not a local queue or table stream.")
            return
        kind, source_id = source
        filters = []
        for entry in (props.get("FilterCriteria") or {}).get("Filters") or []:
            parsed = _pattern(entry.get("Pattern")) if isinstance(entry, Mapping) else None
            if parsed is not None:
                filters.append(parsed)
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure")) or {}
        scaling = props.get("ScalingConfig") or {}
        self.model.mappings.append(
            MappingSpec(
                source=where,
                function=function,
                kind=kind,
                source_id=source_id,
                batch_size=_as_int(props.get("BatchSize"), 10 if kind == "sqs" else 100),
                batching_window=float(_as_int(props.get("MaximumBatchingWindowInSeconds"), 0)),
                starting_position=str(props.get("StartingPosition") or "LATEST"),
                max_retry_attempts=_as_int(props.get("MaximumRetryAttempts"), -1),
                bisect_on_error=_as_bool(props.get("BisectBatchOnFunctionError"), False),
                max_record_age=_as_int(props.get("MaximumRecordAgeInSeconds"), -1),
                report_batch_item_failures="ReportBatchItemFailures"
                in (props.get("FunctionResponseTypes") or []),
                filters=tuple(filters),
                on_failure=_destination(destination),
                enabled=_as_bool(props.get("Enabled"), True),
                max_concurrency=_as_int(scaling.get("MaximumConcurrency"), 0) or None,
            )
        )

    def http_api_auth(self, api: str) -> Mapping[str, Any]:
        if api in self.resources and self.resources[api].get("Type") == "AWS::Serverless::HttpApi":
            merged = merge_globals(self.globals_http, self.props(api))
            auth = self.resolve(merged.get("Auth") or {})
        else:
            auth = self.resolve(self.globals_http.get("Auth") or {})
        return cast(Mapping[str, Any], auth)

    def authorizer(self, api: str, name: str, where: str) -> AuthorizerSpec | None:
        definition = (self.http_api_auth(api).get("Authorizers") or {}).get(name)
        if not isinstance(definition, Mapping):
            self.warn(f"{where}: authorizer {name} is not declared on {api}.")
            return None
        jwt = definition.get("JwtConfiguration")
        if not isinstance(jwt, Mapping):
            self.warn(f"{where}: authorizer {name} is not a JWT authorizer (not served locally).")
            return None
        issuer = jwt.get("issuer", jwt.get("Issuer"))
        audience = jwt.get("audience", jwt.get("Audience"))
        if isinstance(audience, str):
            audience = [audience]
        if not isinstance(issuer, str) or not issuer:
            issuer = LOCAL_ISSUER
        if not isinstance(audience, list) or not all(isinstance(a, str) and a for a in audience):
            audience = [LOCAL_AUDIENCE]
        scopes = definition.get("AuthorizationScopes") or []
        return AuthorizerSpec(
            name=name,
            issuer=issuer,
            audience=tuple(str(item) for item in audience),
            identity_source=str(
                definition.get("IdentitySource") or "$request.header.Authorization"
            ),
            scopes=tuple(str(scope) for scope in scopes),
        )

    def add_route(self, where: str, spec: FunctionSpec, props: Mapping[str, Any]) -> None:
        api = props.get("ApiId")
        api_id = api if isinstance(api, str) and api in self.resources else "ServerlessHttpApi"
        api_auth = self.http_api_auth(api_id)
        path = props.get("Path")
        method = str(props.get("Method") or "ANY").upper()
        if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
            method = "ANY"
        route_path = path if isinstance(path, str) and path else "$default"
        auth = props.get("Auth") or {}
        authorizer_name = auth.get("Authorizer") or api_auth.get("DefaultAuthorizer") or "NONE"
        scopes = tuple(str(scope) for scope in auth.get("AuthorizationScopes") or [])
        timeout = _as_int(props.get("TimeoutInMillis"), 30000)
        if authorizer_name == "NONE":
            route = RouteSpec(
                api_id, method, route_path, spec.logical_id, "NONE", None, (), timeout
            )
        elif authorizer_name == "AWS_IAM":
            route = RouteSpec(
                api_id, method, route_path, spec.logical_id, "AWS_IAM", None, (), timeout
            )
        else:
            authorizer = self.authorizer(api_id, str(authorizer_name), where)
            if authorizer is None:
                return
            route = RouteSpec(
                api_id,
                method,
                route_path,
                spec.logical_id,
                "JWT",
                authorizer,
                scopes or authorizer.scopes,
                timeout,
            )
        self.model.routes.append(route)

    # -- plain CloudFormation resources -------------------------------------------------------

    def read_resources(self) -> None:
        for lid, resource in self.resources.items():
            kind = resource.get("Type")
            if kind == "AWS::Lambda::EventSourceMapping":
                props = self.resolve(self.props(lid))
                function = self.model.function_by_arn(str(props.get("FunctionName")))
                if function is None:
                    self.warn(
                        f"{lid}: function {props.get('FunctionName')!r} is not served locally."
                    )
                    continue
                self.add_mapping(lid, function.logical_id, props.get("EventSourceArn"), props)
            elif kind == "AWS::Events::Rule":
                self.read_events_rule(lid)
            elif kind == "AWS::Scheduler::Schedule":
                props = self.resolve(self.props(lid))
                target = props.get("Target") or {}
                targets = (
                    Target(arn=str(target.get("Arn")), input=_input_text(target.get("Input"))),
                )
                self.add_schedule(
                    lid,
                    lid,
                    "scheduler",
                    self.physical_name(lid, "Name"),
                    props.get("ScheduleExpression"),
                    props.get("ScheduleExpressionTimezone"),
                    targets,
                    props.get("State", "ENABLED") == "ENABLED",
                )
            elif kind in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"):
                self.warn(f"{lid}: REST APIs are not served locally (HTTP APIs are).")

    def read_events_rule(self, lid: str) -> None:
        props = self.resolve(self.props(lid))
        targets = tuple(
            Target(
                arn=str(target.get("Arn")),
                input=_input_text(target.get("Input")),
                input_path=target.get("InputPath"),
                input_transformer=target.get("InputTransformer"),
            )
            for target in props.get("Targets") or []
            if isinstance(target, Mapping)
        )
        enabled = props.get("State", "ENABLED") == "ENABLED"
        name = str(self.resolve.values[lid])
        if props.get("ScheduleExpression"):
            self.add_schedule(
                lid, lid, "events", name, props["ScheduleExpression"], None, targets, enabled
            )
        if props.get("EventPattern") is not None:
            self.add_rule(
                lid, name, props.get("EventBusName"), props["EventPattern"], targets, enabled
            )

    def check_targets(self) -> None:
        for rule in self.model.rules:
            for target in rule.targets:
                self.check_target(rule.source, target)
        for schedule in self.model.schedules:
            for target in schedule.targets:
                self.check_target(schedule.source, target)

    def check_target(self, where: str, target: Target) -> None:
        if self.model.function_by_arn(target.arn) or self.model.queue_by_arn(target.arn):
            return
        self.warn(f"{where}: target {target.arn} is not a local function or queue; not delivered.")

    def read(self) -> StackModel:
        self.name_resources()
        self.read_functions()
        self.read_resources()
        self.check_targets()
        for name in self.missing_parameters:
            self.warn(
                f"parameter {name} has no default: what uses it is left unset locally (JWT "
                f"authorizers use the local issuer/audience); --parameter {name}=VALUE sets it"
            )
        return self.model


def _destination(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    destination = value.get("Destination")
    return destination if isinstance(destination, str) else None


def read_stack(
    template_path: str | os.PathLike[str],
    *,
    stack_name: str = "local",
    region: str = REGION,
    account: str = ACCOUNT,
    parameters: Mapping[str, str] | None = None,
    services_url: str = "http://127.0.0.1:3001",
    http_url: str = "http://127.0.0.1:3000",
) -> StackModel:
    """The local view of a SAM template (see the module's docstring)."""
    return _Reader(
        Path(template_path),
        stack_name=stack_name,
        region=region,
        account=account,
        parameters=parameters or {},
        services_url=services_url,
        http_url=http_url,
    ).read()

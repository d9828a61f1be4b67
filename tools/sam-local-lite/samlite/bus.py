"""EventBridge, locally: PutEvents, rules with event patterns, schedules' events, and Lambda's
asynchronous invocation of the targets.

:meth:`EventBus.put_events` takes PutEvents' request as SDKs send it, validates each entry as
EventBridge does (per-entry ``ErrorCode`` in the response), stamps ``id`` and ``time`` (the
entry's ``Time`` if given, else now: handlers take "now" from it) and routes the event to the
targets of every enabled rule of its bus whose pattern matches. An event put on ``default`` is
also matched against the rules of the template's own buses, so that a producer (or ``aws events
put-events``) that leaves out ``EventBusName`` still reaches the functions; this is the one
liberty taken with EventBridge. Targets get the event itself, or what the target's ``Input``,
``InputPath`` or ``InputTransformer`` makes of it.

Events published by the stack's functions (recognised by their local access key) are printed
and appended to ``events.jsonl``.

:class:`AsyncInvoker` is Lambda's asynchronous invocation: an internal queue per function,
``MaximumRetryAttempts`` (default 2) and ``MaximumEventAgeInSeconds`` of ``EventInvokeConfig``,
then the ``OnFailure`` (or ``OnSuccess``) destination: a local queue, function or bus. Retries
wait ``retry_delay`` s, then twice that (Lambda waits about a minute, then two).
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from .api import ApiError
from .functions import InvokeResult
from .patterns import PatternError, matches
from .queues import LocalQueue
from .template import DEFAULT_BUS, FunctionSpec, RuleSpec, ScheduleSpec, StackModel, Target

__all__ = ["AsyncInvoker", "EventBus", "iso_time"]

MAX_ENTRIES: Final = 10
MAX_ENTRY_BYTES: Final = 256 * 1024

Invoke = Callable[[str, Any], InvokeResult]
Report = Callable[[str], None]


def iso_time(moment: datetime) -> str:
    """EventBridge's ``time``: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime:
    """PutEvents' ``Time``: epoch seconds (as SDKs send it) or ISO 8601."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            pass
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"{value!r} is not a time")


# --------------------------------------------------------------------------- input transformation

_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def json_path(document: Any, path: str) -> Any:
    """``$``, ``$.a.b``, ``$.a[0]``: the subset of JSONPath that targets use."""
    if not path.startswith("$"):
        raise ValueError(f"{path!r} is not a JSONPath")
    value = document
    for key, index in _PATH_PART.findall(path[1:]):
        if key:
            value = value.get(key) if isinstance(value, Mapping) else None
        else:
            value = (
                value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            )
    return value


def _transform(target: Target, event: Mapping[str, Any], rule_name: str) -> Any:
    if target.input is not None:
        try:
            return json.loads(target.input)
        except ValueError:
            return target.input
    if target.input_path:
        return json_path(event, target.input_path)
    transformer = target.input_transformer
    if transformer:
        values: dict[str, Any] = {
            name: json_path(event, str(path))
            for name, path in (transformer.get("InputPathsMap") or {}).items()
        }
        values["aws.events.rule-name"] = rule_name
        values["aws.events.event"] = event
        values["aws.events.event.json"] = event
        values["aws.events.event.ingestion-time"] = event.get("time")
        template = str(transformer.get("InputTemplate") or "")

        def substitute(match: re.Match[str]) -> str:
            value = values.get(match.group(1))
            quoted = match.start() > 0 and template[match.start() - 1] == '"'
            if quoted and isinstance(value, str):
                return json.dumps(value)[1:-1]
            return json.dumps(value)

        text = re.sub(r"<([A-Za-z0-9_.\-]+)>", substitute, template)
        try:
            return json.loads(text)
        except ValueError:
            return text
    return dict(event)


# --------------------------------------------------------------------------- async invocation


class AsyncInvoker:
    """Lambda's asynchronous invocation of one function (event invoke config honoured)."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoke: Invoke,
        deliver: Callable[[str, dict[str, Any]], None],
        report: Report,
        *,
        retry_delay: float = 1.0,
        threads: int = 1,
    ) -> None:
        self.spec = spec
        self.invoke = invoke
        self.deliver = deliver
        self.report = report
        self.retry_delay = retry_delay
        self._heap: list[tuple[float, int, Any, int, float]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._running = 0
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._run, name=f"async-{spec.logical_id}-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        with self._condition:
            return len(self._heap) + self._running

    def submit(
        self, event: Any, *, attempt: int = 1, received: float | None = None, delay: float = 0.0
    ) -> None:
        with self._condition:
            heapq.heappush(
                self._heap,
                (
                    time.monotonic() + delay,
                    next(self._counter),
                    event,
                    attempt,
                    time.time() if received is None else received,
                ),
            )
            self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _next(self) -> tuple[Any, int, float] | None:
        with self._condition:
            while not self._stopped:
                if self._heap and self._heap[0][0] <= time.monotonic():
                    _, _, event, attempt, received = heapq.heappop(self._heap)
                    self._running += 1
                    return event, attempt, received
                timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                self._condition.wait(timeout)
            return None

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            event, attempt, received = item
            try:
                self._attempt(event, attempt, received)
            finally:
                with self._condition:
                    self._running -= 1

    def _attempt(self, event: Any, attempt: int, received: float) -> None:
        result = self.invoke(self.spec.logical_id, event)
        if result.ok:
            if self.spec.on_success:
                self.deliver(self.spec.on_success, self._record(event, result, attempt, "Success"))
            return
        too_old = time.time() - received > self.spec.max_event_age
        if attempt <= self.spec.max_retry_attempts and not too_old:
            delay = self.retry_delay * attempt
            self.report(
                f"{self.spec.logical_id}: asynchronous invocation failed ({result.error}); "
                f"retry {attempt} of {self.spec.max_retry_attempts} in {delay:.1f}s"
            )
            self.submit(event, attempt=attempt + 1, received=received, delay=delay)
            return
        condition = "EventAgeExceeded" if too_old else "RetriesExhausted"
        where = self.spec.on_failure or "nowhere (no OnFailure destination)"
        self.report(
            f"{self.spec.logical_id}: gave up after {attempt} attempts ({result.error}); "
            f"event sent to {where}"
        )
        if self.spec.on_failure:
            self.deliver(self.spec.on_failure, self._record(event, result, attempt, condition))

    def _record(
        self, event: Any, result: InvokeResult, attempts: int, condition: str
    ) -> dict[str, Any]:
        return {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "requestContext": {
                "requestId": result.request_id,
                "functionArn": f"{self.spec.arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                **({} if result.ok else {"functionError": "Unhandled"}),
            },
            "responsePayload": result.payload,
        }


# --------------------------------------------------------------------------- the bus


class EventBus:
    def __init__(
        self,
        model: StackModel,
        *,
        invokers: Mapping[str, AsyncInvoker],
        queues: Mapping[str, LocalQueue],
        events_log: Path | None,
        console: Report,
        publisher_of: Callable[[str | None], str | None],
    ) -> None:
        self.model = model
        self.invokers = invokers
        self.queues = queues
        self.events_log = events_log
        self.console = console
        self.publisher_of = publisher_of
        self._lock = threading.Lock()
        self.routed: Counter[str] = Counter()
        self.unrouted: Counter[str] = Counter()
        self.published: Counter[str] = Counter()
        self.put = 0

    # -- routing ------------------------------------------------------------------------------

    def rules_for(self, bus: str) -> list[RuleSpec]:
        own = [rule for rule in self.model.rules if rule.bus == bus]
        if bus == DEFAULT_BUS:
            own += [rule for rule in self.model.rules if rule.bus != DEFAULT_BUS]
        return [rule for rule in own if rule.enabled]

    def deliver_to(self, target: Target, payload: Any) -> str | None:
        """Hand ``payload`` to a target; the name of what received it, or None."""
        function = self.model.function_by_arn(target.arn)
        if function is not None and function.logical_id in self.invokers:
            self.invokers[function.logical_id].submit(payload)
            return function.logical_id
        queue = self.model.queue_by_arn(target.arn)
        if queue is not None and queue.logical_id in self.queues:
            body = payload if isinstance(payload, str) else json.dumps(payload)
            self.queues[queue.logical_id].send(body, sender="events.amazonaws.com")
            return queue.logical_id
        return None

    def route(self, event: Mapping[str, Any], bus: str) -> list[str]:
        delivered: list[str] = []
        for rule in self.rules_for(bus):
            try:
                matched = matches(rule.pattern, event)
            except PatternError as error:
                self.console(f"rule {rule.name}: invalid pattern ({error}); skipped")
                continue
            if not matched:
                continue
            for target in rule.targets:
                receiver = self.deliver_to(target, _transform(target, event, rule.name))
                if receiver is not None:
                    delivered.append(receiver)
        return delivered

    # -- PutEvents ----------------------------------------------------------------------------

    def _bus_name(self, value: Any) -> str:
        if not value:
            return DEFAULT_BUS
        text = str(value)
        return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text

    def _event(self, entry: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """(bus, event) from a PutEvents entry; raises ApiError as an entry error."""
        for name in ("Source", "DetailType"):
            if not entry.get(name):
                raise ApiError(
                    "InvalidArgument",
                    f"Parameter {name} is not valid. Reason: {name} is a required argument.",
                )
        if len(json.dumps(entry)) > MAX_ENTRY_BYTES:
            raise ApiError("InvalidArgument", "The entry is larger than 256 KB.")
        source = str(entry["Source"])
        if source.startswith("aws."):
            raise ApiError("NotAuthorizedForSourceException", "Not authorized for the source.")
        try:
            detail = json.loads(entry.get("Detail") or "")
        except (TypeError, ValueError):
            detail = None
        if not isinstance(detail, dict):
            raise ApiError("MalformedDetail", "Detail is malformed.")
        bus = self._bus_name(entry.get("EventBusName"))
        if bus not in self.model.buses:
            raise ApiError("ResourceNotFoundException", f"Event bus {bus} does not exist.")
        try:
            moment = (
                parse_time(entry["Time"]) if entry.get("Time") is not None else datetime.now(UTC)
            )
        except ValueError as exc:
            raise ApiError("InvalidArgument", f"Parameter Time is not valid: {exc}") from exc
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": str(entry["DetailType"]),
            "source": source,
            "account": self.model.account,
            "time": iso_time(moment),
            "region": self.model.region,
            "resources": list(entry.get("Resources") or []),
            "detail": detail,
        }
        return bus, event

    def put_events(self, body: Mapping[str, Any], caller: str | None) -> dict[str, Any]:
        entries = body.get("Entries")
        if not isinstance(entries, list) or not entries:
            raise ApiError("ValidationException", "Entries must hold 1 to 10 entries.")
        if len(entries) > MAX_ENTRIES:
            raise ApiError(
                "ValidationException",
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                "Member must have length less than or equal to 10",
            )
        publisher = self.publisher_of(caller)
        results: list[dict[str, Any]] = []
        failed = 0
        for entry in entries:
            try:
                bus, event = self._event(entry if isinstance(entry, Mapping) else {})
            except ApiError as error:
                failed += 1
                results.append({"ErrorCode": error.code, "ErrorMessage": error.message})
                continue
            self.publish(bus, event, publisher)
            results.append({"EventId": event["id"]})
        return {"FailedEntryCount": failed, "Entries": results}

    def publish(self, bus: str, event: dict[str, Any], publisher: str | None) -> list[str]:
        """Route an accepted event; record it if one of the stack's functions published it."""
        routed = self.route(event, bus)
        detail_type = str(event.get("detail-type"))
        with self._lock:
            self.put += 1
            (self.routed if routed else self.unrouted)[detail_type] += 1
            if publisher is not None:
                self.published[detail_type] += 1
                self._record(bus, event, publisher, routed)
        if publisher is not None:
            receivers = ", ".join(routed) if routed else "no rule matched"
            detail = json.dumps(event.get("detail"), separators=(",", ":"))
            if len(detail) > 160:
                detail = detail[:157] + "..."
            self.console(f"event {detail_type} from {publisher} -> {receivers}: {detail}")
        return routed

    def _record(
        self, bus: str, event: Mapping[str, Any], publisher: str, routed: list[str]
    ) -> None:
        if self.events_log is None:
            return
        line = {"bus": bus, "publishedBy": publisher, "routedTo": routed, "event": event}
        with self.events_log.open("a", encoding="utf-8") as log:
            log.write(json.dumps(line, separators=(",", ":")) + "\n")

    # -- schedules ----------------------------------------------------------------------------

    def scheduled_event(self, schedule: ScheduleSpec, target: Target, moment: datetime) -> Any:
        """What a schedule hands its target at ``moment``."""
        stamp = iso_time(moment)
        if target.input is not None:
            text = target.input
            if schedule.kind == "scheduler":
                for name, value in {
                    "scheduled-time": stamp,
                    "execution-id": str(uuid.uuid4()),
                    "schedule-arn": schedule.arn,
                    "attempt-number": "1",
                }.items():
                    text = text.replace(f"<aws.scheduler.{name}>", value)
            try:
                return json.loads(text)
            except ValueError:
                return text
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events" if schedule.kind == "events" else "aws.scheduler",
            "account": self.model.account,
            "time": stamp,
            "region": self.model.region,
            "resources": [schedule.arn],
            "detail": {},
        }

    def fire(self, schedule: ScheduleSpec, moment: datetime) -> list[str]:
        """A schedule's firing, delivered asynchronously as on AWS."""
        receivers = []
        for target in schedule.targets:
            receiver = self.deliver_to(target, self.scheduled_event(schedule, target, moment))
            if receiver is not None:
                receivers.append(receiver)
        return receivers

"""The local stack: DynamoDB Local, the template's table, and every function behind its triggers.

:class:`LocalStack` starts, in order: the two loopback servers (HTTP API; AWS endpoints for
EventBridge and SQS plus the ``/_local/`` control routes), DynamoDB (``dynamodb_endpoint``, or
the :class:`DynamoDBStarter` of the config, asked for data under ``<state dir>/dynamodb`` unless
in memory), the template's tables (created if missing), the
queues, one :class:`~.functions.FunctionRuntime` per function, the stream and queue pollers and
the schedules. ``<state dir>/stack.json`` then describes the running stack (endpoints, tables,
queues, functions), and :meth:`LocalStack.stop` stops everything it started.

Functions run with the template's environment variables, dummy credentials ``local<LogicalId>``
(how PutEvents recognises what a function published), the region, and
``AWS_ENDPOINT_URL_DYNAMODB``/``_DYNAMODB_STREAMS``/``_EVENTBRIDGE``/``_SQS`` pointing at the
local endpoints (also ``AWS_ENDPOINT_URL_EVENTS``, which botocore does not read).

Control routes on the AWS endpoint port (local only, JSON):
``GET /_local/stack`` (the description), ``GET /_local/stats`` (counters and whether all work
is done), ``POST /_local/fire`` (``{"function", "schedule"?, "time"?}``: invoke a function's
schedule now, synchronously, with that event time).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import boto3
from botocore.config import Config

from .api import ApiError
from .auth import caller_of, load_key_pair
from .bus import AsyncInvoker, EventBus, iso_time, parse_time
from .cfn import TemplateError, create_table, load_template
from .functions import FunctionRuntime, InvokeResult
from .http_api import HttpApi
from .httpd import LoopbackServer, Request, Response, json_response
from .queues import LocalQueue, QueueApi, SqsPoller
from .schedules import ScheduleRunner
from .streams import StreamPoller
from .template import FunctionSpec, ScheduleSpec, StackModel, read_stack

__all__ = ["DynamoDBStarter", "LocalStack", "StackConfig", "StackError", "serve"]

ACCESS_KEY_PREFIX = "local"
"""Functions sign with the access key ``local<LogicalId>`` (DynamoDB Local wants letters and
digits only); PutEvents knows from it which function published an event."""


class StackError(RuntimeError):
    """The local stack could not start."""


class DynamoDBStarter(Protocol):
    """Starts a DynamoDB with streams (DynamoDB Local) for the stack: returns its endpoint and
    a function that stops it. ``port`` None means a free one; ``data_dir`` None, in memory.
    It raises :class:`StackError` when it cannot start."""

    def __call__(
        self, *, port: int | None, data_dir: Path | None, log_path: Path
    ) -> tuple[str, Callable[[], None]]: ...


@dataclass
class StackConfig:
    template: Path = Path("template.yaml")
    state_dir: Path = Path(".samlite")
    http_port: int = 3000
    events_port: int = 3001
    dynamodb_endpoint: str | None = None
    """A running DynamoDB (Local) to use; without it, ``dynamodb_starter`` starts one."""
    dynamodb_starter: DynamoDBStarter | None = None
    dynamodb_port: int = 8000
    """The port asked of ``dynamodb_starter``; 0 picks a free port."""
    in_memory: bool = False
    fresh: bool = False
    """Start empty: forget the table data, stream positions, events.jsonl and logs."""
    stack_name: str = "local"
    parameters: dict[str, str] = field(default_factory=dict)
    concurrency: int = 2
    """Execution environments per function."""
    verbose: bool = False
    """Print the functions' logs on the console too (they always go to <state dir>/logs)."""
    async_retry_delay: float = 1.0
    poll_interval: float = 0.25


class _Console:
    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")  # noqa: DTZ005 - the developer's clock
        with self._lock:
            self._write(f"{stamp} {message}")


def _print_line(line: str) -> None:
    print(line, flush=True)


class LocalStack:
    def __init__(self, config: StackConfig, write: Callable[[str], None] = _print_line) -> None:
        self.config = config
        self.console = _Console(write)
        self.state_dir = config.state_dir.resolve()
        self.logs_dir = self.state_dir / "logs"
        self.events_log = self.state_dir / "events.jsonl"
        self._log_files: dict[str, Any] = {}
        self._log_lock = threading.Lock()
        self._activity = time.monotonic()
        self._stop_dynamodb: Callable[[], None] | None = None
        self._started: list[Callable[[], None]] = []
        self.model: StackModel | None = None
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.invokers: dict[str, AsyncInvoker] = {}
        self.queues: dict[str, LocalQueue] = {}
        self.stream_pollers: list[StreamPoller] = []
        self.sqs_pollers: list[SqsPoller] = []
        self.schedules: ScheduleRunner | None = None
        self.bus: EventBus | None = None
        self.queue_api: QueueApi | None = None
        self.http_api: HttpApi | None = None
        self.dynamodb_endpoint = ""
        self.http_server: LoopbackServer | None = None
        self.services_server: LoopbackServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        self._prepare_state_dir()
        keys = load_key_pair(self.state_dir)
        try:
            self.http_server = LoopbackServer(config.http_port, self._serve_http, "http-api")
            self._started.append(self.http_server.stop)
            self.services_server = LoopbackServer(config.events_port, self._serve_aws, "aws")
            self._started.append(self.services_server.stop)
        except OSError as exc:
            raise StackError(
                f"cannot listen on 127.0.0.1: {exc} (is the stack already running?)"
            ) from exc
        model = read_stack(
            config.template,
            stack_name=config.stack_name,
            parameters=config.parameters,
            services_url=self.services_server.url,
            http_url=self.http_server.url,
        )
        self.model = model
        self._start_dynamodb()
        ddb = self.client("dynamodb")
        self._create_tables(ddb)
        self.queues = {
            lid: LocalQueue(spec, self._dead_letter_of(spec.dead_letter_arn))
            for lid, spec in model.queues.items()
        }
        self.queue_api = QueueApi(self.queues, model.account, self.services_server.url)
        for lid, spec in model.functions.items():
            runtime = FunctionRuntime(
                spec,
                self.function_environment(spec),
                root=model.template_path.parent,
                sink=self._function_log,
                concurrency=config.concurrency,
            )
            self.runtimes[lid] = runtime
            self._started.append(runtime.close)
            invoker = AsyncInvoker(
                spec,
                self.invoke,
                self.deliver,
                self.console,
                retry_delay=config.async_retry_delay,
                threads=config.concurrency,
            )
            self.invokers[lid] = invoker
            self._started.append(invoker.stop)
        self.bus = EventBus(
            model,
            invokers=self.invokers,
            queues=self.queues,
            events_log=self.events_log,
            console=self.console,
            publisher_of=self._publisher_of,
        )
        self.http_api = HttpApi(model, invoke=self.invoke, keys=keys, report=self.console)
        self._start_pollers(ddb)
        self.schedules = ScheduleRunner(model.schedules, self._fire_async, self.console)
        self.schedules.start()
        self._started.append(self.schedules.stop)
        self.http_server.start()
        self.services_server.start()
        (self.state_dir / "stack.json").write_text(
            json.dumps(self.describe(), indent=2), encoding="utf-8"
        )
        self._banner()

    def stop(self) -> None:
        while self._started:
            stop = self._started.pop()
            with contextlib.suppress(Exception):
                stop()
        if self._stop_dynamodb is not None:
            self._stop_dynamodb()
            self._stop_dynamodb = None
        with self._log_lock:
            for handle in self._log_files.values():
                handle.close()
            self._log_files.clear()

    def _prepare_state_dir(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.config.fresh:
            for name in ("dynamodb", "streams", "logs"):
                shutil.rmtree(self.state_dir / name, ignore_errors=True)
            self.events_log.unlink(missing_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    def _start_dynamodb(self) -> None:
        if self.config.dynamodb_endpoint:
            self.dynamodb_endpoint = self.config.dynamodb_endpoint
            return
        if self.config.dynamodb_starter is None:
            raise StackError("no DynamoDB: give a dynamodb_endpoint or a dynamodb_starter")
        data_dir = None if self.config.in_memory else self.state_dir / "dynamodb"
        self.dynamodb_endpoint, self._stop_dynamodb = self.config.dynamodb_starter(
            port=self.config.dynamodb_port or None,
            data_dir=data_dir,
            log_path=self.logs_dir / "dynamodb-local.log",
        )

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's DynamoDB Local (``dynamodb``, ``dynamodbstreams``)."""
        assert self.model is not None
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.dynamodb_endpoint,
            region_name=self.model.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local ignores it
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def _create_tables(self, ddb: Any) -> None:
        assert self.model is not None
        existing = set(ddb.list_tables().get("TableNames", []))
        template = load_template(self.model.template_path)
        for lid, table in self.model.tables.items():
            if table.name in existing:
                continue
            create_table(ddb, template, table.name, lid, parameters=self.model.parameters)
            self.console(f"created table {table.name} from {lid}")

    def _start_pollers(self, ddb: Any) -> None:
        assert self.model is not None
        model = self.model
        for mapping in model.mappings:
            if not mapping.enabled:
                self.console(f"{mapping.source}: disabled in the template; not polled")
                continue
            if mapping.kind == "dynamodb":
                stream = StreamPoller(
                    mapping,
                    model.tables[mapping.source_id],
                    model.functions[mapping.function],
                    streams_client=self.client("dynamodbstreams"),
                    ddb_client=ddb,
                    invoke=self.invoke,
                    deliver=self.deliver,
                    report=self.console,
                    region=model.region,
                    checkpoint_dir=None if self.config.in_memory else self.state_dir / "streams",
                    poll_interval=self.config.poll_interval,
                )
                if stream.prepare():
                    stream.start()
                    self.stream_pollers.append(stream)
                    self._started.append(stream.stop)
            else:
                concurrency = min(mapping.max_concurrency or 2, self.config.concurrency)
                poller = SqsPoller(
                    mapping,
                    self.queues[mapping.source_id],
                    self.invoke,
                    region=model.region,
                    report=self.console,
                    concurrency=concurrency,
                )
                poller.start()
                self.sqs_pollers.append(poller)
                self._started.append(poller.stop)

    # ------------------------------------------------------------------ functions

    def function_environment(self, spec: FunctionSpec) -> dict[str, str]:
        assert self.model is not None and self.services_server is not None
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "POWERTOOLS_", "_X_AMZN")) and key != "TZ"
        }
        environment.update(spec.environment)
        services = self.services_server.url
        environment.update(
            {
                "AWS_ACCESS_KEY_ID": f"{ACCESS_KEY_PREFIX}{spec.logical_id}",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_REGION": self.model.region,
                "AWS_DEFAULT_REGION": self.model.region,
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
                "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": self.dynamodb_endpoint,
                "AWS_ENDPOINT_URL_EVENTBRIDGE": services,
                "AWS_ENDPOINT_URL_EVENTS": services,
                "AWS_ENDPOINT_URL_SQS": services,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{spec.logical_id}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                "TZ": "UTC",
                # Where a function may keep a local stand-in for a service samlite does not
                # emulate (files under the stack's state folder), and how it knows it runs here.
                "SAMLITE_STATE_DIR": str(self.state_dir),
            }
        )
        # No X-Ray daemon here: the tracer would only complain.
        environment.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        return environment

    def invoke(self, function: str, event: Any) -> InvokeResult:
        """Invoke a function synchronously (every trigger ends here)."""
        self._activity = time.monotonic()
        try:
            result = self.runtimes[function].invoke(event)
        finally:
            self._activity = time.monotonic()
        if not result.ok:
            self.console(
                f"{function} failed: {result.error} "
                f"(log: {self.logs_dir.relative_to(self.state_dir.parent)}/{function}.log)"
            )
        return result

    def _function_log(self, function: str, line: str) -> None:
        with self._log_lock:
            handle = self._log_files.get(function)
            if handle is None:
                handle = (self.logs_dir / f"{function}.log").open("a", encoding="utf-8")
                self._log_files[function] = handle
            handle.write(line + "\n")
            handle.flush()
        if self.config.verbose:
            self.console(f"{function} | {line}")

    def _publisher_of(self, caller: str | None) -> str | None:
        if caller and caller.startswith(ACCESS_KEY_PREFIX):
            function = caller.removeprefix(ACCESS_KEY_PREFIX)
            return function if function in self.runtimes else None
        return None

    def _dead_letter_of(self, arn: str | None) -> Callable[[], LocalQueue | None]:
        def find() -> LocalQueue | None:
            if arn is None or self.model is None:
                return None
            spec = self.model.queue_by_arn(arn)
            return self.queues.get(spec.logical_id) if spec is not None else None

        return find

    def deliver(self, destination: str, record: dict[str, Any]) -> None:
        """Send a failure/success record to a destination: a local queue, function or bus."""
        assert self.model is not None and self.bus is not None
        queue = self.model.queue_by_arn(destination)
        if queue is not None:
            self.queues[queue.logical_id].send(json.dumps(record), sender="lambda.amazonaws.com")
            return
        function = self.model.function_by_arn(destination)
        if function is not None:
            self.invokers[function.logical_id].submit(record)
            return
        bus_name = destination.rsplit("/", 1)[-1]
        if destination.startswith("arn:aws:events:") and bus_name in self.model.buses:
            self.bus.publish(
                bus_name,
                {
                    "version": "0",
                    "id": record.get("requestContext", {}).get("requestId", ""),
                    "detail-type": "Lambda Function Invocation Result - "
                    + (
                        "Success"
                        if record.get("requestContext", {}).get("condition") == "Success"
                        else "Failure"
                    ),
                    "source": "lambda",
                    "account": self.model.account,
                    "time": iso_time(datetime.now(UTC)),
                    "region": self.model.region,
                    "resources": [],
                    "detail": record,
                },
                None,
            )
            return
        self.console(f"destination {destination} is not served locally; record dropped")

    # ------------------------------------------------------------------ schedules

    def _fire_async(self, schedule: ScheduleSpec, moment: datetime) -> None:
        assert self.bus is not None
        self._activity = time.monotonic()
        self.bus.fire(schedule, moment)

    def find_schedule(self, function: str, name: str | None) -> ScheduleSpec:
        assert self.model is not None
        spec = self.model.find_function(function)
        schedules = [
            schedule
            for schedule in self.model.schedules
            if any(self.model.function_by_arn(t.arn) == spec for t in schedule.targets)
            and (name is None or name in (schedule.event_name, schedule.name, schedule.source))
        ]
        if len(schedules) != 1:
            names = ", ".join(s.event_name for s in self.model.schedules) or "none"
            problem = "has several schedules: pick one" if schedules else "has no such schedule"
            raise KeyError(f"{spec.logical_id} {problem} (schedules: {names})")
        return schedules[0]

    def fire(self, function: str, schedule_name: str | None, moment: datetime) -> dict[str, Any]:
        """Invoke a function's schedule now, synchronously, as if it fired at ``moment``."""
        assert self.model is not None and self.bus is not None
        schedule = self.find_schedule(function, schedule_name)
        outcome: dict[str, Any] = {"schedule": schedule.source, "time": iso_time(moment)}
        for target in schedule.targets:
            spec = self.model.function_by_arn(target.arn)
            if spec is None:
                continue
            event = self.bus.scheduled_event(schedule, target, moment)
            self.console(f"schedule {schedule.source} fired by hand for {iso_time(moment)}")
            result = self.invoke(spec.logical_id, event)
            outcome.update(
                {
                    "function": spec.logical_id,
                    "ok": result.ok,
                    "result": result.payload,
                    "durationMs": round(result.duration_ms, 1),
                }
            )
        return outcome

    # ------------------------------------------------------------------ state

    def idle(self) -> bool:
        """True when no invocation is queued or running, no message waits in a polled queue,
        and every stream poller has found nothing since the last invocation ended."""
        if any(runtime.in_flight for runtime in self.runtimes.values()):
            return False
        if any(invoker.pending for invoker in self.invokers.values()):
            return False
        if any(poller.busy or not poller.queue.empty() for poller in self.sqs_pollers):
            return False
        for stream in self.stream_pollers:
            started = stream.empty_round_started
            if stream.busy or started is None or started <= self._activity:
                return False
        return True

    def stats(self) -> dict[str, Any]:
        assert self.bus is not None
        return {
            "idle": self.idle(),
            "functions": {
                lid: {"invocations": r.invocations, "errors": r.errors, "inFlight": r.in_flight}
                for lid, r in self.runtimes.items()
            },
            "events": {
                "put": self.bus.put,
                "routed": dict(self.bus.routed),
                "unrouted": dict(self.bus.unrouted),
                "published": dict(self.bus.published),
            },
            "queues": {
                queue.spec.name: {**queue.counts(), "movedToDeadLetterQueue": queue.moved_to_dlq}
                for queue in self.queues.values()
            },
        }

    def describe(self) -> dict[str, Any]:
        assert self.model is not None and self.http_server and self.services_server
        model = self.model
        return {
            "stackName": model.stack_name,
            "template": str(model.template_path),
            "stateDir": str(self.state_dir),
            "eventsLog": str(self.events_log),
            "httpApi": self.http_server.url,
            "awsEndpoint": self.services_server.url,
            "dynamodbEndpoint": self.dynamodb_endpoint,
            "region": model.region,
            "buses": sorted(model.buses),
            "tables": {lid: table.name for lid, table in model.tables.items()},
            "queues": {lid: queue.url for lid, queue in model.queues.items()},
            "functions": {
                lid: {
                    "name": spec.name,
                    "environment": dict(spec.environment),
                }
                for lid, spec in model.functions.items()
            },
            "routes": [
                {
                    "route": r.route_key,
                    "function": r.function,
                    "auth": r.auth,
                    "scopes": list(r.scopes),
                }
                for r in model.routes
            ],
            "rules": [{"rule": r.source, "bus": r.bus, "pattern": r.pattern} for r in model.rules],
            "schedules": [
                {"schedule": s.source, "expression": s.expression, "timezone": s.timezone}
                for s in model.schedules
            ],
            "warnings": model.warnings,
        }

    def _banner(self) -> None:
        assert self.model is not None and self.http_server and self.services_server
        model = self.model
        lines = [
            f"local stack of {model.template_path.name} is up "
            f"({len(model.functions)} functions; state in {self.state_dir})",
            f"  HTTP API        {self.http_server.url}",
        ]
        for route in model.routes:
            scopes = f" {' '.join(route.scopes)}" if route.scopes else ""
            lines.append(f"    {route.route_key:<40} {route.function} [{route.auth}{scopes}]")
        buses = ", ".join(sorted(model.buses))
        lines.append(f"  EventBridge/SQS {self.services_server.url}  (buses: {buses})")
        lines += [f"    rule {r.source} on {r.bus}: {json.dumps(r.pattern)}" for r in model.rules]
        lines += [f"    queue {q.name}" for q in model.queues.values()]
        tables = ", ".join(table.name for table in model.tables.values())
        lines.append(f"  DynamoDB Local  {self.dynamodb_endpoint}  (tables: {tables})")
        lines += [
            f"    stream -> {m.function} ({m.source})"
            for m in model.mappings
            if m.kind == "dynamodb"
        ]
        lines += [f"  schedule {s.source}: {s.expression} {s.timezone}" for s in model.schedules]
        lines += [f"  warning: {warning}" for warning in model.warnings]
        lines.append(f"  published events -> {self.events_log}; function logs -> {self.logs_dir}/")
        for line in lines:
            self.console(line)

    # ------------------------------------------------------------------ servers

    def _serve_http(self, request: Request) -> Response:
        if self.http_api is None:
            return json_response(503, {"message": "Service Unavailable"})
        return self.http_api.handle(request)

    def _serve_aws(self, request: Request) -> Response:
        if request.path.startswith("/_local/"):
            return self._control(request)
        target = request.header("X-Amz-Target") or ""
        service, _, operation = target.partition(".")
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return self._aws_error(
                ApiError("SerializationException", "The body is not JSON"), "1.1"
            )
        caller = caller_of(request.header("Authorization"))
        self._activity = time.monotonic()
        try:
            if service == "AWSEvents" and operation == "PutEvents":
                assert self.bus is not None
                return json_response(
                    200, self.bus.put_events(body, caller), "application/x-amz-json-1.1"
                )
            if service == "AmazonSQS":
                assert self.queue_api is not None
                result = self.queue_api.handle(operation, body, caller)
                return json_response(200, result, "application/x-amz-json-1.0")
        except ApiError as error:
            return self._aws_error(error, "1.0" if service == "AmazonSQS" else "1.1")
        return self._aws_error(
            ApiError(
                "UnknownOperationException", f"{target or 'no X-Amz-Target'} is not served locally"
            ),
            "1.1",
        )

    @staticmethod
    def _aws_error(error: ApiError, version: str) -> Response:
        prefix = "com.amazonaws.sqs#" if version == "1.0" else ""
        response = json_response(
            error.status,
            {"__type": f"{prefix}{error.code}", "message": error.message},
            f"application/x-amz-json-{version}",
        )
        if error.query_code:
            response.headers.append(("x-amzn-query-error", f"{error.query_code};Sender"))
        return response

    def _control(self, request: Request) -> Response:
        route = (request.method, request.path.rstrip("/"))
        if route == ("GET", "/_local/stack"):
            return json_response(200, self.describe())
        if route == ("GET", "/_local/stats"):
            return json_response(200, self.stats())
        if route == ("POST", "/_local/fire"):
            try:
                body = json.loads(request.body or b"{}")
                moment = parse_time(body["time"]) if body.get("time") else datetime.now(UTC)
                outcome = self.fire(str(body.get("function", "")), body.get("schedule"), moment)
            except (KeyError, ValueError) as exc:
                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
                return json_response(400, {"error": str(message)})
            return json_response(200, outcome)
        return json_response(404, {"error": f"no local route {request.method} {request.path}"})


def serve(config: StackConfig, ready_file: Path | None = None) -> int:
    """Run the stack in the foreground until SIGINT/SIGTERM (``samlite serve``)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(config)
    try:
        try:
            stack.start()
        except (StackError, TemplateError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if ready_file is not None:
            ready_file.write_text(json.dumps(stack.describe()), encoding="utf-8")
        stack.console("ready. Ctrl-C stops the stack.")
        stop.wait()
        stack.console("stopping")
        return 0
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def read_stack_file(state_dir: Path) -> Mapping[str, Any] | None:
    path = state_dir / "stack.json"
    try:
        document: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document

"""SQS, locally: in-memory queues, their AWS JSON API, and Lambda's queue poller.

:class:`LocalQueue` keeps SQS's delivery semantics: a received message is invisible for the
visibility timeout and comes back if it is not deleted; each receive counts; a message received
``maxReceiveCount`` times moves to the dead-letter queue of the ``RedrivePolicy`` on its next
receive; messages older than the retention period are dropped.

:class:`QueueApi` answers the SQS operations that developers and functions need
(``SendMessage[Batch]``, ``ReceiveMessage``, ``DeleteMessage[Batch]``,
``ChangeMessageVisibility``, ``GetQueueUrl``, ``ListQueues``, ``GetQueueAttributes``,
``PurgeQueue``), so that ``aws sqs ... --endpoint-url`` and boto3 work against the local
stack. Queues live in memory: they are empty at every start.

:class:`SqsPoller` is Lambda's event source mapping for a queue: batches up to ``BatchSize``
(waiting up to ``MaximumBatchingWindowInSeconds``), deletes the messages of a successful
invocation, and with ``ReportBatchItemFailures`` deletes all but the ``batchItemFailures``;
a failed invocation leaves the whole batch to come back after the visibility timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .api import ApiError
from .functions import InvokeResult
from .patterns import matches
from .template import MappingSpec, QueueSpec

__all__ = ["LocalQueue", "QueueApi", "SqsPoller"]

MAX_WAIT_S = 20
MAX_BATCH = 10
MAX_BODY = 256 * 1024


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass
class Message:
    message_id: str
    body: str
    sent_ms: int
    sender: str
    attributes: dict[str, Any] = field(default_factory=dict)
    """Message attributes, in the API's shape ({name: {DataType, StringValue, ...}})."""
    system: dict[str, str] = field(default_factory=dict)
    visible_at: float = 0.0
    receive_count: int = 0
    first_receive_ms: int | None = None
    receipt: str | None = None

    def system_attributes(self) -> dict[str, str]:
        attributes = {
            "SenderId": self.sender,
            "SentTimestamp": str(self.sent_ms),
            "ApproximateReceiveCount": str(self.receive_count),
            "ApproximateFirstReceiveTimestamp": str(self.first_receive_ms or self.sent_ms),
        }
        attributes.update(self.system)
        return attributes


class LocalQueue:
    def __init__(self, spec: QueueSpec, dead_letter: Callable[[], LocalQueue | None]) -> None:
        self.spec = spec
        self._dead_letter = dead_letter
        self._messages: list[Message] = []
        self._condition = threading.Condition()
        self.sent = 0
        self.moved_to_dlq = 0

    # -- producing ----------------------------------------------------------------------------

    def send(
        self,
        body: str,
        *,
        sender: str = "local",
        attributes: Mapping[str, Any] | None = None,
        delay: int | None = None,
        system: Mapping[str, str] | None = None,
    ) -> Message:
        if not body:
            raise ApiError("InvalidParameterValue", "The message body must not be empty")
        if len(body.encode("utf-8")) > MAX_BODY:
            raise ApiError("InvalidParameterValue", "The message body is longer than 256 KiB")
        now = time.time()
        message = Message(
            message_id=str(uuid.uuid4()),
            body=body,
            sent_ms=int(now * 1000),
            sender=sender,
            attributes=dict(attributes or {}),
            system=dict(system or {}),
            visible_at=now + (self.spec.delay if delay is None else delay),
        )
        with self._condition:
            self._messages.append(message)
            self.sent += 1
            self._condition.notify_all()
        return message

    # -- consuming ----------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        horizon = (now - self.spec.retention) * 1000
        self._messages = [message for message in self._messages if message.sent_ms >= horizon]

    def _take(
        self, limit: int, visibility: float, now: float
    ) -> tuple[list[Message], list[Message]]:
        taken: list[Message] = []
        dead: list[Message] = []
        max_receives = self.spec.max_receive_count
        dead_letter = self._dead_letter() if self.spec.dead_letter_arn else None
        for message in list(self._messages):
            if len(taken) >= limit:
                break
            if message.visible_at > now:
                continue
            if dead_letter is not None and max_receives and message.receive_count >= max_receives:
                self._messages.remove(message)
                dead.append(message)
                continue
            message.receive_count += 1
            message.first_receive_ms = message.first_receive_ms or int(now * 1000)
            message.visible_at = now + visibility
            message.receipt = f"{message.message_id}:{uuid.uuid4().hex}"
            taken.append(message)
        return taken, dead

    def receive(
        self,
        limit: int = 1,
        *,
        visibility: float | None = None,
        wait: float = 0.0,
        fill_window: float = 0.0,
    ) -> list[Message]:
        """Up to ``limit`` visible messages, waiting up to ``wait`` s for the first and then up to
        ``fill_window`` s for more."""
        visibility = self.spec.visibility_timeout if visibility is None else visibility
        deadline = time.monotonic() + wait
        fill_deadline: float | None = None
        taken: list[Message] = []
        dead: list[Message] = []
        with self._condition:
            while True:
                now = time.time()
                self._expire(now)
                more, moved = self._take(limit - len(taken), visibility, now)
                taken += more
                dead += moved
                if len(taken) >= limit:
                    break
                if taken:
                    if fill_window <= 0:
                        break
                    if fill_deadline is None:
                        fill_deadline = time.monotonic() + fill_window
                    end = fill_deadline
                else:
                    end = deadline
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(min(remaining, self._next_visible(now)))
        self._move_to_dead_letter(dead)
        return taken

    def _next_visible(self, now: float) -> float:
        pending = [
            message.visible_at - now for message in self._messages if message.visible_at > now
        ]
        return max(0.01, min(pending, default=1.0))

    def _move_to_dead_letter(self, messages: list[Message]) -> None:
        target = self._dead_letter()
        if target is None or not messages:
            return
        for message in messages:
            target.send(
                message.body,
                sender=message.sender,
                attributes=message.attributes,
                delay=0,
                system={"DeadLetterQueueSourceArn": self.spec.arn},
            )
        with self._condition:
            self.moved_to_dlq += len(messages)

    def delete(self, receipt: str) -> None:
        with self._condition:
            for message in self._messages:
                if message.receipt == receipt:
                    self._messages.remove(message)
                    return
        if ":" not in receipt:
            raise ApiError("ReceiptHandleIsInvalid", f"The receipt handle {receipt} is not valid")

    def change_visibility(self, receipt: str, timeout: int) -> None:
        with self._condition:
            for message in self._messages:
                if message.receipt == receipt:
                    message.visible_at = time.time() + timeout
                    self._condition.notify_all()
                    return
        raise ApiError("ReceiptHandleIsInvalid", f"The receipt handle {receipt} is not valid")

    def purge(self) -> None:
        with self._condition:
            self._messages.clear()

    def counts(self) -> dict[str, int]:
        now = time.time()
        with self._condition:
            visible = sum(1 for m in self._messages if m.visible_at <= now and m.receive_count == 0)
            returned = sum(1 for m in self._messages if m.visible_at <= now and m.receive_count)
            hidden = [m for m in self._messages if m.visible_at > now]
        return {
            "ApproximateNumberOfMessages": visible + returned,
            "ApproximateNumberOfMessagesNotVisible": sum(1 for m in hidden if m.receive_count),
            "ApproximateNumberOfMessagesDelayed": sum(1 for m in hidden if not m.receive_count),
        }

    def empty(self) -> bool:
        with self._condition:
            return not self._messages


# --------------------------------------------------------------------------- API


def _message_json(message: Message, wanted: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt,
        "MD5OfBody": md5_hex(message.body),
        "Body": message.body,
    }
    system = message.system_attributes()
    if wanted:
        everything = "All" in wanted
        body["Attributes"] = {k: v for k, v in system.items() if everything or k in wanted}
    if message.attributes:
        body["MessageAttributes"] = message.attributes
    return body


class QueueApi:
    """SQS operations over the local queues (AWS JSON 1.0 bodies in and out)."""

    def __init__(self, queues: Mapping[str, LocalQueue], account: str, base_url: str) -> None:
        self.queues = queues
        self.account = account
        self.base_url = base_url.rstrip("/")

    def queue(self, url_or_name: Any) -> LocalQueue:
        name = str(url_or_name or "").rstrip("/").rsplit("/", 1)[-1]
        for queue in self.queues.values():
            if queue.spec.name == name:
                return queue
        raise ApiError(
            "QueueDoesNotExist",
            "The specified queue does not exist.",
            query_code="AWS.SimpleQueueService.NonExistentQueue",
        )

    def handle(self, operation: str, body: Mapping[str, Any], caller: str | None) -> dict[str, Any]:
        handler = getattr(self, f"op_{operation}", None)
        if handler is None:
            raise ApiError("UnsupportedOperation", f"{operation} is not served by the local stack")
        result: dict[str, Any] = handler(body, caller or "local")
        return result

    def op_GetQueueUrl(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        return {"QueueUrl": self.queue(body.get("QueueName")).spec.url}

    def op_ListQueues(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        prefix = str(body.get("QueueNamePrefix") or "")
        urls = [q.spec.url for q in self.queues.values() if q.spec.name.startswith(prefix)]
        return {"QueueUrls": sorted(urls)}

    def op_SendMessage(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        queue = self.queue(body.get("QueueUrl"))
        message = queue.send(
            str(body.get("MessageBody") or ""),
            sender=caller,
            attributes=body.get("MessageAttributes"),
            delay=body.get("DelaySeconds"),
        )
        return {"MessageId": message.message_id, "MD5OfMessageBody": md5_hex(message.body)}

    def op_SendMessageBatch(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        queue = self.queue(body.get("QueueUrl"))
        entries = body.get("Entries") or []
        if not entries:
            raise ApiError("EmptyBatchRequest", "There should be at least one entry")
        if len(entries) > MAX_BATCH:
            raise ApiError("TooManyEntriesInBatchRequest", "A batch holds at most 10 entries")
        successful, failed = [], []
        for entry in entries:
            try:
                message = queue.send(
                    str(entry.get("MessageBody") or ""),
                    sender=caller,
                    attributes=entry.get("MessageAttributes"),
                    delay=entry.get("DelaySeconds"),
                )
            except ApiError as error:
                failed.append(
                    {
                        "Id": entry.get("Id"),
                        "SenderFault": True,
                        "Code": error.code,
                        "Message": error.message,
                    }
                )
                continue
            successful.append(
                {
                    "Id": entry.get("Id"),
                    "MessageId": message.message_id,
                    "MD5OfMessageBody": md5_hex(message.body),
                }
            )
        return {"Successful": successful, "Failed": failed}

    def op_ReceiveMessage(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        queue = self.queue(body.get("QueueUrl"))
        limit = int(body.get("MaxNumberOfMessages") or 1)
        if not 1 <= limit <= MAX_BATCH:
            raise ApiError("InvalidParameterValue", "MaxNumberOfMessages must be 1 to 10")
        visibility = body.get("VisibilityTimeout")
        wait = min(float(body.get("WaitTimeSeconds") or 0), MAX_WAIT_S)
        wanted = list(body.get("AttributeNames") or []) + list(
            body.get("MessageSystemAttributeNames") or []
        )
        messages = queue.receive(
            limit, visibility=None if visibility is None else float(visibility), wait=wait
        )
        return {"Messages": [_message_json(message, wanted) for message in messages]}

    def op_DeleteMessage(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        self.queue(body.get("QueueUrl")).delete(str(body.get("ReceiptHandle") or ""))
        return {}

    def op_DeleteMessageBatch(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        queue = self.queue(body.get("QueueUrl"))
        successful, failed = [], []
        for entry in body.get("Entries") or []:
            try:
                queue.delete(str(entry.get("ReceiptHandle") or ""))
            except ApiError as error:
                failed.append(
                    {
                        "Id": entry.get("Id"),
                        "SenderFault": True,
                        "Code": error.code,
                        "Message": error.message,
                    }
                )
            else:
                successful.append({"Id": entry.get("Id")})
        return {"Successful": successful, "Failed": failed}

    def op_ChangeMessageVisibility(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        queue = self.queue(body.get("QueueUrl"))
        queue.change_visibility(
            str(body.get("ReceiptHandle")), int(body.get("VisibilityTimeout") or 0)
        )
        return {}

    def op_GetQueueAttributes(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        queue = self.queue(body.get("QueueUrl"))
        spec = queue.spec
        attributes: dict[str, str] = {
            "QueueArn": spec.arn,
            "VisibilityTimeout": str(spec.visibility_timeout),
            "MessageRetentionPeriod": str(spec.retention),
            "DelaySeconds": str(spec.delay),
        }
        attributes.update({key: str(value) for key, value in queue.counts().items()})
        if spec.dead_letter_arn:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": spec.dead_letter_arn,
                    "maxReceiveCount": spec.max_receive_count,
                }
            )
        wanted = list(body.get("AttributeNames") or ["All"])
        if "All" not in wanted:
            attributes = {key: value for key, value in attributes.items() if key in wanted}
        return {"Attributes": attributes}

    def op_PurgeQueue(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        self.queue(body.get("QueueUrl")).purge()
        return {}


# --------------------------------------------------------------------------- Lambda poller

Invoke = Callable[[str, Any], InvokeResult]
"""(function logical id, event) -> result: a synchronous invocation."""


def sqs_record(message: Message, spec: QueueSpec, region: str) -> dict[str, Any]:
    attributes = {}
    for name, value in message.attributes.items():
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt,
        "body": message.body,
        "attributes": message.system_attributes(),
        "messageAttributes": attributes,
        "md5OfBody": md5_hex(message.body),
        "eventSource": "aws:sqs",
        "eventSourceARN": spec.arn,
        "awsRegion": region,
    }


def _filterable(record: Mapping[str, Any]) -> dict[str, Any]:
    view = dict(record)
    with contextlib.suppress(TypeError, ValueError):
        view["body"] = json.loads(record["body"])
    return view


class SqsPoller:
    """Lambda's poller for one SQS event source mapping (``max_concurrency`` threads)."""

    def __init__(
        self,
        mapping: MappingSpec,
        queue: LocalQueue,
        invoke: Invoke,
        *,
        region: str,
        report: Callable[[str], None],
        concurrency: int = 1,
    ) -> None:
        self.mapping = mapping
        self.queue = queue
        self.invoke = invoke
        self.region = region
        self.report = report
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-{mapping.source}-{index}", daemon=True)
            for index in range(max(1, concurrency))
        ]
        self.busy = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = self.queue.receive(
                self.mapping.batch_size,
                wait=0.5,
                fill_window=self.mapping.batching_window,
            )
            if not messages:
                continue
            with self._lock:
                self.busy += 1
            try:
                self._deliver(messages)
            finally:
                with self._lock:
                    self.busy -= 1

    def _deliver(self, messages: list[Message]) -> None:
        records = [sqs_record(message, self.queue.spec, self.region) for message in messages]
        if self.mapping.filters:
            kept = []
            for message, record in zip(messages, records, strict=True):
                if any(matches(pattern, _filterable(record)) for pattern in self.mapping.filters):
                    kept.append(record)
                elif message.receipt is not None:
                    self.queue.delete(message.receipt)  # Lambda deletes filtered-out messages
            records = kept
            if not records:
                return
        result = self.invoke(self.mapping.function, {"Records": records})
        if not result.ok:
            self.report(
                f"{self.mapping.source}: batch of {len(records)} failed ({result.error}); "
                f"the messages come back after {self.queue.spec.visibility_timeout}s"
            )
            return
        failed = self._failed_ids(result, records)
        for record in records:
            if record["messageId"] not in failed:
                self.queue.delete(record["receiptHandle"])
        if failed:
            self.report(
                f"{self.mapping.source}: {len(failed)} of {len(records)} messages failed; they "
                f"come back after {self.queue.spec.visibility_timeout}s"
            )

    def _failed_ids(self, result: InvokeResult, records: list[dict[str, Any]]) -> set[str]:
        if not self.mapping.report_batch_item_failures:
            return set()
        payload = result.payload
        if not isinstance(payload, Mapping):
            return set()
        failures = payload.get("batchItemFailures")
        if not failures:
            return set()
        ids = {record["messageId"] for record in records}
        failed = set()
        for failure in failures if isinstance(failures, list) else []:
            identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if not identifier or identifier not in ids:
                return ids  # an invalid response fails the whole batch, as on Lambda
            failed.add(str(identifier))
        return failed

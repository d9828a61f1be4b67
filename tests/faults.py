"""Crash injection: the Nth DynamoDB or EventBridge call of a handler fails, or its response is
lost after it was carried out.

Every botocore API call goes through ``BaseClient._make_api_call`` (as ``tests/iam_calls.py``
records them); :meth:`Faults.install` wraps it, so the product's own clients, made by
``shared.composition``, are the ones that fail. While :meth:`Faults.armed` is active, the calls
to DynamoDB and EventBridge are counted from 1, and the call numbered ``at`` either

- ``"fail"``: raises before anything is sent, as a network that never reached AWS
  (``EndpointConnectionError``, odd ``at``) or a refusal (``ClientError``
  ``ProvisionedThroughputExceededException`` / ``ThrottlingException``, even ``at``) would; or
- ``"lost"``: is carried out, then raises ``ReadTimeoutError``: the write happened and the caller
  does not know (the case a retry must recognise).

Calls made while not armed (a test's setup and checks) are neither counted nor failed.

EventBridge has no local double in the tests' environment (its endpoint is a closed port), so the
wrapper answers ``PutEvents`` itself, as a bus that accepts every entry, and keeps the entries it
accepted (:attr:`Faults.published`): a lost response's entries were accepted, a failed call's
were not.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from tests import iam_calls

Mode = Literal["fail", "lost"]
SERVICES = ("dynamodb", "events")


class Faults:
    """Counts the product's DynamoDB and EventBridge calls and breaks the one asked for."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        """Operations called while armed, in order (``dynamodb:TransactWriteItems``)."""
        self.at: int | None = None
        self.mode: Mode = "fail"
        self.armed_now = False
        self.injected: str | None = None
        """The call that was broken during the last armed section (None: none was)."""
        self.published: list[dict[str, Any]] = []
        """Every entry the stand-in EventBridge accepted (``Detail`` decoded)."""

    def install(self, monkeypatch: Any) -> None:
        """Wrap botocore's entry point for API calls until ``monkeypatch`` undoes it."""
        original: Callable[..., Any] = getattr(BaseClient, "_make_api_call")  # noqa: B009
        faults = self

        @functools.wraps(original)
        def faulty(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = self.meta.service_model.service_name
            if service not in SERVICES:
                return original(self, operation_name, api_params)
            send = functools.partial(faults._send, original, self, service)
            if not faults.armed_now:
                return send(operation_name, api_params)
            faults.calls.append(f"{service}:{operation_name}")
            if len(faults.calls) != faults.at:
                return send(operation_name, api_params)
            faults.injected = faults.calls[-1]
            endpoint = str(self.meta.endpoint_url)
            if faults.mode == "lost":
                send(operation_name, api_params)
                raise ReadTimeoutError(endpoint_url=endpoint)
            if len(faults.calls) % 2:
                raise EndpointConnectionError(endpoint_url=endpoint)
            code = (
                "ProvisionedThroughputExceededException"
                if service == "dynamodb"
                else "ThrottlingException"
            )
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation_name)

        monkeypatch.setattr(BaseClient, "_make_api_call", faulty)

    def _send(
        self,
        original: Callable[..., Any],
        client: BaseClient,
        service: str,
        operation_name: str,
        api_params: dict[str, Any],
    ) -> Any:
        if service != "events":
            return original(client, operation_name, api_params)
        if operation_name != "PutEvents":
            raise AssertionError(f"the stand-in EventBridge has no {operation_name}")
        iam_calls.record(service, operation_name, api_params)  # botocore never sees it
        entries = api_params["Entries"]
        for entry in entries:
            self.published.append({**entry, "Detail": json.loads(entry["Detail"])})
        return {
            "FailedEntryCount": 0,
            "Entries": [{"EventId": str(uuid.uuid4())} for _ in entries],
        }

    @contextmanager
    def armed(self, at: int | None = None, mode: Mode = "fail") -> Iterator[None]:
        """Count the calls made meanwhile, and break the one numbered ``at`` (None: none)."""
        self.calls, self.at, self.mode, self.injected = [], at, mode, None
        self.armed_now = True
        try:
            yield
        finally:
            self.armed_now = False

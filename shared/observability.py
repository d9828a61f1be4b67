"""Logger, Tracer and Metrics: one instance each, shared by every module of a function.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function in template.yaml).
Log lines carry ids and outcomes, never tokens, emails, phone numbers or other personal data.

Tracing is Lambda's active tracing (``Tracing: Active`` in template.yaml): X-Ray records each
invocation's initialization, invocation and overhead segments without any code in the function,
and botocore passes the trace header (``_X_AMZN_TRACE_ID``) on to DynamoDB, EventBridge and SQS,
so traces stay linked across functions. The X-Ray SDK (Powertools' ``Tracer``) would add a
subsegment per AWS call, at the price of about 0.13 s of imports and patching at every cold
start, a third of the floor of boto3 and a client (``python -m bench.coldstart``). So it is
loaded only when ``TRACING_SDK=true`` is set on a function (to look into one function's calls);
``tracer.capture_lambda_handler`` is then Powertools' decorator, otherwise the handler itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

TRACING_SDK_VARIABLE = "TRACING_SDK"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_sdk_enabled() -> bool:
    """Whether the function loads the X-Ray SDK (``TRACING_SDK=true``)."""
    return os.environ.get(TRACING_SDK_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


class Tracing:
    """Tracing of a function: Lambda's active tracing, plus the X-Ray SDK when enabled."""

    def __init__(self, sdk: bool | None = None) -> None:
        self.sdk: Tracer | None = None
        if tracing_sdk_enabled() if sdk is None else sdk:
            from aws_lambda_powertools.tracing import Tracer  # noqa: PLC0415 (opt-in)

            self.sdk = Tracer()

    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler:
        """Powertools' handler subsegment when the SDK is loaded; else the handler itself."""
        if self.sdk is None:
            return lambda_handler
        return cast("Handler", self.sdk.capture_lambda_handler(lambda_handler))


logger = Logger()
tracer = Tracing()
metrics = Metrics(namespace="Loyalty")

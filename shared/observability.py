"""Logger, Tracer and Metrics: one instance each, shared by every module of a function.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function in template.yaml).
Log lines carry ids and outcomes, never tokens, emails, phone numbers or other personal data.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Loyalty")

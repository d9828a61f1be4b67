"""The error an emulated AWS API answers with (AWS JSON protocol)."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    """An AWS API error: HTTP ``status``, error ``code`` (``__type``) and message."""

    def __init__(
        self, code: str, message: str, *, status: int = 400, query_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.query_code = query_code
        """The legacy (query protocol) code that SDKs map SQS errors to, if it differs."""

"""The product's side of the local stack (``make run``, ``make demo``).

The stack itself is the ``samlite`` package (tools/sam-local-lite): it serves template.yaml's
functions behind their triggers. Here: :func:`start_dynamodb_local`, which starts the
repository's DynamoDB Local (:mod:`infra.ddb_local`) for it, and :mod:`.demo`, a synthetic
marketplace sent through a running stack. ``loyalty local ...`` (:mod:`infra.cli`) wires them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from samlite import StackError

from infra.ddb_local import DynamoDBLocal, DynamoDBLocalError

__all__ = ["start_dynamodb_local"]


def start_dynamodb_local(
    *, port: int | None, data_dir: Path | None, log_path: Path
) -> tuple[str, Callable[[], None]]:
    """samlite's DynamoDB starter: the repository's DynamoDB Local (installed by make run)."""
    server = DynamoDBLocal(port=port, data_dir=data_dir, log_path=log_path)
    try:
        server.start()
    except DynamoDBLocalError as exc:
        raise StackError(str(exc)) from exc
    return server.endpoint, server.stop

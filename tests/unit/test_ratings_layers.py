"""Rating moderation's use cases stand apart from storage: the package imports nothing of
``shared.dal`` (nor boto3), and its slot keys are the repository's."""

from __future__ import annotations

import subprocess
import sys

from shared.domain.keys import RATING_SK_PREFIX, rating_sk
from shared.logic.moderation.ports import SLOT_KEY_PREFIX, slot_key
from tests.helpers import ROOT


def test_the_moderation_package_loads_no_storage_module() -> None:
    probe = (
        "import sys, shared.logic.moderation; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore'} "
        "or m.startswith('shared.dal')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_slot_keys_are_the_repositorys_sort_keys() -> None:
    assert SLOT_KEY_PREFIX == RATING_SK_PREFIX
    completed = "2026-11-23T09:00:00.000000Z"
    assert slot_key(completed, "o-1") == rating_sk(completed, "o-1")

"""The repository's template: checkov's skips live in one configuration file, each with its
reason (no resource carries its own)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from samlite.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_checkov_skips_live_in_one_file_each_with_its_reason() -> None:
    template = load_template(ROOT / "template.yaml", expand=False)
    in_metadata = [
        lid
        for lid, resource in template["Resources"].items()
        if "checkov" in ((resource.get("Metadata") or {}) if isinstance(resource, dict) else {})
    ]
    assert in_metadata == []
    lines = (ROOT / ".checkov.yaml").read_text(encoding="utf-8").splitlines()
    skips = [index for index, line in enumerate(lines) if re.match(r"^\s+- CKV", line)]
    assert skips
    config = yaml.safe_load("\n".join(lines))
    assert len(config["skip-check"]) == len(skips) == len(set(config["skip-check"]))
    for index in skips:
        assert lines[index - 1].strip().startswith("#"), f"{lines[index]} has no reason above it"

# mypy: disable-error-code="import-not-found"
# (samtranslator lives in the SAM tools venv under .tools/sam, not in the runtime .venv.)
"""Expand a SAM template into plain CloudFormation, offline, for policy scanners.

Usage (with the SAM tools venv's interpreter, which has samtranslator):
    .tools/sam/bin/python infra/scripts/sam-translate.py template.yaml out.json [source.json]

checkov reads AWS::Serverless::* resources as written, so it never sees what SAM generates:
the function roles and their policies, the Lambda permissions, the EventBridge rules, the API
stages. Scanning the expansion covers those too. Local CodeUri/ContentUri paths are replaced
by a placeholder S3 URI (as `sam validate` does); no AWS call is made.

The AWS::LanguageExtensions transform runs first, as on CloudFormation: its Fn::ForEach loops
are expanded by samlite.cfn.expand_for_each (the local stack's template reader uses the same).
With a third argument, the template at that stage (loops expanded, SAM's resources as written)
is written there too: checkov scans it in place of the YAML, whose loops it cannot read.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

# samlite's template module, by file: it needs only PyYAML, which this (tools) venv has, while
# the samlite package as a whole needs the project's venv.
_CFN = Path(__file__).resolve().parents[2] / "tools" / "sam-local-lite" / "samlite" / "cfn.py"
_spec = importlib.util.spec_from_file_location("samlite_cfn", _CFN)
assert _spec is not None and _spec.loader is not None
_cfn = importlib.util.module_from_spec(_spec)
sys.modules["samlite_cfn"] = _cfn
_spec.loader.exec_module(_cfn)
TemplateError = _cfn.TemplateError
expand_for_each = _cfn.expand_for_each

PLACEHOLDER_URI = "s3://placeholder-bucket/placeholder-key"
PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
}


def expand_loops(template: dict[str, Any]) -> dict[str, Any]:
    """The template after AWS::LanguageExtensions (its Fn::ForEach loops expanded)."""
    expanded: dict[str, Any]
    expanded, problems = expand_for_each(template)
    if problems:  # loops that need a deployed stack would be missing from the scan: refuse
        raise TemplateError("; ".join(problems))
    return expanded


def translate(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = PLACEHOLDER_URI
    # The translator asks boto3 for the region of its pseudo parameters; no call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", PSEUDO_PARAMETERS["AWS::Region"])
    # managed_policy_map is only consulted for managed policies given by name; this template
    # names none (SAM adds its own by ARN), so no IAM lookup is needed.
    translator = Translator(managed_policy_map={}, sam_parser=Parser())
    result: dict[str, Any] = translator.translate(template, parameter_values=PSEUDO_PARAMETERS)
    return result


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(f"usage: {argv[0]} TEMPLATE OUTPUT_JSON [SOURCE_JSON]", file=sys.stderr)
        return 2
    template = yaml_parse(Path(argv[1]).read_text(encoding="utf-8"))
    try:
        template = expand_loops(template)
        expanded = translate(template)
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"sam-translate: {cause}", file=sys.stderr)
        return 1
    except TemplateError as exc:
        print(f"sam-translate: {exc}", file=sys.stderr)
        return 1
    Path(argv[2]).write_text(json.dumps(expanded, indent=1) + "\n", encoding="utf-8")
    if len(argv) == 4:
        Path(argv[3]).write_text(json.dumps(template, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

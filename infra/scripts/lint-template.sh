#!/usr/bin/env bash
# Lints template.yaml offline: sam validate --lint, cfn-lint, checkov.
# The tools come from their own venvs under .tools/ (infra/scripts/tools.sh installs them on
# first use). Nothing here calls AWS: dummy credentials and a fixed region are set, and
# telemetry and checkov's downloads are off.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TEMPLATE="${1:-template.yaml}"
cd "$ROOT"

"$ROOT/infra/scripts/tools.sh" ensure sam checkov
SAM="$ROOT/.tools/sam/bin/sam"
CFN_LINT="$ROOT/.tools/sam/bin/cfn-lint"
CHECKOV="$ROOT/.tools/checkov/bin/checkov"

# Offline, credential-free environment for all three tools.
export SAM_CLI_TELEMETRY=0
export SAM_CLI_POLL_DELAY=0
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=lint-only AWS_SECRET_ACCESS_KEY=lint-only
unset AWS_PROFILE AWS_SESSION_TOKEN
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
# sam validate expands the template's Fn::ForEach loops (AWS::LanguageExtensions) before
# translating it: off by default in SAM CLI.
export SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS=1

echo "== sam validate --lint ($TEMPLATE)"
"$SAM" validate --lint --region us-east-1 --template-file "$TEMPLATE"

echo "== cfn-lint ($TEMPLATE)"
"$CFN_LINT" --regions us-east-1 -- "$TEMPLATE"
echo "cfn-lint: no findings"

# checkov has no "sam" framework, nor a reader for Fn::ForEach: its cloudformation framework
# reads AWS::Serverless::* resources as written, and the loops not at all. So it scans two
# files made by sam-translate.py: the template with its Fn::ForEach loops expanded
# (template.json: the serverless resources as written, with Globals) and the SAM expansion of
# that (template.expanded.json: the generated roles, permissions, rules and API stage too).
# The skipped checks, each with its reason, are in .checkov.yaml; they apply to both files.
echo "== checkov ($TEMPLATE, loops expanded, and its SAM expansion)"
EXPANDED_DIR="$(mktemp -d)"
trap 'rm -rf "$EXPANDED_DIR"' EXIT
"$ROOT/.tools/sam/bin/python" "$ROOT/infra/scripts/sam-translate.py" \
    "$TEMPLATE" "$EXPANDED_DIR/template.expanded.json" "$EXPANDED_DIR/template.json"
"$CHECKOV" --config-file "$ROOT/.checkov.yaml" \
    --file "$EXPANDED_DIR/template.json" "$EXPANDED_DIR/template.expanded.json" \
    --framework cloudformation --skip-download --quiet --compact

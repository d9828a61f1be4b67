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

echo "== sam validate --lint ($TEMPLATE)"
"$SAM" validate --lint --region us-east-1 --template-file "$TEMPLATE"

echo "== cfn-lint ($TEMPLATE)"
"$CFN_LINT" --regions us-east-1 -- "$TEMPLATE"
echo "cfn-lint: no findings"

# checkov has no "sam" framework: its cloudformation framework reads AWS::Serverless::*
# resources as written. A second pass scans the SAM expansion, so the generated roles,
# permissions, rules and API stage are checked too (resource Metadata, and so the skips, carry
# over). Every skip lives in its resource's Metadata.checkov.skip, with the reason.
echo "== checkov ($TEMPLATE and its SAM expansion)"
EXPANDED_DIR="$(mktemp -d)"
trap 'rm -rf "$EXPANDED_DIR"' EXIT
"$ROOT/.tools/sam/bin/python" "$ROOT/infra/scripts/sam-translate.py" \
    "$TEMPLATE" "$EXPANDED_DIR/template.expanded.json"
"$CHECKOV" --file "$TEMPLATE" "$EXPANDED_DIR/template.expanded.json" \
    --framework cloudformation --skip-download --quiet --compact

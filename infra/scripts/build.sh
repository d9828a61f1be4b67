#!/usr/bin/env bash
# Builds the Lambda artifacts for arm64 / python3.13 into .aws-sam/build, without Docker.
#
#   1. finds a Python 3.13 (the runtime's version: SAM builds with the interpreter it targets);
#   2. prepares .build/layer: the repo's shared/ package plus requirements.txt exported from
#      uv.lock (runtime dependencies only);
#   3. runs `sam build` (SAM CLI from .tools/sam), which pip-installs the layer's requirements
#      as manylinux aarch64 wheels and lays out python/shared/ in the layer.
# Extra arguments go to `sam build` (e.g. OrderIngestionFunction to build one resource).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
LAYER_DIR="$ROOT/.build/layer"
PY_VENV="$ROOT/.tools/python3.13"

die() { echo "build.sh: $*" >&2; exit 1; }

uv_cmd() {
    if python3 -m uv --version >/dev/null 2>&1; then
        python3 -m uv "$@"
    elif command -v uv >/dev/null 2>&1; then
        uv "$@"
    else
        die "uv not found: install it with 'python3 -m pip install uv'"
    fi
}

is_py313() { [[ -n "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; }

# A working Python 3.13: python3.13 on PATH (run, not just found: a pyenv shim may exist for a
# version that is not selected), then pyenv's installs, then uv's managed or found ones.
find_python313() {
    local candidate
    if [[ -n "${PYTHON313:-}" ]]; then
        is_py313 "$PYTHON313" || die "PYTHON313=$PYTHON313 is not a working Python 3.13"
        echo "$PYTHON313"
        return
    fi
    candidate="$(command -v python3.13 || true)"
    if is_py313 "$candidate"; then
        "$candidate" -c 'import sys; print(sys.executable)'
        return
    fi
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
        if is_py313 "$candidate"; then
            echo "$candidate"
            return
        fi
    done
    candidate="$(uv_cmd python find --no-project '==3.13.*' 2>/dev/null || true)"
    if is_py313 "$candidate"; then
        echo "$candidate"
        return
    fi
    cat >&2 <<'EOF'
build.sh: no Python 3.13 found. The Lambda runtime is python3.13 and `sam build` (without
Docker) must run pip with that same version. Install one, then run the build again:
    python3 -m uv python install 3.13          # or: pyenv install 3.13, apt/brew python3.13
or point PYTHON313 at an existing python3.13 binary.
EOF
    exit 1
}

# SAM runs `python3.13 -m pip` from PATH: give it a small venv of its own (with pip, whatever
# the base install is: pyenv, uv-managed, distro), rebuilt only when the interpreter changes.
ensure_py313_venv() {
    local base="$1" stamp
    stamp="$("$base" -c 'import sys; print(sys.executable, sys.version)')"
    if [[ -x "$PY_VENV/bin/python3.13" && -f "$PY_VENV/.stamp" && "$(cat "$PY_VENV/.stamp")" == "$stamp" ]]; then
        return
    fi
    echo "build.sh: creating ${PY_VENV#"$ROOT"/} from $base" >&2
    rm -rf "$PY_VENV"
    uv_cmd venv --quiet --seed --python "$base" "$PY_VENV"
    printf '%s\n' "$stamp" >"$PY_VENV/.stamp"
}

prepare_layer() {
    rm -rf "$LAYER_DIR"
    mkdir -p "$LAYER_DIR"
    # The package as the functions import it (`from shared.domain.events import ...`);
    # SAM puts the layer's content under python/, so it lands at python/shared/.
    tar -C "$ROOT" --exclude='__pycache__' --exclude='*.pyc' -cf - shared | tar -C "$LAYER_DIR" -xf -
    # boto3 and s3transfer come with the Lambda runtime and are left out of the layer
    # (botocore still comes in, as a dependency of aws-xray-sdk): 47 MB unzipped.
    uv_cmd export --quiet --frozen --no-dev --no-hashes --no-emit-project \
        --no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer \
        --project "$ROOT" --output-file "$LAYER_DIR/requirements.txt"
}

start=$SECONDS
[[ -d "$ROOT/shared" ]] || die "no shared/ package at $ROOT/shared"
PY313="$(find_python313)"
ensure_py313_venv "$PY313"
"$ROOT/infra/scripts/tools.sh" ensure sam
prepare_layer

export PATH="$PY_VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# template.yaml's alarms are Fn::ForEach loops (AWS::LanguageExtensions): SAM CLI expands them
# only when asked to (off by default, and then it cannot read the template's resources).
export SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS=1
echo "build.sh: sam build with $(python3.13 -V) ($PY313), layer requirements from uv.lock" >&2
"$ROOT/.tools/sam/bin/sam" build --template-file "$ROOT/template.yaml" "$@"

LAYER_OUT="$ROOT/.aws-sam/build/SharedLayer/python"
[[ -f "$LAYER_OUT/shared/__init__.py" ]] || die "layer artifact lacks python/shared/ ($LAYER_OUT)"
echo "build.sh: done in $((SECONDS - start)) s; layer $(du -sh "$ROOT/.aws-sam/build/SharedLayer" | cut -f1) unzipped" >&2

#!/usr/bin/env bash
# Tool venvs under .tools/, kept apart from the runtime venv (.venv).
#
#   infra/scripts/tools.sh ensure [sam] [checkov]   create or sync the venvs (default: both)
#   infra/scripts/tools.sh exec TOOL [ARGS...]      run a tool from its venv (sam, cfn-lint, checkov)
#   infra/scripts/tools.sh lock                     re-pin infra/tools/requirements-*.txt from *.in
#
# Each venv is built from its pinned file infra/tools/requirements-<name>.txt and stamped with
# the sha256 of that file plus the interpreter's version: it is rebuilt only when either
# changes, so `ensure` is cheap and idempotent. Two venvs because the pins conflict:
# aws-sam-cli 1.170.0 pins boto3[crt]==1.43.108 and checkov 3.3.30 pins boto3==1.35.49.
# Needs only python3 and uv (`python3 -m pip install uv`); no AWS access.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_DIR="${LOYALTY_TOOLS_DIR:-$ROOT/.tools}"
REQ_DIR="$ROOT/infra/tools"
LOCK_PY_FLOOR="3.10"   # the oldest python3 the locks are resolved for (sam-cli needs >=3.10)

die() { echo "tools.sh: $*" >&2; exit 1; }

find_python() {
    local py="${TOOLS_PYTHON:-python3}"
    command -v "$py" >/dev/null 2>&1 || die "no '$py' on PATH: install Python >= $LOCK_PY_FLOOR"
    "$py" -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)" \
        || die "'$py' is $("$py" -V 2>&1); the tools need Python >= $LOCK_PY_FLOOR (set TOOLS_PYTHON)"
    command -v "$py"
}

uv_cmd() {
    if python3 -m uv --version >/dev/null 2>&1; then
        python3 -m uv "$@"
    elif command -v uv >/dev/null 2>&1; then
        uv "$@"
    else
        die "uv not found: install it with 'python3 -m pip install uv'"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

ensure_one() {
    local name="$1" req="$REQ_DIR/requirements-$1.txt" venv="$TOOLS_DIR/$1"
    [[ -f "$req" ]] || die "unknown tool venv '$name' (no $req)"
    local py stamp
    py="$(find_python)"
    stamp="$( { sha256_of "$req" | cut -d' ' -f1; "$py" -c 'import sys; print(sys.version)'; } )"
    if [[ -x "$venv/bin/python" && -f "$venv/.stamp" && "$(cat "$venv/.stamp")" == "$stamp" ]]; then
        return 0
    fi
    echo "tools.sh: installing $name tools into ${venv#"$ROOT"/} (from ${req#"$ROOT"/})" >&2
    rm -rf "$venv"
    uv_cmd venv --quiet --python "$py" "$venv"
    uv_cmd pip sync --quiet --python "$venv/bin/python" "$req"
    printf '%s\n' "$stamp" >"$venv/.stamp"
}

ensure() {
    mkdir -p "$TOOLS_DIR"
    local names=("$@")
    [[ ${#names[@]} -gt 0 ]] || names=(sam checkov)
    local name
    for name in "${names[@]}"; do
        if command -v flock >/dev/null 2>&1; then
            # Serialise concurrent installs of the same venv (e.g. make -j).
            (
                flock 9
                ensure_one "$name"
            ) 9>"$TOOLS_DIR/.$name.lock"
        else
            ensure_one "$name"
        fi
    done
}

venv_of() {
    case "$1" in
        sam | cfn-lint) echo sam ;;
        checkov) echo checkov ;;
        *) die "unknown tool '$1' (sam, cfn-lint, checkov)" ;;
    esac
}

lock() {
    local in out
    for in in "$REQ_DIR"/requirements-*.in; do
        out="${in%.in}.txt"
        echo "tools.sh: pinning ${out#"$ROOT"/}" >&2
        (cd "$ROOT" && uv_cmd pip compile --quiet --universal --python-version "$LOCK_PY_FLOOR" \
            --custom-compile-command "infra/scripts/tools.sh lock" \
            "${in#"$ROOT"/}" -o "${out#"$ROOT"/}")
    done
}

cmd="${1:-ensure}"
shift || true
case "$cmd" in
    ensure) ensure "$@" ;;
    exec)
        [[ $# -ge 1 ]] || die "usage: tools.sh exec TOOL [ARGS...]"
        venv="$(venv_of "$1")"
        ensure "$venv"
        tool="$1"
        shift
        export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"
        # template.yaml uses Fn::ForEach (AWS::LanguageExtensions), which SAM CLI (sam deploy,
        # package, sync, local ...) reads only with its local expansion on.
        export SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS="${SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS:-1}"
        exec "$TOOLS_DIR/$venv/bin/$tool" "$@"
        ;;
    lock) lock ;;
    *) die "usage: tools.sh {ensure [sam] [checkov] | exec TOOL [ARGS...] | lock}" ;;
esac

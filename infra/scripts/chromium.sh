#!/usr/bin/env bash
# Makes sure headless Chromium is there for the report's rendering test
# (tests/integration/test_analytics_report.py opens `loyalty report`'s HTML in it).
# Installs the Debian/Ubuntu package `chromium` with apt-get when it is missing (as root, or
# through sudo); without apt-get it says so and the test is skipped, the rest runs.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium.sh: Chromium is missing and apt-get is not available here: install Chromium" \
        "(a 'chromium' binary on PATH) to run the report's rendering test; it is skipped until then." >&2
    exit 0
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "chromium.sh: Chromium is missing; run 'apt-get install -y chromium' as root" \
            "(the report's rendering test is skipped until then)." >&2
        exit 0
    fi
fi
echo "chromium.sh: installing Chromium (apt-get install chromium) for the report's rendering test"
if ! $SUDO apt-get install -y --no-install-recommends chromium; then
    $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium
fi

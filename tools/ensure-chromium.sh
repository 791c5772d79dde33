#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is installed for the report's browser test
# (tests/e2e/test_report_browser.py drives /usr/bin/chromium over the DevTools protocol).
# Idempotent: does nothing when chromium is already there. Needs root (or sudo) to install.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; then
    echo "chromium present: $("$CHROMIUM" --version 2>/dev/null)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure-chromium: $CHROMIUM is missing and this is not root; run as root:" >&2
        echo "  apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: a font for the screenshots (the report itself names only generic families).
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null)"

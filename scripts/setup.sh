#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the pinned requirements and the `helpers` package.
# Safe to re-run: it installs only what changed. Usage: bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version' 
  "$PYTHON" -m venv .venv
fi
base=".venv/.installed-$(cat requirements.txt requirements-test.txt pyproject.toml | sha256sum | cut -c1-16)"
stamp="$base${1:+-test}"
# a test install includes the runtime one
if [ ! -e "$stamp" ] && [ ! -e "$base-test" ]; then
  if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-test.txt
  else
    .venv/bin/python -m pip install --quiet -r requirements.txt
  fi
  .venv/bin/python -m pip install --quiet --no-deps -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi

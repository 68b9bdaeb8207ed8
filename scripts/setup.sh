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
stamp=".venv/.installed-$(cat requirements.txt requirements-test.txt pyproject.toml | sha256sum | cut -c1-16)${1:+-test}"
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-test.txt
  else
    .venv/bin/python -m pip install --quiet -r requirements.txt
  fi
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi

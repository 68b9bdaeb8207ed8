#!/usr/bin/env bash
# The whole test suite: set up (with test dependencies), then unit tests and every notebook on `sample`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# the browser tests drive Debian chromium (never a browser that Playwright downloads)
command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
export OMP_NUM_THREADS=1 DGLBACKEND=pytorch RECSYS_DATASET=sample
export RECSYS_ARTIFACTS="${RECSYS_TEST_ARTIFACTS:-$PWD/.test-artifacts}"
export RECSYS_CACHE="$RECSYS_ARTIFACTS/cache"
unset RECSYS_DATA_DIR RECSYS_MILVUS_URI RECSYS_MILVUS_TOKEN RECSYS_CATALOG_URL RECSYS_MILVUS_INDEX RECSYS_QUERY_ENCODER \
  RECSYS_PRESET RECSYS_ADMIN_TOKEN
rm -rf "$RECSYS_ARTIFACTS"
# unit tests in parallel; then, alone, the fault matrix (marker `faults`: it stops servers, breaks files and kills
# processes, so nothing may run beside it); then the series' notebooks in order, from the stage table (each builds
# on the one before; the Voila page is tested by tests/test_movie_picker_page.py, not here)
.venv/bin/python -m pytest -n 2 --dist loadfile -rs -m "not faults" tests "$@"
.venv/bin/python -m pytest -rs -m faults tests "$@"
series="$(.venv/bin/python -m helpers.stages)"
# shellcheck disable=SC2086  # one notebook path per word
.venv/bin/python -m pytest --nbval-lax -p no:randomly $series

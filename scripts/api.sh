#!/usr/bin/env bash
# Serve the recommender on http://127.0.0.1:8000: the web app (movie picker page) at /, the API beside it,
# OpenAPI docs at /docs (all offline). One process holds the stores for every visitor.
# Usage: bash scripts/api.sh [PORT] [more uvicorn options]     (PORT defaults to 8000)
#   e.g. bash scripts/api.sh 8000 --host 0.0.0.0    share it with a room (on a network you trust)
#        bash scripts/api.sh 8000 --workers 2       more processes: only with the stores on servers (see README)
# Needs notebooks/05_vector_store.ipynb run for RECSYS_DATASET (same settings as the notebooks, see README).
# Each worker opens one engine (one Milvus client, one SQL engine) at start-up. The default Milvus Lite file opens
# in one process: one worker, and no notebook kernel on the same file; for more, point RECSYS_MILVUS_URI at a
# Milvus server.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" DGLBACKEND=pytorch
port=8000
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then port="$1"; shift; fi
echo "Serving the movie picker web app on http://127.0.0.1:${port}/  (API docs: http://127.0.0.1:${port}/docs; Ctrl+C stops it)"
exec .venv/bin/uvicorn --factory helpers.serving.api:create_app --http helpers.serving.protocol:NoDelayH11Protocol --host 127.0.0.1 \
  --port "$port" "$@"

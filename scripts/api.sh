#!/usr/bin/env bash
# Serve the recommender as a FastAPI service on http://127.0.0.1:8000 (OpenAPI docs at /docs).
# Usage: bash scripts/api.sh [PORT] [more uvicorn options]     (PORT defaults to 8000)
# Needs notebook 04 run for RECSYS_DATASET (same settings as the notebooks, see README). One worker: it
# opens one engine (one Milvus client, one SQL engine) at start-up. With the default Milvus Lite file no
# notebook kernel may hold the same file; to run both, point RECSYS_MILVUS_URI at the docker-compose server.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" DGLBACKEND=pytorch
port=8000
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then port="$1"; shift; fi
exec .venv/bin/uvicorn --factory helpers.api:create_app --host 127.0.0.1 --port "$port" "$@"

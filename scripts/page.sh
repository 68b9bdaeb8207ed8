#!/usr/bin/env bash
# Serve the movie picker (notebooks/05_movie_picker.ipynb) as a web page with Voila on http://127.0.0.1:8866/
# Voila runs the notebook and shows its outputs only (no code, no markdown): the empty picker.
# Usage: bash scripts/page.sh [PORT] [more voila options]     (PORT defaults to 8866)
# Needs notebook 04 run for RECSYS_DATASET (same settings as the notebooks, see README). Each visitor gets its
# own kernel; with the default Milvus Lite file only one process can open the store at a time, so close other
# notebook kernels on that dataset first, or point RECSYS_MILVUS_URI at the docker-compose server.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" DGLBACKEND=pytorch
port=8866
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then port="$1"; shift; fi
exec .venv/bin/voila notebooks/05_movie_picker.ipynb --no-browser --Voila.ip=127.0.0.1 --port="$port" \
  --TemplateExporter.exclude_markdown=True "$@"

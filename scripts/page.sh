#!/usr/bin/env bash
# Serve the movie picker page (notebooks/movie_picker_page.ipynb, helpers.stages.PAGE_NOTEBOOK) with Voila on
# http://127.0.0.1:8866/. Voila runs that small notebook and shows its outputs only: the empty picker.
# (The interactive notebook that teaches the picker is notebooks/07_movie_picker.ipynb.)
# Usage: bash scripts/page.sh [PORT] [more voila options]     (PORT defaults to 8866)
# Needs notebooks/05_vector_store.ipynb run for RECSYS_DATASET (same settings as the notebooks, see README).
# Each visitor gets its own kernel. The default Milvus Lite file opens in one process at a time: one visitor at
# a time, and no notebook kernel on the same dataset (for more, point RECSYS_MILVUS_URI at the docker-compose
# server). Voila does not shut down the kernel of a closed or reloaded page (voila issue #1458, its shutdown
# request fails the XSRF check), so idle kernels without a page are culled after 15 s; a new page waits for
# the file meanwhile (helpers.picker.PAGE_WAIT_SECONDS). Tracebacks are shown so that a page which cannot open
# the stores says why.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" DGLBACKEND=pytorch
port=8866
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then port="$1"; shift; fi
exec .venv/bin/voila notebooks/movie_picker_page.ipynb --no-browser --Voila.ip=127.0.0.1 --port="$port" \
  --TemplateExporter.exclude_markdown=True --show_tracebacks=True \
  --MappingKernelManager.cull_idle_timeout=15 --MappingKernelManager.cull_interval=5 "$@"

#!/usr/bin/env bash
# The main job: set up, then execute the notebook series (helpers/stages.py) headless on the embedded defaults
# (Milvus Lite file + SQLite catalog under artifacts/), keeping the executed copies, then serve the web app (the
# movie picker page and the API on one port, any number of visitors: scripts/api.sh).
# Settings come from the environment (see README): RECSYS_DATASET (default ml-1m), RECSYS_DATA_DIR, ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS="${RECSYS_THREADS:-1}" DGLBACKEND=pytorch
dataset="${RECSYS_DATASET:-ml-1m}"
out="${RECSYS_ARTIFACTS:-artifacts}/${dataset}/executed"
mkdir -p "$out"
# the series in order, from the stage table (helpers/stages.py); the Voila page is not part of it
series="$(.venv/bin/python -m helpers.stages)"
for nb in $series; do
  echo "==> running $nb on $dataset"
  .venv/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 --output-dir "$out" "$nb"
done
echo
echo "Done. Executed notebooks are in $out."
echo "Open the series interactively later with:  .venv/bin/jupyter lab notebooks/"
echo "The notebook itself as a page (Voila, one visitor at a time on the default stores): bash scripts/page.sh"
echo
exec bash scripts/api.sh

#!/usr/bin/env bash
# The main job: set up, then execute the notebook series (helpers/stages.py) headless on the embedded defaults
# (Milvus Lite file + SQLite catalog under artifacts/), keeping the executed copies, then serve the web app (the
# movie picker page and the API on one port, any number of visitors: scripts/api.sh).
# Settings come from the environment (see README): RECSYS_DATASET (default ml-1m), RECSYS_DATA_DIR, ...
# --no-serve: stop after the series (no web app), e.g. to time the notebooks on a large dataset.
set -euo pipefail
serve=1
for arg in "$@"; do
  case "$arg" in
    --no-serve) serve=0 ;;
    -h|--help) echo "usage: bash scripts/run.sh [--no-serve]   (settings: RECSYS_* environment variables, README)"; exit 0 ;;
    *) echo "scripts/run.sh: unknown option $arg; use --no-serve to run the series without serving" >&2; exit 2 ;;
  esac
done
# the notebooks run in notebooks/: a relative RECSYS_DATA_DIR, RECSYS_ARTIFACTS or RECSYS_CACHE (as the README
# writes them, e.g. ../shared/movielens/ml-1m) means relative to where this command was started
for setting in RECSYS_DATA_DIR RECSYS_ARTIFACTS RECSYS_CACHE; do
  if [ -n "${!setting:-}" ]; then export "$setting=$(realpath -m -- "${!setting}")"; fi
done
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS="${RECSYS_THREADS:-1}" DGLBACKEND=pytorch
# the dataset the settings name (RECSYS_DATASET, else the preset's: ML-100K for RECSYS_PRESET=workshop, else ml-1m),
# then each notebook's wall-clock budget under the preset ("-": none), from helpers/presets.py
plan="$(.venv/bin/python -m helpers.presets)"
dataset="$(head -n 1 <<< "$plan")"
export RECSYS_DATASET="$dataset"
out="${RECSYS_ARTIFACTS:-artifacts}/${dataset}/executed"
mkdir -p "$out"
# the series in order, from the stage table (helpers/stages.py); the Voila page is not part of it
series="$(.venv/bin/python -m helpers.stages)"
# each notebook's wall time, its budget and peak memory (the largest process, the kernel included: GNU time's %M)
# go to $out/timings.tsv, the figures of the README's notebooks table
printf 'notebook\tseconds\tpeak_rss_mb\tbudget_s\n' > "$out/timings.tsv"
for nb in $series; do
  budget="$(awk -F'\t' -v nb="$nb" '$1 == nb {print $2}' <<< "$plan")"
  echo "==> running $nb on $dataset"
  started=$SECONDS
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%M' -o "$out/.rss" \
      .venv/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 --output-dir "$out" "$nb"
    peak=$(( $(tail -n 1 "$out/.rss") / 1024 ))
  else
    .venv/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 --output-dir "$out" "$nb"
    peak=""
  fi
  printf '%s\t%s\t%s\t%s\n' "$nb" "$((SECONDS - started))" "$peak" "$budget" | tee -a "$out/timings.tsv"
done
echo
echo "Done. Executed notebooks are in $out."
echo "Open the series interactively later with:  .venv/bin/jupyter lab notebooks/"
echo "The notebook itself as a page (Voila, one visitor at a time on the default stores): bash scripts/page.sh"
if [ "$serve" = 0 ]; then
  echo "Serve the web app and the API later with:  bash scripts/api.sh"
  exit 0
fi
echo
exec bash scripts/api.sh

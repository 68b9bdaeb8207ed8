"""Which Milvus index a movie collection gets, by its size, and the `RECSYS_MILVUS_INDEX` override.

Measured with `python -m bench.index_choice` (docs/benchmarks.md, "Milvus index choice"): 64-d unit
vectors, top-10 by inner product, 200 queries, against NumPy brute force, with and without filters.

* `FLAT` (exact) up to `EXACT_UP_TO` rows on either backend: recall 1.0 with every filter, and at 87,585
  rows (ML-32M's catalogue) a search still takes a few milliseconds. Filtered searches on HNSW and IVF_FLAT
  lose hits (a 1 % genre filter returned fewer than 10 movies for most queries), which FLAT never does.
* `HNSW` (M=16, efConstruction=200, ef = max(64, 4 x limit)) above it: exact scans grow linearly with the
  rows and HNSW keeps unfiltered recall near 1.0 at a fraction of the latency. Filtered results are then
  approximate: their measured recall is in docs/benchmarks.md.
* `IVF_FLAT` (nlist = 4 sqrt(rows), nprobe = 32) is available through the override; it lost to HNSW on
  recall at the same latency in the measurements.

`RECSYS_MILVUS_INDEX` = `auto` (default, the rule above), `FLAT`, `IVF_FLAT` or `HNSW` forces one type
for collections created from then on (an existing collection keeps the index it was built with).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

INDEX_TYPES: tuple[str, ...] = ("FLAT", "IVF_FLAT", "HNSW")
INDEX_SETTINGS: tuple[str, ...] = ("auto", *INDEX_TYPES)
# rows: FLAT up to here, HNSW above (measurements in the module docstring)
EXACT_UP_TO_LITE = 200_000
EXACT_UP_TO_SERVER = 1_000_000
METRIC = "IP"  # inner product = cosine on the unit vectors of helpers.embeddings


@dataclass(frozen=True)
class IndexChoice:
    index_type: str
    metric_type: str
    build_params: dict[str, Any]
    reason: str

    def search_params(self, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.index_type == "HNSW":
            params = {"ef": max(64, 4 * limit)}
        elif self.index_type == "IVF_FLAT":
            params = {"nprobe": 32}
        return {"metric_type": self.metric_type, "params": params}


def build_params(index_type: str, n_rows: int) -> dict[str, Any]:
    if index_type == "HNSW":
        return {"M": 16, "efConstruction": 200}
    if index_type == "IVF_FLAT":
        return {"nlist": max(1, min(65_536, int(4 * math.sqrt(max(n_rows, 1)))))}
    return {}


def check_index_setting(value: str) -> str:
    """The canonical spelling of a `RECSYS_MILVUS_INDEX` value; anything else raises ValueError."""
    canonical = value.strip().upper() if value.strip().lower() != "auto" else "auto"
    if canonical not in INDEX_SETTINGS:
        raise ValueError(f"RECSYS_MILVUS_INDEX={value!r}: use one of {', '.join(INDEX_SETTINGS)} "
                         "(auto = FLAT up to a size measured per backend, HNSW above)")
    return canonical


def choose_index(n_rows: int, lite: bool, setting: str = "auto") -> IndexChoice:
    """The index for `n_rows` normalised vectors on Milvus Lite (`lite`) or a server."""
    where = "Milvus Lite" if lite else "the server"
    setting = check_index_setting(setting)
    if setting != "auto":
        return IndexChoice(setting, METRIC, build_params(setting, n_rows),
                           f"RECSYS_MILVUS_INDEX={setting} ({n_rows:,} rows on {where})")
    limit = EXACT_UP_TO_LITE if lite else EXACT_UP_TO_SERVER
    if n_rows <= limit:
        return IndexChoice("FLAT", METRIC, {}, f"{n_rows:,} rows on {where}, at most {limit:,}: exact search "
                                               "is fast enough and keeps filtered results exact")
    return IndexChoice("HNSW", METRIC, build_params("HNSW", n_rows),
                       f"{n_rows:,} rows on {where}, more than {limit:,}: a graph index (HNSW); "
                       "filtered results are approximate")

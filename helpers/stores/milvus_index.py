"""Which Milvus index a movie collection gets, by its size, and the `RECSYS_MILVUS_INDEX` override.

Measured with `python -m bench.index_choice` (docs/benchmarks.md, "Milvus index choice"): 64-d unit
vectors, top-10 by inner product against NumPy brute force, with and without filters, on a shared machine.

* `FLAT` (exact): recall 1.0 with every filter on both backends. At 87,585 rows (ML-32M's catalogue) 5 ms
  p50 on milvus-server and 87 ms on Milvus Lite; at 1,000,000 rows 18 ms on the server but 573 ms on Lite.
  So FLAT up to `EXACT_UP_TO_SERVER` = 1,000,000 rows on a server, and always on Milvus Lite: there HNSW
  did not make 1,000,000 rows fast (478 ms p50 vs FLAT's 573 ms) and lost filtered hits (below), so a
  large collection on Lite is a reason to move to a server, not to change the index.
* `HNSW` (M=16, efConstruction=200, ef = max(64, 4 x limit)) above: graph search stays fast as rows grow,
  but filtered results are approximate. With a 1 % genre filter HNSW on Lite returned fewer than 10 hits for
  40 of 50 queries (recall 0.35) at 87,585 rows; on the server recall was 0.94-1.00 depending on the filter.
  At 1,000,000 rows on the server: 5.8 ms p50 vs FLAT's 18 ms, recall 0.985-1.00, after a 293 s build.
* `IVF_FLAT` (nlist = 4 sqrt(rows), nprobe = 32) only through the override: it lost a quarter of the hits
  with the 1 % filter on the server (0.74) and bought 2.5 ms over FLAT's 5 ms at 87,585 rows.

`RECSYS_MILVUS_INDEX` = `auto` (default, the rule above), `FLAT`, `IVF_FLAT` or `HNSW` forces one type
for collections built from then on (each ingestion builds a new collection, so the next one picks it up).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from helpers.config import check_index_setting

EXACT_UP_TO_SERVER = 1_000_000  # rows: FLAT up to here on a server, HNSW above (Milvus Lite: always FLAT)
METRIC = "IP"  # inner product is the model's score (candidate vectors carry a bias dimension, not unit length)


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


def choose_index(n_rows: int, lite: bool, setting: str = "auto") -> IndexChoice:
    """The index for `n_rows` candidate vectors (inner product = the model's score) on Milvus Lite (`lite`)
    or a server."""
    where = "Milvus Lite" if lite else "the server"
    setting = check_index_setting(setting)
    if setting != "auto":
        return IndexChoice(setting, METRIC, build_params(setting, n_rows),
                           f"RECSYS_MILVUS_INDEX={setting} ({n_rows:,} rows on {where})")
    if lite:
        return IndexChoice("FLAT", METRIC, {}, f"{n_rows:,} rows on Milvus Lite: exact search (HNSW on Lite lost "
                                               "filtered hits and was no faster at 1M rows); IP = the model's score")
    limit = EXACT_UP_TO_SERVER
    if n_rows <= limit:
        return IndexChoice("FLAT", METRIC, {}, f"{n_rows:,} rows on {where}, at most {limit:,}: exact search "
                                               "is fast enough and keeps filtered results exact")
    return IndexChoice("HNSW", METRIC, build_params("HNSW", n_rows),
                       f"{n_rows:,} rows on {where}, more than {limit:,}: a graph index (HNSW); "
                       "filtered results are approximate")

"""Where one recommendation's time goes: per-stage `time.perf_counter_ns` laps, only when asked for.

`RecommendationEngine.recommend(..., timings={})` fills the dict with nanoseconds per stage (`STAGES`, added to
when a stage comes back); with `timings=None` (the default) `Stopwatch.lap` returns at once. The API turns the
dict into a `Server-Timing` header when a request sends `X-Recsys-Timings: 1` (`server_timing`).
"""
from __future__ import annotations

import time

# in the order a recommendation goes through them. validation: the input checks and the liked ids against the
# encoder's lookup; encoding: the query vector(s); search: the one Milvus call; catalog: the one catalog query;
# explanation: the rest (dropping the liked movies, fusing per-movie hits for max/sum, which liked movie explains
# each result, building the results)
STAGES = ("validation", "encoding", "search", "catalog", "explanation")
TIMINGS_HEADER = "x-recsys-timings"  # a request header: "1" asks the API for a Server-Timing header


class Stopwatch:
    """Laps into `timings` (stage -> ns since the previous lap); does nothing when `timings` is None."""

    __slots__ = ("_last", "timings")

    def __init__(self, timings: dict[str, int] | None):
        self.timings = timings
        self._last = time.perf_counter_ns() if timings is not None else 0

    def lap(self, stage: str) -> None:
        if self.timings is None:
            return
        now = time.perf_counter_ns()
        self.timings[stage] = self.timings.get(stage, 0) + now - self._last
        self._last = now


def server_timing(timings: dict[str, int]) -> str:
    """A `Server-Timing` header value (durations in ms, `STAGES` first in their order), e.g.
    `validation;dur=0.021, search;dur=2.914`."""
    order = [s for s in STAGES if s in timings] + [s for s in timings if s not in STAGES]
    return ", ".join(f"{stage};dur={timings[stage] / 1e6:.3f}" for stage in order)


def parse_server_timing(value: str) -> dict[str, float]:
    """`server_timing`'s header back into stage -> ms (what a client or a benchmark reads)."""
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, rest = part.strip().partition(";")
        if name and rest.startswith("dur="):
            out[name] = float(rest[4:])
    return out

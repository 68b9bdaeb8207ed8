"""Title search in memory: every folded title in popularity order in one string, searched with `str.find`.

`Catalog.search_titles` answers from a `TitleIndex` built from the catalog's `movies` table (the folded titles
that ingestion computed, most rated first, ties by id) and rebuilt when the catalog's generation (a one-row table
that every catalog write bumps in its own transaction) differs from the one it was built at: one cheap query per
search instead of a scan of the folded-title column in SQL. The first `limit` titles in which `str.find` finds
the folded query are the answer, in the order SQL's `title_folded LIKE '%q%' ORDER BY n_ratings DESC, movie_id`
gives (tests/test_catalog.py holds it to that query on SQLite and MariaDB). A common word stops after a few
titles; a rare one costs one pass of C-speed `find` over the string (about 3 MB at ML-32M's 87,585 titles).
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

SEPARATOR = "\x00"  # never inside a title: the catalog refuses titles with control characters


@dataclass(frozen=True)
class TitleIndex:
    """The catalog's movies at one generation, most rated first; `rows[i]` is the i-th title's catalog row."""

    generation: int
    text: str  # the folded titles joined by SEPARATOR, in rank order
    starts: list[int]  # where each title starts in `text`
    rows: Sequence[Any]  # the catalog rows, in rank order

    @classmethod
    def build(cls, generation: int, folded_titles: Sequence[str], rows: Sequence[Any]) -> TitleIndex:
        """From the folded titles and their rows, both already in rank order."""
        starts = list(accumulate((len(t) + 1 for t in folded_titles[:-1]), initial=0)) if folded_titles else []
        return cls(generation, SEPARATOR.join(folded_titles), starts, list(rows))

    def search(self, folded_query: str, limit: int) -> list[Any]:
        """The rows of the first `limit` titles (in rank order) that contain `folded_query`."""
        if SEPARATOR in folded_query or not self.rows:
            return []
        found: list[Any] = []
        starts, position = self.starts, 0
        while len(found) < limit:
            hit = self.text.find(folded_query, position)
            if hit < 0:
                break
            title = bisect_right(starts, hit) - 1
            found.append(self.rows[title])
            position = starts[title + 1] if title + 1 < len(starts) else len(self.text) + 1
        return found

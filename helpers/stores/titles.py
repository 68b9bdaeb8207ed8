"""Title search in memory: a trigram index over the folded titles in popularity order, and a `str.find` scan.

`Catalog.search_titles` answers from a `TitleIndex` built from the catalog's `movies` table (the folded titles
that ingestion computed, most rated first, ties by id) and rebuilt when the catalog's generation (a one-row table
that every catalog write bumps in its own transaction) differs from the one it was built at: one cheap query per
search instead of a scan of the folded-title column in SQL. The answer is the first `limit` titles, in rank order,
that contain the folded query: the order SQL's `title_folded LIKE '%q%' ORDER BY n_ratings DESC, movie_id` gives
(tests/test_catalog.py holds it to that query on SQLite and MariaDB).

Two ways to find them, with the same answer (tests/test_titles.py): a query of 3 or more characters walks the
titles that hold its rarest trigram (three consecutive characters), in rank order, and keeps those that contain
the whole query, so a rare word costs a few candidates instead of a pass over every title; a shorter query, or one
whose every trigram is common, scans one string of every folded title with `str.find`, which stops as soon as it
has `limit` titles (a common query's titles come early). The postings are three NumPy arrays, built vectorised.

Everything the index holds is in NumPy arrays (the titles and the catalog's columns as object arrays) and one
string, which the garbage collector does not walk: a full collection visits every object that a list, dict or row
refers to, and 87,585 row objects (or lists of their values) made each one stall the API for tens of ms (issue 20).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np

SEPARATOR = "\x00"  # never inside a title: the catalog refuses titles with control characters
GRAM = 3
SCAN_SHARE = 8  # the scan when the rarest trigram is in over 1/8 of the titles: a candidate costs ~8 titles' scan
CHUNK = 64  # candidates converted to Python ints at a time: a common trigram's list is rarely read to its end
_SHIFTS = (np.uint64(42), np.uint64(21))  # a trigram's key: its three code points (< 2**21 each) side by side


@dataclass(frozen=True)
class TitleIndex:
    """The catalog's movies at one generation, most rated first; `row(i)` is the i-th title's catalog row."""

    generation: int
    titles: np.ndarray  # the folded titles, in rank order (object array)
    text: str  # the folded titles joined by SEPARATOR
    starts: np.ndarray  # where each title starts in `text` (int64)
    columns: dict[str, np.ndarray]  # the catalog's columns, in rank order (object arrays)
    grams: np.ndarray  # every trigram's key, sorted (uint64)
    bounds: np.ndarray  # the ranks of the titles holding grams[i] are ranks[bounds[i]:bounds[i + 1]]
    ranks: np.ndarray  # title ranks, ascending within each trigram (int32)

    @classmethod
    def build(cls, generation: int, folded_titles: Sequence[str], columns: dict[str, Sequence[Any]]) -> TitleIndex:
        """From the folded titles and the catalog's columns (name -> values), all already in rank order."""
        starts = np.fromiter(accumulate((len(t) + 1 for t in folded_titles[:-1]), initial=0), dtype=np.int64,
                             count=len(folded_titles)) if len(folded_titles) else np.zeros(0, np.int64)
        text = SEPARATOR.join(folded_titles)
        return cls(generation, _objects(folded_titles), text, starts,
                   {name: _objects(values) for name, values in columns.items()}, *_postings(text))

    def row(self, rank: int) -> dict[str, Any]:
        """The catalog row of the title at `rank`, column name -> value."""
        return {name: values[rank] for name, values in self.columns.items()}

    def search(self, folded_query: str, limit: int) -> list[int]:
        """The ranks of the first `limit` titles (in rank order) that contain `folded_query`."""
        if SEPARATOR in folded_query or not len(self.titles) or limit < 1:
            return []
        candidates = self._candidates(folded_query)
        if candidates is None:
            return self._scan(folded_query, limit)
        found: list[int] = []
        for first in range(0, len(candidates), CHUNK):
            for rank in candidates[first:first + CHUNK].tolist():
                if folded_query in self.titles[rank]:
                    found.append(rank)
                    if len(found) == limit:
                        return found
        return found

    def _candidates(self, folded_query: str) -> np.ndarray | None:
        """The ranks of the titles that hold the query's rarest trigram (none: a trigram no title holds), or None
        where the scan is the better way (a query shorter than a trigram, or only common trigrams)."""
        if len(folded_query) < GRAM:
            return None
        keys = _keys(np.array([ord(c) for c in folded_query], dtype=np.uint64))
        at = np.searchsorted(self.grams, keys)
        if (at >= len(self.grams)).any() or (self.grams[np.minimum(at, len(self.grams) - 1)] != keys).any():
            return self.ranks[:0]
        sizes = self.bounds[at + 1] - self.bounds[at]
        rarest = int(at[np.argmin(sizes)])
        if int(sizes.min()) * SCAN_SHARE > len(self.titles):
            return None
        return self.ranks[self.bounds[rarest]:self.bounds[rarest + 1]]

    def _scan(self, folded_query: str, limit: int) -> list[int]:
        found: list[int] = []
        starts, position = self.starts, 0
        while len(found) < limit:
            hit = self.text.find(folded_query, position)
            if hit < 0:
                break
            title = int(starts.searchsorted(hit, side="right")) - 1
            found.append(title)
            position = int(starts[title + 1]) if title + 1 < len(starts) else len(self.text) + 1
        return found


def _objects(values: Sequence[Any]) -> np.ndarray:
    """`values` in an object array: one container the garbage collector does not walk, whatever its length."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _keys(codes: np.ndarray) -> np.ndarray:
    """The key of the trigram at each position of `codes` (code points, uint64) that starts one."""
    return (codes[:-2] << _SHIFTS[0]) | (codes[1:-1] << _SHIFTS[1]) | codes[2:]


def _postings(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grams, bounds, ranks) of the titles joined in `text`: each trigram inside a title, once per title."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    if len(codes) < GRAM:
        return np.zeros(0, np.uint64), np.zeros(1, np.int64), np.zeros(0, np.int32)
    inside = codes != ord(SEPARATOR)
    keep = inside[:-2] & inside[1:-1] & inside[2:]
    keys = _keys(codes)[keep]
    owners = np.cumsum(~inside)[:-2][keep]  # a title's rank is the number of separators before it
    order = np.argsort(keys, kind="stable")  # stable: each trigram's owners stay in rank order
    keys, owners = keys[order], owners[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])
    keys, owners = keys[first], owners[first]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
    return keys[starts], np.append(starts, len(keys)), owners.astype(np.int32)

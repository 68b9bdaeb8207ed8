"""helpers.stores.titles: the trigram walk and the scan give the brute-force answer. CI cost: < 2 s, no stores."""
from __future__ import annotations

import random

import pytest

from helpers.stores import titles as titles_module
from helpers.stores.sql import fold
from helpers.stores.titles import TitleIndex

WORDS = ["star", "wars", "the", "godfather", "misérables", "amélie", "straße", "noël", "à", "québec", "🎬", "東京",
         "物語", "100%", "_wild_", "it's", "(1999)", "a", "of", "zz", "x"]


def catalog_titles(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [fold(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))) for _ in range(n)]


def brute_force(titles: list[str], query: str, limit: int) -> list[int]:
    return [rank for rank, title in enumerate(titles) if query in title][:max(limit, 0)]


def queries(titles: list[str], seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    found = ["", " ", "a", "zz", "zzz", "star wars", "godfather", "é", "🎬", "東京物", "qqqq", "the the", "a\x00b"]
    for title in rng.sample(titles, 80):
        start = rng.randrange(len(title))
        found.append(title[start:start + rng.randint(1, 8)])
    return found


@pytest.mark.parametrize("scan_share", [0, titles_module.SCAN_SHARE, 10**9])
def test_trigram_walk_and_scan_equal_brute_force(monkeypatch, scan_share: int) -> None:
    """Every query, at every limit, whichever way answers it (`scan_share` 0: never the scan; 10**9: always)."""
    monkeypatch.setattr(titles_module, "SCAN_SHARE", scan_share)
    titles = catalog_titles(600)
    index = TitleIndex.build(7, titles, {"title": titles})
    for query in queries(titles):
        for limit in (0, 1, 3, 10, 1_000):
            expected = [] if "\x00" in query else brute_force(titles, query, limit)
            assert index.search(query, limit) == expected, (query, limit)


def test_short_and_empty_catalogs() -> None:
    assert TitleIndex.build(1, [], {"movie_id": []}).search("abc", 5) == []
    short = TitleIndex.build(1, ["a", "ab", "é"], {"movie_id": [5, 6, 7]})
    assert short.search("abc", 5) == [] and short.search("ab", 5) == [1] and short.search("", 2) == [0, 1]
    assert short.row(2) == {"movie_id": 7}


def test_a_trigram_that_spans_two_titles_finds_nothing() -> None:
    index = TitleIndex.build(1, ["xab", "cde"], {"movie_id": [1, 2]})
    assert index.search("abc", 5) == [] and index.search("bcd", 5) == [] and index.search("cde", 5) == [1]

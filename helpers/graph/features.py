"""Node features of the movies (title tokens, multi-hot genres, standardised year) and users (category codes)."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from helpers.data.movielens import NO_GENRES
from helpers.errors import RecsysError

if TYPE_CHECKING:
    pass


PAD, UNKNOWN = "<pad>", "<unk>"  # title-token ids 0 and 1
MAX_TITLE_TOKENS = 16
_TOKEN = re.compile(r"[^\W_]+")


class GraphError(RecsysError, ValueError):
    """The input cannot be made into a graph; the message says what is wrong and what to do."""


# --------------------------------------------------------------------------------------------- features
def tokenize_title(title: str) -> list[str]:
    """Lower-case word tokens of a title, apostrophes dropped: "Schindler's List" -> ["schindlers", "list"]."""
    return _TOKEN.findall(str(title).lower().replace("'", ""))


def title_tokens(titles: Sequence[str], max_tokens: int = MAX_TITLE_TOKENS) -> tuple[np.ndarray, list[str]]:
    """Token ids `[n, L]` (0 = padding; L = longest title, at most `max_tokens`) and the vocabulary.

    The vocabulary lists `<pad>`, `<unk>`, then every token, most frequent first (ties alphabetical)."""
    tokenized = [tokenize_title(t)[:max_tokens] for t in titles]
    counts = Counter(tok for toks in tokenized for tok in toks)
    vocab = [PAD, UNKNOWN] + sorted(counts, key=lambda tok: (-counts[tok], tok))
    index = {tok: i for i, tok in enumerate(vocab)}
    width = max((len(toks) for toks in tokenized), default=0) or 1
    ids = np.zeros((len(tokenized), width), dtype=np.int64)
    for row, toks in enumerate(tokenized):
        ids[row, :len(toks)] = [index[tok] for tok in toks]
    return ids, vocab


def genre_multi_hot(genres: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Multi-hot `[n, G]` float32 over the genres in `genres` (lists of names), columns sorted by name."""
    if genres.map(lambda g: isinstance(g, str)).any():
        raise GraphError("movies.genres must hold lists of genre names (e.g. ['Comedy', 'Drama']), not strings; "
                         "load the dataset with helpers.data.loader.load_movielens.")
    exploded = genres.reset_index(drop=True).explode()
    exploded = exploded[exploded.notna() & (exploded != NO_GENRES)].astype(str)
    names = sorted(exploded.unique())
    matrix = np.zeros((len(genres), len(names)), dtype=np.float32)
    matrix[exploded.index.to_numpy(), np.searchsorted(names, exploded.to_numpy())] = 1.0
    return matrix, names


def standardised_year(year: pd.Series) -> np.ndarray:
    """(year - mean) / std over known years, float32; 0 where the year is unknown."""
    values = pd.to_numeric(year, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    known = ~np.isnan(values)
    out = np.zeros(len(values), dtype=np.float32)
    if known.any():
        std = values[known].std() or 1.0
        out[known] = (values[known] - values[known].mean()) / std
    return out


def category_codes(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), [v.item() if hasattr(v, "item") else v for v in uniques]


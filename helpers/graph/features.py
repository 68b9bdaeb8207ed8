"""Node features of the movies (title tokens, multi-hot genres, standardised year) and users (category codes)."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from helpers.data.movielens import NO_GENRES
from helpers.errors import RecsysError

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


def _years(year: pd.Series) -> np.ndarray:
    return pd.to_numeric(pd.Series(year), errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def year_scale(year: pd.Series) -> tuple[float, float]:
    """(mean, std) of the known years: what `standardised_year` uses; (0, 1) without any."""
    values = _years(year)
    known = values[~np.isnan(values)]
    return (float(known.mean()), float(known.std() or 1.0)) if len(known) else (0.0, 1.0)


def standardised_year(year: pd.Series, scale: tuple[float, float] | None = None) -> np.ndarray:
    """(year - mean) / std, float32; 0 where the year is unknown. `scale` (mean, std) defaults to
    `year_scale(year)`; give the graph's catalogue's to place movies outside it on the same scale."""
    values = _years(year)
    known = ~np.isnan(values)
    mean, std = scale if scale is not None else year_scale(year)
    out = np.zeros(len(values), dtype=np.float32)
    out[known] = (values[known] - mean) / std
    return out


def encode_titles(titles: Sequence[str], vocab: Sequence[str], known: Any = None,
                  max_tokens: int = MAX_TITLE_TOKENS) -> np.ndarray:
    """Token ids `[n, L]` of `titles` in an existing vocabulary (0 padding): tokens outside it, or outside
    `known` (a set of tokens, e.g. those of the training movies), become `<unk>` (id 1)."""
    index = {tok: i for i, tok in enumerate(vocab)}
    tokenized = [tokenize_title(t)[:max_tokens] for t in titles]
    width = max((len(toks) for toks in tokenized), default=0) or 1
    ids = np.zeros((len(tokenized), width), dtype=np.int64)
    for row, toks in enumerate(tokenized):
        ids[row, :len(toks)] = [index.get(tok, 1) if known is None or tok in known else 1 for tok in toks]
    return ids


def category_codes(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), [v.item() if hasattr(v, "item") else v for v in uniques]


"""Sequences of training movies per user, as the sequence model reads them.

Movies are graph node indices (`GraphData.movie_ids` order); `PAD` = -1 fills the left of a short sequence, so
the latest movie is always in the last column, as `helpers.evaluation` hands queries to a scorer. -1 is never a
movie index; the model maps it to an extra all-zero row of its input table and masks it out of attention.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from helpers.errors import RecsysError

PAD = -1


class SequenceDataError(RecsysError, ValueError):
    """Sequences that cannot be built (a window too short, movies out of range); the message says what to change."""


def pad_left(movies: Sequence[int] | np.ndarray, length: int) -> np.ndarray:
    """The last `length` of `movies` (oldest first), left-padded with `PAD` to exactly `length` (int64)."""
    movies = np.asarray(movies, dtype=np.int64)[-length:] if length > 0 else np.zeros(0, dtype=np.int64)
    out = np.full(length, PAD, dtype=np.int64)
    out[length - len(movies):] = movies
    return out


def user_histories(train: pd.DataFrame) -> list[np.ndarray]:
    """Each user's training movies in time order (the frame is sorted by user, then time, as `GraphData.train`)."""
    users = train["user"].to_numpy()
    movies = train["movie"].to_numpy(dtype=np.int64)
    if len(users) and (np.diff(users) < 0).any():
        raise SequenceDataError("training rows must be sorted by user, then time (GraphData.train is)")
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, dtype=int)
    return np.split(movies, starts[1:]) if len(users) else []


def training_windows(train: pd.DataFrame, length: int) -> np.ndarray:
    """`[W, length + 1]` int64 windows of training movies, left-padded with `PAD`: inputs are `[:, :-1]`, the
    targets (the next movie at every position) `[:, 1:]`. Each user's history is cut from its latest movie back
    into windows of `length` predictions (consecutive windows share one movie), so every training transition
    is predicted once; windows with fewer than 2 movies (no transition) are dropped."""
    if length < 1:
        raise SequenceDataError(f"length={length}: a window needs at least one prediction")
    rows: list[np.ndarray] = []
    for history in user_histories(train):
        end = len(history)
        while end >= 2:
            rows.append(pad_left(history[max(0, end - length - 1):end], length + 1))
            end -= length
    if not rows:
        raise SequenceDataError("no user has two training movies: there is nothing to learn an order from")
    return np.stack(rows)


def same_second_share(train: pd.DataFrame) -> float:
    """The share of consecutive training ratings of one user that share a timestamp (their order is then the
    split's tie-break by movie id, not the user's)."""
    same_user = train["user"].to_numpy()[1:] == train["user"].to_numpy()[:-1]
    same_time = np.diff(train["timestamp"].to_numpy()) == 0
    return float((same_user & same_time).sum() / max(int(same_user.sum()), 1))

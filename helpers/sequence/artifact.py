"""The sequence model's artifact and the one thing the product needs from it.

`sequence_model.pt` under `RECSYS_ARTIFACTS/<dataset>/` (stage "sequence", notebook 04) holds the best weights, the
config, the movie ids of the model's rows and the curve; its manifest names the embeddings (and the graph) it was
trained from, so the engine's "sequence" query encoder is used only while they are current (else the mean answers).

`SequenceQuery` turns liked movie ids, oldest first, into one query vector: the model's output after the latest of
the last N. Its output side is the frozen candidate vectors Milvus already holds, so the search is unchanged, and
the one-movie path (explanations, combine max/sum) keeps answering with each movie's own PinSage query vector.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers.artifacts import atomic_path, require, write_manifest
from helpers.config import Settings
from helpers.errors import RecsysError
from helpers.sequence.config import SequenceConfig
from helpers.sequence.data import pad_left
from helpers.training.embeddings import embeddings_path

if TYPE_CHECKING:  # torch is imported only when a model is saved, loaded or run: the API starts without it
    from helpers.sequence.model import SequenceModel

FILE_NAME = "sequence_model.pt"
STAGE = "sequence"


class SequenceArtifactError(RecsysError, ValueError):
    """A checkpoint that does not fit its movies, or liked movies the model does not know; says what to do."""


def sequence_model_path(settings: Settings) -> Path:
    return settings.artifacts_dir / FILE_NAME


def save_sequence_model(settings: Settings, model: SequenceModel, movie_ids: np.ndarray,
                        history: list[dict[str, Any]] | None = None, best_step: int | None = None,
                        inputs: dict[str, Path] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint atomically, then its manifest (stage "sequence"); `inputs` always includes the
    embeddings the model was trained from (add the graph's folder beside them)."""
    import torch

    if len(movie_ids) != model.n_movies:
        raise SequenceArtifactError(f"{len(movie_ids)} movie ids for a model of {model.n_movies} movies: give the "
                                 "movie ids of the model's rows (GraphData.movie_ids)")
    path = sequence_model_path(settings)
    state = {"state_dict": model.state_dict(), "config": model.config.to_dict(),
             "movie_ids": torch.tensor(np.asarray(movie_ids, dtype=np.int64)), "history": history or [],
             "best_step": best_step, "seed": settings.seed}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    inputs = {"embeddings": embeddings_path(settings), **(inputs or {})}
    write_manifest(path, STAGE, settings, inputs=inputs,
                   extra={"config": model.config.to_dict(), "best_step": best_step, **(extra or {})})
    return path


def load_sequence_model(settings: Settings, check: bool = True) -> tuple[SequenceModel, np.ndarray, dict[str, Any]]:
    """(model in eval mode, its rows' movie ids, the checkpoint) after `require` (dataset, seed, checksum and the
    current embeddings); a missing or stale artifact raises an `ArtifactError` naming notebook 04."""
    import torch

    from helpers.sequence.model import SequenceModel

    path = sequence_model_path(settings)
    if check:
        require(path, STAGE, settings, inputs={"embeddings": embeddings_path(settings)})
    state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
    weights = state["state_dict"]
    config = SequenceConfig.from_dict(state["config"])
    n, width = weights["table"].shape
    model = SequenceModel(torch.zeros(n - 1, width), weights["candidates"], config)
    model.load_state_dict(weights)
    model.eval()
    return model, state["movie_ids"].numpy().astype(np.int64), state


class SequenceQuery:
    """Liked movie ids (oldest first, the latest last) -> the sequence model's query vector `[candidate_dim]`."""

    def __init__(self, model: SequenceModel, movie_ids: np.ndarray):
        self.model = model.eval()
        self.movie_ids = np.asarray(movie_ids, dtype=np.int64)
        self.row = {int(m): i for i, m in enumerate(self.movie_ids)}

    @classmethod
    def from_settings(cls, settings: Settings) -> SequenceQuery:
        model, movie_ids, _ = load_sequence_model(settings)
        return cls(model, movie_ids)

    @property
    def length(self) -> int:
        return self.model.config.length

    @property
    def dim(self) -> int:
        return self.model.vector_dim

    def known(self, movie_ids: Sequence[int]) -> np.ndarray:
        """Which ids the model has a row for (movies added after training have none)."""
        return np.array([int(m) in self.row for m in movie_ids], dtype=bool)

    def rows(self, movie_ids: Sequence[int]) -> np.ndarray:
        """The model rows of the last N known ids, in the order given (unknown ids are skipped)."""
        rows = [self.row[int(m)] for m in movie_ids if int(m) in self.row]
        return np.asarray(rows[-self.length:], dtype=np.int64)

    def encode(self, movie_ids: Sequence[int]) -> np.ndarray:
        import torch

        rows = self.rows(movie_ids)
        if not len(rows):
            raise SequenceArtifactError("none of the liked movies is known to the sequence model: give at least one "
                                     "movie it was trained with (or use the mean encoder)")
        with torch.no_grad():
            window = torch.from_numpy(pad_left(rows, self.length))[None]
            return self.model.encode_last(window)[0].numpy().astype(np.float32)

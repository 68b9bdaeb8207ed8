"""Query encoders: how the engine turns a visitor's liked movies into the vector it searches Milvus with.

Milvus holds every movie's candidate vector; the model's score of movie j for a query vector q is q . c_j
(`helpers.training.embeddings`). The contract every encoder keeps (the engine uses nothing else):

* `QueryEncoder` (an ABC): `name` ("mean", "sequence"; later "recency"), `lookup`, `dim`,
  `encode(liked) -> [dim]` (the one query vector of the whole list: `combine="mean"`, the default) and
  `movie_vectors(liked) -> [n_liked, dim]` (each liked movie's own query vector, from the lookup: the per-movie
  searches of `combine="max"` / `"sum"` and the explanation "because you liked ..."). `liked` is in the order
  the visitor liked the movies, oldest first, the latest last, without repeats (the engine checks the input);
  an encoder may read only its last N. `requested` and `fallback_reason` say which encoder was asked for and,
  when another answers, why (see `load_query_encoder`).
* `MovieVectorLookup`: where an encoder gets movie query vectors, `known(ids) -> bool mask`,
  `missing(ids)`, `vectors(ids) -> [n, dim]`. It is a chain of `MovieVectorSource`s, the first that knows an
  id answers: first the embeddings artifact (`ArrayVectorSource.from_embeddings`), then the extra sources
  made by the factories in `VECTOR_SOURCES` (movies added after training, e.g. a catalog table of added
  movies and their vectors). The engine asks the lookup, never the artifact, whether a liked movie is known.
* `ENCODERS`: the registry, name -> `EncoderSpec(name, load, artifact, stage, preference)`. An encoder with an
  artifact (a trained model) is used only when that artifact's manifest says it was built from the current
  embeddings (`helpers.artifacts.require` with `inputs={"embeddings": ...}`); otherwise the mean answers.
* `load_query_encoder(settings, name=None, lookup=None)`: `name` (default `settings.query_encoder`, from
  `RECSYS_QUERY_ENCODER`) is a registry name or "auto" (the registered encoder of highest `preference` whose
  artifact matches: "sequence" (notebook 04) when its artifact was trained on the current embeddings, else the
  mean; under "auto" an encoder never trained here is skipped silently, a stale one with a reason). When a
  wanted encoder cannot be used its
  reason goes to `fallback_reason`, a warning in the log, `engine.health()["encoder"]` and the engine's repr.

`MeanQueryEncoder` is the mean of the liked movies' query vectors, as the evaluation's history protocol
scores it (`helpers.evaluation.scorers.query_candidate_scorer`); order does not matter to it.
`SequenceQueryEncoder` ("sequence") is the causal transformer of `helpers.sequence` over the last N liked movies:
its output is scored against the same candidate vectors, so Milvus holds nothing new; `movie_vectors` (the
per-movie searches and the explanations) stay each movie's own PinSage query vector.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from helpers.artifacts import ArtifactError, MissingArtifactError, require
from helpers.config import ConfigError, Settings
from helpers.engine.added_vectors import added_vector_source
from helpers.engine.inputs import RecommendError
from helpers.errors import RecsysError
from helpers.sequence.artifact import STAGE as SEQUENCE_STAGE, SequenceQuery, sequence_model_path
from helpers.stages import notebook_for
from helpers.training.embeddings import (
    EmbeddingsError,
    MovieEmbeddings,
    embeddings_path,
    load_movie_embeddings,
)

log = logging.getLogger(__name__)


class UnknownQueryMovies(RecsysError, KeyError):
    """Liked movie ids no vector source knows; `.movie_ids` lists them."""

    def __init__(self, movie_ids: list[int]):
        super().__init__(movie_ids)
        self.movie_ids = movie_ids

    def __str__(self) -> str:
        return (f"No query vector for movie id(s) {self.movie_ids}: they are neither in the embeddings artifact "
                "nor among the added movies. Find ids with search_titles().")


# -- where movie query vectors come from -----------------------------------------------------------------
class MovieVectorSource(Protocol):
    """One place that holds movies' query vectors (the embeddings artifact, a table of added movies, ...)."""
    name: str
    dim: int | None  # None: the length of the chain's first source (a source holding vectors of the same model)

    def known(self, movie_ids: Sequence[int]) -> np.ndarray:
        """A boolean mask: which of `movie_ids` this source has a vector for."""
        ...

    def vectors(self, movie_ids: Sequence[int]) -> np.ndarray:
        """`[len(movie_ids), dim]` float32; only called with ids it knows."""
        ...


class ArrayVectorSource:
    """Query vectors held in memory, one row per movie id: the embeddings artifact, or any extra table."""

    def __init__(self, name: str, movie_ids: np.ndarray, vectors: np.ndarray):
        movie_ids = np.asarray(movie_ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(movie_ids):
            raise EmbeddingsError(f"{len(movie_ids)} movie ids for query vectors of shape {vectors.shape}: give "
                                  "one row of vectors per movie id")
        self.name = name
        self.movie_ids = movie_ids
        self.query_vectors = vectors
        self.row = {int(m): i for i, m in enumerate(movie_ids)}
        self.dim = int(vectors.shape[1])

    @classmethod
    def from_embeddings(cls, embeddings: MovieEmbeddings) -> ArrayVectorSource:
        return cls("embeddings", embeddings.movie_ids, embeddings.query_vectors)

    def known(self, movie_ids: Sequence[int]) -> np.ndarray:
        return np.array([int(m) in self.row for m in movie_ids], dtype=bool)

    def vectors(self, movie_ids: Sequence[int]) -> np.ndarray:
        return self.query_vectors[[self.row[int(m)] for m in movie_ids]]


# factories of the sources after the artifact, in order (the added movies, helpers.engine.added_vectors); each
# gets the settings and returns a source, or None when it has nothing for them
VECTOR_SOURCES: list[Callable[[Settings], MovieVectorSource | None]] = [added_vector_source]


class MovieVectorLookup:
    """A chain of vector sources: for each movie id, the first source that knows it gives its query vector."""

    def __init__(self, sources: Sequence[MovieVectorSource]):
        if not sources:
            raise EmbeddingsError("a MovieVectorLookup needs at least one source: start with the embeddings "
                                  "artifact (MovieVectorLookup.from_embeddings)")
        dims = {s.name: int(s.dim) for s in sources if s.dim is not None}  # None: whatever the chain's is
        if len(set(dims.values())) != 1 or sources[0].dim is None:
            raise EmbeddingsError(f"vector sources of different lengths {dims}: every source must hold vectors of the "
                             f"current embeddings; after retraining, re-run {notebook_for('vectors')}")
        self.sources = list(sources)
        self.dim = int(self.sources[0].dim)

    @classmethod
    def from_embeddings(cls, embeddings: MovieEmbeddings,
                        extra: Sequence[MovieVectorSource] = ()) -> MovieVectorLookup:
        return cls([ArrayVectorSource.from_embeddings(embeddings), *extra])

    @classmethod
    def from_settings(cls, settings: Settings, extra: Sequence[MovieVectorSource] | None = None) -> MovieVectorLookup:
        """The embeddings artifact of `settings` (or an error naming the notebook), then `extra` (default: the
        sources the `VECTOR_SOURCES` factories make for `settings`)."""
        first = ArrayVectorSource.from_embeddings(load_movie_embeddings(settings))
        if extra is None:
            extra = [s for s in (factory(settings) for factory in VECTOR_SOURCES) if s is not None]
        return cls([first, *extra])

    def with_source(self, source: MovieVectorSource) -> MovieVectorLookup:
        """This chain with `source` asked last."""
        return MovieVectorLookup([*self.sources, source])

    def sources_of(self, movie_ids: Sequence[int]) -> list[str | None]:
        """The name of the source that answers for each id (None: no source knows it)."""
        ids = [int(m) for m in movie_ids]
        found: list[str | None] = [None] * len(ids)
        for source in self.sources:
            todo = [i for i, name in enumerate(found) if name is None]
            if not todo:
                break
            mask = source.known([ids[i] for i in todo])
            for i, hit in zip(todo, mask, strict=True):
                if hit:
                    found[i] = source.name
        return found

    def known(self, movie_ids: Sequence[int]) -> np.ndarray:
        return np.array([name is not None for name in self.sources_of(movie_ids)], dtype=bool)

    def missing(self, movie_ids: Sequence[int]) -> list[int]:
        """The ids (in the given order) that no source knows."""
        return [int(m) for m, name in zip(movie_ids, self.sources_of(movie_ids), strict=True) if name is None]

    def vectors(self, movie_ids: Sequence[int]) -> np.ndarray:
        """`[len(movie_ids), dim]` float32, each row from the first source that knows the id;
        `UnknownQueryMovies` names the ids none knows."""
        ids = [int(m) for m in movie_ids]
        names = self.sources_of(ids)
        missing = [m for m, name in zip(ids, names, strict=True) if name is None]
        if missing:
            raise UnknownQueryMovies(missing)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for source in self.sources:
            rows = [i for i, name in enumerate(names) if name == source.name]
            if rows:
                out[rows] = source.vectors([ids[i] for i in rows])
        return out

    def __repr__(self) -> str:
        return f"MovieVectorLookup({' -> '.join(s.name for s in self.sources)}, dim={self.dim})"


# -- the encoders ----------------------------------------------------------------------------------------
class QueryEncoder(ABC):
    """Liked movie ids (oldest first, the latest last) -> query vectors, through a `MovieVectorLookup`."""
    name: ClassVar[str]

    def __init__(self, lookup: MovieVectorLookup):
        self.lookup = lookup
        self.requested: str = self.name  # what was asked for ("auto" or a registry name)
        self.fallback_reason: str | None = None  # why the wanted encoder is not this one; None when it is

    @property
    def dim(self) -> int:
        return self.lookup.dim

    def movie_vectors(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        """Each liked movie's own query vector, `[n_liked, dim]` (per-movie searches and explanations)."""
        return self.lookup.vectors(liked_movie_ids)

    @abstractmethod
    def encode(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        """The one query vector `[dim]` of the whole list, in the order given (the latest last)."""

    def describe(self) -> dict[str, Any]:
        """{"name", "requested", "fallback_reason"}: what `engine.health()` and the API report."""
        return {"name": self.name, "requested": self.requested, "fallback_reason": self.fallback_reason}

    def __repr__(self) -> str:
        fallback = f", fallback_reason={self.fallback_reason!r}" if self.fallback_reason else ""
        return f"{type(self).__name__}(name={self.name!r}, requested={self.requested!r}{fallback})"


class MeanQueryEncoder(QueryEncoder):
    """The mean of the liked movies' query vectors (`[dim]` float32); order does not change it."""
    name = "mean"

    def encode(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        if not len(liked_movie_ids):
            raise RecommendError("no liked movies to encode: give at least one movie id")
        return self.movie_vectors(liked_movie_ids).mean(axis=0)


class SequenceQueryEncoder(QueryEncoder):
    """The sequence model's query vector after the latest of the last N liked movies it knows (`SequenceQuery`);
    movies added after training (known only to later sources of the lookup) are skipped, and a list of only
    such movies gets the mean of their query vectors."""
    name = "sequence"

    def __init__(self, lookup: MovieVectorLookup, sequence: SequenceQuery):
        if sequence.dim != lookup.dim:
            raise EmbeddingsError(f"the sequence model outputs vectors of length {sequence.dim}, the embeddings hold "
                                  f"{lookup.dim}: re-run {notebook_for(SEQUENCE_STAGE)}")
        super().__init__(lookup)
        self.sequence = sequence

    def encode(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        if not len(liked_movie_ids):
            raise RecommendError("no liked movies to encode: give at least one movie id")
        missing = self.lookup.missing(liked_movie_ids)
        if missing:
            raise UnknownQueryMovies(missing)
        if not self.sequence.known(liked_movie_ids).any():
            return self.movie_vectors(liked_movie_ids).mean(axis=0)
        return self.sequence.encode(liked_movie_ids)


# -- the registry and the one place that picks an encoder ---------------------------------------------
@dataclass(frozen=True)
class EncoderSpec:
    """How to load one encoder. `load(settings, lookup)` builds it; `artifact(settings)` is the path of its
    trained artifact (None: it needs only the embeddings), written with a manifest by stage `stage` with
    `inputs={"embeddings": embeddings_path(settings)}`; "auto" tries the highest `preference` first (a trained
    encoder registers with a preference above the mean's 0; the mean, which always loads, ends the search)."""
    name: str
    load: Callable[[Settings, MovieVectorLookup], QueryEncoder]
    artifact: Callable[[Settings], Path] | None = None
    stage: str = "model"
    preference: int = 0


ENCODERS: dict[str, EncoderSpec] = {
    "mean": EncoderSpec("mean", lambda settings, lookup: MeanQueryEncoder(lookup)),
    "sequence": EncoderSpec("sequence", lambda settings, lookup: SequenceQueryEncoder(
        lookup, SequenceQuery.from_settings(settings)), sequence_model_path, stage=SEQUENCE_STAGE, preference=10),
}


class UnknownEncoderError(ConfigError):
    """A query encoder name that is neither "auto" nor registered."""


def check_artifact(spec: EncoderSpec, settings: Settings) -> None:
    """Raise `MissingArtifactError` / `StaleArtifactError` unless `spec`'s artifact matches the embeddings."""
    if spec.artifact is not None:
        require(spec.artifact(settings), spec.stage, settings, inputs={"embeddings": embeddings_path(settings)})


def load_query_encoder(settings: Settings, name: str | None = None,
                       lookup: MovieVectorLookup | None = None) -> QueryEncoder:
    """The encoder named `name` (default `settings.query_encoder`; "auto": the best whose artifact matches),
    over `lookup` (default `MovieVectorLookup.from_settings`). A wanted encoder whose artifact is missing or
    stale is skipped and the mean answers, with the reason in `fallback_reason` (and a warning in the log)."""
    name = settings.query_encoder if name is None else name.strip().lower()
    if name != "auto" and name not in ENCODERS:
        raise UnknownEncoderError(f"Unknown query encoder {name!r}: use auto or one of {', '.join(ENCODERS)} "
                                  "(set RECSYS_QUERY_ENCODER, or pass one of these names).")
    if name == "auto":
        wanted = sorted(ENCODERS.values(), key=lambda s: (-s.preference, s.name != "mean", s.name))
    else:
        wanted = [ENCODERS[name]]
    lookup = lookup if lookup is not None else MovieVectorLookup.from_settings(settings)
    reasons: list[str] = []
    encoder: QueryEncoder | None = None
    for spec in wanted:
        try:
            check_artifact(spec, settings)
            encoder = spec.load(settings, lookup)
            break
        except MissingArtifactError as error:
            if name == "auto":  # never trained for this dataset and seed: nothing fell back, the next one answers
                log.info("query encoder %s is not trained here: %s", spec.name, error)
                continue
            reasons.append(f"the {spec.name} encoder is not used: {error}")
        except ArtifactError as error:
            reasons.append(f"the {spec.name} encoder is not used: {error}")
    if encoder is None:
        encoder = MeanQueryEncoder(lookup)
    encoder.requested = name
    encoder.fallback_reason = "; ".join(reasons) + f"; the {encoder.name} encoder answers" if reasons else None
    if reasons:
        log.warning("query encoder %s requested: %s", name, encoder.fallback_reason)
    return encoder


def encoder_names() -> tuple[str, ...]:
    """The registered encoder names (RECSYS_QUERY_ENCODER also takes "auto"); `helpers.config.QUERY_ENCODERS`
    lists the same names (a test keeps the two in step)."""
    return tuple(ENCODERS)

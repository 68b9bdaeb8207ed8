"""Layer-wise inference of every movie's vectors with a trained PinSage, and their validation metrics."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from helpers.dgl_import import dgl
from helpers.graph.features import GraphError
from helpers.training.model import PinSage
from helpers.training.sampling import NeighbourSampler


@torch.no_grad()
def infer_movie_embeddings(model: PinSage, gd, batch_size: int = 1024, seed: int | None = None,
                           draws: int = 1) -> np.ndarray:
    """Every movie's embedding ([n_movies, dim] float32, unit rows), computed layer by layer as in the paper's
    MapReduce inference: layer-1 representations of all movies first, then layer 2 from those, so each
    movie's lower-layer vector is computed once instead of once per neighbourhood it appears in.
    `seed` fixes the random walks (DGL's global RNG) for a reproducible result. With `draws` > 1 the embedding
    is the normalised mean over that many neighbourhood draws (seeds `seed`, `seed + 1`, ...)."""
    if draws < 1:
        raise GraphError(f"draws={draws}: give at least 1 neighbourhood draw")
    total = None
    for i in range(draws):
        layers = infer_layer_vectors(model, gd, batch_size, None if seed is None else seed + i)
        h = model.combine(layers[0], layers[-1])
        total = h if total is None else total + h
    out = total if draws == 1 else torch.nn.functional.normalize(total, dim=1)
    return out.float().cpu().numpy()


@torch.no_grad()
def infer_layer_vectors(model: PinSage, gd, batch_size: int = 1024, seed: int | None = None) -> list[torch.Tensor]:
    """Every movie's representation after each layer, `[projected, conv 1, ..., conv L]` (each [n_movies, dim],
    on the model's device), as `infer_movie_embeddings` computes them: the stored neighbour vectors from which
    `helpers.training.inductive.embed_new_movies` embeds movies outside the graph."""
    generator = None
    if seed is not None:
        dgl.seed(seed)
        generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    device = model.device
    n = gd.graph.num_nodes("movie")
    if n != model.features.num_movies:
        raise GraphError(f"the model was built for {model.features.num_movies} movies but the graph has {n}: "
                         "train it on this graph (notebook 03)")
    movies = torch.arange(n)
    batches = [movies[i:i + batch_size] for i in range(0, n, batch_size)]
    projected = torch.cat([model.features(b.to(device)) for b in batches])
    sampler = NeighbourSampler(gd.graph, 1, model.spec, generator=generator)
    outputs = [projected]
    for conv in model.convs:
        h, parts = outputs[-1], []
        for batch in batches:
            hop, inputs = sampler.hop(batch)
            parts.append(conv(hop.to(device), h[inputs.to(device)], h[batch.to(device)]))
        outputs.append(torch.cat(parts))
    model.train(was_training)
    return outputs


@dataclass(frozen=True)
class MovieVectors:
    """Every movie's query and candidate vectors (row i = movie node i, float32): movie i's query vector
    dotted with movie j's candidate vector is the model's score of j as the next movie after i."""

    query: np.ndarray
    candidate: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.candidate.shape[1])


@torch.no_grad()
def infer_movie_vectors(model: PinSage, gd, batch_size: int = 1024, seed: int | None = None,
                        draws: int = 1) -> MovieVectors:
    """`infer_movie_embeddings`, then the model's query and candidate sides of every movie (see
    `helpers.training.model`): what notebook 03 saves, Milvus stores (candidates) and the engine queries with."""
    h = torch.from_numpy(infer_movie_embeddings(model, gd, batch_size, seed, draws)).to(model.device)
    movies = torch.arange(len(h), device=model.device)
    return MovieVectors(query=model.query_vectors(h, movies).float().cpu().numpy(),
                        candidate=model.candidate_vectors(h, movies).float().cpu().numpy())


def validation_metrics(vectors: MovieVectors | np.ndarray, gd, split: str = "val", k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k with protocol (a): the query is the user's latest training movie. `vectors` are a
    model's `MovieVectors` (inner product of query and candidate) or one array of movie vectors (cosine).
    `gd` may be a `GraphData` or the `helpers.evaluation.protocols.prepare_evaluation` of one (faster every epoch)."""
    from helpers.evaluation.protocols import evaluate_scores
    from helpers.evaluation.scorers import embedding_scorer, query_candidate_scorer

    scorer = (query_candidate_scorer(vectors.query, vectors.candidate) if isinstance(vectors, MovieVectors)
              else embedding_scorer(vectors))
    return evaluate_scores(scorer, gd, split=split, protocol="latest", k=k)


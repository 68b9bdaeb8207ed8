"""The PinSage model: a feature projector, weighted-SAGE layers and a max-margin loss, in plain PyTorch.

Message passing is written with `index_add_` over each hop's edge lists (`helpers.sampling.Hop`), so the
model runs on any PyTorch device although DGL's PyPI build is CPU-only. A movie's embedding is its projected
features plus the output of the last convolution, L2-normalised, so inner product = cosine similarity,
the same score Milvus uses later.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from helpers.sampling import Hop, Neighbourhood, NeighbourhoodSpec

YEAR_BUCKETS = torch.linspace(-3.0, 3.0, 25)  # standardised release year -> 26 buckets (unknown year = 0)


class MovieFeatures(nn.Module):
    """Projects each movie's features into `dim`: genres (linear), release year (bucket embedding),
    title tokens (mean of token embeddings) and a learned per-movie id embedding, summed."""

    def __init__(self, genres: torch.Tensor, year: torch.Tensor, title: torch.Tensor, dim: int,
                 use_id: bool = True):
        super().__init__()
        self.register_buffer("genres", genres.float(), persistent=False)
        self.register_buffer("year_bucket", torch.bucketize(year.float(), YEAR_BUCKETS), persistent=False)
        used = int((title > 0).any(0).nonzero().max()) + 1 if bool((title > 0).any()) else 1
        self.register_buffer("title", title[:, :used].long(), persistent=False)  # drop all-padding columns
        self.genre_proj = nn.Linear(genres.shape[1], dim)
        self.year_emb = nn.Embedding(len(YEAR_BUCKETS) + 1, dim)
        vocab = int(title.max()) + 1 if title.numel() else 1
        self.title_emb = nn.Embedding(vocab, dim, padding_idx=0)
        self.id_emb = nn.Embedding(len(genres), dim) if use_id else None
        for emb in (self.year_emb, self.title_emb, self.id_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.1)
        with torch.no_grad():
            self.title_emb.weight[0].zero_()

    @property
    def num_movies(self) -> int:
        return len(self.genres)

    def forward(self, movies: torch.Tensor) -> torch.Tensor:
        tokens = self.title[movies]
        counts = (tokens > 0).sum(1, keepdim=True).clamp(min=1)
        h = self.genre_proj(self.genres[movies]) + self.year_emb(self.year_bucket[movies])
        h = h + self.title_emb(tokens).sum(1) / counts
        if self.id_emb is not None:
            h = h + self.id_emb(movies)
        return h


class WeightedSAGELayer(nn.Module):
    """PinSage convolution (paper, Algorithm 1): neighbours' ReLU(Q h) averaged with their visit counts as
    weights (importance pooling), concatenated with the node's own h, then ReLU(W [.]) and L2-normalised."""

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.Q = nn.Linear(dim, dim)
        self.W = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)
        gain = nn.init.calculate_gain("relu")
        for lin in (self.Q, self.W):
            nn.init.xavier_uniform_(lin.weight, gain=gain)
            nn.init.zeros_(lin.bias)

    def forward(self, hop: Hop, h_src: torch.Tensor, h_dst: torch.Tensor) -> torch.Tensor:
        messages = F.relu(self.Q(self.dropout(h_src)))[hop.src] * hop.weight.unsqueeze(1)
        pooled = h_dst.new_zeros((hop.num_dst, messages.shape[1])).index_add_(0, hop.dst, messages)
        total = h_dst.new_zeros(hop.num_dst).index_add_(0, hop.dst, hop.weight).clamp(min=1.0)
        z = F.relu(self.W(self.dropout(torch.cat([pooled / total.unsqueeze(1), h_dst], dim=1))))
        return F.normalize(z, dim=1)


class PinSage(nn.Module):
    """Projector + `layers` convolutions; `forward(neighbourhood)` embeds the neighbourhood's seeds.
    `spec` says how its neighbourhoods are sampled, in training and in inference alike."""

    def __init__(self, genres: torch.Tensor, year: torch.Tensor, title: torch.Tensor, dim: int = 64,
                 layers: int = 2, dropout: float = 0.0, use_id: bool = True,
                 spec: NeighbourhoodSpec = NeighbourhoodSpec()):
        super().__init__()
        self.dim = dim
        self.spec = spec
        self.features = MovieFeatures(genres, year, title, dim, use_id)
        self.convs = nn.ModuleList(WeightedSAGELayer(dim, dropout) for _ in range(layers))

    @classmethod
    def from_graph(cls, graph, **kwargs) -> PinSage:
        """Build from a `GraphData.graph`'s movie features (`genres`, `year`, `title`)."""
        data = graph.nodes["movie"].data
        missing = {"genres", "year", "title"} - set(data.keys())
        if missing:
            raise ValueError(f"movie nodes lack feature(s) {sorted(missing)}: build the graph with helpers.graph")
        return cls(data["genres"], data["year"], data["title"], **kwargs)

    @property
    def device(self) -> torch.device:
        return self.features.genre_proj.weight.device

    def forward(self, neighbourhood: Neighbourhood) -> torch.Tensor:
        h = self.features(neighbourhood.input_nodes)
        projected = h[:len(neighbourhood.seeds)]  # every hop lists its output nodes first, so the seeds lead
        for conv, hop in zip(self.convs, neighbourhood.hops):
            h = conv(hop, h, h[:hop.num_dst])
        return self.combine(projected, h)

    @staticmethod
    def combine(projected: torch.Tensor, convolved: torch.Tensor) -> torch.Tensor:
        """Final embedding: skip connection from the projected features, then unit length."""
        return F.normalize(projected + convolved, dim=1)


def max_margin_loss(h: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor, negatives: torch.Tensor,
                    margin: float, in_batch: bool = False) -> torch.Tensor:
    """Paper's loss: mean over pairs and negatives of max(0, s(head, neg) - s(head, tail) + margin), where s is
    the inner product of unit embeddings. `heads`, `tails` [B] and `negatives` [B, N] index rows of `h`.
    With `in_batch`, the other pairs' tails count as negatives too (free: they are embedded anyway)."""
    positive = (h[heads] * h[tails]).sum(1, keepdim=True)
    negative = (h[heads].unsqueeze(1) * h[negatives]).sum(2)
    losses = F.relu(negative - positive + margin)
    if not in_batch:
        return losses.mean()
    others = h[heads] @ h[tails].T  # [B, B]; a tail equal to the pair's own tail is not a negative
    valid = tails.unsqueeze(0) != tails.unsqueeze(1)
    batch_losses = F.relu(others - positive + margin) * valid
    return (losses.sum() + batch_losses.sum()) / (losses.numel() + valid.sum())

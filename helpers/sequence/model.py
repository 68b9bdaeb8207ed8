"""The causal sequence encoder: movie vectors in, one query vector per position out.

For a window of movies `x_1 .. x_N` (left-padded with -1), position t sees only `x_1 .. x_t` (the causal mask)
and outputs a query vector `q_t` whose score for movie j is `q_t . c_j`, with `c_j` the PinSage candidate vector
Milvus holds (frozen by default: the output side never changes, so Milvus needs nothing new; `tune_outputs`
fine-tunes them too, measured in docs/benchmarks.md and kept off). Inputs start as PinSage's
candidate (or query) vectors, frozen or fine-tuned, projected to `dim`, plus a learned position per slot.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from helpers.errors import RecsysError
from helpers.sequence.config import SequenceConfig
from helpers.sequence.data import PAD


class SequenceModelError(RecsysError, ValueError):
    """Inputs the model cannot read (too long, movies out of range, vectors of the wrong shape)."""


def allowed_keys(valid: torch.Tensor) -> torch.Tensor:
    """`[B, N, N]` bool: query position i may attend to key j when j <= i (causal) and j is a movie (not padding).
    Position i always sees itself, so no row is fully masked and a padded row cannot produce NaN."""
    n = valid.shape[-1]
    causal = torch.ones(n, n, dtype=torch.bool, device=valid.device).tril()
    eye = torch.eye(n, dtype=torch.bool, device=valid.device)
    return (causal & valid[:, None, :]) | eye


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d), masked) v for `[B, H, N, d]` inputs and a `[B, N, N]` mask (True = may attend)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with one `qkv` projection and one output projection."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mixed = masked_attention(q, k, v, allowed).transpose(1, 2).reshape(b, n, d)
        return self.dropout(self.out(mixed))


class SequenceBlock(nn.Module):
    """A pre-norm transformer block: x + attention(LN(x)), then + FFN(LN(x)) (GELU, width 4 x dim)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), allowed)
        return x + self.ffn(self.norm2(x))


class SequenceModel(nn.Module):
    """Movie windows `[B, n]` (node indices, -1 padding, latest last, n <= length) -> query vectors
    `[B, n, candidate_dim]`; `scores(queries)` = queries . candidates^T over every movie."""

    def __init__(self, inputs: torch.Tensor, candidates: torch.Tensor, config: SequenceConfig):
        super().__init__()
        if inputs.ndim != 2 or candidates.ndim != 2 or len(inputs) != len(candidates):
            raise SequenceModelError(f"input vectors {tuple(inputs.shape)} and candidate vectors "
                                     f"{tuple(candidates.shape)}: give one row of each per movie")
        self.config = config
        self.n_movies = len(inputs)
        table = torch.cat([inputs.float(), torch.zeros(1, inputs.shape[1])])  # the last row: padding, all zero
        self.table = nn.Parameter(table, requires_grad=config.tune_inputs)
        if config.tune_outputs:
            self.candidates = nn.Parameter(candidates.float().clone())
        else:
            self.register_buffer("candidates", candidates.float().clone())      # frozen: what Milvus holds
        self.project = nn.Linear(inputs.shape[1], config.dim)
        self.positions = nn.Embedding(config.length, config.dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(SequenceBlock(config.dim, config.heads, config.dropout)
                                    for _ in range(config.blocks))
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, candidates.shape[1])

    @property
    def vector_dim(self) -> int:
        return int(self.candidates.shape[1])

    def forward(self, movies: torch.Tensor) -> torch.Tensor:
        if movies.ndim != 2 or movies.shape[1] > self.config.length:
            raise SequenceModelError(f"windows of shape {tuple(movies.shape)}: give [batch, n] with n <= "
                                     f"{self.config.length} (keep the last {self.config.length} movies)")
        if ((movies < PAD) | (movies >= self.n_movies)).any():
            raise SequenceModelError(f"movie indices outside 0..{self.n_movies - 1} (-1 = padding)")
        valid = movies != PAD
        rows = torch.where(valid, movies, torch.full_like(movies, self.n_movies))
        n = movies.shape[1]
        slots = torch.arange(self.config.length - n, self.config.length, device=movies.device)  # latest = last slot
        x = self.drop(self.project(self.table[rows]) + self.positions(slots))
        allowed = allowed_keys(valid)
        for block in self.blocks:
            x = block(x, allowed)
        return self.head(self.norm(x))

    def encode_last(self, movies: torch.Tensor) -> torch.Tensor:
        """`[B, candidate_dim]`: the query vector after each window's latest movie."""
        return self(movies)[:, -1]

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        return queries @ self.candidates.T

    def loss(self, windows: torch.Tensor, target_share: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Cross-entropy of the next movie at every position with a movie and a next movie: over all movies, or
        with `config.uniform_negatives` > 0 over the batch's targets and that many shared uniform negatives drawn
        with `generator`, each score less the log of the movie's expected count in that sample (logQ), from
        `target_share` [n_movies] (each movie's share of the training targets, `target_shares`)."""
        inputs, targets = windows[:, :-1], windows[:, 1:]
        keep = (inputs != PAD) & (targets != PAD)
        queries, targets = self(inputs)[keep], targets[keep]
        uniform = self.config.uniform_negatives
        if not uniform:
            return F.cross_entropy(self.scores(queries), targets)
        if target_share is None:
            raise SequenceModelError("a sampled softmax (uniform_negatives > 0) needs target_share: pass "
                                     "target_shares(windows, n_movies)")
        drawn = torch.randint(self.n_movies, (uniform,), generator=generator).to(targets.device)
        columns = torch.unique(torch.cat([targets, drawn]))
        expected = len(targets) * target_share.to(targets.device)[columns] + uniform / self.n_movies
        logits = queries @ self.candidates[columns].T - torch.log(expected).float()
        return F.cross_entropy(logits, torch.searchsorted(columns, targets))


def target_shares(windows: torch.Tensor, n_movies: int) -> torch.Tensor:
    """[n_movies] float64: each movie's share of the next-movie targets in training `windows` [W, N + 1]."""
    targets = windows[:, 1:][(windows[:, :-1] != PAD) & (windows[:, 1:] != PAD)]
    return torch.bincount(targets, minlength=n_movies).double() / max(len(targets), 1)

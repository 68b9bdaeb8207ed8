"""A pool of `draws` neighbourhoods per movie that fills as steps ask for movies (`NeighbourPool`).

A movie's `draws` neighbourhoods are walked the first time a lookup asks for it, all the lookup's movies to walk
in one walk call per draw, and each lookup picks one of them per movie at random. How long they live:

* `uses=None`: until `new_epoch()` (every epoch): the walks of an epoch count only the movies its steps asked
  for, and a new epoch costs nothing up front;
* `uses=N`: for N lookups of that movie, epochs aside: on its (N+1)-th lookup it is walked again. Each drawn
  neighbourhood is then reused about as often whatever the catalogue's size, so the walks per step follow the
  lookups per step rather than the movies an epoch happens to ask for.

Storage is fixed-width (`width` neighbours per movie and draw), allocated once.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

Walk = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class NeighbourPool:
    """`walk(seeds)` returns fresh neighbourhoods of `seeds` as (neighbour movie, position of its seed in
    `seeds`, weight), at most `width` per seed. `walked` counts the movie draws walked since `new_epoch()` and
    `walk_cpu_s` their CPU time (this process's), so that a benchmark can tell the walks from the step."""

    def __init__(self, num_movies: int, draws: int, width: int, walk: Walk, uses: int | None = None,
                 chunk: int = 4096):
        self.draws, self.width, self.walk, self.uses, self.chunk = draws, width, walk, uses, chunk
        self.neighbours = torch.zeros((draws, num_movies, width), dtype=torch.int64)
        self.weights = torch.zeros((draws, num_movies, width), dtype=torch.float32)
        self.counts = torch.zeros((draws, num_movies), dtype=torch.int64)
        self.filled = torch.zeros(num_movies, dtype=torch.bool)
        self.asked = torch.zeros(num_movies, dtype=torch.int64)  # lookups since the movie was last walked
        self.walked = 0
        self.walk_cpu_s = 0.0

    def new_epoch(self) -> None:
        """Start an epoch's counts of walks; without `uses`, also forget every movie's neighbourhoods (each is
        walked again when next asked for)."""
        if self.uses is None:
            self.filled.zero_()
        self.walked = 0
        self.walk_cpu_s = 0.0

    def _fill(self, seeds: torch.Tensor) -> None:
        stale = ~self.filled[seeds]
        if self.uses is not None:
            stale |= self.asked[seeds] >= self.uses
        new = seeds[stale]
        self.asked[new] = 0
        self.asked[seeds] += 1
        if not len(new):
            return
        started = time.process_time()
        for draw in range(self.draws):
            for start in range(0, len(new), self.chunk):
                movies = new[start:start + self.chunk]
                src, dst, weight = self.walk(movies)
                order = torch.argsort(dst, stable=True)
                src, dst, weight = src[order], dst[order], weight[order]
                rank = torch.arange(len(dst)) - torch.searchsorted(dst, dst)  # place within its seed's group
                self.neighbours[draw, movies[dst], rank] = src
                self.weights[draw, movies[dst], rank] = weight
                self.counts[draw, movies] = torch.bincount(dst, minlength=len(movies))
        self.filled[new] = True
        self.walked += self.draws * len(new)
        self.walk_cpu_s += time.process_time() - started

    def lookup(self, seeds: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One of the `draws` neighbourhoods of each of `seeds` (unique movies), picked at random, walking those
        not walked yet or past their lifetime: (neighbour movie, position of its seed in `seeds`, weight),
        grouped by seed."""
        self._fill(seeds)
        rows = torch.randint(self.draws, (len(seeds),), generator=generator)
        present = torch.arange(self.width) < self.counts[rows, seeds].unsqueeze(1)
        dst = torch.arange(len(seeds)).unsqueeze(1).expand(-1, self.width)[present]
        return self.neighbours[rows, seeds][present], dst, self.weights[rows, seeds][present]

"""`SequenceConfig`: the sequence model's knobs (notebook 04 prints them with `table()`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from helpers.errors import RecsysError

INPUT_INITS = ("candidate", "query", "random")  # where the input table starts


class SequenceConfigError(RecsysError, ValueError):
    """A sequence-model knob out of its range; the message names the knob and the range."""


@dataclass(frozen=True)
class SequenceConfig:
    length: int = 50            # N: the last N training movies the model reads
    dim: int = 64               # the transformer's width
    blocks: int = 2             # pre-norm transformer blocks
    heads: int = 2              # attention heads (dim must divide by it)
    dropout: float = 0.1
    init: str = "candidate"     # the input table starts as PinSage's candidate or query vectors, or at random
    tune_inputs: bool = True    # fine-tune the input table (False: frozen)
    tune_outputs: bool = False  # fine-tune the candidate vectors too (then Milvus must hold the tuned ones)
    batch_size: int = 128       # windows per step
    lr: float = 3e-3
    warmup: float = 0.05        # share of the run with a linear warm-up, then cosine decay to 0
    weight_decay: float = 0.0
    clip: float = 1.0           # gradient-norm clipping
    steps: int = 3000           # the run's length in steps (the schedule's 100%) ...
    time_budget_s: float = 600.0  # ... or in seconds, whichever ends first (the schedule follows the larger share)
    eval_every: int = 250       # steps between validation points (the curve)
    uniform_negatives: int = 0  # 0: softmax over all movies; else a sampled softmax over the batch's targets and
                                # this many shared uniform negatives, logQ-corrected (large catalogues: the presets)
    val_users: int | None = None  # validation users per point: a fixed seeded sample (None: all)

    def __post_init__(self) -> None:
        checks = {
            "length": (self.length >= 2, ">= 2"), "dim": (self.dim >= 2, ">= 2"),
            "blocks": (self.blocks >= 1, ">= 1"), "heads": (self.heads >= 1 and self.dim % self.heads == 0,
                                                              "a divisor of dim"),
            "dropout": (0.0 <= self.dropout < 1.0, "in [0, 1)"), "init": (self.init in INPUT_INITS,
                                                                          f"one of {INPUT_INITS}"),
            "batch_size": (self.batch_size >= 1, ">= 1"), "lr": (self.lr > 0, "> 0"),
            "warmup": (0.0 <= self.warmup < 1.0, "in [0, 1)"), "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "clip": (self.clip > 0, "> 0"), "steps": (self.steps >= 1, ">= 1"),
            "time_budget_s": (self.time_budget_s > 0, "> 0"), "eval_every": (self.eval_every >= 1, ">= 1"),
            "uniform_negatives": (self.uniform_negatives >= 0, ">= 0 (0: the full softmax)"),
            "val_users": (self.val_users is None or self.val_users >= 2, "None (all) or at least 2"),
        }
        for knob, (ok, wanted) in checks.items():
            if not ok:
                raise SequenceConfigError(f"SequenceConfig.{knob}={getattr(self, knob)!r} must be {wanted}")

    @classmethod
    def for_dataset(cls, name: str, **overrides: Any) -> SequenceConfig:
        """The defaults (ML-1M: 10 minutes), or a few seconds' worth on the synthetic sample."""
        base = cls(length=20, steps=100, eval_every=20, time_budget_s=15.0) if name == "sample" else cls()
        return base.replace(**overrides)

    def replace(self, **overrides: Any) -> SequenceConfig:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SequenceConfigError(f"unknown SequenceConfig knob(s) {unknown}: use "
                                      f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SequenceConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"knob": list(self.to_dict()), "value": [str(v) for v in self.to_dict().values()]})

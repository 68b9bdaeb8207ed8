"""The stage table: the numbered notebook series, in order, and the artifact each stage writes.

Every name of a notebook elsewhere (artifact errors, `scripts/run.sh`, the tests, the README) comes from here.
`python -m helpers.stages` prints the series' notebook paths, one per line, in order.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    number: int
    name: str                  # file stem without the number, e.g. "data_loading"
    teaches: str               # one line for the README's table
    artifact: str | None       # the artifact stage it writes (helpers.artifacts), None if it writes none

    @property
    def notebook(self) -> str:
        """The notebook's path from the project root, e.g. `notebooks/01_data_loading.ipynb`."""
        return f"notebooks/{self.number:02d}_{self.name}.ipynb"


SERIES: tuple[Stage, ...] = (
    Stage(1, "data_loading", "loading MovieLens and exploring it", "data"),
    Stage(2, "graph_construction", "the users-movies graph in DGL, the time split, random walks", "graph"),
    Stage(3, "pinsage_training", "PinSage built by hand, trained and evaluated against baselines", "model"),
    Stage(4, "sequence_model", "a causal transformer over a user's last movies' PinSage vectors, one query vector",
          "sequence"),
    Stage(5, "vector_store", "movie vectors in Milvus and the catalog in SQL, checked against brute force",
          "vectors"),
    Stage(6, "recommendation_engine", "liked movies -> one query vector, combining, filters, explanations", None),
    Stage(7, "movie_picker", "the ipywidgets picker over the engine", None),
)
PAGE_NOTEBOOK = "notebooks/movie_picker_page.ipynb"  # the Voila page: outside the series, shows only the picker


def notebook_for(artifact: str) -> str:
    """The notebook that writes artifact stage `artifact` (or `artifact` itself when no stage writes it)."""
    return next((stage.notebook for stage in SERIES if stage.artifact == artifact), artifact)


def main() -> None:
    print("\n".join(stage.notebook for stage in SERIES))


if __name__ == "__main__":
    main()

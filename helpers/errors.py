"""The project's one root error class: catch `RecsysError` to handle every error this project raises.

Each module keeps its own classes (DatasetError, CatalogError, ...) with their standard bases (ValueError,
RuntimeError, ...), and every one of them also inherits from `RecsysError`. The store faults (VectorStoreError,
CatalogError, StoresOutOfStepError) share `helpers.stores.errors.StoreError`, which names the store.
"""
from __future__ import annotations


class RecsysError(Exception):
    """Any error raised by movie-graph-recsys; the message says what is wrong and what to do."""

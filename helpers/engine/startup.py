"""Opening the engine: `open_engine`, the one way the picker, its Voila page and the API start one.

A Milvus Lite file opens in one process at a time. The kernel of a page that was just closed or reloaded keeps
it until Voila culls that kernel, so a new page retries for up to `wait_seconds`; everything else fails at once
with a `StoresUnavailableError` that says what to do (which process holds the file, which notebook to run).
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from helpers.artifacts import ArtifactError
from helpers.config import Settings
from helpers.engine.engine import RecommendationEngine
from helpers.errors import RecsysError
from helpers.stores.milvus_client import VectorStoreError
from helpers.stores.sql import CatalogError

SHARING_HINT = ("To run the notebooks, the page and the API at the same time, put the stores on the "
                "docker-compose servers: see 'Running the notebooks, the page and the API at the same time' in "
                "README.md.")


class StoresUnavailableError(RecsysError, RuntimeError):
    """The engine cannot open the stores; shown as its message alone (no stack) in notebooks and on the page."""

    def _render_traceback_(self) -> list[str]:  # IPython (and so Voila) shows these lines instead of a traceback
        return [f"{type(self).__name__}: {self}"]


@contextlib.contextmanager
def _quiet_milvus_lite() -> Iterator[None]:
    """Milvus Lite logs a traceback to stderr for every failed open; our error says what to do instead."""
    import pymilvus  # noqa: F401  (its first import runs logging.config, which would enable the logger again)

    logger = logging.getLogger("milvus_lite.server_manager")
    was_disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = was_disabled


def open_engine(settings: Settings, wait_seconds: float = 0.0, poll_seconds: float = 1.0,
                who: str = "This process") -> RecommendationEngine:
    """The engine for `settings`, retrying a held Milvus Lite file for up to `wait_seconds` (the page passes
    `helpers.picker.PAGE_WAIT_SECONDS`); else a `StoresUnavailableError` that starts with `who` ("The API")."""
    deadline = time.monotonic() + wait_seconds
    with _quiet_milvus_lite():
        while True:
            try:
                return RecommendationEngine(settings)
            except VectorStoreError as error:
                could_not_open = error.__cause__ is not None  # the client failed to connect (e.g. the file is held)
                if could_not_open and settings.milvus_is_lite and time.monotonic() + poll_seconds <= deadline:
                    time.sleep(poll_seconds)
                    continue
                hint = f" {SHARING_HINT}" if could_not_open and settings.milvus_is_lite else ""
                raise StoresUnavailableError(f"{who} cannot open the {settings.dataset} stores: {error}{hint}") \
                    from error
            except (ArtifactError, CatalogError) as error:
                raise StoresUnavailableError(f"{who} cannot open the {settings.dataset} stores: {error}") from error

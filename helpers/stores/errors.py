"""`StoreError`, the one base of every store fault: the API answers any of them with a 503 that says what to do."""
from __future__ import annotations

from typing import ClassVar

from helpers.errors import RecsysError


class StoreError(RecsysError, RuntimeError):
    """A store cannot be reached, holds the wrong thing or was given bad rows; the message says what to do.
    `store` names it: "milvus", "catalog", or "stores" for the two together."""

    store: ClassVar[str] = "stores"

"""One pymilvus `MilvusClient` per process and URI, the errors that say what to do, and the filter expressions."""
from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from helpers.stages import notebook_for
from helpers.stores.errors import StoreError

STORES_NOTEBOOK = notebook_for("vectors")  # the notebook that fills both stores (helpers.stages)
CALL_TIMEOUT_SECONDS = 5.0  # a serving call to a server that stopped answering fails (a 503) instead of hanging
SERVER_HINT = (
    "Start one with `docker compose up -d milvus` (docker-compose.yml) or `.venv/bin/milvus-server --data DIR`, "
    "or unset RECSYS_MILVUS_URI to use the embedded Milvus Lite file."
)


class VectorStoreError(StoreError):
    """The vector store cannot be reached or used; the message says what to do."""

    store = "milvus"


def driver_errors() -> tuple[type[Exception], ...]:
    """What a pymilvus call raises when Milvus fails: its own `MilvusException` and the gRPC errors it lets
    through (pymilvus' `error_handler` turns anything else raised below it into a `MilvusException`)."""
    import grpc
    from pymilvus.exceptions import MilvusException

    return (MilvusException, grpc.RpcError, grpc.FutureTimeoutError)


def fault(uri: str, exc: BaseException, action: str) -> VectorStoreError:
    """A Milvus failure at `uri` while `action` as a `VectorStoreError` that says what to do."""
    text = str(getattr(exc, "message", "") or exc).strip()
    reason = (text.splitlines()[0] if text else type(exc).__name__)[:300]
    if is_lite_uri(uri) and not Path(uri).exists():
        return VectorStoreError(f"The Milvus Lite file {uri} is gone ({action}: {reason}): rebuild it with "
                                f"{STORES_NOTEBOOK}, then restart the API or page.")
    if is_lite_uri(uri):
        return VectorStoreError(f"Milvus Lite at {uri} failed while {action} ({reason}). If it persists "
                                "the file is damaged: see 'When a store is damaged or stopped' in README.md.")
    return VectorStoreError(f"The Milvus server at {uri} failed while {action} ({reason}). Check that it "
                            f"is running; {SERVER_HINT}")


def _lock_holder_message(db_path: Path) -> str | None:
    """If another process holds Milvus Lite's lock on `db_path`, say so and what to do; else None."""
    lock = db_path / "LOCK"
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return (f"Another process already has the Milvus Lite file {db_path} open (Milvus Lite allows one "
                "process per file). Close it there (e.g. `store.close()` / `engine.close()` at the end of the other "
                "notebook, or shut down that kernel), or run against a Milvus server that many processes can "
                "share: `docker compose up -d milvus` and set RECSYS_MILVUS_URI=http://127.0.0.1:19530.")
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _lite_open_error(db_path: Path, exc: Exception) -> VectorStoreError:
    """Why Milvus Lite could not open `db_path`. The embedded server pymilvus started for this process may
    still hold the file's lock after failing, so release it first; only a lock that some OTHER process holds
    means "already open elsewhere". Anything else is the file itself (damaged), with Milvus' own reason."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(db_path))  # it stops the server and ignores what that raises
    reason = _lock_holder_message(db_path)
    if reason:
        return VectorStoreError(reason)
    cause = str(getattr(exc, "message", "") or exc).strip().splitlines()
    return VectorStoreError(
        f"Milvus Lite could not open {db_path}: {cause[0][:300] if cause else type(exc).__name__}. No other process "
        "holds it, so the file is damaged or unreadable. Check the folder is writable; if it is, rebuild it: see "
        "'When a store is damaged or stopped' in README.md (delete the folder and re-run "
        f"{STORES_NOTEBOOK}), or set RECSYS_MILVUS_URI to a server.")


_CLIENTS: dict[tuple[int, str], Any] = {}  # (pid, uri) -> MilvusClient: one client per process and URI


def connect(uri: str, token: str = "", timeout: float = 10.0):
    """The process's `MilvusClient` for `uri` (opened on first use), or a `VectorStoreError` saying what to do."""
    from pymilvus import MilvusClient

    key = (os.getpid(), uri)
    if key in _CLIENTS:
        return _CLIENTS[key]
    lite = is_lite_uri(uri)
    if lite:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MilvusClient(uri=uri, token=token, timeout=timeout)
        client.list_collections()
    except driver_errors() as exc:
        if lite:
            raise _lite_open_error(Path(uri), exc) from exc
        raise VectorStoreError(f"Cannot reach the Milvus server at {uri} ({exc}). {SERVER_HINT}") from exc
    _CLIENTS[key] = client
    return client


def disconnect(uri: str) -> None:
    """Close this process's client for `uri`; for Milvus Lite this releases the file for other processes."""
    client = _CLIENTS.pop((os.getpid(), uri), None)
    if client is not None:
        client.close()
    if is_lite_uri(uri):  # pymilvus keeps the embedded server (and its file lock) until told to release it
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def is_lite_uri(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def filter_expression(genre_fields: Sequence[str] | None = None, years: tuple[int, int] | None = None,
                      exclude_ids: Iterable[int] | None = None) -> str:
    """The Milvus filter for movies whose BOOL field is true for any of `genre_fields` (names that
    `milvus_rows.genre_field` made, never user text), released in `years` (inclusive), not in `exclude_ids`."""
    parts = []
    if genre_fields:
        parts.append(f"({' or '.join(f'{field} == true' for field in genre_fields)})")  # 2.3 servers: no bare field
    if years is not None:
        low, high = (int(y) for y in years)
        parts.append(f"(year >= {low} and year <= {high})")
    excluded = sorted({int(i) for i in exclude_ids or ()})
    if excluded:
        parts.append(f"movie_id not in [{', '.join(map(str, excluded))}]")
    return " and ".join(parts)


def _drop_mvcc_warning(record: logging.LogRecord) -> bool:
    return "failed to get mvccTs" not in record.getMessage()


def quiet_iterator_warning() -> None:
    """Milvus Lite has no server-side snapshot timestamp, so pymilvus' query iterator warns on every use and
    falls back to a client-side one, which is right for us: drop that one message."""
    log = logging.getLogger("pymilvus.client.iterator.query_iterator")
    if _drop_mvcc_warning not in log.filters:
        log.addFilter(_drop_mvcc_warning)


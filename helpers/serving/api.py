"""The recommender as a FastAPI service: title search, movie details and recommendations over HTTP.

Run it with `bash scripts/api.sh` (uvicorn with the `create_app` factory). One `RecommendationEngine`, and
with it one Milvus client and one SQL engine, is created per process when the app starts (lifespan) and
closed when it stops. OpenAPI docs are served at `/docs` (Swagger UI's files from the package, no CDN);
the web page at `/` (helpers/serving/webapp.py).

Milvus Lite serves one process per file: while a notebook holds `<artifacts>/<dataset>/milvus.db`, the API
cannot open it (and the other way round). To run both, point both at the docker-compose Milvus server.

Errors: 4xx only for what the client can fix (422 with what to do, echoing at most a short prefix of the
input; 404 for an unknown movie; 413 for a body over 64 KB); every store fault (a `StoreError`: the stores turn
every driver error into one) is a 503 that names the store and what to do, logged at most once per fault kind per
10 s (`FaultLog`); anything else is a bug, a 500 with its traceback in the log. Ids are 1..2**63-1 and numbers
finite (NaN and Infinity in a JSON body are refused before validation).
"""
from __future__ import annotations

import gc
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpers.config import Settings, get_settings
from helpers.engine.engine import RecommendationEngine
from helpers.engine.inputs import (
    DEFAULT_K,
    MAX_ID,
    MAX_K,
    MAX_LIKED,
    MAX_SEARCH_RESULTS,
    RecommendError,
)
from helpers.engine.startup import open_engine
from helpers.engine.timings import TIMINGS_HEADER, server_timing
from helpers.errors import RecsysError
from helpers.serving.admin_routes import add_admin_routes
from helpers.serving.webapp import add_webapp
from helpers.stages import notebook_for
from helpers.stores.errors import StoreError
from helpers.stores.sql import control_characters

MAX_QUERY_CHARS = 200
MAX_BODY_BYTES = 64 * 1024
ECHO_CHARS = 60  # at most this much of a bad input is echoed back in a 422
MAX_ERRORS_SHOWN = 10
FAULT_LOG_SECONDS = 10.0
MovieId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]  # strict: true and "1" are not ids
log = logging.getLogger(__name__)

class Movie(BaseModel):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]


class MovieDetail(Movie):
    n_ratings: int = Field(description="ratings in the dataset")
    mean_rating: float | None = Field(description="mean rating, None when unrated")


class RecommendRequest(BaseModel):
    """Liked movie ids, how many recommendations and optional filters."""
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"liked": [1, 260, 1196], "k": 10}]})

    liked: Annotated[list[MovieId], Field(max_length=MAX_LIKED,
                                           description="MovieLens ids of liked movies (none: the most rated movies)")]
    k: Annotated[int, Field(strict=True, ge=1, le=MAX_K, description="how many recommendations")] = DEFAULT_K
    genres: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]] | None,
                      Field(max_length=30, description="keep only movies with at least one of these genres")] = None
    year_min: Annotated[int | None, Field(ge=1800, le=2100)] = None
    year_max: Annotated[int | None, Field(ge=1800, le=2100)] = None

    @model_validator(mode="after")
    def _years_in_order(self) -> RecommendRequest:
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise RecommendError(f"year_min ({self.year_min}) is after year_max ({self.year_max}): swap them")
        return self

    def years(self) -> tuple[int, int] | None:
        if self.year_min is None and self.year_max is None:
            return None
        return (1800 if self.year_min is None else self.year_min, 2100 if self.year_max is None else self.year_max)


class RecommendationOut(BaseModel):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    score: float
    because_of: int | None
    because_of_title: str | None
    source: str


class RecommendResponse(BaseModel):
    dataset: str
    liked: list[int]
    encoder: str | None = Field(description="the query encoder that turned the liked movies into the query "
                                            "(\"mean\", ...); null for the most rated movies (nothing liked)")
    results: list[RecommendationOut]


class EncoderInfo(BaseModel):
    name: str = Field(description="the query encoder that answers")
    requested: str = Field(description="the one asked for (RECSYS_QUERY_ENCODER: auto or a name)")
    fallback_reason: str | None = Field(description="why the requested one does not answer; null when it does")


class Health(BaseModel):
    ok: bool
    dataset: str
    stores: dict[str, bool] = Field(description="whether each store (milvus, catalog) works and holds what it should")
    movies: dict[str, int | None] = Field(description="movies in Milvus, in the catalog and in the stores record")
    building: bool = Field(description=f"a stores build ({notebook_for('vectors')}) is running or was interrupted")
    problems: list[str] = Field(description="what is wrong, in which store, and what to do")
    encoder: EncoderInfo | None = Field(None, description="the engine's query encoder (null: the engine is down)")


class FaultLog:
    """At most one log line per fault kind per `every` seconds, with how many were left out since."""

    def __init__(self, logger: logging.Logger, every: float = FAULT_LOG_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.logger, self.every, self.clock = logger, every, clock
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, kind: str, message: str) -> bool:
        """Log `message` unless `kind` was logged less than `every` seconds ago; True when it was logged."""
        with self._lock:
            now = self.clock()
            last = self._last.get(kind)
            if last is not None and now - last < self.every:
                self._skipped[kind] = self._skipped.get(kind, 0) + 1
                return False
            skipped = self._skipped.pop(kind, 0)
            self._last[kind] = now
        more = f" (and {skipped} more like it in the last {self.every:.0f} s)" if skipped else ""
        self.logger.error("%s: %s%s", kind, message, more)
        return True


class _NonFinite(RecsysError, ValueError):
    """A JSON number that is NaN or infinite (answered with a 422 before validation)."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _refuse_constant(text: str) -> float:
    raise _NonFinite(text)


class BodyGuard:
    """ASGI middleware run before any parsing: a request body over `limit` bytes gets a 413 (refused from
    Content-Length, or counted while it streams in), and a JSON body holding NaN, Infinity or a number too big
    for a float gets a 422 (Python's json accepts them; FastAPI would then fail writing its own error)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await self._refuse(send, 413, f"The request body is over {self.limit // 1024} KB: send at most "
                                          f"{MAX_LIKED} liked ids and the filters.")
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send, 413, f"The request body is over {self.limit // 1024} KB: send at most "
                                              f"{MAX_LIKED} liked ids and the filters.")
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and b"json" in headers.get(b"content-type", b""):
            try:
                json.loads(body, parse_float=_finite, parse_constant=_refuse_constant)
            except _NonFinite as error:
                await self._refuse(send, 422, f"Numbers must be finite: {str(error)[:ECHO_CHARS]!r} is not "
                                              "(no NaN or Infinity). Send whole numbers for ids, k and years.")
                return
            except ValueError:
                pass  # malformed JSON: FastAPI answers it with a 422 that says where
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str) -> None:
        response = JSONResponse(status_code=status, content={"detail": detail},
                                headers={"connection": "close"} if status == 413 else None)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _short(value: Any) -> Any:
    """`value` if it is a short JSON scalar, else a prefix of its text (never the whole of a big input)."""
    if value is None or isinstance(value, bool) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, int) and abs(value) <= MAX_ID:
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + f"... ({len(text):,} characters)"


def validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's error list, with each echoed input cut to a short prefix and at most `MAX_ERRORS_SHOWN` errors."""
    shown = [{"type": e.get("type"), "loc": [_short(part) for part in e.get("loc", ())],
              "msg": _short_text(str(e.get("msg", "")), 300),
              "input": _short(e.get("input"))} for e in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > MAX_ERRORS_SHOWN:
        shown.append({"type": "more_errors", "loc": [], "msg": f"{len(errors) - MAX_ERRORS_SHOWN} more errors",
                      "input": None})
    return shown


def store_fault(error: StoreError) -> tuple[str, str]:
    """(fault kind, message saying what to do) for a store fault: the stores turn every driver error into a
    `StoreError` that names the store, so nothing here guesses."""
    return f"{error.store}:{type(error).__name__}", str(error)


# loggers that write a traceback for EVERY failed store call (pymilvus' RPC decorator, Milvus Lite's embedded
# gRPC servicer); in the API each such failure is already a 503 plus a rate-limited line of `FaultLog`
CLIENT_ERROR_LOGGERS = ("pymilvus.decorators", "milvus_lite.adapter.grpc.servicer", "grpc._server")


def _not_a_client_error(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


def quiet_store_client_logs() -> None:
    """Drop the store clients' per-call error tracebacks (see CLIENT_ERROR_LOGGERS); warnings still pass."""
    for name in CLIENT_ERROR_LOGGERS:
        logger = logging.getLogger(name)
        if _not_a_client_error not in logger.filters:
            logger.addFilter(_not_a_client_error)


def _short_text(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app for `settings` (default: from the environment). The engine opens at start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        quiet_store_client_logs()
        app.state.engine = await run_in_threadpool(open_engine, settings, 0.0, 1.0, "The API")
        gc.collect()
        gc.freeze()  # start-up's objects live as long as the process: full collections skip them (issue 20)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.engine.close)
            gc.unfreeze()  # a process that goes on (tests, a notebook) can collect them again

    app = FastAPIOffline(title="movie-graph-recsys", version="0.1.0", lifespan=lifespan,
                         description=f"PinSage movie recommendations over the {settings.dataset} catalog.")
    add_webapp(app, settings)  # the page at / (helpers/serving/webapp.py)
    add_admin_routes(app, settings)  # POST /movies, DELETE /movies/{id}: only with RECSYS_ADMIN_TOKEN

    app.add_middleware(BodyGuard, limit=MAX_BODY_BYTES)
    faults = FaultLog(log)

    @app.exception_handler(RecommendError)
    async def _bad_input(request: Request, error: RecommendError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _short_text(str(error))})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_detail(list(error.errors()))})

    @app.exception_handler(StoreError)
    async def _store_unavailable(request: Request, error: StoreError) -> JSONResponse:
        kind, message = store_fault(error)
        faults.record(kind, f"{request.method} {request.url.path}: {message}")
        return JSONResponse(status_code=503, content={"detail": f"A store is unavailable: {message}"},
                            headers={"retry-after": "10"})

    def engine(request: Request) -> RecommendationEngine:
        return request.app.state.engine

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health(request: Request) -> Any:
        """Whether both stores work and agree: real reads of the catalog's tables and the Milvus collection,
        their movie counts against each other and against the stores record; `problems` says which store is
        wrong and what to do. 503 when anything is wrong."""
        report = engine(request).health()  # each store's failure is one of its problems, never an exception
        for problem in report["problems"]:
            faults.record(f"health:{problem.split(':', 1)[0]}", problem)
        body = Health(dataset=settings.dataset, **report)
        return body if body.ok else JSONResponse(status_code=503, content=body.model_dump())

    # async: the search is an in-memory index and one one-row catalog read (well under a millisecond), so it runs
    # on the event loop instead of two thread-pool hops (handler, then response validation) whose GIL contention
    # made the tail at 16 concurrent clients (docs/benchmarks.md, "Title search at scale")
    @app.get("/movies", response_model=list[Movie])
    async def search_movies(request: Request,
                            q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS,
                                                    description="part of a title")],
                            limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_RESULTS)] = DEFAULT_K) -> Any:
        """Movies whose title contains `q`, ignoring case and accents ("miserables" finds "Misérables")."""
        if not q.strip():
            raise HTTPException(status_code=422, detail="q is blank: give part of a title, e.g. q=toy")
        if control_characters(q):
            raise HTTPException(status_code=422, detail=f"q holds control characters {control_characters(q)[:5]} "
                                                        "(such as NUL): send plain text, e.g. q=toy")
        return engine(request).search_titles(q.strip(), limit=limit)

    @app.get("/movies/{movie_id}", response_model=MovieDetail, responses={404: {"description": "no such movie"}})
    def get_movie(request: Request, movie_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Any:
        """One movie of the catalog."""
        try:
            return engine(request).movie(movie_id)
        except RecommendError as error:
            detail = f"No movie with id {movie_id}: find ids with /movies?q=part-of-a-title"
            raise HTTPException(status_code=404, detail=detail) from error

    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(request: Request, response: Response, body: RecommendRequest) -> Any:
        """Up to `k` movies for the liked ones (in the order liked, the latest last), each explained by the liked
        movie it is closest to; `encoder` names the query encoder that answered (null: nothing liked).
        With the request header `X-Recsys-Timings: 1` the answer carries a `Server-Timing` header: the engine's
        stages (helpers.engine.timings) and `handler`, this function's whole time, in ms."""
        timings: dict[str, int] | None = {} if request.headers.get(TIMINGS_HEADER) == "1" else None
        started = time.perf_counter_ns() if timings is not None else 0
        results = engine(request).recommend(body.liked, k=body.k, genres=body.genres, years=body.years(),
                                            timings=timings)
        answer = RecommendResponse(dataset=settings.dataset, liked=body.liked, encoder=results.encoder,
                                   results=[RecommendationOut(**asdict(r)) for r in results])
        if timings is not None:
            timings["handler"] = time.perf_counter_ns() - started
            response.headers["server-timing"] = server_timing(timings)
        return answer

    return app

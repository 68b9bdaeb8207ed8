"""The recommender as a FastAPI service: title search, movie details and recommendations over HTTP.

Run it with `bash scripts/api.sh` (uvicorn with the `create_app` factory). One `RecommendationEngine`, and
with it one Milvus client and one SQL engine, is created per process when the app starts (lifespan) and
closed when it stops. OpenAPI docs are served at `/docs` (Swagger UI's files from the package, no CDN);
the web page at `/` (helpers/webapp.py).

Milvus Lite serves one process per file: while a notebook holds `<artifacts>/<dataset>/milvus.db`, the API
cannot open it (and the other way round). To run both, point both at the docker-compose Milvus server.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from helpers.catalog import CatalogError
from helpers.config import Settings, get_settings
from helpers.recommend import MAX_K, MAX_LIKED, RecommendationEngine, RecommendError, StoresOutOfStepError
from helpers.vectors import VectorStoreError
from helpers.webapp import add_webapp

MAX_QUERY_CHARS = 200
SHARING_HINT = ("To run the API next to notebooks or the page, put the stores on the docker-compose servers: "
                "see 'Running the notebooks, the page and the API at the same time' in README.md.")


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

    liked: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=MAX_LIKED,
                                           description="MovieLens ids of liked movies (none: the most rated movies)")]
    k: Annotated[int, Field(ge=1, le=MAX_K, description="how many recommendations")] = 10
    genres: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]] | None,
                      Field(max_length=30, description="keep only movies with at least one of these genres")] = None
    year_min: Annotated[int | None, Field(ge=1800, le=2100)] = None
    year_max: Annotated[int | None, Field(ge=1800, le=2100)] = None

    @model_validator(mode="after")
    def _years_in_order(self) -> RecommendRequest:
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise ValueError(f"year_min ({self.year_min}) is after year_max ({self.year_max}): swap them")
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
    results: list[RecommendationOut]


class Health(BaseModel):
    ok: bool
    dataset: str
    stores: dict[str, bool]


def open_engine(settings: Settings) -> RecommendationEngine:
    """Create the engine, or fail with what to do."""
    try:
        return RecommendationEngine(settings)
    except Exception as error:
        hint = f" {SHARING_HINT}" if settings.milvus_is_lite else ""
        raise RuntimeError(f"The API cannot open the {settings.dataset} stores: {error}{hint}") from error


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app for `settings` (default: from the environment). The engine opens at start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = await run_in_threadpool(open_engine, settings)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.engine.close)

    app = FastAPIOffline(title="movie-graph-recsys", version="0.1.0", lifespan=lifespan,
                         description=f"PinSage movie recommendations over the {settings.dataset} catalog.")
    add_webapp(app, settings)  # the page at / (helpers/webapp.py)

    @app.exception_handler(RecommendError)
    async def _bad_input(request: Request, error: RecommendError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    async def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"A store is unavailable: {error}"})

    for store_error in (VectorStoreError, CatalogError, StoresOutOfStepError):
        app.add_exception_handler(store_error, _store_unavailable)

    def engine(request: Request) -> RecommendationEngine:
        return request.app.state.engine

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health(request: Request) -> Any:
        """Whether both stores (Milvus and the SQL catalog) answer."""
        try:
            stores = {name: bool(ok) for name, ok in engine(request).health().items()}
        except Exception:
            stores = {"milvus": False, "catalog": False}
        body = Health(ok=bool(stores) and all(stores.values()), dataset=settings.dataset, stores=stores)
        return body if body.ok else JSONResponse(status_code=503, content=body.model_dump())

    @app.get("/movies", response_model=list[Movie])
    def search_movies(request: Request,
                      q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="part of a title")],
                      limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Any:
        """Movies whose title contains `q` (case-insensitive)."""
        if not q.strip():
            raise HTTPException(status_code=422, detail="q is blank: give part of a title, e.g. q=toy")
        return engine(request).search_titles(q.strip(), limit=limit)

    @app.get("/movies/{movie_id}", response_model=MovieDetail, responses={404: {"description": "no such movie"}})
    def get_movie(request: Request, movie_id: Annotated[int, Path(ge=1)]) -> Any:
        """One movie of the catalog."""
        try:
            return engine(request).movie(movie_id)
        except RecommendError as error:
            detail = f"No movie with id {movie_id}: find ids with /movies?q=part-of-a-title"
            raise HTTPException(status_code=404, detail=detail) from error

    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(request: Request, body: RecommendRequest) -> Any:
        """Up to `k` movies for the liked ones, each explained by the liked movie it is closest to."""
        results = engine(request).recommend(body.liked, k=body.k, genres=body.genres, years=body.years())
        return RecommendResponse(dataset=settings.dataset, liked=body.liked,
                                 results=[RecommendationOut(**asdict(r)) for r in results])

    return app

"""The API's write routes: `POST /movies` adds a movie, `DELETE /movies/{id}` removes an added one.

They exist only when `RECSYS_ADMIN_TOKEN` is set (`settings.admin_token`): otherwise they are not routes at all
(404/405, and absent from /docs). Each request needs `Authorization: Bearer <token>`, compared in constant time
(`hmac.compare_digest`); anything else is a 401. Both call the engine (`engine.add_movie`, `engine.remove_movie`),
as `python -m helpers.serving.admin` and notebook 06 do. Reads stay open.
"""
from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from helpers.config import Settings
from helpers.engine.adding import NotAnAddedMovieError, UnknownAddedMovieError
from helpers.engine.inputs import (
    MAX_ID,
    MAX_NEW_RATINGS,
    MAX_TIMESTAMP,
    MAX_TITLE_CHARS,
    MAX_YEAR,
    MIN_YEAR,
)

bearer = HTTPBearer(auto_error=False, description="RECSYS_ADMIN_TOKEN of the server")


class NewRating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ID, description="a user the catalog knows")]
    rating: Annotated[float, Field(description="on the dataset's scale (ML-1M: 1-5 stars)")]
    timestamp: Annotated[int, Field(strict=True, ge=0, le=MAX_TIMESTAMP, description="unix seconds")]


class NewMovie(BaseModel):
    """A movie the model never saw: its title, year, genres (from GET /genres) and first ratings."""
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"title": "Golden Harbor IV", "year": 2001, "genres": ["Comedy"],
         "ratings": [{"user_id": 1, "rating": 5, "timestamp": 1000000000}]}]})
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS)]
    year: Annotated[int, Field(strict=True, ge=MIN_YEAR, le=MAX_YEAR)]
    genres: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]], Field(max_length=30)]
    ratings: Annotated[list[NewRating], Field(max_length=MAX_NEW_RATINGS)] = []


class Neighbour(BaseModel):
    movie_id: int
    title: str | None
    weight: float = Field(description="visits of the walks from the movie's raters")


class AddedMovieOut(BaseModel):
    movie_id: int = Field(description="the id the catalog gave it")
    title: str
    year: int | None
    genres: list[str]
    n_ratings: int
    neighbours: list[Neighbour] = Field(description="the graph movies its vector was pooled from, heaviest first")


def add_admin_routes(app: FastAPI, settings: Settings) -> None:
    """Add the write routes to `app` when `settings.admin_token` is set; otherwise nothing."""
    token = settings.admin_token.encode()
    if not token:
        return

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, token):
            raise HTTPException(status_code=401, detail="Send Authorization: Bearer <RECSYS_ADMIN_TOKEN>.",
                                headers={"www-authenticate": "Bearer"})

    secured = {"dependencies": [Depends(authorised)], "responses": {401: {"description": "no or a wrong token"}}}

    @app.post("/movies", response_model=AddedMovieOut, status_code=201, tags=["admin"], **secured)
    async def add_movie(request: Request, body: NewMovie) -> Any:
        """Add a movie the model never saw: embedded at once by the trained model from its features and its
        raters' graph neighbours, written to both stores, searchable and recommendable in every worker."""
        ratings = [(r.user_id, r.rating, r.timestamp) for r in body.ratings]
        added = await run_in_threadpool(request.app.state.engine.add_movie, body.title, body.year, body.genres,
                                        ratings)
        return asdict(added)

    @app.delete("/movies/{movie_id}", status_code=204, tags=["admin"],
                responses={**secured["responses"], 404: {"description": "no such movie"},
                           409: {"description": "one of the dataset's own movies"}},
                dependencies=secured["dependencies"])
    async def remove_movie(request: Request, movie_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> None:
        """Remove an added movie from both stores (the dataset's own movies stay)."""
        try:
            await run_in_threadpool(request.app.state.engine.remove_movie, movie_id)
        except UnknownAddedMovieError as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        except NotAnAddedMovieError as error:
            raise HTTPException(status_code=409, detail=str(error)) from error

"""`python -m helpers.serving.admin`: add a movie, or remove an added one, from a shell.

    python -m helpers.serving.admin add --title "Golden Harbor IV" --year 2001 --genres Comedy,Drama \
        --ratings first_ratings.csv          # CSV with columns user_id,rating,timestamp (optional)
    python -m helpers.serving.admin remove 3953

It calls the engine's `add_movie` / `remove_movie`, the same as the API and notebook 06, through one of two ways:
* a running API at `--api` (default http://127.0.0.1:8000) that serves the same dataset: the request goes to it
  (`POST /movies`, `DELETE /movies/{id}` with `RECSYS_ADMIN_TOKEN`). With Milvus Lite this is the only way while
  the API holds the file;
* otherwise it opens the stores itself; when another process holds the Milvus Lite file, it says which (pid and
  command line) and what to do.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from helpers.config import Settings, get_settings
from helpers.engine.startup import StoresUnavailableError, open_engine
from helpers.errors import RecsysError

DEFAULT_API = "http://127.0.0.1:8000"


class AdminError(RecsysError, RuntimeError):
    """The command cannot do what was asked; the message says what to do."""


def lock_holders(path: Path) -> list[str]:
    """The processes holding a lock on `path` ("pid: command line"), from Linux's /proc/locks ([] elsewhere)."""
    try:
        inode = path.stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    holders = []
    for line in lines:
        parts = line.split()
        fields = [p for p in parts if p.count(":") == 2]
        if fields and fields[0].rsplit(":", 1)[-1] == str(inode):
            pid = parts[parts.index(fields[0]) - 1]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                command = "?"
            holders.append(f"{pid}: {command[:200]}")
    return holders


def read_ratings(path: str | None) -> list[tuple[int, float, int]]:
    """The first ratings from a CSV file with columns user_id, rating, timestamp."""
    if path is None:
        return []
    frame = pd.read_csv(path)
    missing = {"user_id", "rating", "timestamp"} - set(frame.columns)
    if missing:
        raise AdminError(f"{path} lacks the column(s) {sorted(missing)}: give user_id,rating,timestamp")
    return [(int(u), float(r), int(t)) for u, r, t in frame[["user_id", "rating", "timestamp"]].itertuples(index=False)]


def running_api(url: str, settings: Settings) -> bool:
    """Whether an API of this dataset answers at `url`."""
    try:
        answer = httpx.get(f"{url}/health", timeout=5)
    except httpx.HTTPError:
        return False
    return answer.headers.get("content-type", "").startswith("application/json") and \
        answer.json().get("dataset") == settings.dataset


def through_api(args: argparse.Namespace, settings: Settings, ratings: list[tuple[int, float, int]]) -> Any:
    if not settings.admin_token:
        raise AdminError(f"The API at {args.api} holds the stores: set RECSYS_ADMIN_TOKEN (the API's) to add or "
                         "remove movies through it.")
    headers = {"authorization": f"Bearer {settings.admin_token}"}
    if args.action == "add":
        body = {"title": args.title, "year": args.year, "genres": args.genres,
                "ratings": [{"user_id": u, "rating": r, "timestamp": t} for u, r, t in ratings]}
        answer = httpx.post(f"{args.api}/movies", json=body, headers=headers, timeout=120)
    else:
        answer = httpx.delete(f"{args.api}/movies/{args.movie_id}", headers=headers, timeout=120)
    if answer.status_code in (404, 405):
        raise AdminError(f"The API at {args.api} has no write routes: start it with RECSYS_ADMIN_TOKEN set.")
    if answer.status_code >= 400:
        raise AdminError(f"{answer.status_code}: {answer.json().get('detail')}")
    return answer.json() if answer.content else {"removed": args.movie_id}


def directly(args: argparse.Namespace, settings: Settings, ratings: list[tuple[int, float, int]]) -> Any:
    try:
        engine = open_engine(settings, who="python -m helpers.serving.admin")
    except StoresUnavailableError as error:
        holders = lock_holders(Path(settings.milvus_uri) / "LOCK") if settings.milvus_is_lite else []
        held = f" The Milvus Lite file is held by process {'; '.join(holders)}." if holders else ""
        raise AdminError(f"{error}{held} If that is the API, start it with RECSYS_ADMIN_TOKEN and pass --api.") \
            from None
    with engine:
        if args.action == "add":
            added = engine.add_movie(args.title, args.year, args.genres, ratings)
            return added.__dict__
        engine.remove_movie(args.movie_id)
        return {"removed": args.movie_id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.serving.admin", description=__doc__.split("\n")[0])
    parser.add_argument("--api", default=DEFAULT_API, help="a running API to go through (default %(default)s)")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a movie the model never saw")
    add.add_argument("--title", required=True)
    add.add_argument("--year", type=int, required=True)
    add.add_argument("--genres", required=True, type=lambda text: [g.strip() for g in text.split(",") if g.strip()],
                     help="comma-separated, from the dataset's genres")
    add.add_argument("--ratings", help="CSV with columns user_id,rating,timestamp")
    remove = actions.add_parser("remove", help="remove an added movie")
    remove.add_argument("movie_id", type=int)
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        ratings = read_ratings(getattr(args, "ratings", None))
        result = (through_api if running_api(args.api, settings) else directly)(args, settings, ratings)
    except RecsysError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

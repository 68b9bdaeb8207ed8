"""helpers.stores.catalog on the embedded SQLite default and on the real MariaDB/MySQL server."""
from __future__ import annotations

import re
import socket
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from helpers.stages import notebook_for
from helpers.stores.catalog import Catalog, CatalogError
from helpers.stores.sql import get_engine

STORES_NOTEBOOK = re.escape(notebook_for("vectors"))  # the stage table's vector store notebook, as a pattern

TRICKY_TITLES = ['It\'s "Quoted"; DROP TABLE movies; --', "100% _Wild_ Card", "Amélie \u2013 Noël à Québec 🎬"]


def small_ml():
    """Three movies with hard titles, two users, four ratings."""
    movies = pd.DataFrame({"movie_id": np.array([1, 2, 3], dtype=np.int64), "title": TRICKY_TITLES,
                           "year": pd.array([1999, None, 2001], dtype="Int64"),
                           "genres": [["Comedy", "Drama"], [], ["Drama"]]})
    ratings = pd.DataFrame({"user_id": np.array([10, 10, 11, 11], dtype=np.int64),
                            "movie_id": np.array([1, 3, 1, 2], dtype=np.int64),
                            "rating": np.array([5, 3, 4, 2], dtype=np.float32),
                            "timestamp": np.array([1, 2, 3, 4], dtype=np.int64)})
    users = pd.DataFrame({"user_id": np.array([10, 11], dtype=np.int64), "gender": ["F", "M"],
                          "age": np.array([25, 35], dtype=np.int64), "occupation": np.array([1, 2], dtype=np.int64),
                          "zip": ["01234", "98765-4321"]})
    return SimpleNamespace(name="tiny", movies=movies, ratings=ratings, users=users)


@pytest.fixture
def sqlite_catalog(tmp_path):
    catalog = Catalog(url=f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    yield catalog
    catalog.close()


@pytest.fixture
def mysql_catalog(mysql_url):
    catalog = Catalog(url=mysql_url)
    catalog.drop()
    yield catalog
    catalog.drop()


def check_round_trip_and_idempotence(catalog: Catalog) -> None:
    ml = small_ml()
    report = catalog.ingest(ml, progress=False)
    assert (report.movies, report.users, report.ratings) == (3, 2, 4)
    before = catalog.counts()
    assert before == {"movies": 3, "movie_genres": 3, "users": 2, "ratings": 4}
    catalog.ingest(ml, progress=False)
    assert catalog.counts() == before
    rows = catalog.movies([1, 2, 3, 4])
    assert [rows[i]["title"] for i in (1, 2, 3)] == TRICKY_TITLES
    assert rows[1] == {"movie_id": 1, "title": TRICKY_TITLES[0], "year": 1999, "genres": ["Comedy", "Drama"],
                       "n_ratings": 2, "mean_rating": 4.5}
    assert rows[2]["year"] is None and rows[2]["genres"] == []
    assert catalog.genres() == ["Comedy", "Drama"]
    assert [m["movie_id"] for m in catalog.search_titles("%")] == [2]  # % matches literally
    assert [m["movie_id"] for m in catalog.search_titles("_wild_")] == [2]
    assert [m["movie_id"] for m in catalog.search_titles("drop table")] == [1]
    assert [m["movie_id"] for m in catalog.search_titles("Noël")] == [3]
    assert [m["movie_id"] for m in catalog.search_titles("NOËL")] == [3]  # case folds beyond ASCII, on both backends
    assert [m["movie_id"] for m in catalog.popular(5)] == [1, 3, 2]  # 2 ratings, then mean 3.0 > 2.0
    assert [m["movie_id"] for m in catalog.popular(5, genres=["Drama"], years=(2000, 2010))] == [3]
    assert [m["movie_id"] for m in catalog.popular(5, exclude_ids=[1])] == [3, 2]


def check_bad_input_keeps_rows(catalog: Catalog) -> None:
    ml = small_ml()
    catalog.ingest(ml, progress=False)
    before = catalog.all_movies()
    duplicate = replace_frame(ml, movies=pd.concat([ml.movies, ml.movies.iloc[:1]], ignore_index=True))
    with pytest.raises(CatalogError, match=r"Duplicate movie ids.*\[1\]"):
        catalog.ingest(duplicate, progress=False)
    unknown = replace_frame(ml, ratings=pd.concat([ml.ratings, ml.ratings.iloc[:1].assign(movie_id=77, user_id=99)]))
    with pytest.raises(CatalogError, match=r"not in the movies table.*77"):
        catalog.ingest(unknown, progress=False)
    twice = replace_frame(ml, ratings=pd.concat([ml.ratings, ml.ratings.iloc[:1]]))
    with pytest.raises(CatalogError, match="duplicate .user, movie. ratings"):
        catalog.ingest(twice, progress=False)
    pd.testing.assert_frame_equal(catalog.all_movies(), before)
    assert catalog.counts()["ratings"] == 4


def replace_frame(ml: SimpleNamespace, **frames: pd.DataFrame) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(ml), **frames})


def test_sqlite_round_trip_and_rerun(sqlite_catalog) -> None:
    check_round_trip_and_idempotence(sqlite_catalog)


def test_sqlite_bad_input_changes_nothing(sqlite_catalog) -> None:
    check_bad_input_keeps_rows(sqlite_catalog)


def test_sample_popularity_matches_pandas(sqlite_catalog, sample_ml) -> None:
    sqlite_catalog.ingest(sample_ml, progress=False)
    counts = sample_ml.ratings.groupby("movie_id").size()
    top = [m["movie_id"] for m in sqlite_catalog.popular(5)]
    assert [int(counts[m]) for m in top] == sorted(counts, reverse=True)[:5]
    assert sqlite_catalog.counts()["ratings"] == len(sample_ml.ratings)
    assert sqlite_catalog.genres() == sample_ml.genres


def test_one_engine_per_process_and_url(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert get_engine(url) is get_engine(url)
    assert Catalog(url=url).engine is Catalog(url=url).engine


def test_missing_tables_name_the_stores_notebook(sqlite_catalog) -> None:
    with pytest.raises(CatalogError, match=STORES_NOTEBOOK):
        sqlite_catalog.movie_ids()


def test_unreachable_mysql_names_url_without_password_and_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    catalog = Catalog(url=f"mysql+pymysql://recsys:s3cret@127.0.0.1:{port}/movies")
    with pytest.raises(CatalogError) as caught:
        catalog.create()
    message = str(caught.value)
    assert f"mysql+pymysql://recsys:***@127.0.0.1:{port}/movies" in message
    assert "s3cret" not in message and "docker compose up -d mysql" in message and "RECSYS_CATALOG_URL" in message
    catalog.close()


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(CatalogError, match="sqlite:///.*mysql\\+pymysql"):
        Catalog(url="postgresql://u:p@localhost/db")
    with pytest.raises(CatalogError, match="RECSYS_CATALOG_URL cannot be used.*sqlite:///"):
        Catalog(url="not a database url")
    with pytest.raises(CatalogError, match="PyMySQL installed"):
        Catalog(url="mysql+nosuchdriver://u@localhost/db")


def test_a_driver_error_while_loading_is_a_catalog_error_and_changes_nothing(sqlite_catalog, monkeypatch) -> None:
    import sqlite3

    import sqlalchemy as sa

    import helpers.stores.catalog as catalog_module

    sqlite_catalog.ingest(small_ml(), progress=False)
    before = sqlite_catalog.counts()
    locked = sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    def failing_insert(*args, **kwargs):
        raise locked

    monkeypatch.setattr(catalog_module, "bulk_insert", failing_insert)
    with pytest.raises(CatalogError, match="while loading the new catalog.*database is locked") as caught:
        sqlite_catalog.ingest(small_ml(), progress=False)
    assert caught.value.store == "catalog" and caught.value.__cause__ is locked
    assert sqlite_catalog.counts() == before


@pytest.mark.real_server
def test_mysql_round_trip_keeps_accents_and_rerun(mysql_catalog) -> None:
    check_round_trip_and_idempotence(mysql_catalog)


@pytest.mark.real_server
def test_mysql_bad_input_changes_nothing(mysql_catalog) -> None:
    check_bad_input_keeps_rows(mysql_catalog)


@pytest.mark.real_server
def test_mysql_unknown_database_says_how_to_create_it(mysql_url) -> None:
    import sqlalchemy as sa

    url = sa.make_url(mysql_url).set(database="recsys_no_such_db").render_as_string(hide_password=False)
    catalog = Catalog(url=url)
    with pytest.raises(CatalogError, match="CREATE DATABASE recsys_no_such_db CHARACTER SET utf8mb4"):
        catalog.create()
    catalog.close()


# -- issue 13: replace, never add; one search on both backends; hostile titles -----------------------------
SEARCH_TITLES = ["Misérables, Les", "Misery", "Amélie", "Straße der Liebe", "ÉCOLE", "God Father, The"]
SEARCHES = {"miserables": ["Misérables, Les"], "MISÉR": ["Misérables, Les", "Misery"], "amelie": ["Amélie"],
            "AMÉLIE": ["Amélie"], "strasse": ["Straße der Liebe"], "école": ["ÉCOLE"], "ecole": ["ÉCOLE"],
            "god father": ["God Father, The"], "godfather": []}


def search_ml():
    n = len(SEARCH_TITLES)
    movies = pd.DataFrame({"movie_id": np.arange(1, n + 1, dtype=np.int64), "title": SEARCH_TITLES,
                           "year": pd.array([1990] * n, dtype="Int64"), "genres": [["Drama"]] * n})
    ratings = pd.DataFrame({"user_id": np.arange(1, n + 1, dtype=np.int64), "movie_id": movies["movie_id"],
                            "rating": np.full(n, 4.0, dtype=np.float32), "timestamp": np.ones(n, dtype=np.int64)})
    return SimpleNamespace(name="search", movies=movies, ratings=ratings, users=None)


def check_search_and_replace(catalog: Catalog) -> None:
    catalog.ingest(search_ml(), progress=False)
    for query, expected in SEARCHES.items():
        assert sorted(m["title"] for m in catalog.search_titles(query)) == sorted(expected), query
    ml = small_ml()
    catalog.ingest(ml, progress=False)
    fewer = replace_frame(ml, ratings=ml.ratings.iloc[:2])
    catalog.ingest(fewer, progress=False)
    assert catalog.counts() == {"movies": 3, "movie_genres": 3, "users": 2, "ratings": 2}  # replaced, not added to
    assert catalog.movie(2)["n_ratings"] == 0 and catalog.movie(1)["n_ratings"] == 1
    for empty in (replace_frame(ml, ratings=ml.ratings.iloc[:0]), replace_frame(ml, movies=ml.movies.iloc[:0])):
        with pytest.raises(CatalogError, match="is empty"):
            catalog.ingest(empty, progress=False)
    nul = replace_frame(ml, movies=ml.movies.assign(title=["ok", "God\x00father", "ok too"]))
    with pytest.raises(CatalogError, match="control characters.*U\\+0000"):
        catalog.ingest(nul, progress=False)
    nan = replace_frame(ml, ratings=ml.ratings.assign(rating=[5.0, np.nan, 4.0, 2.0]))
    with pytest.raises(CatalogError, match="NaN"):
        catalog.ingest(nan, progress=False)
    assert catalog.counts()["ratings"] == 2  # none of the bad inputs changed anything
    assert [t for t in catalog.engine.dialect.get_table_names(catalog.engine.connect())
            if t.endswith(("__new", "__old"))] == []


def test_sqlite_search_folds_accents_and_ingest_replaces(sqlite_catalog) -> None:
    """Issue 13 (#7, #8): ratings were added to, and 'miserables' missed 'Misérables' on SQLite (< 2 s)."""
    check_search_and_replace(sqlite_catalog)


@pytest.mark.real_server
def test_mysql_search_folds_accents_and_ingest_replaces(mysql_catalog) -> None:
    """The same searches give the same movies on MariaDB/MySQL (< 3 s)."""
    check_search_and_replace(mysql_catalog)


def test_bulk_insert_takes_column_arrays(tmp_path) -> None:
    import sqlalchemy as sa

    from helpers.stores.sql import bulk_insert, ratings_table

    catalog = Catalog(url=f"sqlite:///{tmp_path / 'bulk.sqlite'}")
    catalog.create()
    n = 25_000
    with catalog.engine.begin() as conn:
        inserted = bulk_insert(conn, ratings_table, {"user_id": np.arange(n), "movie_id": np.ones(n, dtype=np.int64),
                                                     "rating": np.full(n, 3.5), "timestamp": np.zeros(n, dtype=int)},
                               chunk_rows=10_000)
    assert inserted == n and catalog.counts()["ratings"] == n
    with catalog.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(ratings_table.c.rating))).scalar() == 3.5 * n
    catalog.close()


def test_a_deleted_sqlite_catalog_is_not_recreated_empty(tmp_path) -> None:
    path = tmp_path / "catalog.sqlite"
    catalog = Catalog(url=f"sqlite:///{path}")
    catalog.ingest(small_ml(), progress=False)
    path.unlink()
    with pytest.raises(CatalogError, match=f"is gone.*{STORES_NOTEBOOK}"):
        catalog.movie_count()
    catalog.close()
    with pytest.raises(CatalogError, match="is gone"):
        Catalog(url=f"sqlite:///{path}").movie(1)
    assert not path.exists()


# -- issue 20: title search from an in-memory index, rebuilt when the catalog's generation moves ------------
def sql_title_search(catalog: Catalog, query: str, limit: int) -> list[int]:
    """The reference: the SQL scan the index replaced (folded titles LIKE '%q%', most rated first, then id)."""
    import sqlalchemy as sa

    from helpers.stores.sql import fold, movies_table

    stmt = (sa.select(movies_table.c.movie_id)
            .where(movies_table.c.title_folded.contains(fold(query), autoescape=True))
            .order_by(movies_table.c.n_ratings.desc(), movies_table.c.movie_id).limit(limit))
    with catalog.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(stmt)]


def check_title_index_equals_sql(catalog: Catalog, sample_ml) -> None:
    movies = sample_ml.movies.copy()
    movies.loc[:len(TRICKY_TITLES + SEARCH_TITLES) - 1, "title"] = TRICKY_TITLES + SEARCH_TITLES
    catalog.ingest(replace_frame(sample_ml, movies=movies), progress=False)
    rng = np.random.default_rng(0)
    titles = movies["title"].tolist()
    queries = ["", " ", "%", "_", "_wild_", "drop table", "NOËL", "miserables", "MISÉR", "strasse", "é", "the",
               "a", "zzzz", ",", "--", "🎬"]
    for title in rng.choice(titles, size=60):
        start = int(rng.integers(0, len(title)))
        queries.append(title[start:start + int(rng.integers(1, 6))])
    for query in queries:
        for limit in (1, 3, 10, 50):
            got = [m["movie_id"] for m in catalog.search_titles(query, limit)]
            assert got == sql_title_search(catalog, query, limit), (query, limit)
    assert catalog.search_titles("a\x00b") == []


def check_title_index_follows_the_generation(catalog: Catalog) -> None:
    other = Catalog(url=catalog.url)  # another process: its own index, the same database
    catalog.ingest(search_ml(), progress=False)
    first = catalog.generation()
    assert [m["title"] for m in other.search_titles("misery")] == ["Misery"]
    catalog.ingest(small_ml(), progress=False)
    assert catalog.generation() == first + 1
    assert other.search_titles("misery") == [] and [m["movie_id"] for m in other.search_titles("noël")] == [3]
    with pytest.raises(CatalogError, match="is empty"):  # a refused write changes nothing, generation included
        catalog.ingest(replace_frame(small_ml(), ratings=small_ml().ratings.iloc[:0]), progress=False)
    assert catalog.generation() == first + 1


def test_sqlite_title_index_equals_the_sql_search(sqlite_catalog, sample_ml) -> None:
    """Issue 20: the in-memory index answers exactly what the SQL scan answered (< 2 s)."""
    check_title_index_equals_sql(sqlite_catalog, sample_ml)


@pytest.mark.real_server
def test_mysql_title_index_equals_the_sql_search(mysql_catalog, sample_ml) -> None:
    """The same on MariaDB/MySQL, whose binary collation on the folded titles the index must match (< 5 s)."""
    check_title_index_equals_sql(mysql_catalog, sample_ml)


def test_sqlite_title_index_follows_writes_of_another_catalog(sqlite_catalog) -> None:
    """A write through another Catalog (another process) bumps the generation; the index is rebuilt (< 1 s)."""
    check_title_index_follows_the_generation(sqlite_catalog)


@pytest.mark.real_server
def test_mysql_title_index_follows_writes_of_another_catalog(mysql_catalog) -> None:
    """The same on MariaDB/MySQL, where the generation table is swapped in by the RENAME TABLE (< 3 s)."""
    check_title_index_follows_the_generation(mysql_catalog)


def test_catalog_of_an_earlier_version_says_to_rebuild(sqlite_catalog) -> None:
    """A catalog built before the generation table existed: title search and health name the notebook (< 1 s)."""
    import sqlalchemy as sa

    sqlite_catalog.ingest(small_ml(), progress=False)
    with sqlite_catalog.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE catalog_generation"))
    for call in (lambda: sqlite_catalog.search_titles("noël"), sqlite_catalog.movie_count):
        with pytest.raises(CatalogError, match=f"older version.*{STORES_NOTEBOOK}"):
            call()

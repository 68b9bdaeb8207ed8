"""The ipywidgets picker (helpers/picker.py), driven through its widgets against a real engine over the
sample stores (`stores_settings` in conftest.py)."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from helpers.engine.engine import Recommendation, RecommendationEngine
from helpers.notebook import init_notebook, running_in_voila
from helpers.picker import MoviePicker, movie_label, results_frame, results_html
from helpers.stores.build import build_stores
from helpers.stores.catalog import Catalog
from helpers.training.embeddings import save_movie_embeddings

from conftest import make_test_embeddings, sample_settings

QUERIES = ["misérables", "golden", "midnight"]


@pytest.fixture(scope="module")
def engine(stores_settings) -> Iterator[RecommendationEngine]:
    engine = RecommendationEngine(stores_settings)
    yield engine
    engine.close()  # releases the Milvus Lite file for the other test modules


@pytest.fixture
def picker(engine) -> MoviePicker:
    return MoviePicker(engine)


def add_by_typing(picker: MoviePicker, query: str) -> int:
    """What a visitor does: type, keep the first match, press Add."""
    picker.search_box.value = query
    chosen = picker.matches.value
    picker.add_button.click()
    return chosen


def test_type_ahead_lists_titles_with_year_and_accents(picker):
    picker.search_box.value = "misérables"
    labels = [label for label, _ in picker.matches.options]
    assert labels and all("Misérables" in label for label in labels)
    assert all(re.search(r"\(\d{4}\)$", label) for label in labels)
    assert picker.matches.value == picker.matches.options[0][1]
    assert "pick one" in picker.message_text


def test_short_and_unknown_searches_get_a_message(picker):
    picker.search_box.value = "m"
    assert picker.matches.options == () and "at least 2 letters" in picker.message_text
    picker.search_box.value = "zzqx no such title"
    assert picker.matches.options == () and "No title contains" in picker.message_text
    picker.search_box.value = ""
    assert picker.message_text == ""


def test_liked_list_can_be_edited(picker):
    ids = [add_by_typing(picker, q) for q in QUERIES]
    assert picker.liked == ids and [v for _, v in picker.liked_box.options] == ids
    picker.search_box.value = QUERIES[0]
    assert not picker.add(picker.matches.value) and "already" in picker.message_text
    picker.liked_box.value = ids[1]
    picker.remove_button.click()
    assert picker.liked == [ids[0], ids[2]]
    assert not picker.remove(None) and "Select a movie" in picker.message_text
    picker.clear_button.click()
    assert picker.liked == [] and picker.liked_box.options == ()


def test_add_without_a_choice_or_with_an_unknown_id_gets_a_message(picker):
    picker.add_button.click()  # no search yet: nothing selected
    assert picker.liked == [] and "Pick a movie" in picker.message_text
    assert not picker.add(987_654_321) and "no movie with id 987654321" in picker.message_text


def test_recommend_with_nothing_liked_gets_a_message(picker):
    picker.recommend_button.click()
    assert picker.last_results == [] and picker.results.value == ""
    assert "Add at least one movie" in picker.message_text


def test_three_movies_give_k_explained_results(picker, engine):
    liked = [add_by_typing(picker, q) for q in QUERIES]
    picker.k_slider.value = 7
    picker.recommend_button.click()
    results = picker.last_results
    assert len(results) == 7, picker.message_text
    assert picker.message_text == "7 recommendations for your 3 liked movie(s). Query encoder: mean."
    assert results == engine.recommend(liked, k=7)  # the picker adds nothing of its own to the ranking
    assert not {r.movie_id for r in results} & set(liked)
    assert all(r.because_of in liked and r.because_of_title for r in results)
    assert picker.results.value.split("<tbody>")[1].count("<tr") == 7  # one table row per result
    frame = results_frame(results)
    assert list(frame.columns) == ["title", "year", "genres", "score", "because you liked"]
    assert frame["score"].is_monotonic_decreasing


def test_the_message_says_when_the_requested_encoder_could_not_be_used(picker, engine, monkeypatch):
    add_by_typing(picker, QUERIES[0])
    monkeypatch.setattr(engine.encoder, "requested", "sequence")
    monkeypatch.setattr(engine.encoder, "fallback_reason", "the sequence encoder is not used: ...")
    assert picker.recommend()
    assert picker.message_text.endswith("liked movie(s). Query encoder: mean (sequence cannot be used now: see "
                                        "engine.health()).")


def test_genre_and_year_filters_narrow_results(picker, engine):
    add_by_typing(picker, QUERIES[1])
    genre = engine.genres()[0]
    picker.genre_filter.value = (genre,)
    picker.year_toggle.value = True
    picker.year_filter.value = (1960, 1990)
    results = picker.recommend()
    assert results, picker.message_text
    assert all(genre in r.genres and 1960 <= r.year <= 1990 for r in results)
    picker.year_filter.value = (1900, 1901)  # nothing that old in the sample
    assert picker.recommend() == [] and "No movie matches these filters" in picker.message_text


def test_sql_and_html_in_the_search_are_harmless(picker, stores_settings):
    catalog = Catalog(stores_settings)
    before = catalog.counts()
    for text in ["'; DROP TABLE movies; --", "%' OR '1'='1", "<script>alert('x')</script>", "<b>bold</b>"]:
        picker.search_box.value = text
        assert picker.matches.options == () and "No title contains" in picker.message_text
        assert "<script>" not in picker.message.value and "<b>bold" not in picker.message.value
    assert catalog.counts() == before


def test_results_table_escapes_markup_and_keeps_accents():
    rec = Recommendation(movie_id=1, title="<img src=x onerror=alert(1)> Amélie", year=None, genres=["Drama"],
                         score=0.5, because_of=2, because_of_title="Café & <i>Co</i>", source="pinsage")
    table = results_html([rec])
    assert "<img" not in table and "&lt;img src=x" in table and "Amélie" in table
    assert "Café &amp; &lt;i&gt;Co&lt;/i&gt;" in table
    assert results_html([]) == ""


def test_movie_label_shows_the_year_when_known():
    assert movie_label({"title": "Misérables, Les", "year": 1995}) == "Misérables, Les (1995)"
    assert movie_label({"title": "Untitled", "year": None}) == "Untitled"


def test_running_in_voila_follows_voilas_kernel_environment(monkeypatch):
    monkeypatch.delenv("VOILA_KERNEL_ID", raising=False)
    monkeypatch.delenv("VOILA_SERVER_URL", raising=False)
    assert not running_in_voila()
    monkeypatch.setenv("VOILA_KERNEL_ID", "0c1d")
    assert running_in_voila()


def test_init_notebook_prints_nothing_on_a_page(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path))
    monkeypatch.delenv("VOILA_SERVER_URL", raising=False)
    monkeypatch.delenv("VOILA_KERNEL_ID", raising=False)
    init_notebook(dataset="sample")
    assert "dataset=sample" in capsys.readouterr().out
    monkeypatch.setenv("VOILA_KERNEL_ID", "0c1d")
    init_notebook(dataset="sample")
    assert capsys.readouterr().out == ""


def test_stores_that_stop_answering_get_a_message_not_a_traceback(sample_ml, tmp_path):
    """Its own stores and engine, since the test closes the engine under the picker."""
    settings = sample_settings(tmp_path)
    save_movie_embeddings(settings, *make_test_embeddings(sample_ml.movies))
    build_stores(settings, ml=sample_ml, progress=False)
    engine = RecommendationEngine(settings)
    picker = MoviePicker(engine)
    add_by_typing(picker, QUERIES[0])
    engine.close()  # the Milvus client is gone, as when the server goes away
    assert picker.recommend() == [] and picker.results.value == ""
    assert "did not answer" in picker.message_text and "RECSYS_MILVUS_URI" in picker.message_text


def test_a_store_fault_shows_its_message_and_a_bug_shows_its_type_and_is_logged(picker, monkeypatch, caplog):
    from helpers.stores.sql import CatalogError

    def down(*args, **kwargs):
        raise CatalogError("Cannot use the catalog database at sqlite:///x (disk full).")

    monkeypatch.setattr(picker.engine, "search_titles", down)
    assert picker.search("golden") == []
    assert "movie catalog did not answer" in picker.message_text and "disk full" in picker.message_text

    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(picker.engine, "search_titles", bug)
    with caplog.at_level("ERROR", logger="helpers.picker"):
        assert picker.search("golden") == []
    assert picker.message_text == "Unexpected error: ZeroDivisionError: division by zero (traceback in the log)."
    assert "did not answer" not in picker.message_text
    (record,) = [r for r in caplog.records if r.name == "helpers.picker"]
    assert record.exc_info[0] is ZeroDivisionError

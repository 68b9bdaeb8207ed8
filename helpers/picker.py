"""The movie picker: ipywidgets to search titles, keep an editable list of liked movies, set genre and year
filters and get explained recommendations from a `RecommendationEngine`.

Every widget action goes through a plain method (`search`, `add`, `remove`, `clear`, `recommend`), so code
and tests can drive the picker exactly as a visitor does, and read the outcome from Python state
(`liked`, `matches_found`, `last_results`, `message_text`). Bad or empty input never raises: the picker
shows a friendly message in its message line instead, and a store fault says which store to check. Anything
else is a bug: the message line shows "Unexpected error: <type>: <message>" and the traceback goes to the log.
"""
from __future__ import annotations

import datetime
import html
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from helpers.engine.engine import Recommendation, RecommendationEngine
from helpers.engine.inputs import DEFAULT_K, PAGE_MATCHES, PAGE_MAX_K, PAGE_MIN_LETTERS, RecommendError
from helpers.errors import RecsysError
from helpers.stores.errors import StoreError
from helpers.stores.milvus_client import STORES_NOTEBOOK

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PAGE_WAIT_SECONDS = 60  # scripts/page.sh culls the kernel of a closed page within ~25 s
RESULT_COLUMNS = ["title", "year", "genres", "score", "because you liked"]
log = logging.getLogger(__name__)

_TABLE_STYLE = """<style>
.picker-table {border-collapse: collapse; font-size: 14px; margin-top: 6px}
.picker-table th {text-align: left; border-bottom: 2px solid #888; padding: 3px 10px}
.picker-table td {border-bottom: 1px solid #ddd; padding: 3px 10px; line-height: 1.3}
.picker-table tr:nth-child(even) td {background: #f6f6f6}
</style>"""


def movie_label(movie: dict[str, Any]) -> str:
    """`Title (1995)`, or just the title when the year is unknown; accents and punctuation kept as stored."""
    year = movie.get("year")
    return f"{movie['title']} ({int(year)})" if year is not None and not pd.isna(year) else str(movie["title"])


def results_frame(results: Sequence[Recommendation]) -> pd.DataFrame:
    """Recommendations as a readable table: title, year, genres, score and the liked movie each came from."""
    rows = [{
        "title": r.title,
        "year": r.year,
        "genres": ", ".join(r.genres),
        "score": round(float(r.score), 3),
        "because you liked": r.because_of_title or ("popular with everyone" if r.source == "popular" else ""),
    } for r in results]
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    frame["year"] = frame["year"].astype("Int64")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="rank")
    return frame


def results_html(results: Sequence[Recommendation]) -> str:
    """The results table as HTML; every title and genre is escaped, so markup in the data shows as text."""
    if not results:
        return ""
    frame = results_frame(results)
    frame["year"] = frame["year"].astype("string").fillna("")
    frame["score"] = frame["score"].map("{:.3f}".format)
    return _TABLE_STYLE + frame.to_html(escape=True, classes="picker-table", border=0, index_names=False)


def plot_recommendations(results: Sequence[Recommendation], dataset_label: str) -> Figure:
    """The scores in rank order (best at the top), one colour per liked movie the recommendation came from."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    frame = results_frame(results)
    sources = list(dict.fromkeys(frame["because you liked"]))
    colours = {source: plt.get_cmap("tab10")(i % 10) for i, source in enumerate(sources)}
    labels = [f"{t} ({y})" if not pd.isna(y) else t for t, y in zip(frame["title"], frame["year"], strict=True)]
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(frame), 4) + 1.8))
    ranks = range(len(frame))
    ax.hlines(ranks, frame["score"].min() - 0.02, frame["score"], color="#ccc", linewidth=1)
    ax.scatter(frame["score"], ranks, c=[colours[s] for s in frame["because you liked"]], s=60, zorder=3)
    ax.set_yticks(list(ranks), labels)
    ax.invert_yaxis()
    popular = all(r.source == "popular" for r in results)
    ax.set_xlabel("number of ratings (nothing liked: most rated movies)" if popular
                  else "score (PinSage: liked movies' mean query vector . candidate vector)")
    ax.set_title(f"Recommendations for the picked movies ({dataset_label})")
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[s], label=f"because you liked {s}")
               for s in sources]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.5 / max(len(frame), 4) - 0.1),
              ncol=1, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


class MoviePicker:
    """The picker widget bound to one `RecommendationEngine`. Display it as the last expression of a cell."""

    def __init__(self, engine: RecommendationEngine, k: int = DEFAULT_K,
                 year_range: tuple[int, int] | None = None) -> None:
        self.engine = engine
        year_range = year_range or (1900, datetime.date.today().year)
        self.liked: list[int] = []
        self.matches_found: list[dict[str, Any]] = []
        self.last_results: list[Recommendation] = []
        self.message_text = ""
        self._labels: dict[int, str] = {}

        self.search_box = widgets.Text(placeholder="type part of a title, e.g. toy story", description="Search",
                                       continuous_update=True, layout=widgets.Layout(width="420px"))
        self.matches = widgets.Select(options=[], rows=7, description="Matches", layout=widgets.Layout(width="420px"))
        self.add_button = widgets.Button(description="Add to liked", icon="plus", tooltip="add the selected match",
                                         layout=widgets.Layout(margin="2px 0 0 92px"))
        self.liked_box = widgets.Select(options=[], rows=7, description="Liked", layout=widgets.Layout(width="420px"))
        self.remove_button = widgets.Button(description="Remove", icon="minus", tooltip="remove the selected movie")
        self.clear_button = widgets.Button(description="Clear list", icon="trash")
        self.genre_filter = widgets.SelectMultiple(options=self._genre_options(), rows=7, description="Genres",
                                                   tooltip="only these genres (none selected: all)")
        self.year_toggle = widgets.Checkbox(value=False, description="Only years", indent=False,
                                            layout=widgets.Layout(width="100px"))
        self.year_filter = widgets.IntRangeSlider(value=year_range, min=year_range[0], max=year_range[1],
                                                  continuous_update=False, layout=widgets.Layout(width="320px"))
        self.k_slider = widgets.IntSlider(value=min(max(k, 1), PAGE_MAX_K), min=1, max=PAGE_MAX_K,
                                          description="How many", continuous_update=False)
        self.recommend_button = widgets.Button(description="Recommend", button_style="primary", icon="film")
        self.message = widgets.HTML(value="")
        self.results = widgets.HTML(value="")

        for widget, name in [(self.search_box, "picker-search"), (self.matches, "picker-matches"),
                             (self.add_button, "picker-add"), (self.liked_box, "picker-liked"),
                             (self.remove_button, "picker-remove"), (self.clear_button, "picker-clear"),
                             (self.genre_filter, "picker-genres"), (self.year_toggle, "picker-year-toggle"),
                             (self.year_filter, "picker-years"), (self.k_slider, "picker-k"),
                             (self.recommend_button, "picker-recommend"), (self.message, "picker-message"),
                             (self.results, "picker-results")]:
            widget.add_class(name)

        self.search_box.observe(lambda change: self.search(change["new"]), names="value")
        self.add_button.on_click(lambda _: self.add(self.matches.value))
        self.remove_button.on_click(lambda _: self.remove(self.liked_box.value))
        self.clear_button.on_click(lambda _: self.clear())
        self.recommend_button.on_click(lambda _: self.recommend())

        self.widget = widgets.VBox([
            widgets.HTML(f"<h3 style='margin:4px 0'>Movie picker · {html.escape(engine.settings.dataset)}</h3>"
                         "<b>1.</b> Find movies you like and add them. <b>2.</b> Optionally narrow the genres or "
                         "years. <b>3.</b> Press Recommend."),
            widgets.HBox([widgets.VBox([self.search_box, self.matches, self.add_button]),
                          widgets.VBox([self.liked_box, widgets.HBox([self.remove_button, self.clear_button],
                                                                     layout=widgets.Layout(margin="0 0 0 92px"))])]),
            widgets.HBox([self.genre_filter,
                          widgets.VBox([widgets.HBox([self.year_toggle, self.year_filter]), self.k_slider,
                                        self.recommend_button])]),
            self.message,
            self.results,
        ])
        self.widget.add_class("movie-picker")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # --- state shown to the visitor -----------------------------------------------------------------
    def _say(self, text: str, kind: str = "info") -> None:
        """Show `text` (escaped) in the message line; `message_text` keeps it as plain text."""
        self.message_text = text
        colour = {"info": "#333", "warn": "#a15c00", "error": "#b00020"}[kind]
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>' if text else ""

    def _failed(self, what: str, error: Exception) -> None:
        """Say why asking the `what` failed: a store fault names the stores to check, another project error
        says what to do itself; anything else is a bug, shown by type and message and logged with its traceback."""
        if isinstance(error, StoreError):
            self._say(f"The {what} did not answer ({type(error).__name__}: {error}). Check that {STORES_NOTEBOOK} "
                      "ran for this dataset and that RECSYS_MILVUS_URI / RECSYS_CATALOG_URL point at running stores.",
                      "error")
        elif isinstance(error, RecsysError):
            self._say(str(error), "error")
        else:
            log.error("The movie picker failed asking the %s", what, exc_info=error)
            self._say(f"Unexpected error: {type(error).__name__}: {error} (traceback in the log).", "error")

    def _genre_options(self) -> list[str]:
        try:
            return list(self.engine.genres())
        except StoreError:  # the store is down: the picker still opens and says so on the first action
            return []

    # --- actions -------------------------------------------------------------------------------------
    def search(self, text: str) -> list[dict[str, Any]]:
        """Fill the match list with titles containing `text` (type-ahead); return the matches."""
        query = (text or "").strip()
        self.matches_found = []
        if len(query) < PAGE_MIN_LETTERS:
            self.matches.options = []
            self._say(f"Type at least {PAGE_MIN_LETTERS} letters of a title." if query else "")
            return []
        try:
            found = self.engine.search_titles(query, limit=PAGE_MATCHES)
        except RecommendError as error:
            self.matches.options = []
            self._say(str(error), "warn")
            return []
        except Exception as error:  # `_failed` logs a bug with its traceback
            self.matches.options = []
            self._failed("movie catalog", error)
            return []
        self.matches_found = list(found)
        for movie in self.matches_found:
            self._labels[int(movie["movie_id"])] = movie_label(movie)
        self.matches.options = [(movie_label(m), int(m["movie_id"])) for m in self.matches_found]
        if self.matches_found:
            self.matches.value = int(self.matches_found[0]["movie_id"])
            self._say(f"{len(self.matches_found)} title(s) contain “{query}”: pick one and press Add to liked.")
        else:
            self._say(f"No title contains “{query}”. Try fewer letters or another word of the title.", "warn")
        return self.matches_found

    def add(self, movie_id: int | None) -> bool:
        """Add a movie (normally the selected match) to the liked list; False with a message if it cannot."""
        if movie_id is None:
            self._say("Pick a movie in the matches first (type part of a title in Search).", "warn")
            return False
        movie_id = int(movie_id)
        label = self._labels.get(movie_id)
        if label is None:
            try:
                label = movie_label(self.engine.movie(movie_id))
            except RecommendError:
                self._say(f"There is no movie with id {movie_id} in the catalog; search for it by title.", "warn")
                return False
            except Exception as error:  # `_failed` logs a bug with its traceback
                self._failed("movie catalog", error)
                return False
            self._labels[movie_id] = label
        if movie_id in self.liked:
            self._say(f"{label} is already in your liked list.", "info")
            return False
        self.liked.append(movie_id)
        self._refresh_liked()
        self._say(f"Added {label}. You like {len(self.liked)} movie(s); add more or press Recommend.")
        return True

    def remove(self, movie_id: int | None) -> bool:
        """Take a movie off the liked list."""
        if movie_id is None or int(movie_id) not in self.liked:
            self._say("Select a movie in your liked list to remove it.", "warn")
            return False
        self.liked.remove(int(movie_id))
        self._refresh_liked()
        self._say(f"Removed {self._labels.get(int(movie_id), movie_id)}.")
        return True

    def clear(self) -> None:
        """Empty the liked list and the results."""
        self.liked.clear()
        self._refresh_liked()
        self.last_results = []
        self.results.value = ""
        self._say("Your liked list is empty. Search for a movie to start again.")

    def _refresh_liked(self) -> None:
        self.liked_box.options = [(self._labels[m], m) for m in self.liked]

    def recommend(self) -> list[Recommendation]:
        """Ask the engine for `k` recommendations for the liked list and the filters; show them as a table."""
        self.last_results = []
        self.results.value = ""
        if not self.liked:
            self._say("Add at least one movie you like first: type part of a title in Search, pick it and "
                      "press Add to liked.", "warn")
            return []
        genres = list(self.genre_filter.value) or None
        years = tuple(self.year_filter.value) if self.year_toggle.value else None
        k = int(self.k_slider.value)
        try:
            results = self.engine.recommend(self.liked, k=k, genres=genres, years=years)
        except RecommendError as error:
            self._say(str(error), "warn")
            return []
        except Exception as error:  # `_failed` logs a bug with its traceback
            self._failed("recommendation stores", error)
            return []
        self.last_results = list(results)
        self.results.value = results_html(self.last_results)
        note = self._encoder_note(getattr(results, "encoder", None))
        if not self.last_results:
            self._say("No movie matches these filters. Select fewer genres or widen the years.", "warn")
        elif len(self.last_results) < k:
            self._say(f"Only {len(self.last_results)} movie(s) match these filters (you asked for {k}).{note}", "info")
        else:
            self._say(f"{k} recommendations for your {len(self.liked)} liked movie(s).{note}")
        return self.last_results

    def _encoder_note(self, name: str | None) -> str:
        """The message's note on the query encoder that answered (and on the one asked for, after a fallback)."""
        if not name:
            return ""
        encoder = getattr(self.engine, "encoder", None)
        requested = getattr(encoder, "requested", None)
        if getattr(encoder, "fallback_reason", None) and requested and requested != "auto":
            return f" Query encoder: {name} ({requested} cannot be used now: see engine.health())."
        return f" Query encoder: {name}."

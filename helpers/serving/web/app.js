// The movie picker page (helpers/serving/webapp.py serves it at / of the API). Plain JavaScript, no framework.
// Every text from the server or the visitor goes into the page with textContent, never as markup.
"use strict";

// the limits come from the server (helpers/engine/inputs.py), written into <body data-...> by helpers/serving/webapp.py
const LIMITS = document.body.dataset;
const MIN_LETTERS = Number(LIMITS.minLetters);
const MAX_MATCHES = Number(LIMITS.maxMatches);
const MAX_LIKED = Number(LIMITS.maxLiked);
const MAX_K = Number(LIMITS.maxK);
const DEFAULT_K = Number(LIMITS.defaultK);
const YEARS = [1800, 2100];
const DEBOUNCE_MS = 250;
const TIMEOUT_MS = 20000;
const STORAGE_KEY = `movie-picker:${document.title}`;

const state = {
  liked: [],            // [{movie_id, label}] in the order they were added
  matches: [],          // the matches on screen
  matchesQuery: "",     // the query those matches answer
  searchSeq: 0,         // bumped on every keystroke: only the newest search may fill the matches
  searchTimer: null,
  searchAbort: null,
  recommendSeq: 0,      // only the newest Recommend may fill the results
  genresLoaded: false,
};

const $ = (id) => document.getElementById(id);

// -- talking to the API ------------------------------------------------------------------------------------
class Unreachable extends Error {}
class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

function detailText(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {  // FastAPI's validation errors: [{loc, msg}, ...]
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body" && p !== "query").join(".")}: ${d.msg}`)
      .join("; ");
  }
  return `HTTP ${status}`;
}

async function api(path, { method = "GET", body = undefined, signal = undefined } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  if (signal) signal.addEventListener("abort", () => controller.abort(), { once: true });
  try {
    let response;
    try {
      response = await fetch(path, {
        method, signal: controller.signal, cache: "no-store",
        headers: body === undefined ? { Accept: "application/json" }
          : { Accept: "application/json", "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (signal && signal.aborted) throw error;  // superseded by a newer request: the caller ignores it
      throw new Unreachable(controller.signal.aborted ? "timeout" : "down");
    }
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not JSON: an error page or a cut connection */ }
    if (!response.ok) throw new ApiError(response.status, detailText(parsed, response.status));
    if (parsed === null) throw new Unreachable("cut");
    return parsed;
  } finally {
    clearTimeout(timer);
  }
}

function problemText(error) {
  if (error instanceof Unreachable) {
    return error.message === "timeout"
      ? "The server took too long to answer. Your list is kept here; try again in a moment."
      : "The server does not answer (it may be restarting). Your list is kept here; try again in a moment.";
  }
  if (error instanceof ApiError) {
    if (error.status === 503) return `The server cannot reach its stores right now: ${error.message}. Try again in a moment.`;
    if (error.status >= 500) return `The server failed (HTTP ${error.status}). Try again; if it keeps failing, look at the server's log.`;
    return error.message;
  }
  return `Something went wrong in the page: ${error}`;
}

function say(element, text, kind = "info") {
  element.textContent = text;
  element.dataset.kind = kind;
}
const message = (text, kind) => say($("message"), text, kind);
const searchStatus = (text, kind) => say($("search-status"), text, kind);

function movieLabel(movie) {
  return movie.year === null || movie.year === undefined ? movie.title : `${movie.title} (${movie.year})`;
}

function onServerBack() {  // any answer means the server is up: fill what failed to load earlier
  if (!state.genresLoaded) loadGenres();
}

// -- search as you type ------------------------------------------------------------------------------------
function onSearchInput() {
  const seq = ++state.searchSeq;  // from now on, any older answer is stale
  clearTimeout(state.searchTimer);
  if (state.searchAbort) state.searchAbort.abort();
  const query = $("search").value.trim();
  if (query.length < MIN_LETTERS) {
    showMatches([], "");
    searchStatus(query ? `Type at least ${MIN_LETTERS} letters of a title.` : "");
    return;
  }
  searchStatus("Searching…");
  $("matches").setAttribute("aria-busy", "true");  // the matches on screen answer an older query
  state.searchTimer = setTimeout(() => runSearch(query, seq), DEBOUNCE_MS);
}

async function runSearch(query, seq) {
  const abort = new AbortController();
  state.searchAbort = abort;
  try {
    const found = await api(`/movies?q=${encodeURIComponent(query)}&limit=${MAX_MATCHES}`, { signal: abort.signal });
    if (seq !== state.searchSeq) return;  // a newer keystroke came: its answer decides
    onServerBack();
    showMatches(found, query);
    if (found.length) {
      searchStatus(`${found.length}${found.length === MAX_MATCHES ? "+" : ""} title(s) contain “${query}”. Press Add on the one you like.`);
    } else {
      searchStatus(`No title contains “${query}”. Try fewer letters or another word of the title.`, "warn");
    }
  } catch (error) {
    if (seq !== state.searchSeq) return;
    showMatches([], "");
    searchStatus(problemText(error), error instanceof ApiError && error.status < 500 ? "warn" : "error");
  }
}

function showMatches(movies, query) {  // the answer to `query` (or no matches)
  $("matches").removeAttribute("aria-busy");
  state.matches = movies;
  state.matchesQuery = query;
  renderMatches();
}

function renderMatches() {
  const list = $("matches");
  const focused = [...list.querySelectorAll("button")].indexOf(document.activeElement);
  list.replaceChildren(...state.matches.map((movie, i) => {
    const item = document.createElement("li");
    const text = document.createElement("span");
    text.className = "title";
    text.textContent = movieLabel(movie);
    const genres = document.createElement("span");
    genres.className = "genres";
    genres.textContent = movie.genres.join(", ");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "add";
    button.dataset.index = String(i);
    const liked = state.liked.some((m) => m.movie_id === movie.movie_id);
    button.textContent = liked ? "Liked" : "Add";
    button.setAttribute("aria-label", `${liked ? "Already liked:" : "Add"} ${movieLabel(movie)}`);
    button.addEventListener("click", () => addMovie(movie));
    item.append(text, genres, button);
    return item;
  }));
  if (focused >= 0 && list.querySelectorAll("button")[focused]) list.querySelectorAll("button")[focused].focus();
}

function onSearchKey(event) {
  if (event.key === "Enter") {
    event.preventDefault();
    const query = $("search").value.trim();
    if (state.matches.length && state.matchesQuery === query) addMovie(state.matches[0]);
    else if (query.length >= MIN_LETTERS) searchStatus("Still searching: press Enter again when the matches show.");
    else searchStatus(`Type at least ${MIN_LETTERS} letters of a title.`);
  } else if (event.key === "ArrowDown") {
    const first = $("matches").querySelector("button");
    if (first) { event.preventDefault(); first.focus(); }
  } else if (event.key === "Escape") {
    $("search").value = "";
    onSearchInput();
  }
}

function onListKey(event) {  // ↑/↓ between the buttons of a list; ↑ from the first match back to the search box
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const buttons = [...event.currentTarget.querySelectorAll("button")];
  const at = buttons.indexOf(document.activeElement);
  if (at < 0) return;
  event.preventDefault();
  const next = at + (event.key === "ArrowDown" ? 1 : -1);
  if (next >= 0 && next < buttons.length) buttons[next].focus();
  else if (next < 0 && event.currentTarget.id === "matches") $("search").focus();
}

// -- the liked list ----------------------------------------------------------------------------------------
function addMovie(movie) {
  const label = movieLabel(movie);
  if (state.liked.some((m) => m.movie_id === movie.movie_id)) {
    message(`${label} is already in your liked list.`);
    return;
  }
  if (state.liked.length >= MAX_LIKED) {
    message(`Your list already holds ${MAX_LIKED} movies, the most the recommender takes. Remove some first.`, "warn");
    return;
  }
  state.liked.push({ movie_id: movie.movie_id, label });
  renderLiked();
  renderMatches();  // its button now says "Liked"
  message(`Added ${label}. You like ${state.liked.length} movie(s); add more or press Recommend.`);
}

function removeMovie(movieId) {
  const at = state.liked.findIndex((m) => m.movie_id === movieId);
  if (at < 0) return;
  const [removed] = state.liked.splice(at, 1);
  renderLiked();
  renderMatches();
  const buttons = $("liked").querySelectorAll("button");  // keep the keyboard focus in the list
  if (buttons.length) buttons[Math.min(at, buttons.length - 1)].focus();
  else $("search").focus();
  message(`Removed ${removed.label}.${state.liked.length ? "" : " Your liked list is empty."}`);
}

function clearLiked() {
  if (!state.liked.length) {
    message("Your liked list is already empty. Search for a movie to start.");
    return;
  }
  state.liked = [];
  renderLiked();
  renderMatches();
  showResults([]);
  message("Your liked list is empty. Search for a movie to start again.");
  $("search").focus();
}

function renderLiked() {
  $("liked").replaceChildren(...state.liked.map((movie) => {
    const item = document.createElement("li");
    const text = document.createElement("span");
    text.className = "title";
    text.textContent = movie.label;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "remove secondary";
    button.textContent = "Remove";
    button.setAttribute("aria-label", `Remove ${movie.label}`);
    button.addEventListener("click", () => removeMovie(movie.movie_id));
    item.append(text, button);
    return item;
  }));
  $("liked-count").textContent = String(state.liked.length);
  $("liked-empty").hidden = state.liked.length > 0;
  try { sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state.liked)); } catch { /* storage off: fine */ }
}

function restoreLiked() {  // a reload of this tab keeps the list
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "[]");
    if (Array.isArray(saved)) {
      state.liked = saved.filter((m) => m && Number.isInteger(m.movie_id) && typeof m.label === "string")
        .slice(0, MAX_LIKED);
    }
  } catch { state.liked = []; }
  renderLiked();
}

// -- filters -----------------------------------------------------------------------------------------------
async function loadGenres() {
  state.genresLoaded = true;  // one request at a time
  try {
    const genres = await api("/genres");
    $("genre-list").replaceChildren(...genres.map((genre, i) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = genre;
      box.id = `genre-${i}`;
      label.htmlFor = box.id;
      label.append(box, ` ${genre}`);
      return label;
    }));
  } catch (error) {
    state.genresLoaded = false;
    const note = document.createElement("span");
    note.className = "help";
    note.textContent = "Genres could not be loaded yet (the server did not answer); they appear once it does.";
    $("genre-list").replaceChildren(note);
    message(problemText(error), "error");
  }
}

// A whole number typed into `input` (empty: null), or throws a message that names the field and the value.
function wholeNumber(input, name, low, high, example) {
  const raw = input.value.trim();
  if (raw === "") return null;
  if (!/^[0-9]{1,6}$/.test(raw) || Number(raw) < low || Number(raw) > high) {
    throw new Error(`${name} “${raw}” is not valid: type a whole number from ${low} to ${high} (e.g. ${example})` +
      (name === "How many" ? "." : ", or leave it empty."));
  }
  return Number(raw);
}

function readFilters() {
  const yearMin = wholeNumber($("year-min"), "From year", YEARS[0], YEARS[1], 1980);
  const yearMax = wholeNumber($("year-max"), "To year", YEARS[0], YEARS[1], 1999);
  if (yearMin !== null && yearMax !== null && yearMin > yearMax) {
    throw new Error(`From year ${yearMin} is after To year ${yearMax}: swap them.`);
  }
  const k = wholeNumber($("k"), "How many", 1, MAX_K, DEFAULT_K);
  if (k === null) throw new Error(`How many is empty: type a whole number from 1 to ${MAX_K}.`);
  const genres = [...document.querySelectorAll("#genre-list input:checked")].map((box) => box.value);
  return { k, genres: genres.length ? genres : null, year_min: yearMin, year_max: yearMax };
}

// -- recommendations ---------------------------------------------------------------------------------------
async function onRecommend(event) {
  event.preventDefault();
  const seq = ++state.recommendSeq;
  if (!state.liked.length) {
    showResults([]);
    message("Add at least one movie you like first: type part of a title in Search and press Add.", "warn");
    $("search").focus();
    return;
  }
  let filters;
  try { filters = readFilters(); } catch (error) {
    message(error.message, "warn");
    return;
  }
  const liked = state.liked.map((m) => m.movie_id);
  message("Finding movies like yours…");
  $("recommend").setAttribute("aria-busy", "true");
  try {
    const body = await api("/recommend", { method: "POST", body: { liked, ...filters } });
    if (seq !== state.recommendSeq) return;
    onServerBack();
    showResults(body.results, state.liked.length, body.encoder);
    const n = body.results.length;
    if (!n) message("No movie matches these filters. Tick fewer genres or widen the years.", "warn");
    else if (n < filters.k) message(`Only ${n} movie(s) match these filters (you asked for ${filters.k}).`);
    else message(`${n} recommendations for your ${liked.length} liked movie(s).`);
  } catch (error) {
    if (seq !== state.recommendSeq) return;
    message(problemText(error), error instanceof ApiError && error.status < 500 ? "warn" : "error");
  } finally {
    if (seq === state.recommendSeq) $("recommend").removeAttribute("aria-busy");
  }
}

function cell(text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  return td;
}

function showResults(results, nLiked = 0, encoder = null) {
  $("results-section").hidden = results.length === 0;
  $("results-caption").textContent = encoder
    ? `${results.length} movies for your ${nLiked} liked movie(s), best first; score: the inner product of your ` +
      `list's query vector (query encoder: ${encoder}; scaled to length 1) with each movie's candidate vector ` +
      `[h, b], direction and bias: the model's score, not a cosine, not capped at 1`
    : `${results.length} popular movies, most rated first; score: number of ratings`;
  $("results").tBodies[0].replaceChildren(...results.map((r, i) => {
    const row = document.createElement("tr");
    row.dataset.movieId = String(r.movie_id);
    row.append(cell(String(i + 1), "#"), cell(r.title, "Title"), cell(r.year === null ? "" : String(r.year), "Year"),
      cell(r.genres.join(", "), "Genres"), cell(r.score.toFixed(3), "Score"),
      cell(r.because_of_title || (r.source === "popular" ? "popular with everyone" : ""), "Because you liked"));
    return row;
  }));
}

// -- start ---------------------------------------------------------------------------------------------------
function start() {
  $("search").addEventListener("input", onSearchInput);
  $("search").addEventListener("keydown", onSearchKey);
  $("matches").addEventListener("keydown", onListKey);
  $("liked").addEventListener("keydown", onListKey);
  $("clear").addEventListener("click", clearLiked);
  $("recommend-form").addEventListener("submit", onRecommend);
  restoreLiked();
  loadGenres();
  if ($("search").value) onSearchInput();  // the browser may restore the box's text on reload
  document.body.dataset.ready = "true";
}

start();

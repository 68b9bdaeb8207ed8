"""Every limit is defined once (helpers/engine/inputs.py) and the API, the picker and the web page take it from
there; the API allows more than the pages show a person (MAX_K > PAGE_MAX_K). Under 1 s, no stores."""
from __future__ import annotations

import re

from helpers.config import get_settings
from helpers.engine.inputs import DEFAULT_K, MAX_K, MAX_LIKED, MAX_SEARCH_RESULTS, PAGE_MATCHES, PAGE_MAX_K
from helpers.serving.api import create_app
from helpers.serving.webapp import page_html


def test_the_pages_offer_fewer_than_the_api_allows() -> None:
    assert 1 <= DEFAULT_K <= PAGE_MAX_K < MAX_K and PAGE_MATCHES <= MAX_SEARCH_RESULTS


def test_the_api_schema_states_the_limits() -> None:
    schema = create_app(get_settings()).openapi()
    request = schema["components"]["schemas"]["RecommendRequest"]["properties"]
    assert request["k"]["maximum"] == MAX_K and request["k"]["default"] == DEFAULT_K
    assert request["liked"]["maxItems"] == MAX_LIKED
    search = next(p for p in schema["paths"]["/movies"]["get"]["parameters"] if p["name"] == "limit")
    assert search["schema"]["maximum"] == MAX_SEARCH_RESULTS


def test_the_web_page_gets_its_limits_from_the_server() -> None:
    page = page_html("sample")
    assert "__" not in page, "a placeholder of index.html was left unfilled"
    body = re.search(r"<body([^>]*)>", page).group(1)
    assert f'data-max-k="{PAGE_MAX_K}"' in body and f'data-max-matches="{PAGE_MATCHES}"' in body
    assert f'data-max-liked="{MAX_LIKED}"' in body and f'data-default-k="{DEFAULT_K}"' in body

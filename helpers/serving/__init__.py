"""The engine over HTTP. `api` (the FastAPI app), `webapp` (the web page at /, files in web/), `protocol` (uvicorn's
HTTP protocol with TCP_NODELAY)."""

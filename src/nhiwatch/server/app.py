"""`nhiwatch serve`: the dashboard's JSON API and its pages, over the same store as everything else.

The routes live in `nhiwatch.server.routes`, one module per area; what they share (settings, store
handles, the token and the guard in front of the API: see `nhiwatch.server.deps` for the security
model) in `nhiwatch.server.deps`."""

from __future__ import annotations

from typing import Any, Callable

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from nhiwatch import __version__
from nhiwatch.server import routes
from nhiwatch.server.deps import ERROR_HANDLERS, TOKEN_HEADER, Api, ServeSettings, guard, is_loopback
from nhiwatch.server.routes.pages import STATIC
from nhiwatch.store.db import Store

__all__ = ["ServeSettings", "create_app", "is_loopback"]


def create_app(store: Store, settings: ServeSettings, responder_factory: Callable[[Store], Any] | None = None
               ) -> FastAPI:
    app = FastAPI(title="nhiwatch", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="The dashboard's JSON API: inventory, baselines, findings, incidents, response. "
                              f"Send the token in the {TOKEN_HEADER} header (or Authorization: Bearer).")
    app.state.api = Api(store, settings, responder_factory)
    app.middleware("http")(guard)
    for exception, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(exception, handler)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in routes.ROUTERS:
        app.include_router(router)
    return app

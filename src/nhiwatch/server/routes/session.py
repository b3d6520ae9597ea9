"""Who is asking: the version, and whether this browser session may act. And a health check."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nhiwatch import __version__
from nhiwatch.server.deps import ServerApi

router = APIRouter()


@router.get("/api/session", summary="Version, and whether this browser session may act")
def session(request: Request, api: ServerApi) -> dict:
    settings = api.settings
    return {"version": __version__, "store": str(settings.home), "can_act": api.token_ok(request),
            "auth": "token" if settings.reads_need_token else "none"}


@router.get("/api/health", include_in_schema=False)
def health() -> Response:
    return Response("ok", media_type="text/plain")

"""The dashboard's page: index.html, which loads /static/app.js and the ES modules it imports."""

from __future__ import annotations

import mimetypes
from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from nhiwatch.server.deps import SECURITY_HEADERS

STATIC = Path(str(resources.files("nhiwatch.server") / "static"))
# Module scripts must come with a JavaScript type (nosniff is on); some systems' mime.types say otherwise.
mimetypes.add_type("text/javascript", ".js")

router = APIRouter()


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

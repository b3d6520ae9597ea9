"""What every route shares: the settings, the store, the token, and the guard in front of the API.

Security model, briefly:
- bound to a loopback address, reads need no token, but the Host header must name the loopback
  (a DNS-rebinding page cannot read the API through the victim's browser);
- bound anywhere else, every API call needs a token (the server refuses to start without one);
- response actions always need a token, sent in the X-Nhiwatch-Token header: a cross-site form or
  image cannot set a header, and a cross-site fetch that sets one is stopped by the browser's
  preflight (no CORS is allowed here). An Origin that is not this server's is refused as well.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from nhiwatch.server import queries
from nhiwatch.store.db import Store

TOKEN_HEADER = "X-Nhiwatch-Token"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",  # nobody frames the Approve button (clickjacking)
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token may be in the first URL
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServeSettings:
    home: Path
    host: str = "127.0.0.1"
    port: int = 8765
    tokens: list[str] = field(default_factory=list)  # the configured ones, and the one made up for this run
    protected: list[str] = field(default_factory=list)
    aws_profile: str | None = None
    role_name: str | None = None
    external_id: str | None = None

    @property
    def reads_need_token(self) -> bool:
        return not is_loopback(self.host)


class Api:
    """The state a running server shares between requests: the store, the settings, AWS sessions."""

    def __init__(self, store: Store, settings: ServeSettings,
                 responder_factory: Callable[[Store], Any] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.responder_factory = responder_factory or self._responder
        self.write_lock = threading.Lock()  # response actions one at a time: each reads then writes the audit

    def view(self) -> Iterator[Store]:
        view = self.store.view()
        try:
            yield view
        finally:
            view.close()

    def _responder(self, store: Store):
        from nhiwatch.respond.executor import Responder
        from nhiwatch.respond.service import aws_sessions

        session_for, own_arn = aws_sessions(self.settings.aws_profile, self.settings.role_name,
                                            self.settings.external_id)
        return Responder(store, session_for, protected=self.settings.protected, own_arn=own_arn, mode="dashboard")

    def token_ok(self, request: Request) -> bool:
        given = request.headers.get(TOKEN_HEADER) or ""
        if not given:
            auth = request.headers.get("authorization") or ""
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
        return bool(given) and any(hmac.compare_digest(given.encode(), t.encode()) for t in self.settings.tokens)


# -- dependencies ---------------------------------------------------------------------------------

def get_api(request: Request) -> Api:
    return request.app.state.api


def store_view(request: Request) -> Iterator[Store]:
    """A store handle of the request's own, closed when the response is sent."""
    yield from get_api(request).view()


ServerApi = Annotated[Api, Depends(get_api)]
StoreView = Annotated[Store, Depends(store_view)]


def checked_incident_id(value: str) -> str:
    if not value.startswith("inc-") or len(value) > 64:
        raise HTTPException(400, f"bad parameters: incident id {value!r} is not of the form inc-...")
    return value


# -- the guard in front of every request, and the shape of every error -----------------------------

def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=SECURITY_HEADERS)


def host_name(header: str) -> str:
    """The name in a Host header, without the port."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


async def guard(request: Request, call_next):
    """Loopback servers answer loopback names only; the API needs the token where the settings say, and
    anything but a read needs the token and no foreign Origin. Every response carries SECURITY_HEADERS."""
    api: Api = request.app.state.api
    settings = api.settings
    host = host_name(request.headers.get("host") or "")
    if is_loopback(settings.host) and not is_loopback(host):
        return error(403, f"this server answers only to a loopback host name, not {host!r}")
    if request.url.path.startswith("/api/"):
        if settings.reads_need_token and not api.token_ok(request):
            return error(401, f"a token is required: send it in the {TOKEN_HEADER} header")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
                return error(403, f"cross-site request refused (Origin {origin})")
            if not api.token_ok(request):
                return error(401, f"response actions need the token in the {TOKEN_HEADER} header")
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def bad_parameters(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    return error(400, "bad parameters: " + "; ".join(problems))


async def not_found(_request: Request, exc: queries.NotFound) -> JSONResponse:
    return error(404, str(exc))


async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    return error(exc.status_code, str(exc.detail))


ERROR_HANDLERS = {RequestValidationError: bad_parameters, queries.NotFound: not_found, HTTPException: http_error}

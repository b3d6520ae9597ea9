"""`nhiwatch serve`: the dashboard's JSON API and its pages, over the same store as everything else.

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
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from nhiwatch import __version__
from nhiwatch.server import queries
from nhiwatch.store.db import Store

TOKEN_HEADER = "X-Nhiwatch-Token"
STATIC = Path(str(resources.files("nhiwatch.server") / "static"))
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",  # nobody frames the Approve button (clickjacking)
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token may be in the first URL
    "Cache-Control": "no-store",
}
Severity = Literal["info", "low", "medium", "high", "critical"]


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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=SECURITY_HEADERS)


def create_app(store: Store, settings: ServeSettings, responder_factory: Callable[[Store], Any] | None = None
               ) -> FastAPI:
    api = Api(store, settings, responder_factory)
    app = FastAPI(title="nhiwatch", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="The dashboard's JSON API: inventory, baselines, findings, incidents, response. "
                              f"Send the token in the {TOKEN_HEADER} header (or Authorization: Bearer).")
    app.state.api = api

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = _host_name(request.headers.get("host") or "")
        if is_loopback(settings.host) and not is_loopback(host):
            return _error(403, f"this server answers only to a loopback host name, not {host!r}")
        path = request.url.path
        if path.startswith("/api/"):
            if settings.reads_need_token and not api.token_ok(request):
                return _error(401, f"a token is required: send it in the {TOKEN_HEADER} header")
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                origin = request.headers.get("origin")
                if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
                    return _error(403, f"cross-site request refused (Origin {origin})")
                if not api.token_ok(request):
                    return _error(401, f"response actions need the token in the {TOKEN_HEADER} header")
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return _error(400, "bad parameters: " + "; ".join(problems))

    @app.exception_handler(queries.NotFound)
    async def not_found(_request: Request, exc: queries.NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    View = Depends(api.view)

    # -- pages ------------------------------------------------------------------------------------

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    # -- API --------------------------------------------------------------------------------------

    @app.get("/api/session", summary="Version, and whether this browser session may act")
    def session(request: Request) -> dict:
        return {"version": __version__, "store": str(settings.home), "can_act": api.token_ok(request),
                "auth": "token" if settings.reads_need_token else "none"}

    @app.get("/api/overview", summary="Identities by type and risk, open incidents, findings over time")
    def overview(view: Store = View) -> dict:
        return queries.overview(view)

    @app.get("/api/identities", summary="The inventory, one page at a time")
    def identities(view: Store = View,
                   search: Optional[str] = Query(None, max_length=200, description="ARN, name, owner or team"),
                   type: Optional[str] = Query(None, max_length=64, description="NHI type"),  # noqa: A002
                   account: Optional[str] = Query(None, pattern=r"^\d{12}$"),
                   risk: Optional[Literal["low", "medium", "high", "critical"]] = None,
                   sort: Literal["risk", "name", "type", "account", "last_active", "key_age", "findings"] = "risk",
                   order: Optional[Literal["asc", "desc"]] = None,
                   limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000)) -> dict:
        return queries.identities(view, search=search, nhi_type=type, account=account, risk=risk, sort=sort,
                                  order=order, limit=limit, offset=offset)

    @app.get("/api/identity", summary="One identity: posture, baseline profile, findings, permissions")
    def identity(view: Store = View, arn: str = Query(..., min_length=1, max_length=2048)) -> dict:
        return queries.identity(view, arn)

    @app.get("/api/findings", summary="Behavioural findings, most severe first")
    def findings(view: Store = View, severity: Severity = "low",
                 identity: Optional[str] = Query(None, max_length=2048),
                 status: Optional[Literal["open", "resolved", "benign", "suppressed", "all"]] = "open",
                 limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> dict:
        return queries.findings(view, severity=severity, identity=identity,
                                status=None if status == "all" else status, limit=limit, offset=offset)

    @app.get("/api/incidents", summary="Incidents, most severe first")
    def incidents(view: Store = View, status: Literal["open", "all", "closed"] = "open") -> dict:
        return queries.list_incidents(view, status=None if status == "all" else status)

    @app.get("/api/incidents/{incident_id}", summary="One incident: timeline and the graph of what it links")
    def incident(incident_id: str, view: Store = View) -> dict:
        return queries.incident(view, _incident_id(incident_id))

    @app.get("/api/incidents/{incident_id}/response", summary="The incident's proposed actions, as a dry-run")
    def response_plan(incident_id: str, view: Store = View) -> dict:
        from nhiwatch.respond.executor import list_actions

        proposals = _proposals(view, _incident_id(incident_id), settings.protected)
        done = [a for a in list_actions(view) if a.get("incident_id") == incident_id]
        actions = []
        for index, proposal in enumerate(proposals):
            executed = next((a for a in done if a["kind"] == proposal.kind and a["identity"] == proposal.identity),
                            None)
            actions.append({"index": index, "kind": proposal.kind, "identity": proposal.identity, "why": proposal.why,
                            "summary": proposal.plan.summary if proposal.plan else "",
                            "refused": proposal.refused if proposal.plan else (proposal.refused or "no plan"),
                            "calls": [c.cli() for c in proposal.plan.calls] if proposal.plan else [],
                            "executed": _action_view(executed) if executed else None})
        return {"incident_id": incident_id, "dry_run": True, "actions": actions}

    @app.post("/api/incidents/{incident_id}/response/{index}/approve",
              summary="Make one proposed action (needs the token)")
    def approve(incident_id: str, index: int, view: Store = View) -> dict:
        from nhiwatch.respond.actions import ActionError
        from nhiwatch.respond.service import AwsUnavailable

        proposals = _proposals(view, _incident_id(incident_id), settings.protected)
        if not 0 <= index < len(proposals):
            raise HTTPException(404, f"incident {incident_id} has {len(proposals)} proposed actions; no #{index}")
        proposal = proposals[index]
        if proposal.plan is None or proposal.refused:
            raise HTTPException(409, f"this action cannot be made: {proposal.refused or 'no plan'}")
        with api.write_lock:
            try:
                responder = api.responder_factory(view)
                outcome = responder.execute(proposal.plan, reason=proposal.why, incident_id=incident_id,
                                            finding_ids=proposal.finding_ids)
            except AwsUnavailable as exc:
                raise HTTPException(503, str(exc)) from None
            except ActionError as exc:
                raise HTTPException(409, str(exc)) from None
        return _action_view(outcome.record)

    @app.get("/api/actions", summary="Recorded response actions (the audit trail)")
    def actions(view: Store = View, incident: Optional[str] = Query(None, max_length=64),
                identity: Optional[str] = Query(None, max_length=2048)) -> dict:
        from nhiwatch.respond.executor import list_actions

        items = [a for a in list_actions(view, identity=identity) if not incident or a.get("incident_id") == incident]
        return {"items": [_action_view(a) for a in items]}

    @app.post("/api/actions/{action_id}/undo", summary="Undo a recorded action (needs the token)")
    def undo(action_id: str, view: Store = View) -> dict:
        from nhiwatch.respond.actions import ActionError
        from nhiwatch.respond.executor import UnknownAction, undoable
        from nhiwatch.respond.service import AwsUnavailable

        with api.write_lock:
            try:
                undoable(view, action_id)  # an unknown id is 404 and a finished one 409, before AWS is asked
                outcome = api.responder_factory(view).undo(action_id)
            except AwsUnavailable as exc:
                raise HTTPException(503, str(exc)) from None
            except UnknownAction as exc:
                raise HTTPException(404, str(exc)) from None
            except ActionError as exc:
                raise HTTPException(409, str(exc)) from None
        return dict(_action_view(outcome.record), secret=outcome.secret)

    @app.get("/api/health", include_in_schema=False)
    def health() -> Response:
        return Response("ok", media_type="text/plain")

    return app


def _host_name(header: str) -> str:
    """The name in a Host header, without the port."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _incident_id(value: str) -> str:
    if not value.startswith("inc-") or len(value) > 64:
        raise HTTPException(400, f"bad parameters: incident id {value!r} is not of the form inc-...")
    return value


def _proposals(view: Store, incident_id: str, protected: list[str]):
    from nhiwatch.respond.service import incident_proposals

    try:
        _incident, proposals = incident_proposals(view, incident_id, protected)
    except LookupError as exc:
        raise queries.NotFound(str(exc)) from None
    return proposals


def _action_view(record: dict) -> dict:
    undo = record.get("undo")
    return {"id": record["id"], "created_at": record.get("created_at"), "kind": record["kind"],
            "identity": record["identity"], "account_id": record.get("account_id"),
            "incident_id": record.get("incident_id"), "status": record["status"], "reason": record.get("reason"),
            "summary": record.get("summary"), "actor": record.get("actor"), "mode": record.get("mode"),
            "error": record.get("error"),
            "calls": record.get("calls") or [],
            "undo": {"status": record["status"] if record["status"] in ("undone", "undo-failed") else None,
                     "error": undo.get("error"), "at": undo.get("at")} if undo else None}

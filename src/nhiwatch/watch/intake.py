"""HTTP intake for EventBridge "AWS API Call via CloudTrail" events (an API destination).

POST a single event, a JSON array of them, or JSON lines. The request must carry the shared
secret in a header (EventBridge connections send it as an API-key header). The answer comes after
the events are committed to the store, so a 200 means stored; a 503 with Retry-After when the
watcher is behind (EventBridge retries), 401 without the secret, 413 for a body over the limit,
400 when nothing in the body is a CloudTrail event (the body is kept in quarantine).
"""

from __future__ import annotations

import hmac
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import orjson

from nhiwatch.watch.sources import Item

COMMIT_WAIT_SECONDS = 30.0


class Intake:
    def __init__(self, name: str, listen: str, secret: str, header: str, max_body_bytes: int,
                 put: Callable[[Item, float], bool]) -> None:
        host, _, port = listen.rpartition(":")
        self.name = name
        self.secret = secret.encode()
        self.header = header
        self.max_body_bytes = max_body_bytes
        self.put = put
        self.received = 0
        self.error: BaseException | None = None
        intake = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "nhiwatch-intake"
            sys_version = ""

            def log_message(self, format: str, *args: object) -> None:  # the watcher logs, not stderr per request
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                payload = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("", "/health"):
                    self._answer(200, {"status": "ok", "received": intake.received})
                else:
                    self._answer(404, {"error": "not found; POST events to /events"})

            def do_POST(self) -> None:
                if self.path.split("?")[0].rstrip("/") not in ("", "/events"):
                    self._answer(404, {"error": "not found; POST events to /events"})
                    return
                given = (self.headers.get(intake.header) or "").encode()
                if not hmac.compare_digest(given, intake.secret):
                    self._answer(401, {"error": f"missing or wrong {intake.header} header"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or -1)
                except ValueError:
                    length = -1
                if length < 0:
                    self._answer(411, {"error": "Content-Length required"})
                    return
                if length > intake.max_body_bytes:
                    self._answer(413, {"error": f"body of {length} bytes is over the {intake.max_body_bytes}-byte limit"})
                    return
                body = self.rfile.read(length)
                done = threading.Event()
                item = Item(intake.name, str(uuid.uuid4()), body, f"intake:{intake.name}", size=length,
                            record_object=False)
                item.on_commit.append(done.set)
                if not intake.put(item, 5.0):
                    self._answer(503, {"error": "the watcher is behind; retry later"}, {"Retry-After": "5"})
                    return
                intake.received += 1
                if not done.wait(COMMIT_WAIT_SECONDS):
                    self._answer(503, {"error": "not stored in time; retry (repeats are recognised)"},
                                 {"Retry-After": "5"})
                    return
                result = item.result or {}
                if not result.get("events") and result.get("quarantined"):
                    self._answer(400, {"error": result.get("reason") or "no CloudTrail event in the body",
                                       **result})
                    return
                self._answer(200, {"status": "stored", **result})

        self.server = ThreadingHTTPServer((host, int(port)), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"nhiwatch-intake-{name}",
                                       daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

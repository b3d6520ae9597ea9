"""A real moto HTTP endpoint for tests of code that talks to AWS through boto3.

Import the fixtures where they are needed (tests/ is on sys.path, as for conftest):
    from moto_server import aws_live, moto_endpoint  # noqa: F401

aws_live serves a plain moto. aws_live_with_aws_policies serves one that, like AWS, also lists
the ~1,500 AWS managed policies; it costs about a second and a half per call that lists them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _post(url: str, body: bytes = b"") -> None:
    # Not form-encoded: moto reads the raw body, which werkzeug would otherwise consume as a form.
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start(log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"http://{HOST}:{port}"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break  # exited early: most likely another process took the port between probe and bind
        if _answers(url):
            return process, url
        time.sleep(0.1)
    _stop(process)
    raise RuntimeError(f"moto server on {url} did not start")


@contextmanager
def _moto_server(*, aws_managed_policies: bool) -> Iterator[str]:
    # A child process keeps moto's global state and its request log out of the test process, and
    # the scrubbed environment means the server never sees a test's endpoint, keys or moto settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    if aws_managed_policies:
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    with tempfile.TemporaryDirectory(prefix="moto-server-") as tmp:
        log = Path(tmp) / "server.log"
        for attempt in range(START_ATTEMPTS):
            try:
                process, url = _start(log, env)
                break
            except RuntimeError:
                if attempt == START_ATTEMPTS - 1:
                    tail = log.read_text(errors="replace")[-2000:]
                    pytest.fail(f"could not start moto server; its output ends with:\n{tail}")
        try:
            yield url
        finally:
            _stop(process)


def _reset_auth(url: str, free_requests: float) -> None:
    # moto serves this many more requests unchecked, then verifies signatures and IAM policies.
    _post(f"{url}/moto-api/reset-auth", str(free_requests).encode())


def _point_boto3_at(url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        # Real credentials or profiles from the developer's shell must never reach a test session.
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Empty config files: no ~/.aws profile can change region, retries or credentials.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    _post(f"{url}/moto-api/reset")
    # A test that turned on moto's IAM enforcement must not leave it on for the next one.
    _reset_auth(url, float("inf"))
    return url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server running for the whole test session."""
    with _moto_server(aws_managed_policies=False) as url:
        yield url


@pytest.fixture(scope="session")
def moto_endpoint_with_aws_policies() -> Iterator[str]:
    """URL of a second moto server that also holds AWS managed policies (started only if used)."""
    with _moto_server(aws_managed_policies=True) as url:
        yield url


@pytest.fixture
def aws_live(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """boto3 pointed at a freshly reset moto with dummy credentials; yields the endpoint URL."""
    yield _point_boto3_at(moto_endpoint, monkeypatch)


@pytest.fixture
def aws_live_with_aws_policies(moto_endpoint_with_aws_policies: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """As aws_live, on the moto that lists AWS managed policies."""
    yield _point_boto3_at(moto_endpoint_with_aws_policies, monkeypatch)


@pytest.fixture
def enforce_iam(aws_live: str) -> Iterator[Callable[[], None]]:
    """Call it, once the test's identities exist, to make moto check credentials and IAM policies.

    moto ignores both by default. Checking stops again when the test ends.
    """
    yield lambda: _reset_auth(aws_live, 0)
    _reset_auth(aws_live, float("inf"))

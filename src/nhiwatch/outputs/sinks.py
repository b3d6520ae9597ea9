"""Where findings go: files (JSON lines, OCSF), stdout, webhooks (generic and Slack), Security Hub.

A sink only sends; the outbox (watch/delivery.py) decides what to send, retries and records it.
File sinks take part in a two-phase delivery: `prepare` returns the file size before a batch is
written and `rewind` cuts the file back to it, so a batch interrupted by a crash is written again
whole, never twice. Remote sinks are sent each finding's id as an idempotency key.

Each kind is registered in `SINKS` and reads its own [[sinks]] table (`options`); a new kind is one
class here with `@SINKS.register`.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlparse

import orjson

from nhiwatch import __version__
from nhiwatch.core.severity import SEVERITIES, Severity, severity_rank
from nhiwatch.outputs.asff import to_asff
from nhiwatch.outputs.ocsf import to_ocsf
from nhiwatch.core.registry import Registry, Table

SINKS: Registry[Sink] = Registry("sink", "sinks", common_keys={"min_severity"})


class SinkError(RuntimeError):
    """A delivery that failed; `permanent` when retrying cannot help (a 4xx, a rejected finding)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Sink:
    name: str
    min_severity: str = Severity.INFO.value
    batch_size: ClassVar[int] = 500
    kind: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset()  # its table's keys besides type, name and min_severity
    option_key: ClassVar[str | None] = None       # the key TARGET fills in `--sink KIND:TARGET`

    @classmethod
    def from_config(cls, table: Table) -> Sink | None:
        """The sink a [[sinks]] table describes; None when it cannot be built (the problems noted)."""
        severity = table.get("min_severity", "info")
        if severity not in SEVERITIES:
            table.problem("min_severity", f"must be one of {', '.join(SEVERITIES)}, not {severity!r}")
            severity = "info"
        name = str(table.get("name") or cls.default_name(table.index))
        options = cls.options(table)
        return None if options is None else cls(name, severity, **options)

    @classmethod
    def default_name(cls, index: int) -> str:
        return f"{cls.kind}-{index}"

    @classmethod
    def options(cls, table: Table) -> dict | None:
        """The kind's own fields from its table; None when they do not make a sink."""
        return {}

    def reach(self) -> None:
        """`config check --connect`: raise when the sink cannot work."""
        self.open()

    def wants(self, severity: str) -> bool:
        return severity_rank(severity) >= severity_rank(self.min_severity)

    def open(self) -> None:
        """Check that the sink can work at all (a writable folder, a resolvable account)."""

    def prepare(self) -> int | None:
        """Called before a batch: a position to rewind to if the batch fails or the process dies."""
        return None

    def rewind(self, position: int | None) -> None:
        """Undo a partly written batch."""

    def send(self, findings: list[dict], redelivery: bool) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


@SINKS.register
@dataclass
class FileSink(Sink):
    path: Path = Path("findings.jsonl")
    kind: ClassVar[str] = "jsonl"
    keys: ClassVar[frozenset[str]] = frozenset({"path"})
    option_key: ClassVar[str | None] = "path"

    @classmethod
    def options(cls, table: Table) -> dict | None:
        path = table.get("path")
        if not isinstance(path, str) or not path:
            table.problem("path", "required, the file findings are appended to")
            return None
        return {"path": Path(path).expanduser()}

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab"):
                pass
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}", permanent=True) from None

    def line(self, finding: dict) -> bytes:
        return orjson.dumps(finding) + b"\n"

    def prepare(self) -> int | None:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def rewind(self, position: int | None) -> None:
        if position is None or not self.path.exists():
            return
        with open(self.path, "r+b") as fh:
            fh.truncate(position)
            os.fsync(fh.fileno())

    def send(self, findings: list[dict], redelivery: bool) -> None:
        try:
            with open(self.path, "ab") as fh:
                fh.write(b"".join(self.line(f) for f in findings))
                fh.flush()
                os.fsync(fh.fileno())  # delivered means on disk
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def describe(self) -> str:
        return f"{self.kind} file {self.path}"


@SINKS.register
@dataclass
class OcsfSink(FileSink):
    kind: ClassVar[str] = "ocsf"

    def line(self, finding: dict) -> bytes:
        return orjson.dumps(to_ocsf(finding)) + b"\n"


@SINKS.register
@dataclass
class StdoutSink(Sink):
    kind: ClassVar[str] = "stdout"

    @classmethod
    def default_name(cls, index: int) -> str:
        return cls.kind

    def send(self, findings: list[dict], redelivery: bool) -> None:
        sys.stdout.write("".join(orjson.dumps(f).decode() + "\n" for f in findings))
        sys.stdout.flush()


@SINKS.register
@dataclass
class WebhookSink(Sink):
    """POSTs each finding as JSON. Headers carry the finding id as an idempotency key and mark a
    redelivery (a finding whose earlier attempt may have arrived), so a receiver can drop repeats."""

    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    batch_size: ClassVar[int] = 1
    kind: ClassVar[str] = "webhook"
    keys: ClassVar[frozenset[str]] = frozenset({"url", "url_env", "headers", "timeout"})
    option_key: ClassVar[str | None] = "url"

    @classmethod
    def options(cls, table: Table) -> dict | None:
        url = table.get("url") or (table.env(table["url_env"], "url_env") if "url_env" in table else None)
        if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            table.problem("url", "required, an http(s) URL (or url_env naming a variable that holds one)")
            return None
        headers = {}
        for header, value in (table.get("headers") or {}).items():
            if isinstance(value, str) and value.startswith("env:"):
                value = table.env(value[4:], f"headers.{header}") or ""
            headers[str(header)] = str(value)
        return {"url": url, "headers": headers, "timeout": table.number("timeout", 10, 0.1)}

    def body(self, finding: dict) -> dict:
        return {"source": "nhiwatch", "version": __version__, "finding": finding}

    def send(self, findings: list[dict], redelivery: bool) -> None:
        for finding in findings:
            request = urllib.request.Request(
                self.url, data=orjson.dumps(self.body(finding)), method="POST",
                headers={"Content-Type": "application/json", "User-Agent": f"nhiwatch/{__version__}",
                         "Idempotency-Key": finding["id"], "X-Nhiwatch-Finding-Id": finding["id"],
                         "X-Nhiwatch-Redelivery": "true" if redelivery else "false", **self.headers})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                # 408 and 429 ask to come back later, as do server errors; other 4xx will not change.
                permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
                raise SinkError(f"{self.url} answered HTTP {exc.code} {exc.reason}", permanent) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise SinkError(f"{self.url} unreachable: {reason}") from None

    def describe(self) -> str:
        return f"{self.kind} {self.url}"


SLACK_EMOJI = {Severity.CRITICAL: ":rotating_light:", Severity.HIGH: ":red_circle:",
               Severity.MEDIUM: ":large_orange_circle:", Severity.LOW: ":large_blue_circle:",
               Severity.INFO: ":white_circle:"}


@SINKS.register
@dataclass
class SlackSink(WebhookSink):
    """A Slack incoming webhook: the finding as a short message with its explanation and identity."""

    kind: ClassVar[str] = "slack"
    keys: ClassVar[frozenset[str]] = frozenset({"url", "url_env", "timeout"})

    def body(self, finding: dict) -> dict:
        identity = finding["identity"]
        head = f"{SLACK_EMOJI.get(finding['severity'], '')} *{finding['severity'].upper()}* {finding['title']}"
        facts = (f"*Identity* `{identity['arn']}` ({identity['type']}, account {identity['account_id']})\n"
                 f"*When* {finding['first_seen']} to {finding['last_seen']} | *Detector* `{finding['detector']}` | "
                 f"*ATT&CK* {', '.join(finding['mitre']) or '-'} | *Finding* `{finding['id']}`")
        return {
            "text": f"[nhiwatch] {finding['severity'].upper()}: {finding['title']} on {identity['arn']}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": head}},
                {"type": "section", "text": {"type": "mrkdwn", "text": finding["explanation"][:2900]}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": facts[:2900]}]},
            ],
        }


@SINKS.register
@dataclass
class SecurityHubSink(Sink):
    """BatchImportFindings into the account's default product, 100 findings per call (the API's limit)."""

    region: str | None = None
    account_id: str | None = None
    batch_size: ClassVar[int] = 100
    kind: ClassVar[str] = "securityhub"
    keys: ClassVar[frozenset[str]] = frozenset({"region", "account_id"})
    option_key: ClassVar[str | None] = "region"
    _client: object = field(default=None, repr=False)

    @classmethod
    def default_name(cls, index: int) -> str:
        return cls.kind

    @classmethod
    def options(cls, table: Table) -> dict | None:
        return {"region": table.get("region"), "account_id": table.get("account_id")}

    def reach(self) -> None:
        """The account resolved and its hub described (read-only)."""
        from botocore.exceptions import ClientError

        try:
            self.open()
            self._client.describe_hub()  # type: ignore[attr-defined]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise SinkError(f"{error.get('Code', '')}: {error.get('Message', '')}") from None
        except Exception as exc:
            raise SinkError(f"{type(exc).__name__}: {exc}") from None

    def open(self) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            session = boto3.session.Session(region_name=self.region)
            self.region = session.region_name or "us-east-1"
            self._client = session.client("securityhub", region_name=self.region)
            if not self.account_id:
                self.account_id = session.client("sts", region_name=self.region).get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"Security Hub sink: cannot resolve the account: {exc}", permanent=True) from None

    def send(self, findings: list[dict], redelivery: bool) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._client is None:
            self.open()
        try:
            answer = self._client.batch_import_findings(  # type: ignore[attr-defined]
                Findings=[to_asff(f, self.region or "us-east-1", self.account_id or "") for f in findings])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            permanent = code in ("AccessDeniedException", "InvalidInputException", "InvalidAccessException")
            raise SinkError(f"Security Hub: {code}: {exc.response.get('Error', {}).get('Message', exc)}",
                            permanent) from None
        except BotoCoreError as exc:
            raise SinkError(f"Security Hub unreachable: {exc}") from None
        failed = answer.get("FailedFindings") or []
        if failed:
            first = failed[0]
            raise SinkError(f"Security Hub rejected {len(failed)} of {len(findings)} findings, e.g. {first.get('Id')}: "
                            f"{first.get('ErrorCode')} {first.get('ErrorMessage')}", permanent=True)

    def describe(self) -> str:
        return f"{self.kind} {self.region or '(default region)'}"


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
from typing import Any, ClassVar, Collection
from urllib.parse import urlparse

import orjson

from nhiwatch import __version__
from nhiwatch.core.arn import DEFAULT_PARTITION, partition_of
from nhiwatch.core.severity import SEVERITIES, Severity, severity_rank
from nhiwatch.outputs.accounts import (ACCOUNT_ID, REGION, AccountRoles, AccountSessions, AccountUnreachable,
                                       client_error, is_transient)
from nhiwatch.outputs.asff import finding_account, to_asff
from nhiwatch.outputs.ocsf import to_ocsf
from nhiwatch.core.registry import Registry, Table

SINKS: Registry[Sink] = Registry("sink", "sinks", common_keys={"min_severity"})
IMPORT_LIMIT = 100  # findings per BatchImportFindings call
SESSION_NAME = "nhiwatch-securityhub"  # the role session name, as CloudTrail shows the imports


class SinkError(RuntimeError):
    """A delivery that failed; `permanent` when retrying cannot help (a 4xx, a rejected finding)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class PartialDelivery(SinkError):
    """Part of a batch went through and part did not: `failed` maps each finding id that was not
    delivered to its own error (permanent or not); every other finding of the batch was delivered.

    A sink that delivers finding by finding (Security Hub accepts some of a call and rejects others)
    raises it so the outbox records each finding as it went. As a plain SinkError it fails the whole
    batch, which is safe where it is not understood: the delivered findings are sent again."""

    def __init__(self, failed: dict[str, SinkError], batch_size: int) -> None:
        first_id, first = next(iter(failed.items()))
        super().__init__(f"{len(failed)} of {batch_size} findings not delivered, e.g. {first_id}: {first}",
                         permanent=all(e.permanent for e in failed.values()))
        self.failed = failed


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

    def reach(self, accounts: Collection[str] = ()) -> list[dict]:
        """`config check --connect`: raise when the sink cannot work. A sink that acts in several AWS
        accounts returns a report of each (`account`, `reachable`, `via`, `reason`): those it is
        configured for and `accounts` (those its findings came from so far)."""
        self.open()
        return []

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
        """Deliver the batch; raise SinkError when none of it went, PartialDelivery when part did."""
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
    """BatchImportFindings, each finding into its own account's default product: AWS accepts a finding
    only from the account it belongs to. Findings of the account nhiwatch runs in go through its own
    credentials, those of other accounts through a role assumed there (`role_arn`, `roles`). A batch
    is grouped by account, 100 findings per call (the API's limit); each finding AWS rejects, or whose
    account cannot be reached, fails alone with its reason while the others are delivered."""

    region: str | None = None
    account_id: str | None = None  # the account nhiwatch runs in (else asked of STS)
    account_roles: AccountRoles = field(default_factory=AccountRoles)
    batch_size: ClassVar[int] = 500  # several accounts' calls of up to IMPORT_LIMIT each
    kind: ClassVar[str] = "securityhub"
    keys: ClassVar[frozenset[str]] = frozenset({"region", "account_id", "role_arn", "roles", "external_id",
                                                "accounts"})
    option_key: ClassVar[str | None] = "region"
    _sessions: AccountSessions | None = field(default=None, repr=False)
    _partition: str = field(default=DEFAULT_PARTITION, repr=False)  # the region's partition

    @classmethod
    def default_name(cls, index: int) -> str:
        return cls.kind

    @classmethod
    def options(cls, table: Table) -> dict | None:
        before = len(table.problems)
        region = table.get("region")
        if region is not None and (not isinstance(region, str) or not REGION.match(region)):
            table.problem("region", f"must be an AWS region such as us-east-1, not {region!r}")
        account_id = table.get("account_id")
        if account_id is not None and (not isinstance(account_id, str) or not ACCOUNT_ID.match(account_id)):
            table.problem("account_id", "must be the 12-digit id of the account nhiwatch runs in, as a quoted "
                                        f"string, not {account_id!r}")
        roles = AccountRoles.from_table(table)
        if roles is None or len(table.problems) > before:
            return None
        return {"region": region, "account_id": account_id, "account_roles": roles}

    def open(self) -> None:
        self._accounts()

    def _accounts(self) -> AccountSessions:
        """The sessions in each account, made on first use: the region and the account nhiwatch runs in
        are resolved then, so a missing credential stops a watch at its start."""
        if self._sessions is None:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                sessions = AccountSessions(self.account_roles, self.region, SESSION_NAME, self.account_id)
                self.account_id = sessions.own_account
            except (BotoCoreError, ClientError) as exc:
                raise SinkError(f"Security Hub sink: cannot resolve the account nhiwatch runs in: {exc}",
                                permanent=True) from None
            self.region = sessions.region
            try:
                self._partition = sessions.own.get_partition_for_region(self.region)
            except BotoCoreError:
                self._partition = DEFAULT_PARTITION  # a region botocore does not know yet
            self._sessions = sessions
        return self._sessions

    def reach(self, accounts: Collection[str] = ()) -> list[dict]:
        """Each account's hub described (read-only): the account nhiwatch runs in, the configured ones
        and `accounts`, each reachable or not and why."""
        own = self._accounts().own_account
        others = (set(self.account_roles.configured_accounts()) | set(accounts)) - {own}
        return [self._reach_account(account) for account in [own, *sorted(others)]]

    def _reach_account(self, account: str) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        sessions = self._accounts()
        entry: dict[str, Any] = {"account": account, "reachable": False, "via": sessions.via(account), "reason": None}
        try:
            entry["hub"] = sessions.client("securityhub", account).describe_hub().get("HubArn")
            entry["reachable"] = True
        except AccountUnreachable as exc:
            entry["reason"] = str(exc)
        except (BotoCoreError, ClientError) as exc:
            code, message, _ = client_error(exc)
            entry["reason"] = f"DescribeHub: {code}: {message}"
            if code == "InvalidAccessException":
                entry["reason"] += f" (enable Security Hub in account {account}, {self.region})"
        return entry

    def send(self, findings: list[dict], redelivery: bool) -> None:
        sessions = self._accounts()  # Security Hub keys findings by id: a redelivery updates, never duplicates
        failed: dict[str, SinkError] = {}
        by_account: dict[str, list[dict]] = {}
        for finding in findings:
            account = finding_account(finding) or sessions.own_account
            problem = self._unsendable(finding, account)
            if problem:
                failed[finding["id"]] = SinkError(f"Security Hub: {problem}", permanent=True)
            else:
                by_account.setdefault(account, []).append(finding)
        for account, group in by_account.items():
            try:
                client = sessions.client("securityhub", account)
            except AccountUnreachable as exc:
                failed.update(dict.fromkeys([f["id"] for f in group], SinkError(f"Security Hub: {exc}", exc.permanent)))
                continue
            for start in range(0, len(group), IMPORT_LIMIT):
                failed.update(self._import(client, account, group[start:start + IMPORT_LIMIT]))
        if not failed:
            return
        if len(failed) == len(findings) and len({(str(e), e.permanent) for e in failed.values()}) == 1:
            raise next(iter(failed.values()))  # the whole batch, for one reason
        raise PartialDelivery(failed, len(findings))

    def _unsendable(self, finding: dict, account: str) -> str | None:
        """Why the finding cannot go to Security Hub at all, from anywhere; None when it can."""
        if not ACCOUNT_ID.match(account):
            return f"the finding's account {account!r} is not a 12-digit AWS account id"
        partition = partition_of(finding["identity"]["arn"])
        if partition != self._partition:
            return (f"{finding['identity']['arn']} is in the {partition} partition and this sink's region "
                    f"{self.region} in {self._partition}: send it with a securityhub sink in a {partition} region")
        return None

    def _import(self, client: Any, account: str, chunk: list[dict]) -> dict[str, SinkError]:
        """One BatchImportFindings call; the findings it did not take, each with AWS's reason."""
        from botocore.exceptions import BotoCoreError, ClientError

        ids = {f["id"] for f in chunk}
        try:
            answer = client.batch_import_findings(Findings=[to_asff(f, self._accounts().region, account)
                                                            for f in chunk])
        except (BotoCoreError, ClientError) as exc:
            code, message, transient = client_error(exc)
            return dict.fromkeys(ids, SinkError(f"Security Hub in account {account}: {code}: {message}",
                                                permanent=not transient))
        rejected = {}
        for entry in answer.get("FailedFindings") or []:
            if entry.get("Id") in ids:
                code = str(entry.get("ErrorCode") or "")
                rejected[entry["Id"]] = SinkError(f"Security Hub in account {account} rejected it: {code}: "
                                                  f"{entry.get('ErrorMessage') or ''}", permanent=not is_transient(code))
        return rejected

    def describe(self) -> str:
        roles = self.account_roles.describe()
        return f"{self.kind} {self.region or '(default region)'}" + (f" ({roles})" if roles else "")

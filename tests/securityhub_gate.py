"""AWS's cross-account rules in front of moto, for tests of code that acts in several accounts.

moto keeps each account's Security Hub findings apart and lets credentials from AssumeRole act in the
role's account, but it applies neither of the rules that make a multi-account set-up fail in AWS:

- BatchImportFindings (the documented rule for the default product): the calling account must be
  the finding's `AwsAccountId`, and `ProductArn` must be that account's default product in the
  region called. AWS answers such a finding in `FailedFindings` and imports the rest.
- AssumeRole: the role must exist in its account and its trust policy must let the caller's account
  in (with the external id when the policy asks for one); otherwise AccessDenied.

`SecurityHubGate` is an HTTP endpoint for the Security Hub and STS clients (AWS_ENDPOINT_URL_SECURITYHUB,
AWS_ENDPOINT_URL_STS) that applies both and passes everything else to moto unchanged. The caller is
identified as AWS does, by the access key in the SigV4 Authorization header: moto's STS says whose
key it is. A test can also have it reject one finding for a reason of AWS's own (`refuse_next`).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3

_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")
# Hop-by-hop and length headers are the gate's own to set on what it sends on.
_NOT_FORWARDED = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


@dataclass
class Refusal:
    account: str
    code: str
    message: str


@dataclass
class ImportCall:
    """One BatchImportFindings the gate answered: who called, what it imported, what it rejected."""
    caller: str
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)


class SecurityHubGate:
    def __init__(self, moto_url: str) -> None:
        self.moto = urlsplit(moto_url)
        self.moto_url = moto_url
        self.calls: list[ImportCall] = []
        self.assume_role_refused: list[tuple[str, str]] = []  # (caller, role) refused
        self._refusals: list[Refusal] = []
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, answer = gate.handle(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def refuse_next(self, account: str, code: str, message: str) -> None:
        """Reject the next finding imported for `account` with this FailedFindings entry."""
        with self._lock:
            self._refusals.append(Refusal(account, code, message))

    # -- who is calling ----------------------------------------------------------------------

    def account_of_key(self, access_key: str) -> str:
        """The account an access key belongs to, as moto's STS knows it (moto checks no signature)."""
        with self._lock:
            known = self._owners.get(access_key)
        if known is None:
            sts = boto3.client("sts", endpoint_url=self.moto_url, region_name="us-east-1",
                               aws_access_key_id=access_key, aws_secret_access_key="gate")
            known = sts.get_caller_identity()["Account"]
            with self._lock:
                self._owners[access_key] = known
        return known

    def _in_account(self, account: str) -> boto3.session.Session:
        """A session acting in `account` (moto lets the gate assume any role) to read its IAM."""
        sts = boto3.client("sts", endpoint_url=self.moto_url, region_name="us-east-1",
                           aws_access_key_id="gate", aws_secret_access_key="gate")
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/gate-inspector",
                                      RoleSessionName="gate")["Credentials"]
        return boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                     aws_secret_access_key=credentials["SecretAccessKey"],
                                     aws_session_token=credentials["SessionToken"], region_name="us-east-1")

    # -- requests ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        match = _CREDENTIAL.search(headers.get("Authorization", ""))
        if match is None:
            return self._forward(method, path, headers, body)
        access_key, region, service = match.groups()
        if service == "securityhub" and method == "POST" and urlsplit(path).path == "/findings/import":
            return self._import(access_key, region, method, path, headers, body)
        if service == "sts":
            form = parse_qs(body.decode())
            if form.get("Action") == ["AssumeRole"]:
                refusal = self._trust_refuses(access_key, form)
                if refusal:
                    return refusal
        return self._forward(method, path, headers, body)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(self.moto.hostname, self.moto.port, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _NOT_FORWARDED}
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _NOT_FORWARDED}
            return response.status, kept, answer
        finally:
            connection.close()

    def _import(self, access_key: str, region: str, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict, bytes]:
        caller = self.account_of_key(access_key)
        findings = json.loads(body)["Findings"]
        call = ImportCall(caller)
        accepted = []
        for finding in findings:
            product = finding.get("ProductArn", "")
            partition = product.split(":")[1] if product.count(":") >= 5 else "aws"
            own_product = f"arn:{partition}:securityhub:{region}:{caller}:product/{caller}/default"
            if finding.get("AwsAccountId") != caller or product != own_product:
                call.rejected[finding["Id"]] = (
                    "AccessDeniedException",
                    f"Account {caller} can import findings into its default product only for itself: this finding "
                    f"has AwsAccountId {finding.get('AwsAccountId')} and ProductArn {product}")
            elif (refusal := self._take_refusal(caller)) is not None:
                call.rejected[finding["Id"]] = (refusal.code, refusal.message)
            else:
                accepted.append(finding)
        failed = [{"Id": i, "ErrorCode": code, "ErrorMessage": message} for i, (code, message) in call.rejected.items()]
        if accepted:
            status, _, answer = self._forward(method, path, headers, json.dumps({"Findings": accepted}).encode())
            if status != 200:
                raise AssertionError(f"moto refused an import: {status} {answer[:500]!r}")
            failed += json.loads(answer).get("FailedFindings") or []
            not_taken = {f["Id"] for f in failed}
            call.accepted = [f["Id"] for f in accepted if f["Id"] not in not_taken]
        with self._lock:
            self.calls.append(call)
        answer = {"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed), "FailedFindings": failed}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _take_refusal(self, account: str | None) -> Refusal | None:
        with self._lock:
            for refusal in self._refusals:
                if refusal.account == account:
                    self._refusals.remove(refusal)
                    return refusal
        return None

    def _trust_refuses(self, access_key: str, form: dict[str, list[str]]) -> tuple[int, dict, bytes] | None:
        """AccessDenied unless the role exists and trusts the caller's account (and external id)."""
        role_arn = form.get("RoleArn", [""])[0]
        external_id = form.get("ExternalId", [None])[0]
        caller = self.account_of_key(access_key)
        match = _ROLE_ARN.match(role_arn)
        trusted = False
        if match:
            iam = self._in_account(match.group(2)).client("iam", endpoint_url=self.moto_url)
            try:
                document = iam.get_role(RoleName=match.group(3))["Role"]["AssumeRolePolicyDocument"]
            except iam.exceptions.NoSuchEntityException:
                document = None
            trusted = document is not None and _trusts(document, caller, external_id)
        if trusted:
            return None
        with self._lock:
            self.assume_role_refused.append((caller, role_arn))
        message = f"User: arn:aws:sts::{caller}:assumed-role/caller is not authorized to perform: sts:AssumeRole " \
                  f"on resource: {role_arn}"
        xml = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
               f"<Code>AccessDenied</Code><Message>{message}</Message></Error>"
               f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
        return 403, {"Content-Type": "text/xml"}, xml.encode()


def _trusts(document: Any, caller: str, external_id: str | None) -> bool:
    """Whether a trust policy allows sts:AssumeRole to principals of the caller's account."""
    if isinstance(document, str):
        document = json.loads(document)
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        principals = (statement.get("Principal") or {}).get("AWS", [])
        principals = principals if isinstance(principals, list) else [principals]
        if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in actions:
            continue
        if not any(p == caller or re.match(rf"^arn:aws[a-z-]*:(iam|sts)::{caller}:", p) for p in principals):
            continue
        wanted = (statement.get("Condition") or {}).get("StringEquals", {}).get("sts:ExternalId")
        if wanted is None or wanted == external_id:
            return True
    return False


def trust_policy(account: str, external_id: str | None = None) -> str:
    """A role trust policy letting `account` assume the role (with the external id, if given)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                 "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

"""Build CloudTrail records the way AWS writes them, fast.

A simulated identity acts through an Actor: its userIdentity block, source address and user
agent, built once per session and shared by every call the session makes. Each call then only
adds what changes (time, ids, request), which keeps generation cheap.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from nhiwatch.core.times import iso_from_seconds

_MINUTES: dict[int, str] = {}
_LAST = [-1, ""]  # the previous second and its text: a session's calls come in runs


def iso(seconds: float) -> str:
    """CloudTrail's time format (core.times.iso_from_seconds); generation's hottest formatting, so it is
    cached two ways."""
    whole = int(seconds)
    if whole == _LAST[0]:
        return _LAST[1]
    minute, second = divmod(whole, 60)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        prefix = _MINUTES[minute] = iso_from_seconds(minute * 60)[:-3]  # 2026-03-08T12:34:
    text = f"{prefix}{second:02d}Z"
    _LAST[0], _LAST[1] = whole, text
    return text


def aws_date(seconds: float) -> str:
    """The format STS uses for credential expiry in responseElements."""
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%b %-d, %Y, %-I:%M:%S %p")


def stable_hash(text: str) -> int:
    """Python's hash() differs between processes; generation must not."""
    return zlib.crc32(text.encode())


class Ids:
    """Deterministic ids from one random stream."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uuid(self) -> str:
        """A version-4 UUID (CloudTrail event and request ids look like these)."""
        n = self.rng.getrandbits(128)
        h = "%032x" % n
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n & 3]}{h[17:20]}-{h[20:]}"

    def key_id(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return prefix + "".join(alphabet[self.rng.getrandbits(5)] for _ in range(16))

    def hex(self, n: int) -> str:
        return "%0*x" % (n, self.rng.getrandbits(4 * n))

    def token(self) -> str:
        return "IQoJb3JpZ2luX2Vj" + self.hex(48)


@dataclass
class Actor:
    """Who makes a call: the userIdentity block plus where from and with what client."""

    identity: dict | None
    source_ip: str
    user_agent: str
    account: str  # the account whose trail records the call
    vpc_endpoint: str | None = None
    extra: dict = field(default_factory=dict)


def role_session_identity(role_arn: str, role_id: str, session: str, key_id: str, issued: float,
                          web_provider: str | None = None, source_identity: str | None = None,
                          ec2_delivery: bool = False, invoked_by: str | None = None) -> dict:
    account = role_arn.split(":")[4]
    name = role_arn.rsplit("/", 1)[-1]
    context: dict = {
        "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": role_arn,
                          "accountId": account, "userName": name},
        "attributes": {"creationDate": iso(issued), "mfaAuthenticated": "false"},
    }
    if web_provider:
        context["webIdFederationData"] = {"federatedProvider": web_provider, "attributes": {}}
    if ec2_delivery:
        context["ec2RoleDelivery"] = "2.0"
    if source_identity:
        context["sourceIdentity"] = source_identity
    identity = {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
        "accountId": account,
        "accessKeyId": key_id,
        "sessionContext": context,
    }
    if invoked_by:
        identity["invokedBy"] = invoked_by
    return identity


def assume_response(ids: Ids, role_arn: str, role_id: str, session: str, key: str, when: float,
                    **extra: object) -> dict:
    """STS's responseElements for a role hand-out: the credentials and the assumed-role user."""
    account = role_arn.split(":")[4]
    name = role_arn.rsplit("/", 1)[-1]
    return {"credentials": {"accessKeyId": key, "sessionToken": ids.token(), "expiration": aws_date(when + 3600)},
            **extra,
            "assumedRoleUser": {"assumedRoleId": f"{role_id}:{session}",
                                "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}"}}


def user_identity(user_arn: str, user_id: str, key_id: str) -> dict:
    account = user_arn.split(":")[4]
    return {"type": "IAMUser", "principalId": user_id, "arn": user_arn, "accountId": account,
            "accessKeyId": key_id, "userName": user_arn.rsplit("/", 1)[-1]}


def service_identity(service: str) -> dict:
    return {"type": "AWSService", "invokedBy": service}


_READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Query", "Scan", "BatchGet", "Select")
_DATA_EVENTS = {("s3.amazonaws.com", n) for n in ("GetObject", "PutObject", "DeleteObject", "HeadObject",
                                                   "CopyObject", "DeleteObjects", "ListObjects", "ListObjectsV2")}
_DATA_EVENTS |= {("lambda.amazonaws.com", "Invoke"), ("dynamodb.amazonaws.com", "GetItem"),
                 ("dynamodb.amazonaws.com", "PutItem"), ("dynamodb.amazonaws.com", "Query"),
                 ("dynamodb.amazonaws.com", "BatchWriteItem")}


# Calls CloudTrail marks readOnly although their names do not say so (as real records show them).
_READ_ONLY_NAMES = frozenset({"AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "Decrypt",
                              "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Encrypt"})


def is_read_only(name: str) -> bool:
    return name.startswith(_READ_PREFIXES) or name in _READ_ONLY_NAMES


class Recorder:
    """Turns calls into CloudTrail records."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self._kinds: dict[tuple[str, str], tuple[str, bool, bool, str]] = {}

    def _kind(self, source: str, name: str) -> tuple[str, bool, bool, str]:
        """(eventVersion, readOnly, managementEvent, eventCategory) of an API, worked out once."""
        kind = self._kinds.get((source, name))
        if kind is None:
            data = (source, name) in _DATA_EVENTS
            kind = ("1.10" if source == "s3.amazonaws.com" else "1.09", is_read_only(name), not data,
                    "Data" if data else "Management")
            self._kinds[(source, name)] = kind
        return kind

    def call(self, when: float, actor: Actor, source: str, name: str, region: str, request: dict | None = None,
             response: dict | None = None, error: tuple[str, str] | None = None,
             resources: list | None = None, event_type: str = "AwsApiCall", read_only: bool | None = None,
             extra: dict | None = None) -> dict:
        version, reads, management, category = self._kind(source, name)
        event_id = self.ids.uuid()
        # Keys in the order AWS writes them; request ids only need to be unique and UUID-shaped,
        # so one is derived from the event id cheaply.
        record = {
            "eventVersion": version,
            "userIdentity": actor.identity,
            "eventTime": iso(when),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": actor.source_ip,
            "userAgent": actor.user_agent,
            "requestParameters": request,
            "responseElements": None if error else response,
            "requestID": event_id[19:] + "-" + event_id[:18],
            "eventID": event_id,
            "readOnly": reads if read_only is None else read_only,
            "eventType": event_type,
            "managementEvent": management,
            "recipientAccountId": actor.account,
            "eventCategory": category,
        }
        if actor.identity is None:
            del record["userIdentity"]
        if error:
            record["errorCode"], record["errorMessage"] = error
        if resources:
            record["resources"] = resources
        if actor.vpc_endpoint:
            record["vpcEndpointId"] = actor.vpc_endpoint
        if actor.extra:
            record.update(actor.extra)
        if extra:
            record.update(extra)
        return record

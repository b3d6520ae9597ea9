"""Findings as OCSF 1.3 Detection Findings (class_uid 2004) with the `cloud` and `host` profiles.

A record names who acted (`actor`: the principal, its account, session and access key), what it called
(`api`), where from (each evidence's `src_endpoint`, with the network nhiwatch's model puts the address
in), the account and region (`cloud`), pivots for a SIEM (`observables`) and ATT&CK tactic per technique
(knowledge/attack.py).

`to_ocsf(finding)` needs only the finding: the engine keeps the triggering call in its evidence
(`evidence.trigger`). Given the finding's events from the store (`finding_events`), each becomes an
evidence of its own, with what only the event says (request id, session ARN, MFA, when the session was
issued, error message). Everything an event carries was written by the caller, so text is cut short and
the events kept are few.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa

from nhiwatch import __version__
from nhiwatch.core.arn import account_of, partition_of
from nhiwatch.core.severity import Severity
from nhiwatch.detect.features import network_of
from nhiwatch.knowledge.attack import ATTACK_VERSION, TECHNIQUES, Attack, attacks
from nhiwatch.knowledge.netranges import lookup
from nhiwatch.store.db import Store

OCSF_VERSION = "1.3.0"
# `cloud` brings cloud, api and resources[].cloud_partition; `host` brings actor. A strict consumer
# rejects a profile's attributes on a record that does not declare the profile.
PROFILES = ["cloud", "host"]
MAX_EVIDENCES = 10      # events a record holds as evidences (the rest stay in related_events)
MAX_RESOURCES = 10      # resources touched, besides the identity
MAX_TEXT = 256          # longest free text taken from an event (a client, an error message)
MAX_ID = 2048           # longest identifier (IAM's limit on an ARN)

SEVERITY = {Severity.INFO: (1, "Informational"), Severity.LOW: (2, "Low"), Severity.MEDIUM: (3, "Medium"),
            Severity.HIGH: (4, "High"), Severity.CRITICAL: (5, "Critical")}
# A finding's status in the store -> OCSF status_id and its caption (benign = reviewed, a false positive).
STATUS = {"open": (1, "New"), "suppressed": (3, "Suppressed"), "benign": (3, "Suppressed"),
          "resolved": (4, "Resolved")}
AWS_ACCOUNT = {"type": "AWS Account", "type_id": 10}
# OCSF user type_id (1.3: Unknown, User, Admin, System, Other) by what nhiwatch knows the principal is.
PEOPLE = frozenset({"console-user", "saml-role", "saml", "identity_center"})
WORKLOADS = frozenset({"service-role", "service-linked-role", "instance-profile-role", "oidc-role",
                       "cross-account-role", "user-with-keys", "service", "web_identity"})
# Observable type_ids (OCSF 1.3 dictionary).
IP_ADDRESS, USER_NAME, RESOURCE_UID, USER_AGENT, CREDENTIAL_ID, USER = 2, 4, 10, 16, 19, 21
OBSERVABLE_TYPES = {IP_ADDRESS: "IP Address", USER_NAME: "User Name", RESOURCE_UID: "Resource UID",
                    USER_AGENT: "HTTP User-Agent", CREDENTIAL_ID: "User Credential ID", USER: "User"}


@dataclass
class Call:
    """One API call as the record shows it, from an event row or from a finding's trigger."""
    event_id: str
    time_ms: int | None
    source: str                    # eventSource: s3.amazonaws.com
    operation: str                 # eventName
    principal: str
    principal_type: str = "unknown"
    principal_name: str | None = None  # a web identity's or SAML user's subject; else read from the ARN
    account: str | None = None
    region: str | None = None
    ip: str | None = None
    ip_kind: str | None = None
    vpce: str | None = None
    user_agent: str | None = None
    key: str | None = None
    session: str | None = None
    session_arn: str | None = None
    session_created_ms: int | None = None
    mfa: bool | None = None
    invoked_by: str | None = None
    idp: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    resources: list[tuple[str | None, str]] = field(default_factory=list)   # (type, name)


def _cut(value: Any, limit: int = MAX_TEXT) -> Any:
    return value[:limit] if isinstance(value, str) else value


def _ms(value: str | datetime | None) -> int | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


def _source_of(service: str) -> str:
    """The eventSource an `api` prefix came from (ingest keeps the first label of *.amazonaws.com)."""
    return service if "." in service else f"{service}.amazonaws.com"


def name_of(principal: str) -> str:
    """An ARN's short name (a role's or user's name, `root`); any other principal (an AWS service) as is."""
    if principal.startswith("arn:"):
        return principal.split(":", 5)[-1].rsplit("/", 1)[-1]
    return principal


def _session_arn(principal: str, session: str | None) -> str | None:
    """arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION, as CloudTrail names a role's session."""
    account = account_of(principal)
    if not session or account is None or ":role/" not in principal:
        return None
    return f"arn:{partition_of(principal)}:sts::{account}:assumed-role/{name_of(principal)}/{session}"


def call_from_trigger(finding: Mapping[str, Any]) -> Call | None:
    """The call the engine kept in the finding's evidence, if it kept one."""
    trigger = (finding.get("evidence") or {}).get("trigger")
    if not isinstance(trigger, dict) or not trigger.get("api") or not trigger.get("event_id"):
        return None
    service, _, operation = str(trigger["api"]).partition(":")
    identity = finding["identity"]
    own = "caller" not in trigger  # the identity's own call, not someone else's assuming it
    principal = str(identity["arn"] if own else trigger["caller"])
    kind = str((identity.get("type") if own else trigger.get("caller_type")) or "unknown")
    session = trigger.get("session")
    resource = trigger.get("resource")
    subject = trigger.get("subject") if kind in ("web_identity", "saml") else None
    # A federated caller is "<provider>:<subject>" (core/event.py): the provider is its identity provider.
    idp = principal[:-len(subject) - 1] if subject and principal.endswith(f":{subject}") else None
    return Call(
        event_id=str(trigger["event_id"]), time_ms=_ms(trigger.get("time")), source=_source_of(service),
        operation=operation or service, principal=principal, principal_type=kind, principal_name=subject, idp=idp,
        account=account_of(principal) or (identity.get("account_id") if own else None),
        region=trigger.get("region"), ip=trigger.get("source_ip"), ip_kind=trigger.get("source_ip_kind"),
        vpce=trigger.get("vpc_endpoint_id"), user_agent=trigger.get("user_agent"), key=trigger.get("access_key_id"),
        session=session, session_arn=_session_arn(principal, session), invoked_by=trigger.get("invoked_by"),
        error_code=trigger.get("error_code"), resources=[(None, str(resource))] if resource else [])


def call_from_event(event: Mapping[str, Any], identity: Mapping[str, Any]) -> Call:
    """An event row of the store (core/event.py's columns) as a call."""
    principal = str(event.get("principal") or identity["arn"])
    kind = identity.get("type") if principal == identity["arn"] else event.get("principal_type")
    arn = event.get("arn")
    session_arn = arn if isinstance(arn, str) and ":sts::" in arn else None  # a role's or federated user's session
    return Call(
        event_id=str(event["event_id"]), time_ms=_ms(event.get("event_time")), source=str(event["event_source"]),
        operation=str(event["event_name"]), principal=principal, principal_type=str(kind or "unknown"),
        principal_name=event.get("principal_name"),
        account=event.get("principal_account") or account_of(principal), region=event.get("aws_region"),
        ip=event.get("source_ip"), ip_kind=event.get("source_ip_kind"), vpce=event.get("vpc_endpoint_id"),
        user_agent=event.get("user_agent"), key=event.get("access_key_id"), session=event.get("session"),
        session_arn=session_arn, session_created_ms=_ms(event.get("session_created_at")),
        mfa=event.get("mfa_authenticated"), invoked_by=event.get("invoked_by"),
        idp=event.get("web_identity_provider"), request_id=event.get("request_id"),
        error_code=event.get("error_code"), error_message=event.get("error_message"),
        resources=[(r.get("type"), str(r["name"])) for r in event.get("resources") or [] if r and r.get("name")])


# -- objects ------------------------------------------------------------------------------------------

def _account(uid: str | None) -> dict | None:
    return {"uid": uid, **AWS_ACCOUNT} if uid else None


def user_type(kind: str, principal: str) -> tuple[int, str]:
    """OCSF user type_id and its caption: root is the account's admin, people's sign-ins are users,
    workloads' identities system accounts; nhiwatch cannot tell for the rest."""
    if kind == "root" or principal.endswith(":root"):
        return 2, "Admin"
    if kind in PEOPLE:
        return 1, "User"
    if kind in WORKLOADS:
        return 3, "System"
    return 0, "Unknown"


def _temporary(key: str) -> bool:
    """STS-issued credentials (ASIA...), as opposed to an IAM user's or root's long-term key (AKIA...)."""
    return key.startswith("ASIA")


def _user(call: Call) -> dict:
    type_id, caption = user_type(call.principal_type, call.principal)
    user = {"uid": _cut(call.principal, MAX_ID), "name": _cut(call.principal_name or name_of(call.principal)),
            "type_id": type_id, "type": caption}
    if account := _account(call.account):
        user["account"] = account
    if call.key and not _temporary(call.key):
        user["credential_uid"] = _cut(call.key)  # a long-term key is the user's; a temporary one its session's
    return user


def _session(call: Call) -> dict | None:
    session: dict[str, Any] = {}
    if call.session_arn:
        session["uid"] = _cut(call.session_arn, MAX_ID)
        session["issuer"] = _cut(call.principal, MAX_ID)
    if call.session_created_ms is not None:
        session["created_time"] = call.session_created_ms
    if call.mfa is not None:
        session["is_mfa"] = call.mfa
    if call.key and _temporary(call.key):
        session["credential_uid"] = _cut(call.key)
    return session or None


def actor(call: Call) -> dict:
    found: dict[str, Any] = {"user": _user(call)}
    if session := _session(call):
        found["session"] = session
    if call.invoked_by:
        found["app_name"] = _cut(call.invoked_by)  # the AWS service that made the call with the credentials
    if call.idp:
        found["idp"] = {"name": _cut(call.idp)}
    return found


def api(call: Call) -> dict:
    found: dict[str, Any] = {"operation": _cut(call.operation), "service": {"name": _cut(call.source)}}
    if call.request_id:
        found["request"] = {"uid": _cut(call.request_id)}
    if call.error_code:
        found["response"] = {"error": _cut(call.error_code)}
        if call.error_message:
            found["response"]["error_message"] = _cut(call.error_message)
    return found


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def src_endpoint(call: Call) -> dict | None:
    """Where the call came from: the address, and the network nhiwatch's model puts it in (`zone`: a
    provider's pool such as aws:EC2:us-east-1 or github-actions, else its /24) with the provider's
    service for it (`svc_name`: AWS's EC2, S3 ..., or the AWS service CloudTrail names as the caller)."""
    endpoint: dict[str, Any] = {}
    ip = _valid_ip(call.ip) if call.ip_kind in ("ipv4", "ipv6") else None
    if ip:
        endpoint["ip"] = ip
        owner = lookup(ip)
        if owner is not None and owner.service:
            endpoint["svc_name"] = owner.service
    elif call.ip_kind in ("aws_service", "aws_internal") and call.ip:
        endpoint["svc_name"] = _cut(call.ip)
    if call.vpce:
        endpoint["uid"] = _cut(call.vpce)  # the VPC endpoint the call came through
    if endpoint:
        endpoint["zone"] = _cut(network_of(ip or call.ip, call.ip_kind, call.vpce)[0])
    return endpoint or None


def evidence(call: Call) -> dict:
    """One call as OCSF evidence; what OCSF has no place for (client, time, resources) in `data`."""
    found: dict[str, Any] = {"actor": actor(call), "api": api(call)}
    if endpoint := src_endpoint(call):
        found["src_endpoint"] = endpoint
    data: dict[str, Any] = {"event_uid": _cut(call.event_id)}
    if call.time_ms is not None:
        data["event_time"] = call.time_ms
    if call.region:
        data["region"] = _cut(call.region)
    if call.user_agent:
        data["user_agent"] = _cut(call.user_agent)
    if call.ip and "ip" not in (endpoint or {}) and "svc_name" not in (endpoint or {}):
        data["source_address"] = _cut(call.ip)  # as written: neither an address nor a service name
    if call.resources:
        data["resources"] = [{"type": _cut(t), "name": _cut(n)} if t else {"name": _cut(n)}
                             for t, n in call.resources[:MAX_RESOURCES]]
    found["data"] = data
    return found


def attack_objects(techniques: Iterable[str], tactic: str | None) -> list[dict]:
    return [_attack(item) for item in attacks(list(techniques), tactic)]


def _attack(item: Attack) -> dict:
    found: dict[str, Any] = {"version": ATTACK_VERSION}
    parent = TECHNIQUES.get(item.technique)
    found["technique"] = {"uid": item.technique, **({"name": parent.name} if parent else {})}
    if item.sub_technique:
        sub = TECHNIQUES.get(item.sub_technique)
        found["sub_technique"] = {"uid": item.sub_technique, **({"name": sub.name} if sub else {})}
    if item.tactic is not None:
        found["tactic"] = {"uid": item.tactic.uid, "name": item.tactic.name}
    return found


def resources(finding: Mapping[str, Any], calls: Sequence[Call]) -> list[dict]:
    """The identity first, then what the calls touched (bounded)."""
    identity = finding["identity"]
    partition = partition_of(identity["arn"])
    first: dict[str, Any] = {"uid": identity["arn"], "name": name_of(identity["arn"]), "type": identity["type"],
                             "cloud_partition": partition}
    if account := _account(identity.get("account_id")):
        first["owner"] = {"account": account}
    found, seen = [first], {identity["arn"]}
    for call in calls:
        for kind, name in call.resources:
            if name in seen or len(found) > MAX_RESOURCES:
                continue
            seen.add(name)
            touched: dict[str, Any] = {"uid": _cut(name, MAX_ID),
                                       "cloud_partition": partition_of(name) if name.startswith("arn:") else partition}
            if kind:
                touched["type"] = _cut(kind)
            found.append(touched)
    return found


def observables(record: Mapping[str, Any]) -> list[dict]:
    """What a SIEM can pivot on: each value once, named by the first place it appears."""
    pairs: list[tuple[str, int, Any]] = []
    for place, holder in [("actor", record["actor"])] + [("evidences[].actor", e["actor"])
                                                         for e in record.get("evidences", [])]:
        user, session = holder["user"], holder.get("session") or {}
        pairs += [(f"{place}.user", USER, user.get("uid")), (f"{place}.user.name", USER_NAME, user.get("name")),
                  (f"{place}.user.credential_uid", CREDENTIAL_ID, user.get("credential_uid")),
                  (f"{place}.session.credential_uid", CREDENTIAL_ID, session.get("credential_uid"))]
    for item in record.get("evidences", []):
        pairs += [("evidences[].src_endpoint.ip", IP_ADDRESS, (item.get("src_endpoint") or {}).get("ip")),
                  ("evidences[].data.user_agent", USER_AGENT, item["data"].get("user_agent"))]
    pairs += [("resources[].uid", RESOURCE_UID, r.get("uid")) for r in record["resources"]]
    found, seen = [], set()
    for name, type_id, value in pairs:
        if value and (type_id, value) not in seen:
            seen.add((type_id, value))
            found.append({"name": name, "type_id": type_id, "type": OBSERVABLE_TYPES[type_id], "value": value})
    return found


# -- the record -----------------------------------------------------------------------------------------

def _calls(finding: Mapping[str, Any], events: Sequence[Mapping[str, Any]] | None) -> list[Call]:
    """The calls to show, the trigger first: the finding's events when given, else its kept trigger."""
    trigger = call_from_trigger(finding)
    if not events:
        return [trigger] if trigger else []
    calls = [call_from_event(e, finding["identity"]) for e in events]
    if trigger is not None:
        calls.sort(key=lambda c: c.event_id != trigger.event_id)  # stable: the trigger, then the rest in order
    return calls[:MAX_EVIDENCES]


def _stand_in(finding: Mapping[str, Any]) -> dict:
    """The actor when no call was kept (findings stored before the engine kept one): the identity."""
    identity = finding["identity"]
    call = Call(event_id="", time_ms=None, source="", operation="", principal=identity["arn"],
                principal_type=identity.get("type") or "unknown", account=identity.get("account_id"),
                session=finding.get("session"), session_arn=_session_arn(identity["arn"], finding.get("session")))
    return actor(call)


def to_ocsf(finding: Mapping[str, Any], events: Sequence[Mapping[str, Any]] | None = None) -> dict:
    """One nhiwatch finding (the JSON contract) as an OCSF Detection Finding. `events`: the finding's
    event rows from the store (`finding_events`), for evidences with everything each event says."""
    identity = finding["identity"]
    calls = _calls(finding, events)
    lead = calls[0] if calls else None
    severity_id, severity = SEVERITY[Severity(finding["severity"])]
    status_id, status = STATUS.get(finding.get("status") or "open", STATUS["open"])
    baseline = {k: v for k, v in (finding.get("evidence") or {}).items() if k != "trigger"}
    metadata: dict[str, Any] = {"version": OCSF_VERSION, "profiles": list(PROFILES), "uid": finding["id"],
                                "product": {"name": "nhiwatch", "vendor_name": "nhiwatch", "version": __version__}}
    if finding.get("incident_id"):
        metadata["correlation_uid"] = finding["incident_id"]
    cloud: dict[str, Any] = {"provider": "AWS"}
    if lead is not None and lead.region:
        cloud["region"] = _cut(lead.region)
    if account := _account(identity.get("account_id")):
        cloud["account"] = account
    record: dict[str, Any] = {
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create", "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": severity_id, "severity": severity, "status_id": status_id, "status": status,
        "time": _ms(finding["first_seen"]), "message": finding["explanation"], "metadata": metadata,
        "finding_info": {
            "uid": finding["id"], "title": finding["title"], "desc": finding["explanation"],
            "first_seen_time": _ms(finding["first_seen"]), "last_seen_time": _ms(finding["last_seen"]),
            "analytic": {"uid": finding["detector"], "name": finding["title"], "type_id": 2, "type": "Behavioral"},
            "attacks": attack_objects(finding["mitre"], finding.get("tactic") or None),
            "data_sources": ["AWS CloudTrail"],
            "related_events": [{"uid": e} for e in finding["event_ids"]],
        },
        "risk_score": finding["score"],
        "cloud": cloud,
        "actor": actor(lead) if lead is not None else _stand_in(finding),
        "resources": resources(finding, calls),
        "evidences": [evidence(c) for c in calls],
    }
    if lead is not None:
        record["api"] = api(lead)
    if isinstance(baseline.get("events"), int):
        record["count"] = baseline["events"]
    if not record["evidences"]:
        del record["evidences"]
    record["observables"] = observables(record)
    unmapped = {"evidence": baseline, "stratus": finding.get("stratus") or [], "tactic": finding.get("tactic")}
    record["unmapped"] = {k: v for k, v in unmapped.items() if v}
    return record


# The event columns a record shows (not the request and response bodies: large, and the caller's text).
EVENT_COLUMNS = ("event_id", "event_time", "event_source", "event_name", "aws_region", "source_ip", "source_ip_kind",
                 "vpc_endpoint_id", "user_agent", "request_id", "error_code", "error_message", "identity_type",
                 "principal", "principal_type", "principal_account", "principal_name", "arn", "session",
                 "access_key_id", "invoked_by", "mfa_authenticated", "session_created_at", "web_identity_provider",
                 "resources")


def finding_events(store: Store, findings: Sequence[Mapping[str, Any]], limit: int = MAX_EVIDENCES
                   ) -> list[list[dict]]:
    """Each finding's own events for `to_ocsf`, in one pass over the store: its trigger and its first
    others, at most `limit`. Only the identity's calls and calls assuming it: another identity's event
    with the same id is not its evidence."""
    wanted: list[tuple[int, str, str]] = []   # (finding's position, identity, event id)
    for n, finding in enumerate(findings):
        trigger = ((finding.get("evidence") or {}).get("trigger") or {}).get("event_id")
        ids = list(dict.fromkeys([*([trigger] if trigger else []), *finding["event_ids"][:limit]]))[:limit]
        wanted += [(n, finding["identity"]["arn"], event_id) for event_id in ids]
    found: list[dict[str, dict]] = [{} for _ in findings]
    if not wanted:
        return [[] for _ in findings]
    wanted_events = pa.table({"n": [w[0] for w in wanted], "arn": [w[1] for w in wanted],  # noqa: F841 (read by SQL)
                              "event_id": [w[2] for w in wanted]})
    rows = store.con.execute(f"""
        SELECT k.n, {', '.join('e.' + c for c in EVENT_COLUMNS)} FROM wanted_events k JOIN events e
          ON e.event_id = k.event_id AND (e.principal = k.arn OR e.assumed_role_arn = k.arn)
        ORDER BY k.n, e.event_time, e.event_id""").fetchall()
    for n, *values in rows:
        event = dict(zip(EVENT_COLUMNS, values))
        found[n].setdefault(event["event_id"], event)  # one row per event, however often it was ingested
    return [list(events.values()) for events in found]

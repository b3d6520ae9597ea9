"""CloudTrail -> Amazon Security Lake's OCSF Parquet, as Security Lake writes it: for the tests, so that a
corpus can be compared with itself read through Security Lake.

Written from AWS's documented mapping of CloudTrail to OCSF (its mapping notes for API Activity,
Authentication and Account Change, and the example queries of source versions 1 and 2):

- which events Security Lake keeps: management events (CLOUD_TRAIL_MGMT), S3 data events (S3_DATA) and
  Lambda data events (LAMBDA_EXECUTION); Insights, network activity and other data events are not collected;
- the class: sign-ins and AssumeRole* are Authentication (3002), IAM user and role changes Account Change
  (3001), everything else API Activity (6003; 3005 in source version 1);
- where each field goes (the table in src/nhiwatch/ingest/security_lake.py), what lands in `unmapped`
  (every field not mapped, as dotted CloudTrail paths to text; source version 1 keeps requestParameters and
  responseElements there whole, as JSON text) and the layout
  `aws/<SOURCE>/<version>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/<name>.gz.parquet`,
  rows ordered by time.

A record whose time cannot be read is not written (nhiwatch quarantines it from the trail too); a value
of a mapped string field that is not text stays in `unmapped`, as AWS's mapping cannot place it.

    python tests/security_lake_convert.py TRAIL_DIR... --out LAKE_DIR [--version 1|2]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import ipaddress
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from nhiwatch.ingest.formats import Bad, FileScanner
from nhiwatch.ingest.pipeline import expand_paths
from nhiwatch.ingest.timestamps import BadTimestamp, parse_event_time

# AWS's selection of CloudTrail events that are sign-ins (Authentication) and account changes.
AUTHENTICATION = frozenset("""ConsoleLogin ExternalIdPDirectoryLogin CheckMfa CredentialChallenge CredentialVerification
    UserAuthentication AssumeRole AssumeRoleWithSAML AssumeRoleWithWebIdentity""".split())
ACCOUNT_CHANGE = frozenset("""UpdateRole AttachUserPolicy PutRolePermissionsBoundary DeletePolicy RemoveUserFromGroup
    ChangePassword CreateAccessKey AttachGroupPolicy ResyncMFADevice DeleteRolePolicy PutUserPermissionsBoundary
    CreateUser CreateServiceLinkedRole PutRolePolicy DetachGroupPolicy UpdateAccessKey CreateInstanceProfile CreateRole
    DeleteUserPermissionsBoundary DeleteAccountAlias PutGroupPolicy CreateLoginProfile DeleteGroupPolicy
    DeleteLoginProfile DeleteUserPolicy DeactivateMFADevice RemoveRoleFromInstanceProfile UpdateUser EnableMFADevice
    DeleteUser AddRoleToInstanceProfile UpdateAccountEmailAddress UpdateRoleDescription DetachUserPolicy
    UpdateAssumeRolePolicy DeleteGroup DeleteServiceLinkedRole DeleteAccessKey AddUserToGroup DeleteVirtualMFADevice
    FinalizeSmsMfaRegistration DeleteRolePermissionsBoundary DetachRolePolicy DeleteInstanceProfile UpdateGroup
    UpdateLoginProfile RequestSmsMfaRegistration DeleteRole PutUserPolicy CreateVirtualMFADevice AttachRolePolicy
    EmailUpdated AccountNameUpdated PasswordUpdated DeleteAccountPasswordPolicy UpdateAccountPasswordPolicy
    UpdateAccountName TagInstanceProfile TagRole TagUser UntagInstanceProfile UntagRole UntagUser
    CreateAccountAlias""".split())
# API Activity's activity, from the verb the operation starts with
_VERBS = (("Create", 1, "Create"), ("Run", 1, "Create"), ("Generate", 1, "Create"), ("Get", 2, "Read"),
          ("List", 2, "Read"), ("Describe", 2, "Read"), ("Search", 2, "Read"), ("Lookup", 2, "Read"),
          ("Delete", 4, "Delete"), ("Terminate", 4, "Delete"), ("Update", 3, "Update"), ("Put", 3, "Update"),
          ("Modify", 3, "Update"), ("Attach", 3, "Update"), ("Detach", 3, "Update"), ("Tag", 3, "Update"))
_FEDERATED_USERS = frozenset({"WebIdentityUser", "SAMLUser"})
_TOKEN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

S = pa.string()
MS = pa.timestamp("ms", tz="UTC")


def _struct(**fields: pa.DataType) -> pa.DataType:
    return pa.struct(list(fields.items()))


_COMMON = [
    ("class_name", S), ("class_uid", pa.int32()), ("category_name", S), ("category_uid", pa.int32()),
    ("severity_id", pa.int32()), ("severity", S), ("activity_name", S), ("activity_id", pa.int32()),
    ("type_uid", pa.int64()), ("type_name", S), ("status", S), ("status_id", pa.int32()),
    ("time", pa.int64()), ("cloud", _struct(region=S, provider=S)), ("http_request", _struct(user_agent=S)),
    ("src_endpoint", _struct(uid=S, ip=S, domain=S)), ("dst_endpoint", _struct(svc_name=S)),
    ("resources", pa.list_(_struct(uid=S, owner=_struct(account=_struct(uid=S)), type=S))),
    ("unmapped", pa.map_(S, S)),
]
SCHEMAS = {
    2: pa.schema(_COMMON + [
        ("time_dt", MS), ("is_mfa", pa.bool_()),
        ("metadata", _struct(product=_struct(version=S, name=S, vendor_name=S, feature=_struct(name=S)), uid=S,
                             profiles=pa.list_(S), version=S, event_code=S)),
        ("api", _struct(response=_struct(error=S, message=S, data=S), operation=S, version=S,
                        service=_struct(name=S), request=_struct(data=S, uid=S))),
        ("actor", _struct(user=_struct(type=S, name=S, uid=S, uid_alt=S, credential_uid=S, account=_struct(uid=S)),
                          session=_struct(created_time=pa.int64(), created_time_dt=MS, is_mfa=pa.bool_(), issuer=S),
                          invoked_by=S, idp=_struct(name=S, uid=S))),
    ]),
    1: pa.schema(_COMMON + [
        ("mfa", pa.bool_()),
        ("metadata", _struct(product=_struct(version=S, name=S, vendor_name=S, feature=_struct(name=S)), uid=S,
                             profiles=pa.list_(S), version=S)),
        ("api", _struct(response=_struct(error=S, message=S), operation=S, version=S, service=_struct(name=S),
                        request=_struct(uid=S))),
        ("actor", _struct(user=_struct(type=S, name=S, uid=S, uuid=S, credential_uid=S, account_uid=S),
                          session=_struct(created_time=pa.int64(), mfa=pa.bool_(), issuer=S),
                          invoked_by=S, idp=_struct(name=S, uid=S))),
    ]),
}


@dataclass
class Converted:
    """What a conversion wrote and what it left out, by reason."""

    events: int = 0
    files: int = 0
    by_source: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    left_out: dict[str, int] = field(default_factory=lambda: defaultdict(int))


# -- taking fields out of a record ---------------------------------------------------------------

def _pop(record: dict, path: str, text_only: bool = False) -> object:
    """Take a dotted path out of the record (objects emptied by it go too); None when it is not there, or
    when `text_only` and the value is not text (it then stays, for `unmapped`)."""
    if "." not in path:
        value = record.get(path)
        if value is None or (text_only and not _is_text(value)):
            return None
        del record[path]
        return value
    parts = path.split(".")
    chain = [record]
    for part in parts[:-1]:
        child = chain[-1].get(part)
        if not isinstance(child, dict):
            return None
        chain.append(child)
    value = chain[-1].get(parts[-1])
    if value is None or (text_only and not _is_text(value)):
        return None
    del chain[-1][parts[-1]]
    for parent, part in zip(reversed(chain[:-1]), reversed(parts[:-1])):
        if parent[part]:
            break
        del parent[part]
    return value


def _is_text(value: object) -> bool:
    return (isinstance(value, str) and value != "") or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _pop_text(record: dict, path: str) -> str | None:
    """A mapped string field: taken when it is text (or a number, as CloudTrail readers take it), else left
    for `unmapped`."""
    value = _pop(record, path, text_only=True)
    return value if value is None or isinstance(value, str) else str(value)


def _json(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers past 64 bits, read by nhiwatch's lax parser
        return json.dumps(value)


def _flatten(value: object, prefix: str, out: dict[str, str | None], whole: frozenset[str]) -> None:
    """`unmapped`: dotted paths to text; arrays, empty objects and the `whole` keys as JSON text."""
    if isinstance(value, dict) and value and prefix not in whole:
        for key, child in value.items():
            _flatten(child, f"{prefix}.{key}" if prefix else str(key), out, whole)
    elif value is None or isinstance(value, str):
        out[prefix] = value
    else:
        out[prefix] = _json(value)


def _copy(record: dict) -> dict:
    try:
        return orjson.loads(orjson.dumps(record))
    except TypeError:  # integers past 64 bits
        return copy.deepcopy(record)


def _millis(value: object) -> int | None:
    try:
        return parse_event_time(value)[0] // 1000
    except BadTimestamp:
        return None


def _moment(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


# -- one record ------------------------------------------------------------------------------------

def source_of(record: dict) -> str | None:
    """The Security Lake source that keeps this record, or None when Security Lake does not collect it."""
    category = record.get("eventCategory")
    if "insightDetails" in record or category in ("Insight", "NetworkActivity"):
        return None
    if category == "Data":
        return {"s3.amazonaws.com": "S3_DATA", "lambda.amazonaws.com": "LAMBDA_EXECUTION"}.get(record.get("eventSource"))
    return "CLOUD_TRAIL_MGMT"


def class_of(name: str, version: int) -> tuple[int, str, int, str, int, str]:
    """(class_uid, class_name, category_uid, category_name, activity_id, activity_name)."""
    if name in AUTHENTICATION:
        return 3002, "Authentication", 3, "Identity & Access Management", 1, "Logon"
    if name in ACCOUNT_CHANGE:
        activity = (1, "Create") if name.startswith("Create") else (6, "Delete") if name.startswith("Delete") else (99, "Other")
        return (3001, "Account Change", 3, "Identity & Access Management", *activity)
    activity = next(((i, n) for verb, i, n in _VERBS if name.startswith(verb)), (99, "Other"))
    if version == 1:
        return (3005, "API Activity", 3, "Audit Activity", *activity)
    return (6003, "API Activity", 6, "Application Activity", *activity)


def ocsf_row(raw: dict, version: int) -> tuple[dict, int] | None:
    """(the OCSF row, its time in ms) for a CloudTrail record; None when it has no readable time or no call."""
    record = _copy(raw)
    millis = _millis(record.get("eventTime"))
    source, name = record.get("eventSource"), record.get("eventName")
    if millis is None or not isinstance(source, str) or not source or not isinstance(name, str) or not name:
        return None
    for key in ("eventTime", "eventSource", "eventName"):
        record.pop(key)
    class_uid, class_name, category_uid, category_name, activity_id, activity_name = class_of(name, version)
    error = _pop_text(record, "errorCode")
    address = _pop_text(record, "sourceIPAddress")
    is_ip = False
    if address is not None:
        try:
            ipaddress.ip_address(address)
            is_ip = True
        except ValueError:
            pass
    row: dict = {
        "class_uid": class_uid, "class_name": class_name, "category_uid": category_uid,
        "category_name": category_name, "activity_id": activity_id, "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id, "type_name": f"{class_name}: {activity_name}",
        "severity_id": 1, "severity": "Informational",
        "status": "Failure" if error else "Success", "status_id": 2 if error else 1,
        "time": millis,
        "cloud": {"region": _pop_text(record, "awsRegion"), "provider": "AWS"},
        "http_request": {"user_agent": _pop_text(record, "userAgent")},
        "src_endpoint": {"uid": _pop_text(record, "vpcEndpointId"), "ip": address if is_ip else None,
                         "domain": None if is_ip else address},
        "metadata": {"product": {"version": _pop_text(record, "eventVersion"), "name": "CloudTrail",
                                 "vendor_name": "AWS", "feature": {"name": _pop_text(record, "eventCategory")}},
                     "uid": _pop_text(record, "eventID"),
                     "profiles": ["cloud", "datetime"] if version == 2 else ["cloud"],
                     "version": "1.1.0" if version == 2 else "1.0.0-rc.2"},
        "api": {"operation": name, "version": _pop_text(record, "apiVersion"), "service": {"name": source},
                "request": {"uid": _pop_text(record, "requestID")},
                "response": {"error": error, "message": _pop_text(record, "errorMessage")}},
    }
    if version == 2:
        row["time_dt"] = _moment(millis)
        row["metadata"]["event_code"] = _pop_text(record, "eventType")
        for key, holder in (("requestParameters", "request"), ("responseElements", "response")):
            value = record.pop(key, None)
            row["api"][holder]["data"] = None if value is None else _json(value)
    row["actor"] = _actor(record, version)
    row["resources"] = _resources(record)
    if class_uid == 3002:
        row["dst_endpoint"] = {"svc_name": _pop_text(record, "additionalEventData.LoginTo")}
        used = record.get("additionalEventData", {}).get("MFAUsed") if isinstance(record.get("additionalEventData"), dict) else None
        if used in ("Yes", "No"):
            _pop(record, "additionalEventData.MFAUsed")
            row["is_mfa" if version == 2 else "mfa"] = used == "Yes"
    unmapped: dict[str, str | None] = {}
    whole = frozenset({"requestParameters", "responseElements"}) if version == 1 else frozenset()
    for key, value in record.items():
        _flatten(value, key, unmapped, whole)
    row["unmapped"] = unmapped or None
    return row, millis


def _actor(record: dict, version: int) -> dict:
    identity = record.get("userIdentity")
    if not isinstance(identity, dict):
        return {}
    ui = "userIdentity"
    kind = _pop_text(record, f"{ui}.type")
    name = _pop_text(record, f"{ui}.userName") or _pop_text(record, "additionalEventData.UserName")
    arn, account = _pop_text(record, f"{ui}.arn"), _pop_text(record, f"{ui}.accountId")
    if kind == "IdentityCenterUser":  # AWS's conditional mapping for Identity Center users
        principal = _pop_text(record, f"{ui}.onBehalfOf.userId")
        credential = _pop_text(record, f"{ui}.credentialId")
        store = _pop_text(record, f"{ui}.onBehalfOf.identityStoreArn")
    else:
        principal = _pop_text(record, f"{ui}.principalId")
        credential = _pop_text(record, f"{ui}.accessKeyId")
        store = None
    provider = _pop_text(record, f"{ui}.identityProvider") if kind in _FEDERATED_USERS else \
        _pop_text(record, f"{ui}.sessionContext.webIdFederationData.federatedProvider")
    created_text = _pop_text(record, f"{ui}.sessionContext.attributes.creationDate")
    created = _millis(created_text) if created_text else None
    if created_text and created is None:  # not a time: AWS's mapping cannot place it
        record.setdefault(ui, {}).setdefault("sessionContext", {}).setdefault("attributes", {})["creationDate"] = created_text
    mfa_text = _pop_text(record, f"{ui}.sessionContext.attributes.mfaAuthenticated")
    mfa = {"true": True, "false": False}.get(mfa_text or "")
    if mfa_text and mfa is None:
        record.setdefault(ui, {}).setdefault("sessionContext", {}).setdefault("attributes", {})["mfaAuthenticated"] = mfa_text
    issuer = _pop_text(record, f"{ui}.sessionContext.sessionIssuer.arn")
    if record.get(ui) == {}:
        del record[ui]
    actor: dict = {"invoked_by": _pop_text(record, f"{ui}.invokedBy"), "idp": {"name": provider, "uid": store}}
    if version == 2:
        actor["user"] = {"type": kind, "name": name, "uid": arn, "uid_alt": principal, "credential_uid": credential,
                         "account": {"uid": account}}
        actor["session"] = {"created_time": created, "created_time_dt": None if created is None else _moment(created),
                            "is_mfa": mfa, "issuer": issuer}
    else:
        actor["user"] = {"type": kind, "name": name, "uid": principal, "uuid": arn, "credential_uid": credential,
                         "account_uid": account}
        actor["session"] = {"created_time": created, "mfa": mfa, "issuer": issuer}
    if record.get(ui) == {}:
        del record[ui]
    return actor


def _resources(record: dict) -> list[dict] | None:
    resources = record.get("resources")
    plain = isinstance(resources, list) and all(
        isinstance(r, dict) and set(r) <= {"ARN", "accountId", "type"} and all(isinstance(v, str) for v in r.values())
        for r in resources)
    if not plain:
        return None  # odd resources stay whole in unmapped
    record.pop("resources")
    return [{"uid": r.get("ARN"), "owner": {"account": {"uid": r.get("accountId")}}, "type": r.get("type")}
            for r in resources]  # type: ignore[union-attr]


def _partition_value(value: object) -> str:
    return value if isinstance(value, str) and _TOKEN.match(value) else "unknown"


# -- a corpus --------------------------------------------------------------------------------------

def convert(paths: list[str], out: Path, version: int = 2, kept: Path | None = None) -> Converted:
    """Every CloudTrail record under `paths` that Security Lake would keep, as Parquet under `out`; with
    `kept`, the same records as they were, in S3 objects at the same paths below `kept` (the trail that
    Security Lake's copy is to be compared with)."""
    report = Converted()
    partitions: dict[tuple[str, str, str, str], list[tuple[int, dict]]] = defaultdict(list)
    for path in expand_paths(paths):
        scanner = FileScanner(path)
        collected: list[dict] = []
        for item in scanner.records():
            if isinstance(item, Bad):
                report.left_out["unreadable (quarantined from the trail too)"] += 1
                continue
            record, ctx = item
            source = source_of(record)
            if source is None:
                report.left_out[f"not collected by Security Lake ({record.get('eventCategory') or 'Insight'})"] += 1
                continue
            converted = ocsf_row(record, version)
            if converted is None:
                report.left_out["no readable time or call (quarantined from the trail too)"] += 1
                continue
            row, millis = converted
            identity = record.get("userIdentity") if isinstance(record.get("userIdentity"), dict) else {}
            account = record.get("recipientAccountId") or identity.get("accountId") or ctx.account  # type: ignore[union-attr]
            region = record.get("awsRegion") or ctx.region
            day = _moment(millis).strftime("%Y%m%d")
            partitions[(source, _partition_value(region), _partition_value(account), day)].append((millis, row))
            report.by_source[source] += 1
            report.events += 1
            collected.append(record)
        if kept is not None and collected:
            relative = path.relative_to(Path(paths[0])) if path.is_relative_to(Path(paths[0])) else Path(path.name)
            target = kept / relative.with_name(relative.name + ".kept.json")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_json({"Records": collected}))
    for (source, region, account, day), rows in sorted(partitions.items()):
        rows.sort(key=lambda pair: pair[0])  # Security Lake orders each object's records by time
        folder = out / "aws" / source / f"{version}.0" / f"region={region}" / f"accountId={account}" / f"eventDay={day}"
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.blake2b(f"{source}/{region}/{account}/{day}".encode(), digest_size=16).hexdigest()
        table = pa.Table.from_pylist([row for _, row in rows], schema=SCHEMAS[version])
        pq.write_table(table, folder / f"{name}.gz.parquet", compression="gzip")
        report.files += 1
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--version", type=int, choices=(1, 2), default=2)
    args = parser.parse_args()
    report = convert(args.paths, args.out, args.version)
    print(json.dumps({"events": report.events, "files": report.files, "by_source": report.by_source,
                      "left_out": report.left_out}, indent=2))


if __name__ == "__main__":
    sys.exit(main())

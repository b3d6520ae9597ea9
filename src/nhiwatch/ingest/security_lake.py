"""Amazon Security Lake's CloudTrail, read back into CloudTrail records.

Security Lake keeps CloudTrail management events (source CLOUD_TRAIL_MGMT) and S3 and Lambda data events
(S3_DATA, LAMBDA_EXECUTION) as OCSF records in Parquet, under
`aws/<SOURCE>/<version>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/`. A record is an API
Activity (6003; 3005 in OCSF 1.0.0-rc.2), an Authentication (3002: sign-ins, AssumeRole*) or an Account
Change (3001: IAM user and role changes). Each row here becomes the CloudTrail record it came from, so
normalization, dedupe and detection treat it like any trail file.

AWS's mapping (its OCSF mapping notes for CloudTrail, and the example queries of each source version):

| CloudTrail | source version 2 (OCSF 1.1.0) | source version 1 (OCSF 1.0.0-rc.2) |
|---|---|---|
| eventID, eventVersion, eventCategory | metadata.uid, metadata.product.version, metadata.product.feature.name | same |
| eventType | metadata.event_code | unmapped |
| eventTime | time (ms), time_dt | time (ms) |
| eventSource, eventName, apiVersion, requestID | api.service.name, api.operation, api.version, api.request.uid | same |
| errorCode, errorMessage | api.response.error, api.response.message | same |
| requestParameters, responseElements | api.request.data, api.response.data (JSON text) | unmapped (JSON text) |
| awsRegion, userAgent, vpcEndpointId | cloud.region, http_request.user_agent, src_endpoint.uid | same |
| sourceIPAddress | src_endpoint.ip (an address) or src_endpoint.domain (a service, "AWS Internal") | same |
| userIdentity.type, userName, accessKeyId, invokedBy | actor.user.type, .name, .credential_uid, actor.invoked_by | same |
| userIdentity.arn, principalId, accountId | actor.user.uid, .uid_alt, .account.uid | actor.user.uuid, .uid, .account_uid |
| sessionContext: creationDate, mfaAuthenticated, sessionIssuer.arn | actor.session.created_time_dt, .is_mfa, .issuer | .created_time, .mfa, .issuer |
| identityProvider / webIdFederationData.federatedProvider | actor.idp.name | same |
| IdentityCenterUser: credentialId, onBehalfOf.userId, .identityStoreArn | actor.user.credential_uid, .uid_alt, actor.idp.uid | same |
| resources[].ARN, .accountId, .type | resources[].uid, .owner.account.uid, .type | same |
| additionalEventData.LoginTo, .MFAUsed (sign-ins) | dst_endpoint.svc_name, is_mfa | dst_endpoint.svc_name, mfa |
| everything else | unmapped: dotted CloudTrail path -> text | same |

What the mapping loses, and so cannot come back: the type of values in `unmapped` (all text; readOnly and
managementEvent are read back as booleans), time below the millisecond and the original time text,
`additionalEventData.UserName` where AWS put it in actor.user.name, and CloudTrail Insights and network
activity events, which Security Lake does not collect.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import orjson

ROWS_PER_BATCH = 2048  # rows converted to Python at a time: bounds memory whatever the row group size
PARQUET_MAGIC = b"PAR1"

CLASSES = {3001: "Account Change", 3002: "Authentication", 3005: "API Activity", 6003: "API Activity"}
COLUMNS = ("class_uid", "metadata", "time", "time_dt", "api", "actor", "src_endpoint", "cloud", "http_request",
           "unmapped", "resources", "dst_endpoint", "is_mfa", "mfa")
_REQUIRED = ("class_uid", "api", "time")

# unmapped values AWS writes as text that CloudTrail has as booleans
_BOOLEAN_KEYS = frozenset({"readOnly", "managementEvent", "sessionCredentialFromConsole"})
# userIdentity types whose actor.idp.name is userIdentity.identityProvider (sessions carry it in sessionContext)
_FEDERATED_USERS = frozenset({"WebIdentityUser", "SAMLUser"})
_PARTITION = re.compile(r"(?:^|/)region=([^/]+)/accountId=([^/]+)/")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LakeRowError(ValueError):
    """A row that is not a CloudTrail record; the message is the quarantine reason."""


def partition_of(path: str) -> tuple[str | None, str | None]:
    """(region, account) named by a Security Lake key or folder path (`region=.../accountId=.../`)."""
    match = _PARTITION.search(path)
    return (match[1], match[2]) if match else (None, None)


def source_version(row: dict) -> int:
    """1 for OCSF 1.0.0-rc.2 (Security Lake's source version 1), 2 for OCSF 1.1.0 and later."""
    version = _obj(row.get("metadata")).get("version")
    if isinstance(version, str) and version:
        return 1 if version.startswith("1.0.0") else 2
    user = _obj(_obj(row.get("actor")).get("user"))
    return 1 if user.get("uuid") is not None or user.get("account_uid") is not None else 2


def cloudtrail_record(row: dict) -> dict:
    """The CloudTrail record an OCSF row of Security Lake's CloudTrail came from, or LakeRowError."""
    class_uid = row.get("class_uid")
    if class_uid not in CLASSES:
        raise LakeRowError(f"OCSF class_uid {class_uid!r} is not one Security Lake uses for CloudTrail "
                           f"({', '.join(f'{k} {v}' for k, v in CLASSES.items())})")
    api = _obj(row.get("api"))
    source = _text(_obj(api.get("service")).get("name"))
    operation = _text(api.get("operation"))
    if source is None or operation is None:
        raise LakeRowError("no api.service.name or api.operation: not a CloudTrail call")
    version = source_version(row)
    record: dict = {}
    for key, value in _unmapped(row.get("unmapped")).items():  # first: mapped fields below take precedence
        _put(record, key, _decode(key, value))
    _put_mapped(record, row, api, version)
    record["eventSource"], record["eventName"] = source, operation
    record["eventTime"] = _event_time(row)
    identity = _user_identity(_obj(row.get("actor")), _obj(record.get("userIdentity")), version)
    if identity:
        record["userIdentity"] = identity
    else:
        record.pop("userIdentity", None)
    resources = _resources(row.get("resources"))
    if resources:
        record["resources"] = resources
    if class_uid == 3002:
        _sign_in_details(record, row, version)
    return record


def _put_mapped(record: dict, row: dict, api: dict, version: int) -> None:
    metadata = _obj(row.get("metadata"))
    product = _obj(metadata.get("product"))
    request, response = _obj(api.get("request")), _obj(api.get("response"))
    endpoint = _obj(row.get("src_endpoint"))
    mapped = {
        "eventVersion": product.get("version"),
        "eventID": metadata.get("uid"),
        "eventType": metadata.get("event_code"),
        "eventCategory": _obj(product.get("feature")).get("name"),
        "awsRegion": _obj(row.get("cloud")).get("region"),
        "sourceIPAddress": _text(endpoint.get("ip")) or _text(endpoint.get("domain")),
        "vpcEndpointId": endpoint.get("uid"),
        "userAgent": _obj(row.get("http_request")).get("user_agent"),
        "requestID": request.get("uid"),
        "apiVersion": api.get("version"),
        "errorCode": response.get("error"),
        "errorMessage": response.get("message"),
    }
    if version >= 2:  # version 1 keeps both in unmapped, read above
        mapped["requestParameters"] = _json_value(request.get("data"))
        mapped["responseElements"] = _json_value(response.get("data"))
    for key, value in mapped.items():
        if value is not None:
            record[key] = value


def _user_identity(actor: dict, identity: dict, version: int) -> dict:
    """userIdentity from actor, over what `unmapped` kept of it (the session issuer's type, name, ...)."""
    user, session, idp = _obj(actor.get("user")), _obj(actor.get("session")), _obj(actor.get("idp"))
    kind = _text(user.get("type"))
    if version == 1:
        arn, principal, account = user.get("uuid"), user.get("uid"), user.get("account_uid")
        created = session.get("created_time")
        mfa = session.get("mfa")
    else:
        arn, principal, account = user.get("uid"), user.get("uid_alt"), _obj(user.get("account")).get("uid")
        created = session.get("created_time_dt") or session.get("created_time")
        mfa = session.get("is_mfa")
    fields: dict[str, Any] = {"type": kind, "arn": arn, "accountId": account, "userName": user.get("name"),
                              "invokedBy": actor.get("invoked_by")}
    if kind == "IdentityCenterUser":  # AWS's conditional mapping: these stand in for principalId and accessKeyId
        fields["credentialId"] = user.get("credential_uid")
        behalf = {k: v for k, v in (("userId", principal), ("identityStoreArn", idp.get("uid"))) if v is not None}
        if behalf:
            fields["onBehalfOf"] = {**_obj(identity.get("onBehalfOf")), **behalf}
    else:
        fields["principalId"] = principal
        fields["accessKeyId"] = user.get("credential_uid")
    identity = dict(identity)
    identity.update((k, v) for k, v in fields.items() if v is not None)
    context = _obj(identity.get("sessionContext"))
    attributes = dict(_obj(context.get("attributes")))
    if created is not None:
        try:
            attributes["creationDate"] = _iso(created)
        except (OverflowError, ValueError, TypeError) as exc:
            raise LakeRowError(f"actor.session.created_time {created!r} is not a time: {exc}") from None
    if isinstance(mfa, bool):
        attributes["mfaAuthenticated"] = "true" if mfa else "false"
    issuer = _text(session.get("issuer"))
    provider = _text(idp.get("name"))
    if provider and kind in _FEDERATED_USERS:
        identity["identityProvider"] = provider
    elif provider:
        context = {**context, "webIdFederationData": {**_obj(context.get("webIdFederationData")),
                                                      "federatedProvider": provider}}
    if attributes:
        context = {**context, "attributes": attributes}
    if issuer:
        context = {**context, "sessionIssuer": {**_obj(context.get("sessionIssuer")), "arn": issuer}}
    if context:
        identity["sessionContext"] = context
    return identity


def _resources(value: object) -> list[dict]:
    found = []
    for item in value if isinstance(value, list) else []:
        resource = _obj(item)
        entry = {"ARN": resource.get("uid"), "accountId": _obj(_obj(resource.get("owner")).get("account")).get("uid"),
                 "type": resource.get("type")}
        entry = {k: v for k, v in entry.items() if v is not None}
        if entry:
            found.append(entry)
    return found


def _sign_in_details(record: dict, row: dict, version: int) -> None:
    """Authentication records map two of additionalEventData's fields out of it: put them back."""
    extra = dict(_obj(record.get("additionalEventData")))
    login_to = _obj(row.get("dst_endpoint")).get("svc_name")
    mfa = row.get("mfa") if version == 1 else row.get("is_mfa")
    if login_to is not None:
        extra["LoginTo"] = login_to
    if isinstance(mfa, bool):
        extra["MFAUsed"] = "Yes" if mfa else "No"
    if extra:
        record["additionalEventData"] = extra


def _event_time(row: dict) -> str:
    value = row.get("time")
    if value is None:
        value = row.get("time_dt")
    if value is None:
        raise LakeRowError("no time: the event's time is missing")
    try:
        return _iso(value)
    except (OverflowError, ValueError, TypeError) as exc:
        raise LakeRowError(f"time {value!r} is not a time: {exc}") from None


_SECONDS: dict[int, str] = {}  # events share seconds: their text is made once


def _iso(value: object) -> str:
    """An OCSF time (epoch milliseconds, or a datetime) in CloudTrail's form, milliseconds only when there are some."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        value = int((moment - _EPOCH) / timedelta(milliseconds=1))
    elif not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"a {type(value).__name__}")
    seconds, millis = divmod(int(value), 1000)
    text = _SECONDS.get(seconds)
    if text is None:
        text = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
        if len(_SECONDS) >= 100_000:
            _SECONDS.clear()
        _SECONDS[seconds] = text
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def _unmapped(value: object) -> dict[str, object]:
    """`unmapped` as a dict, whatever Parquet made of it: a map (key/value pairs), a struct or JSON text."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(k): v for k, v in (pair for pair in value if isinstance(pair, (tuple, list)) and len(pair) == 2)}
    if isinstance(value, str) and value.startswith("{"):
        parsed = _json_value(value)
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _decode(key: str, value: object) -> object:
    """An unmapped value as CloudTrail had it, as far as text can tell: booleans, and JSON objects and
    arrays (which AWS keeps whole as text); everything else stays text."""
    if not isinstance(value, str):
        return value
    if key.rsplit(".", 1)[-1] in _BOOLEAN_KEYS and value in ("true", "false"):
        return value == "true"
    if value[:1] in ("{", "["):
        return _json_value(value)
    return value


def _json_value(value: object) -> object:
    """JSON text parsed; text that is not JSON is kept as it is (the event stays, its field as written)."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _put(record: dict, dotted: str, value: object) -> None:
    """Set a dotted CloudTrail path (`additionalEventData.x`), making the objects on the way."""
    parts = dotted.split(".")
    target = record
    for i, part in enumerate(parts[:-1]):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        elif not isinstance(child, dict):  # the path runs into a value: keep the rest of the key as it is
            target[".".join(parts[i:])] = value
            return
        target = child
    if isinstance(target.get(parts[-1]), dict) and isinstance(value, dict):
        target[parts[-1]] = {**value, **target[parts[-1]]}
    else:
        target[parts[-1]] = value


def _obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def batches(parquet: Any, columns: list[str]) -> Iterator[list[dict]]:
    """The rows of an open pyarrow ParquetFile, ROWS_PER_BATCH at a time."""
    for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=columns):
        yield batch.to_pylist()


def lake_columns(names: list[str]) -> tuple[list[str], list[str]]:
    """(the columns to read, the required columns missing) for a Parquet file's top-level column names."""
    present = set(names)
    return [c for c in COLUMNS if c in present], [c for c in _REQUIRED if c not in present]

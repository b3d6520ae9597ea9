"""One CloudTrail record (a dict) -> one row of the normalized event model.

This is the ingest hot path: plain dict lookups, small caches for values that repeat
(addresses, regions), and columns accumulated as lists and turned into Arrow once per batch.
"""

from __future__ import annotations

import hashlib
import json
import ipaddress
import re
from typing import NamedTuple

import orjson
import pyarrow as pa

from nhiwatch.core.event import EVENT_COLUMNS, EVENT_SCHEMA
from nhiwatch.ingest.identity import as_text, resolve
from nhiwatch.ingest.resources import extract_resources
from nhiwatch.ingest.timestamps import BadTimestamp, parse_event_time

_REGION = re.compile(
    r"^[a-z]{2}(-gov|-iso[a-z]?)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}$")
_SERVICE_HOST = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com(\.cn)?$")

# Credentials handed out by these calls, found at responseElements.credentials.accessKeyId.
_STS_FEDERATION = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}
_DAY_MICROS = 86_400_000_000


class BadRecord(ValueError):
    """The record cannot become an event; the message is the quarantine reason."""


class RecordContext(NamedTuple):
    source_file: str
    locator: str
    account: str | None = None  # from the S3 key or an EventBridge envelope
    region: str | None = None
    quality: tuple[str, ...] = ()  # flags the reader adds (repaired_values)


def classify_source_ip(value: str | None, cache: dict[str, str] = {}) -> str:  # noqa: B006 - shared cache on purpose
    if not value:
        return "missing"
    kind = cache.get(value)
    if kind is None:
        if value == "AWS Internal":
            kind = "aws_internal"
        elif _SERVICE_HOST.match(value):
            kind = "aws_service"
        else:
            try:
                kind = "ipv6" if ipaddress.ip_address(value).version == 6 else "ipv4"
            except ValueError:
                kind = "invalid"
        if len(cache) < 200_000:
            cache[value] = kind
    return kind


def valid_region(value: str, cache: dict[str, bool] = {}) -> bool:  # noqa: B006
    ok = cache.get(value)
    if ok is None:
        ok = bool(_REGION.match(value))
        if len(cache) < 10_000:
            cache[value] = ok
    return ok


def _json_text(value: object, sort_keys: bool = False) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
    except TypeError:  # integers beyond 64 bits, read by the json fallback parser
        return json.dumps(value, sort_keys=sort_keys)


def _bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        if low in ("true", "false"):
            return low == "true"
    return None


def _api(source: str, name: str) -> tuple[str, str]:
    service = source.split(".", 1)[0] if source.endswith(".amazonaws.com") else source
    return service, f"{service}:{name}"


def content_id(record: dict) -> str:
    try:
        canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.blake2b(canonical, digest_size=16).hexdigest()
    return f"nhiwatch:{digest}"


class EventBatch:
    """Accumulates normalized rows column by column."""

    def __init__(self, now_micros: int) -> None:
        self.now_micros = now_micros
        self.columns: dict[str, list] = {name: [] for name in EVENT_COLUMNS}
        self._append = [self.columns[name].append for name in EVENT_COLUMNS]
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def add(self, record: dict, ctx: RecordContext) -> None:
        """Normalize one record and append it, or raise BadRecord with the reason."""
        quality: list[str] = []
        get = record.get
        event_type = as_text(get("eventType"))
        source = get("eventSource")
        name = get("eventName")
        insight = get("insightDetails")
        if isinstance(insight, dict) and (source is None or name is None):
            # Insight events name the API they are about inside insightDetails.
            source = source if source is not None else insight.get("eventSource")
            name = name if name is not None else insight.get("eventName")
        if not isinstance(source, str) or not source:
            raise BadRecord("eventSource is missing or not a string")
        if not isinstance(name, str) or not name:
            raise BadRecord("eventName is missing or not a string")
        try:
            micros, canonical = parse_event_time(get("eventTime"))
        except BadTimestamp as exc:
            raise BadRecord(str(exc)) from None
        if not canonical:
            quality.append("time_not_utc_z")
        if micros > self.now_micros + _DAY_MICROS:
            quality.append("time_in_future")
        if ctx.quality:
            quality.extend(ctx.quality)

        user_identity = get("userIdentity")
        if user_identity is None:
            quality.append("no_user_identity")
        elif not isinstance(user_identity, dict):
            raise BadRecord(f"userIdentity is a {type(user_identity).__name__}, not an object")
        ident = resolve(user_identity, source, event_type)

        account = as_text(get("recipientAccountId")) or ident.principal_account
        if account is None and ctx.account:
            account = ctx.account
            quality.append("account_from_path")
        region = as_text(get("awsRegion")) or ctx.region
        if region is not None and not valid_region(region):
            quality.append("invalid_region")
        source_ip = as_text(get("sourceIPAddress"))
        ip_kind = classify_source_ip(source_ip)
        if ip_kind == "invalid":
            quality.append("invalid_source_ip")

        event_id = as_text(get("eventID"))
        if event_id is None:
            event_id = content_id(record)
            quality.append("synthetic_event_id")

        service, api = _api(source, name)
        if event_type == "AwsCloudTrailInsight":
            api = f"insight:{api}"
        request = get("requestParameters")
        response = get("responseElements")
        assumed_role = assumed_session = issued_key = subject = audience = provider = None
        if isinstance(response, dict):
            creds = response.get("credentials")
            if isinstance(creds, dict):
                issued_key = as_text(creds.get("accessKeyId"))
            elif name == "CreateAccessKey":
                key = response.get("accessKey")
                issued_key = as_text(key.get("accessKeyId")) if isinstance(key, dict) else None
            if name in _STS_FEDERATION:
                subject = as_text(response.get("subjectFromWebIdentityToken")) or as_text(response.get("subject"))
                audience = as_text(response.get("audience"))
                provider = as_text(response.get("provider")) or as_text(response.get("issuer"))
        if service == "sts" and isinstance(request, dict):
            assumed_role = as_text(request.get("roleArn"))
            assumed_session = as_text(request.get("roleSessionName")) or as_text(request.get("name"))

        session_created = None
        if ident.session_created:
            try:
                session_created = parse_event_time(ident.session_created)[0]
            except BadTimestamp:
                session_created = None

        # Everything that can fail is computed before the first append keeps columns aligned.
        resources = extract_resources(service, request, get("resources"))
        texts = (_json_text(request), _json_text(response), _json_text(get("additionalEventData")),
                 _json_text(get("serviceEventDetails")), _json_text(insight))
        # The same event delivered twice (S3 and EventBridge, a re-sent file) has the same id, time and
        # caller. Replayed or fabricated data reuses ids for other callers and times: those stay apart.
        uid = hashlib.blake2b(
            f"{account or ''}\x1f{event_id}\x1f{micros}\x1f{source}\x1f{name}\x1f{ident.arn or ident.principal}"
            f"\x1f{ident.access_key_id}\x1f{source_ip}\x1f{as_text(get('requestID'))}".encode(),
            digest_size=16).digest()
        a = self._append
        a[0](uid)
        a[1](event_id)
        a[2](micros)
        a[3](source)
        a[4](name)
        a[5](api)
        a[6](event_type)
        a[7](as_text(get("eventCategory")))
        a[8](as_text(get("eventVersion")))
        a[9](region)
        a[10](account)
        a[11](_bool(get("readOnly")))
        a[12](_bool(get("managementEvent")))
        a[13](as_text(get("errorCode")))
        a[14](as_text(get("errorMessage")))
        a[15](source_ip)
        a[16](ip_kind)
        a[17](as_text(get("userAgent")))
        a[18](as_text(get("vpcEndpointId")))
        a[19](as_text(get("requestID")))
        a[20](ident.identity_type)
        a[21](ident.principal)
        a[22](ident.principal_type)
        a[23](ident.principal_account)
        a[24](ident.principal_name)
        a[25](ident.arn)
        a[26](ident.session)
        a[27](ident.access_key_id)
        a[28](ident.invoked_by)
        a[29](ident.mfa_authenticated)
        a[30](session_created)
        a[31](ident.source_identity)
        a[32](ident.web_identity_provider)
        a[33](assumed_role)
        a[34](assumed_session)
        a[35](issued_key)
        a[36](subject)
        a[37](audience)
        a[38](provider)
        a[39](resources)
        a[40](texts[0])
        a[41](texts[1])
        a[42](texts[2])
        a[43](texts[3])
        a[44](texts[4])
        a[45](quality)
        a[46](ctx.source_file)
        a[47](ctx.locator)
        self.rows += 1

    def to_table(self) -> pa.Table:
        arrays = [pa.array(self.columns[f.name], type=f.type) for f in EVENT_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)

    def reset(self) -> None:
        for values in self.columns.values():
            values.clear()
        self.rows = 0


assert EVENT_COLUMNS[39] == "resources" and EVENT_COLUMNS[47] == "source_locator", "column order changed"

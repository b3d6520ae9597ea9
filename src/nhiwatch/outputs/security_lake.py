"""Findings into Amazon Security Lake as a custom source: OCSF Detection Findings (class 2004) in Parquet.

Security Lake's rules for a custom source (its user guide, "Collecting data from custom sources"): objects
under the source's location, `ext/<source name>/<source version>/`, partitioned as
`region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/`; Apache Parquet holding one OCSF event class;
records ordered by time in each object; zstd compression, data pages of at most 1 MB uncompressed and row
groups of at most 256 MB. (It also asks for objects every 5 minutes to a day, larger when more often:
the outbox sends what detection finds, a few findings at a time, so a busy lake gets more, smaller
objects than it would like.)

Each record goes to the partition of its own region (the region its events name, else the sink's
`region`), account (the identity's, else the sink's `account_id`) and day (when it was first seen).

Delivery is idempotent: the file a batch writes in a partition is named after the first finding of the
batch in that partition. The outbox sends an interrupted batch again first and whole (its findings are
the oldest pending ones, so a resend starts with them, more findings may follow), so the resend
overwrites the same files and no finding is in the lake twice.

The Parquet schema is fixed by OCSF's types, not by what one batch happens to hold: the attributes below
(`OCSF_TYPES`, the Detection Finding's attributes nhiwatch uses) always have their OCSF type, absent ones
null, so every file has the same columns. Attributes OCSF defines as free-form JSON (evidences[].data,
unmapped, api.request.data ...) are JSON text. An attribute not listed (one `to_ocsf` gains later) is
kept as text (JSON text when it is not a string), so no attribute ever changes type between files.
"""

from __future__ import annotations

from collections.abc import Collection

import io
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Union
from urllib.parse import urlparse

import orjson

from nhiwatch.core.registry import Table
from nhiwatch.outputs.ocsf import to_ocsf
from nhiwatch.outputs.sinks import SINKS, Sink, SinkError

# An OCSF type: a scalar name, an object (attribute -> type) or an array ([element type]).
OcsfType = Union[str, dict, list]

_USER = {"uid": "str", "name": "str", "type": "str", "type_id": "int", "uid_alt": "str", "credential_uid": "str",
         "account": {"uid": "str", "name": "str", "type": "str", "type_id": "int"}}
_ACTOR = {"user": _USER, "app_name": "str", "invoked_by": "str", "idp": {"uid": "str", "name": "str"},
          "session": {"uid": "str", "issuer": "str", "created_time": "time", "expiration_time": "time",
                      "is_mfa": "bool", "credential_uid": "str", "uid_alt": "str"}}
_API = {"operation": "str", "version": "str", "service": {"name": "str", "uid": "str"},
        "request": {"uid": "str", "data": "json"},
        "response": {"code": "int", "error": "str", "error_message": "str", "message": "str", "data": "json"}}
_ENDPOINT = {"ip": "str", "domain": "str", "hostname": "str", "uid": "str", "name": "str", "port": "int",
             "svc_name": "str", "type": "str", "type_id": "int", "vpc_uid": "str", "zone": "str",
             "autonomous_system": {"number": "int", "name": "str"}}
_ACCOUNT = {"uid": "str", "name": "str", "type": "str", "type_id": "int"}
_NAMED = {"uid": "str", "name": "str", "src_url": "str"}

# The Detection Finding's attributes nhiwatch writes (or may write), with their OCSF 1.3 types.
OCSF_TYPES: dict[str, OcsfType] = {
    "class_uid": "int", "class_name": "str", "category_uid": "int", "category_name": "str",
    "activity_id": "int", "activity_name": "str", "type_uid": "long", "type_name": "str",
    "severity_id": "int", "severity": "str", "status_id": "int", "status": "str", "status_detail": "str",
    "confidence_id": "int", "confidence": "str", "confidence_score": "int",
    "risk_score": "int", "risk_level_id": "int", "risk_level": "str", "count": "int",
    "time": "time", "start_time": "time", "end_time": "time", "message": "str", "raw_data": "str",
    "metadata": {"version": "str", "uid": "str", "profiles": ["str"], "labels": ["str"], "log_name": "str",
                 "correlation_uid": "str", "event_code": "str",
                 "product": {"name": "str", "vendor_name": "str", "version": "str", "uid": "str"}},
    "finding_info": {
        "uid": "str", "title": "str", "desc": "str", "types": ["str"], "src_url": "str", "product_uid": "str",
        "data_sources": ["str"],
        "first_seen_time": "time", "last_seen_time": "time", "created_time": "time", "modified_time": "time",
        "analytic": {"uid": "str", "name": "str", "type": "str", "type_id": "int", "category": "str", "desc": "str"},
        "attacks": [{"version": "str", "tactic": _NAMED, "technique": _NAMED, "sub_technique": _NAMED,
                     "tactics": [_NAMED]}],
        "related_events": [{"uid": "str", "product_uid": "str", "type": "str", "type_uid": "long",
                            "type_name": "str"}],
        "kill_chain": [{"phase": "str", "phase_id": "int"}]},
    "resources": [{"uid": "str", "name": "str", "type": "str", "region": "str", "cloud_partition": "str",
                   "namespace": "str", "labels": ["str"], "data": "json",
                   "owner": {"uid": "str", "name": "str", "type": "str", "type_id": "int", "account": _ACCOUNT}}],
    "cloud": {"provider": "str", "region": "str", "zone": "str", "account": _ACCOUNT,
              "org": {"uid": "str", "name": "str", "ou_uid": "str", "ou_name": "str"}},
    "actor": _ACTOR,
    "api": _API,
    "observables": [{"name": "str", "type": "str", "type_id": "int", "value": "str"}],
    "evidences": [{"data": "json", "actor": _ACTOR, "api": _API, "src_endpoint": _ENDPOINT,
                   "dst_endpoint": _ENDPOINT}],
    "unmapped": "json",
}

PARQUET_OPTIONS = {"compression": "zstd", "data_page_size": 1 << 20}  # Security Lake's guidance
ROW_GROUP_ROWS = 10_000  # a finding is a few KB: row groups stay far below the 256 MB limit
DEFAULT_SOURCE = "nhiwatch"
DEFAULT_SOURCE_VERSION = "1.0"
_SOURCE_NAME = re.compile(r"^[\w\-:.]{1,64}$")      # CreateCustomLogSource's patterns
_SOURCE_VERSION = re.compile(r"^[A-Za-z0-9\-._]{1,32}$")
_SOURCE_PATH = re.compile(r"(?:^|/)ext/([^/]+)/([^/]+)$")
_PARTITION_VALUE = re.compile(r"^[a-z0-9-]{1,32}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_LAKE_BUCKET = re.compile(r"^aws-security-data-lake-([a-z]{2}(?:-[a-z]+)+-\d)-")
_INT32 = 2 ** 31


class OcsfShapeError(ValueError):
    """A record whose attribute does not have its OCSF type (a bug in the record's maker)."""


# -- the Parquet schema ------------------------------------------------------------------------------

def _text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass
class _Shape:
    """The columns of one batch: OCSF_TYPES, plus the attributes found outside it (text) by path."""

    extras: dict[tuple[str, ...], set[str]] = field(default_factory=dict)

    def conform(self, value: object, kind: OcsfType, path: tuple[str, ...]) -> object:
        """`value` as its OCSF type stores it; attributes outside OCSF_TYPES become text (noted)."""
        if value is None:
            return None
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise OcsfShapeError(f"{'.'.join(path)} is a {type(value).__name__}, OCSF has an object there")
            out = {}
            for key, child in value.items():
                if key in kind:
                    out[key] = self.conform(child, kind[key], (*path, key))
                elif child is not None:
                    self.extras.setdefault(path, set()).add(key)
                    out[key] = _text(child)
            return out
        if isinstance(kind, list):
            if not isinstance(value, list):
                raise OcsfShapeError(f"{'.'.join(path)} is a {type(value).__name__}, OCSF has an array there")
            return [self.conform(item, kind[0], (*path, "[]")) for item in value]
        return _scalar(value, kind, path)

    def arrow_type(self, kind: OcsfType, path: tuple[str, ...]) -> Any:
        import pyarrow as pa

        if isinstance(kind, dict):
            names = list(kind) + sorted(self.extras.get(path, set()) - set(kind))
            return pa.struct([(name, self.arrow_type(kind.get(name, "str"), (*path, name))) for name in names])
        if isinstance(kind, list):
            return pa.list_(self.arrow_type(kind[0], (*path, "[]")))
        return {"str": pa.string(), "json": pa.string(), "int": pa.int32(), "long": pa.int64(),
                "time": pa.int64(), "bool": pa.bool_(), "float": pa.float64()}[kind]


def _scalar(value: object, kind: str, path: tuple[str, ...]) -> object:
    if kind == "json":
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if kind == "str":
        return _text(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind in ("int", "long", "time") and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and float(value).is_integer():
        number = int(value)
        if kind != "int" or -_INT32 <= number < _INT32:
            return number
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise OcsfShapeError(f"{'.'.join(path)} is {value!r}, OCSF has a {kind} there")


def findings_table(records: list[dict]) -> Any:
    """OCSF records as one Arrow table: OCSF_TYPES' columns always, in their types; others as text."""
    import pyarrow as pa

    shape = _Shape()
    rows = [shape.conform(record, OCSF_TYPES, ()) for record in records]
    columns = shape.arrow_type(OCSF_TYPES, ())
    return pa.Table.from_pylist(rows, schema=pa.schema([columns.field(i) for i in range(columns.num_fields)]))


def parquet_bytes(records: list[dict]) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(findings_table(records), buffer, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTIONS)
    return buffer.getvalue()


# -- partitions --------------------------------------------------------------------------------------

def _day(millis: object, finding: dict) -> str:
    if isinstance(millis, int) and not isinstance(millis, bool):
        return datetime.fromtimestamp(millis / 1000, timezone.utc).strftime("%Y%m%d")
    return datetime.fromisoformat(str(finding["first_seen"]).replace("Z", "+00:00")).strftime("%Y%m%d")


def _region_of(record: dict, finding: dict) -> str | None:
    """The region the finding's events name: the OCSF record's cloud.region, or the finding's own `region`."""
    cloud = record.get("cloud")
    region = cloud.get("region") if isinstance(cloud, dict) else None
    region = region or finding.get("region")
    return region if isinstance(region, str) and _PARTITION_VALUE.match(region) else None


@dataclass(frozen=True)
class Target:
    """Where a custom source's objects go: an S3 bucket and key prefix, or a folder; and the source."""

    bucket: str | None
    root: str                    # the key prefix above ext/ (S3), or the folder
    source: str
    version: str

    @property
    def source_path(self) -> str:
        return f"ext/{self.source}/{self.version}"

    @property
    def prefix(self) -> str:
        """The key prefix of the source's objects (S3)."""
        return f"{self.root}/{self.source_path}" if self.root else self.source_path

    @property
    def folder(self) -> Path:
        """The folder of the source's objects (a folder target)."""
        return Path(self.root) / self.source_path

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/" if self.bucket else str(self.folder)


def parse_location(location: str, source: str | None, version: str | None) -> tuple[Target | None, list[str]]:
    """(the target, problems) for a `location` (s3://bucket[/prefix] or a folder) and the source's name and
    version; a location that ends in ext/<name>/<version> (as Security Lake shows a custom source's) names both."""
    problems: list[str] = []
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            return None, [f"an S3 location needs a bucket: s3://BUCKET[/PREFIX], not {location!r}"]
        bucket: str | None = parsed.netloc
        path = parsed.path.strip("/")
    elif parsed.scheme and len(parsed.scheme) > 1:  # (a drive letter is not a scheme)
        return None, [f"an S3 URL (s3://BUCKET/PREFIX) or a folder, not a {parsed.scheme}:// URL"]
    else:
        bucket, path = None, str(Path(location).expanduser()).rstrip("/") or "/"
    named = _SOURCE_PATH.search(path)
    if named:
        for given, found, key in ((source, named[1], "source"), (version, named[2], "source_version")):
            if given is not None and given != found:
                problems.append(f"{key} is {given!r} but the location names {found!r}")
        source, version = named[1], named[2]
        path = path[: named.start()]
        if bucket is None and not path:
            path = "/" if named[0].startswith("/") else "."
    elif re.search(r"(?:^|/)ext/[^/]+$", path):
        problems.append("the location ends in ext/<name>: add the source version as Security Lake shows it "
                        "(ext/<name>/<version>), or give the folder or bucket above ext/")
    source = source or DEFAULT_SOURCE
    version = version or DEFAULT_SOURCE_VERSION
    if not _SOURCE_NAME.match(source):
        problems.append(f"source must be 1 to 64 letters, digits and - _ : . (a custom source's name), not {source!r}")
    if not _SOURCE_VERSION.match(version):
        problems.append(f"source_version must be 1 to 32 letters, digits and - . _, not {version!r}")
    return Target(bucket, path, source, version), problems


# -- the sink ----------------------------------------------------------------------------------------

@SINKS.register
@dataclass
class SecurityLakeSink(Sink):
    """OCSF Detection Findings as Parquet in a Security Lake custom source's layout, in S3 or a folder."""

    location: str = ""
    source: str | None = None
    source_version: str | None = None
    region: str | None = None         # for findings whose events name no region
    account_id: str | None = None     # for findings whose identity names no account
    batch_size: ClassVar[int] = 1000  # fewer, larger objects suit Security Lake
    kind: ClassVar[str] = "securitylake"
    keys: ClassVar[frozenset[str]] = frozenset({"location", "source", "source_version", "region", "account_id"})
    option_key: ClassVar[str | None] = "location"
    _target: Target | None = field(default=None, repr=False)
    _s3: object = field(default=None, repr=False)

    @classmethod
    def options(cls, table: Table) -> dict | None:
        location = table.get("location")
        if not isinstance(location, str) or not location:
            table.problem("location", "required: the custom source's location (s3://BUCKET/ext/NAME/VERSION/ as "
                                      "Security Lake shows it, s3://BUCKET[/PREFIX]) or a folder")
            return None
        texts = {}
        for key in ("source", "source_version", "region", "account_id"):
            value = table.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                table.problem(key, f"must be a non-empty string, not {value!r}")
                value = None
            texts[key] = value
        if texts["region"] is not None and not _PARTITION_VALUE.match(texts["region"]):
            table.problem("region", f"must be a region name such as us-east-1, not {texts['region']!r}")
        if texts["account_id"] is not None and not _ACCOUNT_ID.match(texts["account_id"]):
            table.problem("account_id", f"must be a 12-digit account id, not {texts['account_id']!r}")
        target, problems = parse_location(location, texts["source"], texts["source_version"])
        for problem in problems:
            table.problem("location", problem)
        if target is None or problems:
            return None
        if texts["region"] is None and target.bucket is not None:
            named = _LAKE_BUCKET.match(target.bucket)  # Security Lake's buckets name their region
            texts["region"] = named[1] if named else None
        return {"location": location, **texts}

    @property
    def target(self) -> Target:
        if self._target is None:
            target, problems = parse_location(self.location, self.source, self.source_version)
            if target is None or problems:
                raise SinkError(f"Security Lake sink: {'; '.join(problems)}", permanent=True)
            self._target = target
        return self._target

    def open(self) -> None:
        target = self.target
        if target.bucket is None:
            folder = target.folder
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".nhiwatch-probe-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise SinkError(f"cannot write {folder}: {exc.strerror or exc}", permanent=True) from None
            return
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            session = boto3.session.Session(region_name=self.region)
            self._s3 = session.client("s3")
            if self.region is None:
                self.region = session.region_name
            if self.account_id is None:
                self.account_id = session.client("sts").get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as exc:
            raise SinkError(f"Security Lake sink: cannot reach AWS: {exc}", permanent=True) from None

    def reach(self, accounts: Collection[str] = ()) -> list[dict]:
        """`config check --connect`: the folder is writable, or the bucket answers (nothing is written).
        One bucket takes every account's findings, so there is no per-account report."""
        self.open()
        if self.target.bucket is None:
            return []
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3.head_bucket(Bucket=self.target.bucket)  # type: ignore[attr-defined]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise SinkError(f"s3://{self.target.bucket}: {error.get('Code', '')} {error.get('Message', '')}".strip()
                            ) from None
        except BotoCoreError as exc:
            raise SinkError(f"s3://{self.target.bucket}: {exc}") from None
        return []

    def partition(self, record: dict, finding: dict) -> str:
        """region=.../accountId=.../eventDay=... of one record."""
        region = _region_of(record, finding) or self.region or "us-east-1"
        account = (finding.get("identity") or {}).get("account_id")
        account = account if isinstance(account, str) and _ACCOUNT_ID.match(account) else self.account_id or "unknown"
        return f"region={region}/accountId={account}/eventDay={_day(record.get('time'), finding)}"

    def objects(self, findings: list[dict]) -> dict[str, bytes]:
        """The batch as objects: key (below the source's prefix) -> Parquet bytes."""
        groups: dict[str, list[tuple[int, str, dict]]] = {}
        for finding in findings:
            record = to_ocsf(finding)
            groups.setdefault(self.partition(record, finding), []).append(
                (record.get("time") or 0, finding["id"], record))
        objects = {}
        for partition, members in groups.items():
            first = members[0][1]  # the batch's first finding here names the file (see the module's note)
            members.sort(key=lambda member: (member[0], member[1]))  # Security Lake: ordered by time
            try:
                body = parquet_bytes([record for _, _, record in members])
            except OcsfShapeError as exc:
                raise SinkError(f"Security Lake sink: a finding does not fit OCSF: {exc}", permanent=True) from None
            objects[f"{partition}/{first}.parquet"] = body
        return objects

    def send(self, findings: list[dict], redelivery: bool) -> None:
        objects = self.objects(findings)
        target = self.target
        if target.bucket is None:
            for key, body in objects.items():
                self._write_file(target.folder / key, body)
            return
        from botocore.exceptions import BotoCoreError, ClientError

        if self._s3 is None:
            self.open()
        for key, body in objects.items():
            try:
                self._s3.put_object(Bucket=target.bucket, Key=f"{target.prefix}/{key}", Body=body)  # type: ignore[attr-defined]
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                permanent = code in ("AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "AllAccessDisabled")
                raise SinkError(f"s3://{target.bucket}/{target.prefix}/{key}: {code}: "
                                f"{exc.response.get('Error', {}).get('Message', exc)}", permanent) from None
            except BotoCoreError as exc:
                raise SinkError(f"s3://{target.bucket}: unreachable: {exc}") from None

    @staticmethod
    def _write_file(path: Path, body: bytes) -> None:
        """Whole or not at all: written beside, synced, then renamed over any earlier copy (a resend)."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # hidden: readers skip it
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from None

    def describe(self) -> str:
        return f"{self.kind} {self.target.describe()}"

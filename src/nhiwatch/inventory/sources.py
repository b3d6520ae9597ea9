"""Reading IAM exports: `get-account-authorization-details` JSON (one page or many, policy
documents URL-encoded or decoded) and the credential report (CSV, or the JSON of
`aws iam get-credential-report` with its Content base64 or plain).

The kind of file is told from its content. Damage is reported with its place (file, list and
index, line and column) and the readable rest is kept: a truncated export still gives every
identity before the cut, and a policy document that is not JSON leaves its identity in place.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from nhiwatch.inventory.policy import PolicyError, load_document

AUTHZ_LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
AUTHZ_TOP_LEVEL = set(AUTHZ_LISTS) | {"IsTruncated", "Marker", "ResponseMetadata", "NextToken"}
KNOWN_FIELDS = {
    "UserDetailList": {"Path", "UserName", "UserId", "Arn", "CreateDate", "UserPolicyList", "GroupList",
                       "AttachedManagedPolicies", "PermissionsBoundary", "Tags"},
    "GroupDetailList": {"Path", "GroupName", "GroupId", "Arn", "CreateDate", "GroupPolicyList",
                        "AttachedManagedPolicies"},
    "RoleDetailList": {"Path", "RoleName", "RoleId", "Arn", "CreateDate", "AssumeRolePolicyDocument",
                       "InstanceProfileList", "RolePolicyList", "AttachedManagedPolicies", "PermissionsBoundary",
                       "Tags", "RoleLastUsed", "MaxSessionDuration", "Description"},
    "Policies": {"PolicyName", "PolicyId", "Arn", "Path", "DefaultVersionId", "AttachmentCount",
                 "PermissionsBoundaryUsageCount", "IsAttachable", "CreateDate", "UpdateDate", "PolicyVersionList",
                 "Description", "Tags"},
}
NAME_FIELD = {"UserDetailList": "UserName", "GroupDetailList": "GroupName", "RoleDetailList": "RoleName",
              "Policies": "PolicyName"}
INLINE_LIST = {"UserDetailList": "UserPolicyList", "GroupDetailList": "GroupPolicyList",
               "RoleDetailList": "RolePolicyList"}
REPORT_REQUIRED = ("user", "arn")
_ACCOUNT = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}|aws):")


ORGANIZATION = "organization"            # SCPs and RCPs: one per store, under this account key too
RESOURCE_POLICIES = "resource-policies"   # per owning account: ARN -> policy


class SourceError(ValueError):
    """A file that is not an IAM export at all."""


@dataclass
class SourceFile:
    path: str
    kind: str  # authorization-details | credential-report | organization | resource-policies
    # account id -> payload (authorization details dict, or the credential report rows)
    accounts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    entries: int = 0


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _salvage_authz(text: str, problems: list[str], where: str) -> dict:
    """Read what can be read from a damaged export: each top-level list element by element,
    stopping a list at its first unreadable element and resuming at the next known list."""
    decoder = json.JSONDecoder()
    result: dict[str, list] = {}
    key_pattern = re.compile(r'"(%s)"\s*:\s*\[' % "|".join(AUTHZ_LISTS))
    position = 0
    while True:
        match = key_pattern.search(text, position)
        if not match:
            break
        name, position = match.group(1), match.end()
        items = result.setdefault(name, [])
        while True:
            while position < len(text) and text[position] in " \t\r\n,":
                position += 1
            if position >= len(text):
                problems.append(f"{where}: {name} is cut off after {len(items)} entries (file ends at "
                                f"{_position(text, len(text))})")
                break
            if text[position] == "]":
                position += 1
                break
            try:
                item, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                cut = exc.pos >= len(text.rstrip()) - 1
                problems.append(f"{where}: {name}[{len(items)}] is {'cut off' if cut else 'not valid JSON'} "
                                f"({exc.msg} at {_position(text, exc.pos)}); the rest of {name} is skipped")
                position = exc.pos
                break
            items.append(item)
            position = end
    return result


def _document(value: Any, problems: list[str], place: str) -> dict | None:
    try:
        return load_document(value)
    except PolicyError as exc:
        problems.append(f"{place}: {exc}; this policy is left out")
        return None


# Fields the inventory reads as an object, or as a list of objects: an export (hand-edited, or from
# another tool) that has something else there loses that field with a problem, not the whole run.
_OBJECT_FIELDS = ("PermissionsBoundary", "RoleLastUsed")
_OBJECT_LIST_FIELDS = ("InstanceProfileList", "AttachedManagedPolicies", "Tags", "GroupList")


def _keep_shapes(entry: dict, problems: list[str], place: str) -> None:
    for key in _OBJECT_FIELDS:
        if key in entry and entry[key] is not None and not isinstance(entry[key], dict):
            problems.append(f"{place}: {key} is a {type(entry[key]).__name__}, not an object; ignored")
            del entry[key]
    for key in _OBJECT_LIST_FIELDS:
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            problems.append(f"{place}: {key} is a {type(value).__name__}, not a list; ignored")
            del entry[key]
            continue
        # GroupList holds group names (strings); the others hold objects
        wanted = str if key == "GroupList" else dict
        kept = [item for item in value if isinstance(item, wanted)]
        if len(kept) != len(value):
            problems.append(f"{place}: {len(value) - len(kept)} entries of {key} are not "
                            f"{'names' if wanted is str else 'objects'}; left out")
            entry[key] = kept


def _clean_entry(list_name: str, index: int, entry: Any, problems: list[str], where: str,
                 unknown: dict[tuple[str, str], list[int]]) -> dict | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: {list_name}[{index}] is a {type(entry).__name__}, not an object; skipped")
        return None
    name = entry.get(NAME_FIELD[list_name])
    arn = entry.get("Arn")
    place = f"{where}: {list_name}[{index}] ({name or arn or 'unnamed'})"
    if not isinstance(arn, str) or not _ACCOUNT.match(arn):
        problems.append(f"{place}: no valid Arn; skipped")
        return None
    for key in entry:
        if key not in KNOWN_FIELDS[list_name]:
            unknown.setdefault((list_name, key), []).append(index)
    entry = dict(entry)
    _keep_shapes(entry, problems, place)
    if list_name in INLINE_LIST:
        kept = []
        for j, policy in enumerate(entry.get(INLINE_LIST[list_name]) or []):
            if not isinstance(policy, dict):
                problems.append(f"{place}: {INLINE_LIST[list_name]}[{j}] is not an object; left out")
                continue
            doc = _document(policy.get("PolicyDocument"), problems,
                            f"{place}: inline policy {policy.get('PolicyName', j)!r}")
            if doc is not None:
                kept.append({"PolicyName": policy.get("PolicyName", f"inline-{j}"), "PolicyDocument": doc})
            else:
                kept.append({"PolicyName": policy.get("PolicyName", f"inline-{j}"), "PolicyDocument": None})
        entry[INLINE_LIST[list_name]] = kept
    if list_name == "RoleDetailList" and entry.get("AssumeRolePolicyDocument") is not None:
        entry["AssumeRolePolicyDocument"] = _document(entry["AssumeRolePolicyDocument"], problems,
                                                      f"{place}: trust policy")
    if list_name == "Policies":
        versions = []
        for j, version in enumerate(entry.get("PolicyVersionList") or []):
            if not isinstance(version, dict):
                continue
            version = dict(version)
            version["Document"] = _document(version.get("Document"), problems,
                                            f"{place}: version {version.get('VersionId', j)}")
            versions.append(version)
        entry["PolicyVersionList"] = versions
    return entry


def read_authorization_details(path: str, text: str) -> SourceFile:
    source = SourceFile(path, "authorization-details")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        document = _salvage_authz(text, source.problems, path)
        if not any(document.values()):
            raise SourceError(f"{path}: not readable as authorization details ({source.problems[-1] if source.problems else 'no lists found'})")
    if not isinstance(document, dict):
        raise SourceError(f"{path}: authorization details must be a JSON object")
    for key in document:
        if key not in AUTHZ_TOP_LEVEL:
            source.problems.append(f"{path}: unknown top-level field {key!r} ignored")
    unknown: dict[tuple[str, str], list[int]] = {}
    for list_name in AUTHZ_LISTS:
        items = document.get(list_name) or []
        if not isinstance(items, list):
            source.problems.append(f"{path}: {list_name} is not a list; skipped")
            continue
        for index, raw in enumerate(items):
            entry = _clean_entry(list_name, index, raw, source.problems, path, unknown)
            if entry is None:
                continue
            account = _ACCOUNT.match(entry["Arn"]).group(1)
            source.entries += 1
            if account == "aws":
                # AWS managed policies belong to no account; every account of the file can use them.
                source.accounts.setdefault("aws", {n: [] for n in AUTHZ_LISTS})["Policies"].append(entry)
                continue
            source.accounts.setdefault(account, {n: [] for n in AUTHZ_LISTS})[list_name].append(entry)
    for (list_name, key), indexes in sorted(unknown.items()):
        more = f" and {len(indexes) - 1} more" if len(indexes) > 1 else ""
        source.problems.append(f"{path}: unknown field {key!r} in {list_name}[{indexes[0]}]{more} ignored")
    return source


def _report_text(content: Any) -> str:
    if isinstance(content, bytes):
        return content.decode("utf-8")
    text = str(content)
    if text.lstrip().startswith("user,"):
        return text
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise SourceError("credential report Content is neither CSV nor base64 CSV") from None


def read_credential_report(path: str, text: str) -> SourceFile:
    source = SourceFile(path, "credential-report")
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in REPORT_REQUIRED if c not in header]
    if missing:
        raise SourceError(f"{path}: credential report header lacks {', '.join(missing)} (line 1)")
    for line_number, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            source.problems.append(f"{path}: line {line_number} has {len(row.get(None) or [])} extra or "
                                   f"missing cells; skipped")
            continue
        match = _ACCOUNT.match(row["arn"] or "")
        if not match:
            source.problems.append(f"{path}: line {line_number}: arn {row['arn']!r} is not an IAM ARN; skipped")
            continue
        source.entries += 1
        source.accounts.setdefault(match.group(1), []).append(row)
    return source


def read_source(path: str | Path) -> SourceFile:
    """One IAM export file, its kind told from the content."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise SourceError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    head = text.lstrip()[:4096]
    if head.startswith("user,") or head.startswith('"user",'):
        return read_credential_report(path, text)
    if head.startswith("{") and _GUARD_KEYS.search(head):
        source = read_policy_feed(path, text)
        if source is not None:
            return source
    if head.startswith("{"):
        if re.search(r'"(%s)"\s*:' % "|".join(AUTHZ_LISTS), head) or not re.search(r'"Content"\s*:', head):
            if re.search(r'"(%s)"' % "|".join(AUTHZ_LISTS), text):
                return read_authorization_details(path, text)
        try:
            wrapper = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(wrapper, dict) and "Content" in wrapper:
            return read_credential_report(path, _report_text(wrapper["Content"]))
    raise SourceError(f"{path}: neither authorization details (UserDetailList, RoleDetailList...), a "
                      f"credential report (CSV starting with user,arn), an organization file (Organization, "
                      f"Policies, Targets, Accounts) nor resource policies (ResourcePolicies)")


_GUARD_KEYS = re.compile(r'"(Organization|ResourcePolicies)"\s*:')


def read_policy_feed(path: str, text: str) -> SourceFile | None:
    """An organization file (SCPs and RCPs) or a resource-policies file; None when the text is neither
    (an IAM export that happens to hold those words)."""
    from nhiwatch.inventory.organization import OrganizationError, looks_like_organization, read_organization
    from nhiwatch.inventory.resource_policies import looks_like_resource_policies, read_resource_policies

    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{path}: not valid JSON ({exc})") from None
    if looks_like_organization(document):
        source = SourceFile(path, ORGANIZATION)
        try:
            source.accounts[ORGANIZATION] = read_organization(document, path, source.problems)
        except OrganizationError as exc:
            raise SourceError(str(exc)) from None
        source.entries = len(source.accounts[ORGANIZATION]["Policies"])
        return source
    if looks_like_resource_policies(document):
        source = SourceFile(path, RESOURCE_POLICIES)
        source.accounts = read_resource_policies(document, path, source.problems)
        source.entries = sum(len(v) for v in source.accounts.values())
        if not source.entries and not source.problems:
            source.problems.append(f"{path}: ResourcePolicies is empty")
        return source
    return None


def merge_authz(pages: list[dict]) -> dict:
    """Several pages or files of one account as one export; a later entry with the same ARN wins."""
    merged: dict[str, dict[str, dict]] = {name: {} for name in AUTHZ_LISTS}
    for page in pages:
        for name in AUTHZ_LISTS:
            for entry in page.get(name, []):
                merged[name][entry["Arn"]] = entry
    return {name: list(entries.values()) for name, entries in merged.items()}

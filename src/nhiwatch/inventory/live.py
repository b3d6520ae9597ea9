"""Live IAM inventory: reads authorization details and the credential report straight from AWS."""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Adaptive mode rate-limits the client itself once AWS starts throttling, which matters when one
# process walks many accounts; IAM's read APIs throttle at a few requests per second.
AWS_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8})

DETAIL_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
DETAIL_FILTER = ["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"]

REPORT_POLL_FIRST = 0.5
REPORT_POLL_MAX = 4.0

_ACCOUNT_ID = re.compile(r"[0-9]{12}")


@dataclass
class LiveAccount:
    account_id: str
    authorization_details: dict
    credential_report: str
    problems: list[str] = field(default_factory=list)


def problem(api: str, error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code", "Unknown")
        message = details.get("Message", "")
        return f"{api} failed with {code}: {message}" if message else f"{api} failed with {code}"
    return f"{api} failed: {type(error).__name__}: {error}"


def plain(value: Any) -> Any:
    """Datetimes as ISO-8601 UTC text, so the result is JSON as `aws iam ...` prints it."""
    if isinstance(value, datetime):
        # Always UTC text ("+00:00"), whatever the machine's zone: botocore may hand back tzlocal().
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _is_aws_managed(policy_arn: str) -> bool:
    # arn:<partition>:iam::aws:policy/... - the account field is "aws" in every partition.
    parts = policy_arn.split(":", 5)
    return len(parts) == 6 and parts[4] == "aws"


def _referenced_policies(details: dict) -> set[str]:
    referenced: set[str] = set()
    for key in ("UserDetailList", "GroupDetailList", "RoleDetailList"):
        for entity in details[key]:
            referenced.update(p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", []))
            boundary = entity.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
            if boundary:
                referenced.add(boundary)
    return referenced


def _drop_unused_aws_policies(details: dict) -> None:
    # An account sees every AWS managed policy (over a thousand); only those in use say anything about it.
    referenced = _referenced_policies(details)
    details["Policies"] = [
        policy for policy in details["Policies"]
        if not _is_aws_managed(policy["Arn"])
        or policy.get("AttachmentCount", 0) > 0
        or policy.get("PermissionsBoundaryUsageCount", 0) > 0
        or policy["Arn"] in referenced
    ]


def _authorization_details(iam: Any, problems: list[str]) -> dict:
    details: dict[str, list] = {key: [] for key in DETAIL_KEYS}
    pages = 0
    try:
        for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=DETAIL_FILTER):
            pages += 1
            for key in DETAIL_KEYS:
                details[key].extend(page.get(key, []))
    except (ClientError, BotoCoreError) as error:
        note = f" (kept the {pages} page(s) read before it; the lists are incomplete)" if pages else ""
        problems.append(problem("iam:GetAccountAuthorizationDetails", error) + note)
    _drop_unused_aws_policies(details)
    return plain(details)


def _credential_report(iam: Any, problems: list[str], wait_seconds: float) -> str:
    deadline = time.monotonic() + wait_seconds
    pause = REPORT_POLL_FIRST
    try:
        while (state := iam.generate_credential_report()["State"]) != "COMPLETE":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problems.append(f"iam:GenerateCredentialReport: report still {state} after {wait_seconds:g}s")
                return ""
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, REPORT_POLL_MAX)
    except (ClientError, BotoCoreError) as error:
        # Still try to read: a principal may be allowed to read a report someone else generated.
        problems.append(problem("iam:GenerateCredentialReport", error))
    try:
        content = iam.get_credential_report()["Content"]
    except (ClientError, BotoCoreError) as error:
        problems.append(problem("iam:GetCredentialReport", error))
        return ""
    return content.decode("utf-8") if isinstance(content, bytes) else content


def fetch_account(session: boto3.Session, *, report_wait_seconds: float = 60.0) -> LiveAccount:
    """Everything the inventory needs from one account; AWS errors become `problems`, not exceptions."""
    problems: list[str] = []
    account_id = ""
    try:
        account_id = session.client("sts", config=AWS_CONFIG).get_caller_identity()["Account"]
    except (ClientError, BotoCoreError) as error:
        problems.append(problem("sts:GetCallerIdentity", error))
    iam = session.client("iam", config=AWS_CONFIG)
    details = _authorization_details(iam, problems)
    report = _credential_report(iam, problems, report_wait_seconds)
    return LiveAccount(account_id=account_id, authorization_details=details,
                       credential_report=report, problems=problems)


def account_sessions(
    *,
    profile: str | None = None,
    role_name: str | None = None,
    account_ids: list[str] | None = None,
    external_id: str | None = None,
    session_name: str = "nhiwatch-inventory",
) -> Iterator[tuple[str, boto3.Session | None, str | None]]:
    """(account id or label, session or None, error or None) for each account to inventory.

    Without role_name: one session from the profile or the default credential chain, labelled with
    the profile name or "default". With role_name: the role is assumed in each listed account.
    A failure is yielded as an error for that account so the caller can carry on with the rest.
    """
    if bool(role_name) != bool(account_ids):
        raise ValueError("role_name and account_ids go together: give both or neither")
    # Validated here, not in the generator, so a bad call fails where it is made.
    return _sessions(profile, role_name, account_ids or [], external_id, session_name)


def _sessions(
    profile: str | None,
    role_name: str | None,
    account_ids: list[str],
    external_id: str | None,
    session_name: str,
) -> Iterator[tuple[str, boto3.Session | None, str | None]]:
    try:
        base = boto3.Session(profile_name=profile)
    except BotoCoreError as error:
        message = f"cannot open AWS profile {profile!r}: {error}"
        for label in account_ids or [profile or "default"]:
            yield label, None, message
        return
    if not role_name:
        yield profile or "default", base, None
        return
    sts = base.client("sts", config=AWS_CONFIG)
    for account_id in account_ids:
        if not _ACCOUNT_ID.fullmatch(account_id):
            yield account_id, None, f"{account_id!r} is not a 12-digit AWS account id"
            continue
        role_arn = f"arn:aws:iam::{account_id}:role/{role_name}"
        request: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name}
        if external_id:
            request["ExternalId"] = external_id
        try:
            # Assumed lazily, as the caller reaches each account, so the 1-hour credentials are fresh.
            credentials = sts.assume_role(**request)["Credentials"]
        except (ClientError, BotoCoreError) as error:
            yield account_id, None, problem(f"sts:AssumeRole {role_arn}", error)
            continue
        yield account_id, boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=base.region_name,
        ), None


def read_account_list(path: str | os.PathLike[str]) -> list[str]:
    """Account ids from a file: one per line or a CSV with the id first; '#' comments and blanks skipped.

    A CSV header (a first row whose first cell is not a number) is skipped; duplicates are dropped.
    """
    accounts: list[str] = []
    seen_row = False
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            cells = next(csv.reader([text]), [""])
            cell = cells[0].strip() if cells else ""
            first_row, seen_row = not seen_row, True
            if first_row and len(cells) > 1 and not cell.isdigit():
                continue
            if not _ACCOUNT_ID.fullmatch(cell):
                raise ValueError(f"{path}: line {number}: {cell!r} is not a 12-digit AWS account id")
            if cell not in accounts:
                accounts.append(cell)
    return accounts

"""Resource-based policies (KMS key policies, secret policies, bucket policies, Lambda function policies,
and any other resource's), read from a file or from the live API, for the capability reachability of
the principal graph: a resource policy can grant what no identity policy does, and deny what one does.

The file:

    {"ResourcePolicies": {
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf": {"Version": "2012-10-17", ...},
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-...": "{...the key policy as JSON text...}",
        "arn:aws:s3:::reports": {"Account": "111122223333", "Policy": {...}}}}

A value is the policy document (an object or JSON text), or {"Policy": ..., "Account": ...} to name the
owner of a resource whose ARN has no account (S3 buckets); a bucket of unknown owner is taken to be in
the requester's account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from nhiwatch.core.arn import account_of
from nhiwatch.inventory.evaluate import Resource, compile_policy
from nhiwatch.inventory.policy import PolicyError, load_document

TOP_LEVEL = "ResourcePolicies"
UNKNOWN_ACCOUNT = "unknown-account"  # the store's key for resources whose owner is not known
_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[^:]*:(\d{12})?:.+$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


def looks_like_resource_policies(document: Any) -> bool:
    return isinstance(document, dict) and TOP_LEVEL in document


def read_resource_policies(document: Any, where: str, problems: list[str]) -> dict[str, dict[str, dict]]:
    """account (or UNKNOWN_ACCOUNT) -> ARN -> {"Policy": document, "Account": id or None}; damage becomes
    `problems` naming the ARN, and the entry is left out."""
    out: dict[str, dict[str, dict]] = {}
    entries = document.get(TOP_LEVEL) if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        problems.append(f"{where}: {TOP_LEVEL} must be an object of ARN -> policy; nothing read")
        return out
    for key in document:
        if key != TOP_LEVEL:
            problems.append(f"{where}: unknown top-level field {key!r} ignored")
    for arn, value in entries.items():
        place = f"{where}: {TOP_LEVEL}[{arn!r}]"
        if not _ARN.match(str(arn)):
            problems.append(f"{place}: not an ARN; left out")
            continue
        account = account_of(arn)
        policy = value
        if isinstance(value, dict) and "Policy" in value and "Statement" not in value:
            policy = value["Policy"]
            given = value.get("Account")
            if given is not None and not (isinstance(given, str) and _ACCOUNT_ID.match(given)):
                problems.append(f"{place}: Account {given!r} is not a 12-digit account id; ignored")
            elif given and account and given != account:
                problems.append(f"{place}: Account {given} differs from the ARN's {account}; the ARN's is used")
            elif given:
                account = given
        try:
            document_ = load_document(policy)
            compile_policy(document_, place, resource_policy=True)
        except PolicyError as exc:
            problems.append(f"{place}: {exc}; left out")
            continue
        out.setdefault(account or UNKNOWN_ACCOUNT, {})[str(arn)] = {"Policy": document_, "Account": account}
    return out


def resources_of(stored: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Resource]:
    """ARN -> Resource with its compiled policy, from what the store keeps (account -> ARN -> entry).
    An entry that no longer compiles is left out (the store holds only entries checked on the way in)."""
    out: dict[str, Resource] = {}
    for entries in stored.values():
        for arn, entry in entries.items():
            try:
                out[arn] = Resource.of(arn, (f"resource policy of {arn}", entry["Policy"]),
                                       account=entry.get("Account"))
            except (PolicyError, KeyError, TypeError):
                continue
    return out


# -- live ------------------------------------------------------------------------------------------------

@dataclass
class _Tally:
    """One API's failures, summed up: a role without GetKeyPolicy fails on every key alike."""
    api: str
    failed: int = 0
    asked: int = 0
    first: str = ""

    def problem(self) -> str | None:
        if not self.failed:
            return None
        return f"{self.first} ({self.failed} of {self.asked} resources; their policies are not applied)"


@dataclass
class LiveResourcePolicies:
    policies: dict[str, dict[str, dict]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    read: int = 0


# Error codes that mean "this resource has no policy", not a failure.
_NO_POLICY = {"NoSuchBucketPolicy", "ResourceNotFoundException", "NotFoundException"}


def fetch_resource_policies(session: Any, account_id: str) -> LiveResourcePolicies:
    """KMS key policies, secret policies, bucket policies and Lambda function policies of the session's
    account (regional services: the session's region). AWS errors become problems, never exceptions."""
    from botocore.exceptions import BotoCoreError, ClientError

    from nhiwatch.inventory.live import AWS_CONFIG, problem

    found = LiveResourcePolicies()

    def keep(arn: str, text: Any, account: str | None) -> None:
        if not text:
            return
        local: list[str] = []
        entries = read_resource_policies({TOP_LEVEL: {arn: {"Policy": text, "Account": account}}}, "live", local)
        found.problems += local
        for owner, by_arn in entries.items():
            found.policies.setdefault(owner, {}).update(by_arn)
            found.read += len(by_arn)

    def listing(api: str, call) -> list:
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            found.problems.append(problem(api, error))
            return []

    def each(api: str, items: list, get) -> None:
        tally = _Tally(api)
        for item in items:
            tally.asked += 1
            try:
                get(item)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _NO_POLICY:
                    continue
                tally.failed += 1
                tally.first = tally.first or problem(api, error)
            except BotoCoreError as error:
                tally.failed += 1
                tally.first = tally.first or problem(api, error)
        failure = tally.problem()
        if failure:
            found.problems.append(failure)

    def client(name: str):
        return session.client(name, config=AWS_CONFIG)

    kms = client("kms")
    keys = listing("kms:ListKeys", lambda: [k for page in kms.get_paginator("list_keys").paginate()
                                            for k in page.get("Keys", [])])
    each("kms:GetKeyPolicy", keys, lambda k: keep(
        k["KeyArn"], kms.get_key_policy(KeyId=k["KeyId"], PolicyName="default").get("Policy"), None))

    secrets = client("secretsmanager")
    listed = listing("secretsmanager:ListSecrets", lambda: [
        s for page in secrets.get_paginator("list_secrets").paginate() for s in page.get("SecretList", [])])
    each("secretsmanager:GetResourcePolicy", listed, lambda s: keep(
        s["ARN"], secrets.get_resource_policy(SecretId=s["ARN"]).get("ResourcePolicy"), None))

    s3 = client("s3")
    buckets = listing("s3:ListBuckets", lambda: s3.list_buckets().get("Buckets", []))
    each("s3:GetBucketPolicy", buckets, lambda b: keep(
        f"arn:aws:s3:::{b['Name']}", s3.get_bucket_policy(Bucket=b["Name"]).get("Policy"), account_id or None))

    functions_client = client("lambda")
    functions = listing("lambda:ListFunctions", lambda: [
        f for page in functions_client.get_paginator("list_functions").paginate() for f in page.get("Functions", [])])
    each("lambda:GetPolicy", functions, lambda f: keep(
        f["FunctionArn"], functions_client.get_policy(FunctionName=f["FunctionArn"]).get("Policy"), None))
    return found

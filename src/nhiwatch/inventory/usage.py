"""What CloudTrail says about each identity: the actions it used (as IAM action names), when it was
last active, who created it, and a least-privilege policy built from what it really did.

CloudTrail names a call `eventSource:eventName`; IAM names the permission `prefix:Action`. The two
agree for most services; the exceptions that matter are mapped here.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from nhiwatch.inventory.policy import PermissionSet, action_matches

# eventSource host -> IAM service prefix, where they differ
SERVICE_PREFIX = {
    "monitoring": "cloudwatch", "email": "ses", "elasticmapreduce": "elasticmapreduce", "tagging": "tag",
    "streams.dynamodb": "dynamodb", "api.ecr": "ecr", "ecr-public": "ecr-public", "iam": "iam",
    "signin": "signin", "sso": "sso", "identitystore": "identitystore", "execute-api": "execute-api",
    "runtime.sagemaker": "sagemaker", "bedrock-runtime": "bedrock", "data.iot": "iot", "s3-object-lambda":
        "s3-object-lambda", "aoss": "aoss", "es": "es", "elasticfilesystem": "elasticfilesystem",
    "servicecatalog": "servicecatalog", "sts": "sts", "appsync": "appsync", "cloudcontrolapi": "cloudformation",
}
# (prefix, eventName) -> IAM action name, where the permission is named differently from the API
ACTION_ALIASES = {
    ("s3", "ListObjects"): "ListBucket", ("s3", "ListObjectsV2"): "ListBucket", ("s3", "HeadBucket"): "ListBucket",
    ("s3", "ListObjectVersions"): "ListBucketVersions", ("s3", "HeadObject"): "GetObject",
    ("s3", "ListBuckets"): "ListAllMyBuckets", ("s3", "CreateMultipartUpload"): "PutObject",
    ("s3", "UploadPart"): "PutObject", ("s3", "CompleteMultipartUpload"): "PutObject",
    ("s3", "CopyObject"): "PutObject", ("s3", "DeleteObjects"): "DeleteObject",
    ("s3", "GetBucketEncryption"): "GetEncryptionConfiguration",
    ("lambda", "Invoke"): "InvokeFunction", ("sts", "GetCallerIdentity"): "GetCallerIdentity",
    ("kms", "ReEncrypt"): "ReEncryptFrom", ("dynamodb", "BatchGetItem"): "BatchGetItem",
}
_LAMBDA_VERSION = re.compile(r"\d{8}(v\d+)?$")
# Calls anyone may make without a permission; they say nothing about needed grants.
UNGATED = {"sts:getcalleridentity"}
MAX_RESOURCES_PER_STATEMENT = 20


def iam_action(event_source: str, event_name: str) -> str:
    host = event_source.removesuffix(".amazonaws.com")
    prefix = SERVICE_PREFIX.get(host, host.split(".")[-1] if host.startswith("runtime.") else host)
    name = _LAMBDA_VERSION.sub("", event_name) if prefix == "lambda" else event_name
    return f"{prefix}:{ACTION_ALIASES.get((prefix, name), name)}"


@dataclass
class ActionUse:
    action: str
    calls: int
    errors: int
    first_seen: str
    last_seen: str
    resources: list[str] = field(default_factory=list)
    all_with_arn: bool = False


def _arns(action: str, named: list[dict]) -> list[str]:
    """Resource ARNs for a policy: ARNs as seen; S3 bucket names as the bucket, or its objects for
    object-level actions (CloudTrail names buckets without an ARN)."""
    out = set()
    object_level = "Object" in action or action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
    for resource in named:
        name, kind = resource["name"], resource["type"]
        if kind == "s3:bucket" and not name.startswith("arn:"):
            out.add(f"arn:aws:s3:::{name}/*" if object_level else f"arn:aws:s3:::{name}")
        else:
            out.add(name)
    return sorted(out)


def used_actions(con) -> dict[str, list[ActionUse]]:
    """Per principal ARN, every action it called (successful or not), with resource ARNs."""
    # Resources are made distinct before they are gathered into lists: a list aggregate over every
    # event cannot spill to disk, a DISTINCT can, so memory stays bounded on a big trail.
    rows = con.execute("""
        WITH mine AS (
          SELECT principal, event_source, event_name, event_time, error_code,
                 list_filter(resources, lambda r: r.name LIKE 'arn:%' OR r.type = 's3:bucket') AS named
          FROM events WHERE principal IS NOT NULL AND principal_type IN ('role', 'user', 'root')),
        calls AS (
          SELECT principal, event_source, event_name, count(*) AS calls,
                 count(*) FILTER (WHERE error_code IS NOT NULL) AS errors,
                 strftime(min(event_time), '%Y-%m-%dT%H:%M:%SZ') AS first,
                 strftime(max(event_time), '%Y-%m-%dT%H:%M:%SZ') AS last,
                 bool_and(len(named) > 0) AS with_arn
          FROM mine GROUP BY ALL),
        distinct_named AS (
          SELECT DISTINCT principal, event_source, event_name, unnest(named, recursive := true)
          FROM mine WHERE len(named) > 0),
        gathered AS (
          SELECT principal, event_source, event_name, list({'type': type, 'name': name}) AS named
          FROM distinct_named GROUP BY ALL)
        SELECT c.principal, c.event_source, c.event_name, c.calls, c.errors, c.first, c.last, g.named, c.with_arn
        FROM calls c LEFT JOIN gathered g USING (principal, event_source, event_name)""").fetchall()
    out: dict[str, dict[str, ActionUse]] = defaultdict(dict)
    for principal, source, name, calls, errors, first, last, named, with_arn in rows:
        action = iam_action(source, name)
        resources = _arns(action, named or [])
        use = out[principal].get(action)
        if use is None:
            out[principal][action] = ActionUse(action, calls, errors, first, last, resources,
                                               bool(with_arn))
        else:  # two event names mapping to one action (ListObjects and ListObjectsV2)
            use.calls += calls
            use.errors += errors
            use.first_seen, use.last_seen = min(use.first_seen, first), max(use.last_seen, last)
            use.resources = sorted(set(use.resources) | set(resources))
            use.all_with_arn = use.all_with_arn and bool(with_arn)
    return {p: sorted(v.values(), key=lambda u: u.action) for p, v in out.items()}


def last_seen(con) -> dict[str, str]:
    return dict(con.execute("""
        SELECT principal, strftime(max(event_time), '%Y-%m-%dT%H:%M:%SZ') FROM events
        WHERE principal IS NOT NULL AND principal_type IN ('role', 'user', 'root') GROUP BY principal""").fetchall())


def origins(con) -> dict[tuple[str, str, str], dict]:
    """Who created which role, user or access key: (account, kind, name or key id) -> creation facts."""
    rows = con.execute("""
        SELECT account_id, event_name, principal, strftime(event_time, '%Y-%m-%dT%H:%M:%SZ'), event_id,
               json_extract_string(request_parameters, '$.roleName'),
               json_extract_string(request_parameters, '$.userName'), issued_access_key_id, principal_name,
               source_ip, user_agent
        FROM events WHERE event_source = 'iam.amazonaws.com' AND error_code IS NULL
          AND event_name IN ('CreateRole', 'CreateUser', 'CreateAccessKey')
        ORDER BY event_time""").fetchall()
    found: dict[tuple[str, str, str], dict] = {}
    for account, name, creator, at, event_id, role, user, key_id, creator_name, ip, agent in rows:
        facts = {"creator": creator, "created_at": at, "event_id": event_id, "source_ip": ip, "user_agent": agent}
        if name == "CreateRole" and role:
            found.setdefault((account, "role", role), facts)
        elif name == "CreateUser" and user:
            found.setdefault((account, "user", user), facts)
        elif name == "CreateAccessKey" and key_id:
            found.setdefault((account, "key", key_id), dict(facts, user=user or creator_name))
    return found


def compare(uses: list[ActionUse], permissions: PermissionSet) -> dict:
    """Used versus granted, and the least-privilege policy that would have covered the successful use."""
    used_ok = [u for u in uses if u.calls > u.errors and u.action.lower() not in UNGATED]
    patterns = permissions.granted_patterns()
    pattern_hits: dict[str, int] = {p: 0 for p, _ in patterns}
    for use in used_ok:
        for pattern, _ in patterns:
            negated = pattern.startswith("NOT ")
            hit = action_matches(pattern[4:] if negated else pattern, use.action)
            if hit != negated:
                pattern_hits[pattern] += 1
    granted_services = sorted({p.split(":", 1)[0].lower() for p, _ in patterns if ":" in p and not p.startswith("NOT")})
    used_services = sorted({u.action.split(":", 1)[0].lower() for u in used_ok})
    denied = [u.action for u in uses if u.errors and u.calls == u.errors]
    # Succeeded although no identity policy grants it: a resource policy, or an export older than the use.
    not_granted = [u.action for u in used_ok if not permissions.allows_somewhere(u.action)]
    return {
        "used": [vars(u) for u in uses],
        "used_actions": len(used_ok),
        "granted_patterns": len(patterns),
        "unused_grants": sorted(p for p, hits in pattern_hits.items() if hits == 0),
        "unused_services": [s for s in granted_services if s not in used_services and s != "*"],
        "only_failed": denied,
        "used_not_granted": not_granted,
        "suggested_policy": suggest_policy(used_ok),
    }


def suggest_policy(uses: list[ActionUse]) -> dict:
    """One statement per service: the actions used, on the ARNs seen when every call named one."""
    by_service: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for use in uses:
        service = use.action.split(":", 1)[0]
        scoped = use.all_with_arn and 0 < len(use.resources) <= MAX_RESOURCES_PER_STATEMENT
        resources = tuple(use.resources) if scoped else ("*",)
        by_service[(service, resources)].append(use.action)
    statements = []
    for (service, resources), actions in sorted(by_service.items()):
        statements.append({"Sid": re.sub(r"[^A-Za-z0-9]", "", service.title()) + str(len(statements) + 1),
                           "Effect": "Allow", "Action": sorted(actions),
                           "Resource": list(resources) if len(resources) > 1 else resources[0]})
    return {"Version": "2012-10-17", "Statement": statements}

"""What CloudTrail says about each identity: the actions it used (as IAM action names), when it was
last active, who created it, and a least-privilege policy built from what it really did.

CloudTrail names a call `eventSource:eventName`; IAM names the permission `prefix:Action`. The two
agree for most services; the exceptions that matter are mapped here.

An attacker's calls are not "use": events behind an unresolved behavioural finding (medium or above)
are held out of the used actions until the finding is resolved as benign, and a suggested policy
never names more than the identity's own policies grant.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from nhiwatch.core.severity import SEVERITIES, is_alert
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
# Findings whose events are held out of "used": alerting severities, while not resolved as benign.
# 'open' is unresolved, 'resolved' was confirmed malicious; 'benign' and 'suppressed' (an operator's
# rule says it is expected) count as use again.
HELD_OUT_SEVERITIES = tuple(s for s in SEVERITIES if is_alert(s))
COUNTED_STATUSES = ("benign", "suppressed")


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


class ActionUses(list):
    """One principal's ActionUse list, with the calls held out of it because an unresolved finding
    covers them. True when it holds either, so an identity whose only calls are held out still says so."""

    def __init__(self, uses=(), held_out_calls: int = 0, held_out_actions: dict[str, int] | None = None):
        super().__init__(uses)
        self.held_out_calls = held_out_calls
        self.held_out_actions = held_out_actions or {}

    def __bool__(self) -> bool:
        return len(self) > 0 or self.held_out_calls > 0


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


def _held_out_sql(con) -> str:
    """(principal, event_id) of every event behind an unresolved finding of medium or above, as SQL;
    an empty relation on a store without findings."""
    has_findings = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'findings'").fetchone()[0]
    if not has_findings:
        return "SELECT NULL::VARCHAR AS principal, NULL::VARCHAR AS event_id WHERE false"
    severities = ", ".join(f"'{s}'" for s in HELD_OUT_SEVERITIES)
    counted = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    # A finding lists at most a few hundred event ids, so this side of the join stays small.
    return f"""
        SELECT DISTINCT identity AS principal, unnest(json_extract_string(finding, '$.event_ids[*]')) AS event_id
        FROM findings WHERE severity IN ({severities}) AND coalesce(status, 'open') NOT IN ({counted})"""


def used_actions(con) -> dict[str, ActionUses]:
    """Per principal ARN, every action it called (successful or not), with resource ARNs; the calls
    behind an unresolved finding of medium or above are held out and only counted (held_out_calls)."""
    # Resources are made distinct before they are gathered into lists: a list aggregate over every
    # event cannot spill to disk, a DISTINCT can, so memory stays bounded on a big trail. The held-out
    # events are marked by a left join on the (small) set of finding event ids, not loaded.
    rows = con.execute(f"""
        WITH held AS ({_held_out_sql(con)}),
        mine AS (
          SELECT e.principal, e.event_source, e.event_name, e.event_time, e.error_code,
                 h.event_id IS NOT NULL AS held,
                 list_filter(e.resources, lambda r: r.name LIKE 'arn:%' OR r.type = 's3:bucket') AS named
          FROM events e LEFT JOIN held h ON h.principal = e.principal AND h.event_id = e.event_id
          WHERE e.principal IS NOT NULL AND e.principal_type IN ('role', 'user', 'root')),
        calls AS (
          SELECT principal, event_source, event_name,
                 count(*) FILTER (WHERE NOT held) AS calls,
                 count(*) FILTER (WHERE NOT held AND error_code IS NOT NULL) AS errors,
                 strftime(min(event_time) FILTER (WHERE NOT held), '%Y-%m-%dT%H:%M:%SZ') AS first,
                 strftime(max(event_time) FILTER (WHERE NOT held), '%Y-%m-%dT%H:%M:%SZ') AS last,
                 bool_and(len(named) > 0) FILTER (WHERE NOT held) AS with_arn,
                 count(*) FILTER (WHERE held) AS held_calls
          FROM mine GROUP BY ALL),
        distinct_named AS (  -- unnested first: DuckDB applies a DISTINCT beside an unnest() before unnesting
          SELECT DISTINCT principal, event_source, event_name, r.type, r.name
          FROM (SELECT principal, event_source, event_name, unnest(named) AS r
                FROM mine WHERE NOT held AND len(named) > 0)),
        gathered AS (
          SELECT principal, event_source, event_name, list({{'type': type, 'name': name}}) AS named
          FROM distinct_named GROUP BY ALL)
        SELECT c.principal, c.event_source, c.event_name, c.calls, c.errors, c.first, c.last, g.named, c.with_arn,
               c.held_calls
        FROM calls c LEFT JOIN gathered g USING (principal, event_source, event_name)""").fetchall()
    out: dict[str, dict[str, ActionUse]] = defaultdict(dict)
    held: dict[str, dict[str, int]] = defaultdict(dict)
    for principal, source, name, calls, errors, first, last, named, with_arn, held_calls in rows:
        action = iam_action(source, name)
        if held_calls:
            held[principal][action] = held[principal].get(action, 0) + held_calls
        if not calls:
            continue
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
    return {p: ActionUses(sorted(out.get(p, {}).values(), key=lambda u: u.action),
                          sum(held.get(p, {}).values()), dict(sorted(held.get(p, {}).items())))
            for p in set(out) | set(held)}


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
    """Used versus granted, and the least-privilege policy that would have covered the successful use,
    cut down to what the identity's policies grant (it never grants more than they do)."""
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
    policy, not_suggested = suggest_policy(used_ok, permissions)
    reason = None
    if not permissions.statements:
        reason = ("no identity policy is known for this identity (no IAM authorization details for it, or it has "
                  "none): nothing it is granted can be suggested")
    elif not policy["Statement"] and used_ok:
        reason = "none of the actions it used is granted by its identity policies"
    elif not policy["Statement"]:
        reason = ("no successful call counted" + (": the calls it made are behind unresolved findings"
                                                   if getattr(uses, "held_out_calls", 0) else ""))
    held_actions = getattr(uses, "held_out_actions", {})
    return {
        "used": [vars(u) for u in uses],
        "used_actions": len(used_ok),
        "granted_patterns": len(patterns),
        "unused_grants": sorted(p for p, hits in pattern_hits.items() if hits == 0),
        "unused_services": [s for s in granted_services if s not in used_services and s != "*"],
        "only_failed": denied,
        "used_not_granted": not_granted,
        # Calls behind an unresolved finding of medium or above: not counted as use anywhere above.
        "held_out_calls": getattr(uses, "held_out_calls", 0),
        "held_out_actions": dict(held_actions),
        "suggested_policy": policy,
        "suggested_policy_reason": reason,
        "not_suggested": not_suggested,
    }


def _merge_conditions(first: dict, second: dict) -> dict | None:
    """Both condition blocks at once (None when one key is constrained twice under one operator)."""
    merged = {op: dict(keys) for op, keys in first.items()}
    for op, keys in second.items():
        target = merged.setdefault(op, {})
        for key, value in keys.items():
            if key in target and target[key] != value:
                return None
            target[key] = value
    return merged


def _condition_for(permissions: PermissionSet, action: str, target: str | None) -> tuple[bool, dict]:
    """(granted, the condition a suggestion must carry to stay within the grant) for action on target.
    An unconditional Allow needs none; otherwise one conditional Allow's condition (with the
    permission boundary's, if that is conditional too) is enough."""
    if permissions.grant_on(action, target) is None:
        return False, {}
    condition: dict = {}
    for statements in (permissions.statements, permissions.boundary):
        if statements is None:
            continue
        allowing = PermissionSet.allowing_statements(statements, action, target)
        if allowing and all(st.conditional for st in allowing):
            merged = _merge_conditions(condition, allowing[0].conditions)
            if merged is None:
                return False, {}
            condition = merged
    return True, condition


def _granted_patterns_for(permissions: PermissionSet, action: str) -> list[str]:
    """The Resource entries of the Allow statements that name the action."""
    return list(dict.fromkeys(p for st in permissions.statements if st.effect == "Allow" and not st.not_resource
                              and st.matches_action(action) for p in st.resources))


def _scopes(use: ActionUse, permissions: PermissionSet) -> tuple[list[tuple[tuple[str, ...], dict]], list[str]]:
    """(resources, condition) groups a suggestion may grant the used action on, each within the identity's
    grant: the ARNs seen when every call named one (or `*`), keeping those the policies grant; when
    none is, the grant's own resource patterns. Empty when the policies grant it nowhere. Also the seen
    ARNs left out because the policies do not grant the action on them."""
    if not permissions.allows_somewhere(use.action):
        return [], []
    scoped = use.all_with_arn and 0 < len(use.resources) <= MAX_RESOURCES_PER_STATEMENT
    candidates = [(r, r) for r in use.resources] if scoped else [("*", None)]
    judged = [(r, _condition_for(permissions, use.action, target)) for r, target in candidates]
    kept = [(r, cond) for r, (ok, cond) in judged if ok]
    dropped = [r for r, (ok, _) in judged if not ok and r != "*"]
    if not kept:
        patterns = _granted_patterns_for(permissions, use.action)
        kept = [(p, cond) for p in patterns
                for ok, cond in [_condition_for(permissions, use.action, None if p == "*" else p)] if ok]
    groups: dict[str, tuple[list[str], dict]] = {}
    for resource, condition in kept:
        key = str(sorted(condition.items()))
        groups.setdefault(key, ([], condition))[0].append(resource)
    return [(tuple(sorted(resources)), condition) for resources, condition in groups.values()], dropped


def _denies(permissions: PermissionSet, actions: list[str]) -> list[dict]:
    """The identity's Deny statements (policies and boundary) as they bear on the suggested actions:
    carried over, so the suggestion cannot reach what the current policies deny."""
    out = []
    for st in permissions.statements + (permissions.boundary or []):
        if st.effect != "Deny":
            continue
        hit = sorted(a for a in actions if st.matches_action(a))
        if not hit:
            continue
        statement: dict = {"Effect": "Deny", "Action": hit}
        resources = list(st.resources)
        statement["NotResource" if st.not_resource else "Resource"] = resources if len(resources) > 1 else resources[0]
        if st.conditions:
            statement["Condition"] = st.conditions
        if statement not in out:
            out.append(statement)
    return out


def suggest_policy(uses: list[ActionUse], permissions: PermissionSet) -> tuple[dict, list[dict]]:
    """One statement per service (and resources, and condition): the actions used, on the ARNs seen
    when every call named one, never beyond what `permissions` grant. Returns the policy and the used
    actions left out of it, with why."""
    by_service: dict[tuple[str, tuple[str, ...], str], tuple[list[str], dict]] = {}
    left_out: list[dict] = []
    for use in uses:
        scopes, dropped = _scopes(use, permissions)
        if not permissions.allows_somewhere(use.action):
            left_out.append({"action": use.action, "reason": "not granted by its identity policies (a resource "
                                                             "policy, or an export older than the use?)"})
            continue
        if not scopes:
            left_out.append({"action": use.action, "reason": "its policies name it but do not grant it here (a Deny, "
                                                             "the permission boundary or a narrower Resource)"})
            continue
        if dropped:
            left_out.append({"action": use.action, "resources": dropped,
                             "reason": "used on these resources, which its policies do not grant it on"})
        service = use.action.split(":", 1)[0]
        for resources, condition in scopes:
            key = (service, resources, str(sorted(condition.items())))
            by_service.setdefault(key, ([], condition))[0].append(use.action)
    statements = []
    for (service, resources, _), (actions, condition) in sorted(by_service.items()):
        statement = {"Sid": re.sub(r"[^A-Za-z0-9]", "", service.title()) + str(len(statements) + 1),
                     "Effect": "Allow", "Action": sorted(set(actions)),
                     "Resource": list(resources) if len(resources) > 1 else resources[0]}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    suggested = sorted({a for s in statements for a in s["Action"]})
    statements += _denies(permissions, suggested)
    return {"Version": "2012-10-17", "Statement": statements}, left_out

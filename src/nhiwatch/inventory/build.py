"""Assembling the inventory: IAM exports of many accounts (and, when present, the CloudTrail in
the store) into one list of identities, each classified, evaluated, checked and scored."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from nhiwatch.inventory import posture, risk
from nhiwatch.inventory.classify import classify_group, classify_role, classify_user
from nhiwatch.core.times import NO_DATE, parse_time
from nhiwatch.inventory.model import AccessKey, Identity, PolicyRef, iso
from nhiwatch.inventory.policy import PermissionSet, PolicyError, Statement, statements_of
from nhiwatch.inventory.capabilities import CAPABILITIES, capability_routes
from nhiwatch.inventory.graph import PrincipalGraph, escalation_capabilities
from nhiwatch.inventory.organization import organization_of
from nhiwatch.inventory.resource_policies import resources_of
from nhiwatch.inventory.trust import analyze_trust
from nhiwatch.inventory.usage import compare, last_seen, origins, used_actions

DATA_ACTIONS = ("secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath",
                "s3:GetObject")
OWNER_TAGS = ("owner", "owner-email", "contact", "created-by", "createdby", "maintainer")
TEAM_TAGS = ("team", "squad", "department", "cost-center", "costcenter", "business-unit")

# Well-known AWS managed policies, for exports that name them without their documents.
KNOWN_AWS_POLICIES = {
    "arn:aws:iam::aws:policy/AdministratorAccess": {"Statement": [{"Effect": "Allow", "Action": "*",
                                                                   "Resource": "*"}]},
    "arn:aws:iam::aws:policy/IAMFullAccess": {"Statement": [{"Effect": "Allow", "Action": ["iam:*",
                                              "organizations:DescribeAccount", "organizations:DescribeOrganization",
                                              "organizations:DescribeOrganizationalUnit",
                                              "organizations:DescribePolicy", "organizations:ListChildren",
                                              "organizations:ListParents", "organizations:ListPoliciesForTarget",
                                              "organizations:ListRoots", "organizations:ListPolicies",
                                              "organizations:ListTargetsForPolicy"], "Resource": "*"}]},
    "arn:aws:iam::aws:policy/PowerUserAccess": {"Statement": [
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                                       "organizations:DescribeOrganization", "account:ListRegions",
                                       "account:GetAccountInformation"], "Resource": "*"}]},
}


def _report_bool(value: Any) -> bool | None:
    text = str(value or "").strip().lower()
    return True if text == "true" else False if text == "false" else None


def _tags(entry: dict) -> dict[str, str]:
    tags = entry.get("Tags") or []
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t.get("Key")): str(t.get("Value")) for t in tags if isinstance(t, dict)}


def _tag(tags: dict[str, str], names: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    return next((lowered[n] for n in names if lowered.get(n)), None)


class _Policies:
    """Managed policy documents by ARN (default version), shared by all accounts."""

    def __init__(self, payloads: dict[str, dict]):
        self.documents: dict[str, dict | None] = {}
        for payload in payloads.values():
            for policy in payload.get("Policies", []):
                versions = policy.get("PolicyVersionList") or []
                default = next((v for v in versions if v.get("IsDefaultVersion")), None) or next(
                    (v for v in versions if v.get("VersionId") == policy.get("DefaultVersionId")), None)
                self.documents[policy["Arn"]] = default.get("Document") if default else None

    def get(self, arn: str) -> dict | None:
        if arn in self.documents and self.documents[arn] is not None:
            return self.documents[arn]
        return KNOWN_AWS_POLICIES.get(arn)


def _statements(document: Any, origin: str, identity: Identity) -> list[Statement]:
    if document is None:
        identity.problems.append(f"{origin}: document unavailable; permissions may be understated")
        return []
    try:
        return statements_of(document, origin)
    except PolicyError as exc:
        identity.problems.append(f"{origin}: {exc}")
        return []


def _collect_policies(identity: Identity, entry: dict, inline_key: str, managed: _Policies,
                      groups: dict[str, dict]) -> list[Statement]:
    statements: list[Statement] = []
    for policy in entry.get(inline_key) or []:
        name = policy.get("PolicyName", "inline")
        identity.policies.append(PolicyRef(name, "inline", readable=policy.get("PolicyDocument") is not None))
        statements += _statements(policy.get("PolicyDocument"), f"inline {name}", identity)
    for ref in entry.get("AttachedManagedPolicies") or []:
        arn = ref.get("PolicyArn") or ""
        document = managed.get(arn)
        identity.policies.append(PolicyRef(ref.get("PolicyName") or arn.rsplit("/", 1)[-1], "managed", arn,
                                           readable=document is not None))
        statements += _statements(document, f"managed {ref.get('PolicyName') or arn}", identity)
    for group_name in entry.get("GroupList") or []:
        group = groups.get(group_name)
        if group is None:
            identity.problems.append(f"group {group_name}: not in the authorization details")
            continue
        for policy in group.get("GroupPolicyList") or []:
            name = policy.get("PolicyName", "inline")
            identity.policies.append(PolicyRef(name, "group-inline", via=group_name,
                                               readable=policy.get("PolicyDocument") is not None))
            statements += _statements(policy.get("PolicyDocument"), f"group {group_name} inline {name}", identity)
        for ref in group.get("AttachedManagedPolicies") or []:
            arn = ref.get("PolicyArn") or ""
            document = managed.get(arn)
            identity.policies.append(PolicyRef(ref.get("PolicyName") or arn.rsplit("/", 1)[-1], "group-managed",
                                               arn, via=group_name, readable=document is not None))
            statements += _statements(document, f"group {group_name} managed {ref.get('PolicyName') or arn}",
                                      identity)
    return statements


def _permissions(identity: Identity, entry: dict, statements: list[Statement], managed: _Policies,
                 self_resources: tuple[str, ...]) -> PermissionSet:
    boundary_ref = (entry.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    boundary = None
    if boundary_ref:
        identity.boundary = boundary_ref
        document = managed.get(boundary_ref)
        if document is None:
            identity.problems.append(f"permission boundary {boundary_ref}: document unavailable; not applied")
        else:
            boundary = _statements(document, f"boundary {boundary_ref.rsplit('/', 1)[-1]}", identity)
    return PermissionSet(statements, boundary, self_resources)


NO_CAPABILITY_ROUTES = {name: None for name in CAPABILITIES}


def _capabilities(permissions: PermissionSet, graph: PrincipalGraph | None, arn: str) -> dict:
    """Admin and escalation from the principal graph (the evaluator decides each step), and the shortest
    route to each capability (secrets, data, kms); service-wide wildcards and data reach from the
    identity's policies."""
    in_graph = graph is not None and arn in graph.nodes
    escalation = escalation_capabilities(graph, arn) if in_graph else {
        "admin": [], "privesc": [], "privesc_conditional": [], "privesc_via": {}, "privesc_routes": [],
        "privesc_route": None}
    return {
        **escalation,
        "service_wildcards": {k: list(v) for k, v in permissions.service_wildcards().items()},
        "data_access": [a for a in DATA_ACTIONS if (g := permissions.grant(a)) is not None and not g.conditional],
        "capability_routes": capability_routes(graph, arn) if in_graph else dict(NO_CAPABILITY_ROUTES),
    }


def principal_graph(authz: dict[str, dict], reports: dict[str, list[dict]], managed: _Policies,
                    as_of: datetime, organization: dict | None = None,
                    resource_policies: dict[str, dict] | None = None) -> PrincipalGraph:
    """The escalation graph of every loaded account, managed policies read from any export (AWS-managed
    ones included) or known by name; SCPs and RCPs from the stored organization, resource policies from
    the stored files or live reads."""
    known = dict(KNOWN_AWS_POLICIES)
    known.update({arn: document for arn, document in managed.documents.items() if document is not None})
    org = organization_of(organization) if organization else None
    return PrincipalGraph.build(authz, reports, known_policies=known, as_of=as_of, org=org,
                                resources=resources_of(resource_policies or {}))


def _keys(row: dict) -> list[AccessKey]:
    keys = []
    for slot in (1, 2):
        created = parse_time(row.get(f"access_key_{slot}_last_rotated"))
        active = _report_bool(row.get(f"access_key_{slot}_active"))
        if created is None and not active:
            continue
        service = row.get(f"access_key_{slot}_last_used_service") or ""
        region = row.get(f"access_key_{slot}_last_used_region") or ""
        keys.append(AccessKey(slot, bool(active), iso(created),
                              iso(parse_time(row.get(f"access_key_{slot}_last_used_date"))),
                              None if service in NO_DATE else service, None if region in NO_DATE else region))
    return keys


def _latest(*candidates: tuple[str | None, str]) -> tuple[str | None, str | None]:
    dated = [(parse_time(value), source) for value, source in candidates if parse_time(value)]
    if not dated:
        return None, None
    when, source = max(dated)
    return iso(when), source


def build_inventory(authz: dict[str, dict], reports: dict[str, list[dict]], as_of: datetime,
                    con=None, *, organization: dict | None = None,
                    resource_policies: dict[str, dict] | None = None) -> list[Identity]:
    """authz: account id (or 'aws') -> merged authorization details; reports: account id -> report rows;
    con: a DuckDB connection with the events table, for usage and origin (optional); organization: the
    normalized organization file (SCPs, RCPs); resource_policies: account -> ARN -> resource policy."""
    managed = _Policies(authz)
    graph = principal_graph(authz, reports, managed, as_of, organization, resource_policies)
    events_seen = last_seen(con) if con is not None else {}
    uses = used_actions(con) if con is not None else {}
    created_by = origins(con) if con is not None else {}
    identities: list[Identity] = []
    for account, payload in sorted(authz.items()):
        if account == "aws":
            continue
        groups = {g.get("GroupName"): g for g in payload.get("GroupDetailList", [])}
        rows = {row["arn"]: row for row in reports.get(account, [])}
        users: list[Identity] = []
        for entry in payload.get("UserDetailList", []):
            identity = Identity(entry["Arn"], account, "user", entry.get("UserName", ""), entry.get("Path", "/"),
                                entry.get("UserId"), iso(parse_time(entry.get("CreateDate"))), _tags(entry),
                                groups=list(entry.get("GroupList") or []))
            statements = _collect_policies(identity, entry, "UserPolicyList", managed, groups)
            self_resources = (identity.arn, *[p.arn for p in identity.policies if p.arn],
                              *[f"arn:aws:iam::{account}:group/{g}" for g in identity.groups])
            _apply_report(identity, rows.pop(identity.arn, None), account in reports)
            _finish(identity, _permissions(identity, entry, statements, managed, self_resources), as_of,
                    events_seen, uses, created_by, graph)
            identities.append(identity)
            users.append(identity)
        for entry in payload.get("RoleDetailList", []):
            identity = Identity(entry["Arn"], account, "role", entry.get("RoleName", ""), entry.get("Path", "/"),
                                entry.get("RoleId"), iso(parse_time(entry.get("CreateDate"))), _tags(entry))
            identity.trust = entry.get("AssumeRolePolicyDocument")
            trust = analyze_trust(identity.trust, account)
            identity.problems += trust.problems
            identity.trust_summary = asdict(trust)
            identity.instance_profiles = [p.get("InstanceProfileName", "") for p in
                                          entry.get("InstanceProfileList") or []]
            used = entry.get("RoleLastUsed") or {}
            identity.role_last_used = iso(parse_time(used.get("LastUsedDate")))
            identity.role_last_used_region = used.get("Region")
            statements = _collect_policies(identity, entry, "RolePolicyList", managed, {})
            self_resources = (identity.arn, *[p.arn for p in identity.policies if p.arn])
            classify_role(identity, trust)
            _finish(identity, _permissions(identity, entry, statements, managed, self_resources), as_of,
                    events_seen, uses, created_by, graph)
            identities.append(identity)
        identities += [_group(entry, account, users, managed, graph, as_of) for entry in groups.values()]
        for row in rows.values():  # in the credential report only: the root row, or users of a newer report
            identities.append(_report_only(row, account, "in the credential report but not in the authorization "
                                                         "details", as_of, events_seen, uses, created_by))
    for account, rows in reports.items():
        if account not in authz:
            identities += [_report_only(row, account, "no authorization details loaded for this account: "
                                                      "permissions unknown", as_of, events_seen, uses, created_by)
                           for row in rows]
    identities.sort(key=lambda i: (-i.risk_score, i.arn))
    return identities


def _report_only(row: dict, account: str, problem: str, as_of: datetime, events_seen: dict, uses: dict,
                 created_by: dict) -> Identity:
    """An identity known only from the credential report (always so for the root user)."""
    is_root = row.get("user") == "<root_account>" or row["arn"].endswith(":root")
    identity = Identity(row["arn"], account, "root" if is_root else "user", "root" if is_root else row.get("user", ""),
                        created=iso(parse_time(row.get("user_creation_time"))))
    if not is_root:
        identity.problems.append(problem)
    _apply_report(identity, row, True)
    _finish(identity, PermissionSet([]), as_of, events_seen, uses, created_by, None)
    return identity


def _group(entry: dict, account: str, users: list[Identity], managed: _Policies, graph: PrincipalGraph,
           as_of: datetime) -> Identity:
    """A group as an identity of its own: what its members may do through it, and whether they (or
    anyone holding only its policies) can become admin."""
    identity = Identity(entry["Arn"], account, "group", entry.get("GroupName", ""), entry.get("Path", "/"),
                        entry.get("GroupId"), iso(parse_time(entry.get("CreateDate"))))
    members = [u for u in users if identity.name in u.groups]
    identity.members = [u.name for u in members]
    statements = _collect_policies(identity, entry, "GroupPolicyList", managed, {})
    classify_group(identity, members)
    permissions = PermissionSet(statements, None, (identity.arn, *[p.arn for p in identity.policies if p.arn]))
    _finish(identity, permissions, as_of, {}, {}, {}, graph)
    return identity


def _apply_report(identity: Identity, row: dict | None, account_has_report: bool) -> None:
    if row is None:
        if account_has_report and identity.kind == "user":
            identity.problems.append("not in the credential report (created after it was generated?)")
        if identity.kind == "user":
            classify_user(identity)
        return
    identity.has_credential_report = True
    identity.password_enabled = _report_bool(row.get("password_enabled"))
    identity.password_last_used = iso(parse_time(row.get("password_last_used")))
    identity.mfa_active = _report_bool(row.get("mfa_active"))
    identity.keys = _keys(row)
    classify_user(identity)


def _finish(identity: Identity, permissions: PermissionSet, as_of: datetime, events_seen: dict, uses: dict,
            created_by: dict, graph: PrincipalGraph | None) -> None:
    identity.owner = _tag(identity.tags, OWNER_TAGS)
    identity.team = _tag(identity.tags, TEAM_TAGS)
    if identity.kind == "root":
        identity.capabilities = {"admin": ["root user"], "privesc": [], "privesc_conditional": [],
                                 "privesc_via": {}, "privesc_routes": [], "privesc_route": None,
                                 "service_wildcards": {}, "data_access": [],
                                 "capability_routes": dict(NO_CAPABILITY_ROUTES)}
    else:
        identity.capabilities = _capabilities(permissions, graph, identity.arn)
    role_id = f"role-id:{identity.unique_id}" if identity.unique_id else None
    seen = events_seen.get(identity.arn) or (events_seen.get(role_id) if role_id else None)
    key_uses = [(k.last_used, f"access key {k.slot}") for k in identity.keys]
    identity.last_active, identity.last_active_source = _latest(
        (identity.role_last_used, "RoleLastUsed"), (identity.password_last_used, "console sign-in"), *key_uses,
        (seen, "CloudTrail"))
    kind = "role" if identity.kind == "role" else "user"
    origin = created_by.get((identity.account_id, kind, identity.name))
    if origin:
        identity.origin = origin
    key_origins = [dict(created_by[(identity.account_id, "key", k)], key_id=k) for k in
                   _issued_keys(identity, created_by)]
    if key_origins:
        identity.origin = dict(identity.origin or {}, keys=key_origins)
    actions = uses.get(identity.arn) or (uses.get(role_id) if role_id else None)
    if actions:
        identity.usage = compare(actions, permissions)
    identity.findings = posture.run_checks(identity, as_of)
    risk.score(identity, as_of)


def _issued_keys(identity: Identity, created_by: dict) -> list[str]:
    if identity.kind != "user":
        return []
    return sorted(key for (account, kind, key), facts in created_by.items()
                  if kind == "key" and account == identity.account_id and facts.get("user") == identity.name)

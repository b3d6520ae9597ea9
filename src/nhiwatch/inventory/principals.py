"""IAM exports as nodes of the principal graph (inventory/graph.py): users, roles and groups with their
compiled policies (evaluate.load_authorization_details) and the facts the graph's methods need: group
members, managed policies held, what a role's trust policy names, instance profiles, and from the
credential report how many access keys and whether a console password a user has."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from nhiwatch.core.arn import account_of
from nhiwatch.inventory.evaluate import IdentityPolicies, Principal, Resource, load_authorization_details, name_of
from nhiwatch.inventory.methods import Method
from nhiwatch.inventory.policy import as_list


@dataclass
class Node:
    arn: str
    kind: str                                   # user | role | group
    account: str
    name: str
    principal: Principal
    policies: IdentityPolicies
    trust: Resource | None = None               # a role as the target of sts:AssumeRole
    groups: tuple[str, ...] = ()                # a user's groups (ARNs)
    members: tuple[str, ...] = ()               # a group's users (ARNs)
    managed: tuple[str, ...] = ()               # managed policies it holds itself (ARNs)
    boundary: str | None = None
    trusted_services: frozenset[str] = frozenset()
    trust_names: tuple[tuple[str, str], ...] = ()  # (kind, value) of the principals its trust policy names
    service_only: bool = False                  # only AWS services may assume it
    instance_profile: bool = False
    access_keys: int | None = None              # from the credential report (None: not known)
    password: bool | None = None
    held: frozenset[str] = frozenset()          # the methods' actions some identity-based Allow names
    methods: frozenset[str] = frozenset()       # the methods all of whose actions it holds

    def holds(self, action: str) -> bool:
        """Some identity-based Allow names the action (lowercased): the cheap test before any evaluation."""
        return action in self.held

    def holds_all(self, method: Method) -> bool:
        return method.id in self.methods


def _trust_principals(document: Any) -> list[tuple[str, str]]:
    """(kind, value) of every principal an Allow statement of a trust policy names."""
    try:
        doc = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    found = []
    for statement in as_list(doc.get("Statement")):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        element = statement.get("Principal")
        if element == "*":
            found.append(("AWS", "*"))
        elif isinstance(element, dict):
            found += [(str(kind), str(value)) for kind, values in element.items() for value in as_list(values)]
        elif "NotPrincipal" in statement:
            found.append(("AWS", "*"))
    return found


def _bool(value: Any) -> bool | None:
    text = str(value or "").strip().lower()
    return True if text == "true" else False if text == "false" else None


def _report_facts(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, bool | None]]:
    """user ARN -> (active access keys, console password) from credential-report rows."""
    facts = {}
    for row in rows:
        keys = sum(_bool(row.get(f"access_key_{slot}_active")) is True for slot in (1, 2))
        facts[str(row.get("arn"))] = (keys, _bool(row.get("password_enabled")))
    return facts


def nodes_of(payload: Mapping[str, Any], report_rows: Iterable[Mapping[str, Any]] = (),
             known_policies: Mapping[str, Any] | None = None, as_of: datetime | None = None) -> dict[str, Node]:
    """The users, roles and groups of one authorization-details export, as graph nodes."""
    snapshot = load_authorization_details(payload, known_policies)
    facts = _report_facts(report_rows)
    issued = as_of or datetime.now(timezone.utc)
    nodes: dict[str, Node] = {}
    group_arns: dict[str, str] = {}
    for entry in payload.get("GroupDetailList") or []:
        subject = snapshot.subjects.get(entry["Arn"])
        if subject is None:
            continue
        group_arns[name_of(entry, "GroupName")] = entry["Arn"]
        principal = replace(subject.principal, credentials="temporary", token_issue_time=issued)
        nodes[entry["Arn"]] = Node(entry["Arn"], "group", account_of(entry["Arn"]) or "", name_of(entry, "GroupName"),
                                   principal, subject.policies, managed=_managed(entry))
    members: dict[str, list[str]] = {}
    for entry in payload.get("UserDetailList") or []:
        subject = snapshot.subjects.get(entry["Arn"])
        if subject is None:
            continue
        groups = tuple(group_arns[g] for g in entry.get("GroupList") or [] if isinstance(g, str) and g in group_arns)
        for group in groups:
            members.setdefault(group, []).append(entry["Arn"])
        keys, password = facts.get(entry["Arn"], (None, None))
        principal = replace(subject.principal, credentials="temporary", token_issue_time=issued)
        nodes[entry["Arn"]] = Node(entry["Arn"], "user", account_of(entry["Arn"]) or "", name_of(entry, "UserName"),
                                   principal, subject.policies, groups=groups, managed=_managed(entry),
                                   boundary=_boundary_arn(entry), access_keys=keys, password=password)
    for entry in payload.get("RoleDetailList") or []:
        subject = snapshot.subjects.get(entry["Arn"])
        if subject is None:
            continue
        named = _trust_principals(entry.get("AssumeRolePolicyDocument"))
        services = frozenset(v.lower() for k, v in named if k.lower() == "service")
        service_only = bool(named) and all(k.lower() == "service" for k, _ in named)
        # A role only services assume has no session tags and never MFA; otherwise both are unknown.
        principal = replace(subject.principal, token_issue_time=issued, session_tags={} if service_only else None,
                            mfa=False if service_only else None)
        nodes[entry["Arn"]] = Node(entry["Arn"], "role", account_of(entry["Arn"]) or "", name_of(entry, "RoleName"),
                                   principal, subject.policies, trust=subject.resource, managed=_managed(entry),
                                   boundary=_boundary_arn(entry), trusted_services=services,
                                   trust_names=tuple(named),
                                   service_only=service_only,
                                   instance_profile=bool(entry.get("InstanceProfileList")))
    for group, users in members.items():
        nodes[group].members = tuple(users)
    return nodes


def _managed(entry: Mapping[str, Any]) -> tuple[str, ...]:
    refs = [ref.get("PolicyArn") for ref in entry.get("AttachedManagedPolicies") or [] if isinstance(ref, dict)]
    return tuple(arn for arn in refs if isinstance(arn, str) and arn)


def _boundary_arn(entry: Mapping[str, Any]) -> str | None:
    ref = entry.get("PermissionsBoundary")
    return ref.get("PermissionsBoundaryArn") if isinstance(ref, dict) else None


def policy_versions(payload: Mapping[str, Any]) -> dict[str, int]:
    """Managed policy ARN -> how many versions the export lists."""
    return {p["Arn"]: len(p.get("PolicyVersionList") or []) for p in payload.get("Policies") or [] if "Arn" in p}


def lists_only_default_versions(payload: Mapping[str, Any]) -> bool:
    """Whether the export left out non-default policy versions: some policy's default is not its first
    version, yet it is the only one listed."""
    for policy in payload.get("Policies") or []:
        versions = policy.get("PolicyVersionList") or []
        if len(versions) == 1 and str(policy.get("DefaultVersionId", "v1")) != "v1":
            return True
    return False


def without_path(arn: str) -> str:
    """A role or user ARN without its path (trust policies may name it either way)."""
    head, sep, rest = arn.partition(":role/")
    if not sep:
        head, sep, rest = arn.partition(":user/")
    return f"{head}{sep}{rest.rsplit('/', 1)[-1]}" if sep else arn

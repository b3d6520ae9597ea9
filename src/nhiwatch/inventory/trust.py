"""Who may assume a role: the trust policy read into principals and the conditions that guard
them (ExternalId, MFA, OIDC `sub` and `aud`, organisation), with the weaknesses named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nhiwatch.inventory.policy import PolicyError, as_list, load_document

GITHUB_HOST = "token.actions.githubusercontent.com"
_ACCOUNT_ARN = re.compile(r"^arn:aws[\w-]*:(?:iam|sts)::(\d{12}):")


@dataclass
class OidcTrust:
    provider: str            # host part of the provider, e.g. token.actions.githubusercontent.com
    kind: str                # github, gitlab, eks, cognito, other
    subjects: list[str]      # values allowed for the `sub` claim ([] when there is no condition on it)
    subject_operator: str | None
    audiences: list[str]
    weakness: str | None = None   # None, or why the subject condition is too broad
    weakness_level: str | None = None  # critical / high / medium


@dataclass
class TrustedAccount:
    account_id: str
    principal: str
    external_id: bool
    mfa: bool


@dataclass
class TrustSummary:
    services: list[str] = field(default_factory=list)
    own_account_principals: list[str] = field(default_factory=list)
    external_accounts: list[TrustedAccount] = field(default_factory=list)
    any_principal: bool = False
    any_principal_guarded: bool = False  # `*` but narrowed by a condition (org id, source account...)
    oidc: list[OidcTrust] = field(default_factory=list)
    saml: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _condition_values(conditions: dict, key_suffix: str) -> tuple[list[str], str | None]:
    """Values and operator of the condition whose key ends with `key_suffix` (case-insensitive)."""
    for operator, block in conditions.items():
        if not isinstance(block, dict):
            continue
        for key, value in block.items():
            if key.lower().endswith(key_suffix.lower()):
                return [str(v) for v in as_list(value)], operator
    return [], None


def _provider_kind(host: str) -> str:
    if host == GITHUB_HOST or host.endswith(".githubusercontent.com"):
        return "github"
    if "gitlab" in host:
        return "gitlab"
    if host.startswith("oidc.eks.") and ".amazonaws.com/id/" in host:
        return "eks"
    if host == "cognito-identity.amazonaws.com":
        return "cognito"
    return "other"


def _judge_subjects(kind: str, subjects: list[str], operator: str | None) -> tuple[str | None, str | None]:
    """Why a subject condition is too broad, and how badly (None when it pins the caller)."""
    if not subjects:
        if kind == "cognito":
            return None, None  # Cognito identity pools are scoped by `aud` (the pool id), not `sub`
        return "no condition on the token's `sub`: any workload of this provider can assume the role", "critical"
    if operator and (operator.startswith("ForAllValues:") or operator.endswith("IfExists")):
        return f"`sub` is checked with {operator}, which passes when the claim is missing", "critical"
    worst: tuple[str | None, str | None] = (None, None)
    rank = {"critical": 3, "high": 2, "medium": 1}
    for subject in subjects:
        verdict = _judge_subject(kind, subject)
        if verdict[1] and rank[verdict[1]] > rank.get(worst[1] or "", 0):
            worst = verdict
    return worst


def _judge_subject(kind: str, subject: str) -> tuple[str | None, str | None]:
    if subject.strip() in ("*", ""):
        return f"`sub` is {subject!r}: any workload of this provider", "critical"
    if kind == "github":
        if not subject.startswith("repo:"):
            return f"`sub` {subject!r} does not start with repo:, so it does not pin a repository", "critical"
        path = subject[5:].split(":", 1)
        owner_repo = path[0]
        owner, _, repo = owner_repo.partition("/")
        if "*" in owner or "?" in owner:
            return f"`sub` {subject!r} wildcards the owner: any GitHub organisation", "critical"
        if not repo or "*" in repo:
            return f"`sub` {subject!r} allows every repository of {owner}", "high"
        rest = path[1] if len(path) > 1 else ""
        if rest in ("", "*") or rest.startswith("*"):
            return f"`sub` {subject!r} allows any branch, tag, pull request or environment of {owner_repo}", "medium"
        return None, None
    if kind == "gitlab":
        match = re.match(r"project_path:([^:]*)(?::(.*))?$", subject)
        if not match:
            return f"`sub` {subject!r} does not pin a project path", "critical"
        project, rest = match.group(1), match.group(2) or ""
        group, _, name = project.partition("/")
        if "*" in group:
            return f"`sub` {subject!r} wildcards the group: any GitLab project", "critical"
        if not name or "*" in name:
            return f"`sub` {subject!r} allows every project of {group}", "high"
        if rest in ("", "*") or rest.startswith("*"):
            return f"`sub` {subject!r} allows any branch or tag of {project}", "medium"
        return None, None
    if kind == "eks":
        parts = subject.split(":")
        if len(parts) != 4 or parts[0] != "system" or parts[1] != "serviceaccount":
            return f"`sub` {subject!r} is not a system:serviceaccount:<namespace>:<name> subject", "high"
        if "*" in parts[2]:
            return f"`sub` {subject!r} allows any namespace", "high"
        if "*" in parts[3]:
            return f"`sub` {subject!r} allows any service account of namespace {parts[2]}", "medium"
        return None, None
    if "*" in subject:
        return f"`sub` {subject!r} contains a wildcard", "medium"
    return None, None


def analyze_trust(document: Any, own_account: str) -> TrustSummary:
    summary = TrustSummary()
    if document in (None, "", {}):
        return summary
    try:
        doc = load_document(document)
    except PolicyError as exc:
        summary.problems.append(f"trust policy: {exc}")
        return summary
    for index, statement in enumerate(as_list(doc.get("Statement"))):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        conditions = statement.get("Condition") or {}
        if not isinstance(conditions, dict):
            summary.problems.append(f"trust policy Statement[{index}]: Condition is not an object")
            conditions = {}
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
            if conditions:
                summary.any_principal_guarded = True
            else:
                summary.any_principal = True
        if not isinstance(principal, dict):
            continue
        summary.services += [str(s) for s in as_list(principal.get("Service"))]
        external_ids, _ = _condition_values(conditions, "sts:ExternalId")
        mfa_values, _ = _condition_values(conditions, "aws:MultiFactorAuthPresent")
        for aws in as_list(principal.get("AWS")):
            aws = str(aws)
            if aws == "*":
                continue
            match = _ACCOUNT_ARN.match(aws)
            account = match.group(1) if match else (aws if re.fullmatch(r"\d{12}", aws) else None)
            if account is None or account == own_account:
                summary.own_account_principals.append(aws)
            else:
                summary.external_accounts.append(TrustedAccount(account, aws, bool(external_ids),
                                                                any(v.lower() == "true" for v in mfa_values)))
        for federated in as_list(principal.get("Federated")):
            federated = str(federated)
            if ":saml-provider/" in federated:
                summary.saml.append(federated)
                continue
            host = federated.split(":oidc-provider/", 1)[1] if ":oidc-provider/" in federated else federated
            kind = _provider_kind(host)
            subjects, operator = _condition_values(conditions, f"{host}:sub")
            audiences, _ = _condition_values(conditions, f"{host}:aud")
            if kind == "cognito" and not audiences:
                audiences, _ = _condition_values(conditions, "cognito-identity.amazonaws.com:aud")
            weakness, level = _judge_subjects(kind, subjects, operator)
            summary.oidc.append(OidcTrust(host, kind, subjects, operator, audiences, weakness, level))
    summary.services = sorted(set(summary.services))
    return summary

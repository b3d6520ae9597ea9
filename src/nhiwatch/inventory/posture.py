"""Posture checks: each one a small function with its id, title, OWASP NHI Top 10 and NIST CSF 2.0
mapping. The table in docs/posture.md is generated from this metadata."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterator

from nhiwatch.core.severity import Severity, severity_rank
from nhiwatch.core.times import parse_time
from nhiwatch.inventory.methods import method as escalation_method
from nhiwatch.inventory.model import Identity, PostureFinding, days_between

KEY_MAX_AGE_DAYS = 90
KEY_UNUSED_DAYS = 45
IDENTITY_UNUSED_DAYS = 90


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    owasp: tuple[str, ...]
    nist: tuple[str, ...]
    rule: str
    run: Callable[[Identity, datetime], Iterator[PostureFinding]]


CHECKS: list[Check] = []


def check(id: str, title: str, owasp: tuple[str, ...], nist: tuple[str, ...], rule: str):
    def register(function: Callable[[Identity, datetime], Iterator[tuple[str, str, dict]]]):
        def run(identity: Identity, as_of: datetime) -> Iterator[PostureFinding]:
            for severity, detail, evidence in function(identity, as_of):
                yield PostureFinding(id, title, severity, list(owasp), list(nist), detail, evidence)
        CHECKS.append(Check(id, title, owasp, nist, rule, run))
        return function
    return register


def _privileged(identity: Identity) -> bool:
    caps = identity.capabilities
    return bool(caps.get("admin") or caps.get("privesc") or caps.get("privesc_conditional"))


@check("root-access-key", "Root user has an access key", ("NHI7", "NHI5"), ("PR.AA-01", "PR.AA-05"),
       "the <root_account> row of the credential report has an active access key")
def _root_key(identity: Identity, as_of: datetime):
    if identity.kind == "root" and identity.active_keys():
        yield "critical", "the account root user has an active access key: unlimited, unrevocable power", {
            "keys": [k.slot for k in identity.active_keys()]}


@check("static-key-old", "Access key older than 90 days", ("NHI7",), ("PR.AA-01",),
       f"an active key created more than {KEY_MAX_AGE_DAYS} days ago (high after a year)")
def _old_key(identity: Identity, as_of: datetime):
    for key in identity.active_keys():
        age = days_between(parse_time(key.created), as_of)
        if age is not None and age > KEY_MAX_AGE_DAYS:
            yield ("high" if age > 365 else "medium"), f"access key {key.slot} was created {age} days ago and never rotated", {
                "key": key.slot, "key_id": key.key_id, "age_days": age}


@check("static-key-unused", "Active access key unused for 45 days", ("NHI1",), ("PR.AA-01",),
       f"an active key last used more than {KEY_UNUSED_DAYS} days ago")
def _unused_key(identity: Identity, as_of: datetime):
    for key in identity.active_keys():
        idle = days_between(parse_time(key.last_used), as_of)
        if idle is not None and idle > KEY_UNUSED_DAYS:
            yield "medium", f"access key {key.slot} is active but was last used {idle} days ago", {
                "key": key.slot, "key_id": key.key_id, "idle_days": idle}


@check("static-key-never-used", "Active access key never used", ("NHI1",), ("PR.AA-01",),
       "an active key with no recorded use (medium once it is older than 45 days)")
def _never_used_key(identity: Identity, as_of: datetime):
    for key in identity.active_keys():
        if key.last_used is None:
            age = days_between(parse_time(key.created), as_of)
            severity = "medium" if age is None or age > KEY_UNUSED_DAYS else "low"
            yield severity, f"access key {key.slot} is active and has never been used" + (
                f" ({age} days old)" if age is not None else ""), {"key": key.slot, "key_id": key.key_id,
                                                                   "age_days": age}


@check("two-active-keys", "Two active access keys", ("NHI7",), ("PR.AA-01",),
       "both key slots of a user are active (a rotation left half done, or a key shared out)")
def _two_keys(identity: Identity, as_of: datetime):
    if identity.kind == "user" and len(identity.active_keys()) >= 2:
        yield "medium", "both access keys are active", {"keys": [k.slot for k in identity.active_keys()]}


@check("unused-identity", "Identity unused for 90 days or never used", ("NHI1",), ("PR.AA-01", "ID.AM-08"),
       f"no use for {IDENTITY_UNUSED_DAYS} days (role last used, key or password last used, CloudTrail); "
       "identities younger than that are not judged; medium when the identity is privileged")
def _unused_identity(identity: Identity, as_of: datetime):
    if identity.kind in ("root", "group") or identity.nhi_type == "service-linked-role" \
            or identity.category == "human":
        return  # a group is never used itself: its members are
    age = days_between(parse_time(identity.created), as_of)
    if age is not None and age <= IDENTITY_UNUSED_DAYS:
        return
    if identity.kind == "user" and not identity.has_credential_report and identity.last_active is None:
        return  # without a credential report, a user's use is simply unknown
    idle = days_between(parse_time(identity.last_active), as_of)
    severity = "medium" if _privileged(identity) else "low"
    if idle is None:
        yield severity, "never used" + (f" in the {age} days since it was created" if age is not None else ""), {
            "age_days": age}
    elif idle > IDENTITY_UNUSED_DAYS:
        yield severity, f"last used {idle} days ago ({identity.last_active_source})", {"idle_days": idle}


@check("admin-access", "Full administrative access", ("NHI5",), ("PR.AA-05",),
       "an unconditional Allow of * on *, not limited by a permission boundary or a Deny")
def _admin(identity: Identity, as_of: datetime):
    admin = identity.capabilities.get("admin")
    if admin and identity.kind != "root":
        severity = "high" if identity.is_nhi or identity.category == "unknown" else "medium"
        yield severity, "can do anything in the account, through " + ", ".join(admin), {"via": admin}


@check("service-wildcard", "Service-wide wildcard permissions", ("NHI5",), ("PR.AA-05",),
       "`service:*` or an Allow with NotAction on all resources")
def _wildcards(identity: Identity, as_of: datetime):
    wildcards = identity.capabilities.get("service_wildcards") or {}
    if wildcards and not identity.capabilities.get("admin"):
        yield "medium", "every action of " + ", ".join(sorted(wildcards)) + " on all resources", {
            "services": wildcards}


@check("privilege-escalation", "Can escalate its own privileges", ("NHI5",), ("PR.AA-05",),
       "a route to admin in the principal graph: each hop a documented method (docs/posture.md lists them) whose "
       "every permission the evaluator allows on the concrete target, honouring Deny, boundaries and conditions; "
       "medium when every route rests on a condition it cannot decide; not repeated for admins")
def _privesc(identity: Identity, as_of: datetime):
    caps = identity.capabilities
    methods = caps.get("privesc") or []
    conditional = caps.get("privesc_conditional") or []
    if (methods or conditional) and not caps.get("admin"):  # an admin needs no escalation: admin-access says it
        named = methods or conditional
        shown = ", ".join(f"{m} ({escalation_method(m).title})" for m in named[:4]) + (
            f" and {len(named) - 4} more" if len(named) > 4 else "")
        detail = f"{len(named)} escalation method(s): {shown}; shortest route: {_route_text(caps.get('privesc_route'))}"
        if not methods:
            detail = "only if conditions hold: " + detail
        yield ("high" if methods else "medium"), detail, {
            "methods": methods, "conditional": conditional, "routes": caps.get("privesc_routes") or [],
            "route": caps.get("privesc_route")}


def _short_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def _route_text(route: dict | None) -> str:
    """`sts-001 -> deploy (role) -> iam-005 on deploy`: each hop's method and where it lands."""
    if not route:
        return "none"
    steps = [f"{hop['method']} -> {_short_arn(hop['to'])}" for hop in route.get("hops", [])]
    text = " -> ".join(steps) + f" (admin: {_short_arn(route.get('admin', ''))})"
    if route.get("via_member"):
        text = f"member {_short_arn(route['via_member'])}: " + text
    return text


@check("data-access-breadth", "Reads secrets or data account-wide", ("NHI5",), ("PR.AA-05", "PR.DS-01"),
       "secretsmanager:GetSecretValue, ssm:GetParameter(s/ByPath) or s3:GetObject on every resource")
def _data(identity: Identity, as_of: datetime):
    reach = identity.capabilities.get("data_access") or []
    if reach and not identity.capabilities.get("admin"):
        yield "medium", "can read " + ", ".join(reach) + " on every resource", {"actions": reach}


@check("trust-any-principal", "Trust policy allows any principal", ("NHI5", "NHI4"), ("PR.AA-05", "PR.AA-03"),
       "Principal `*` in the trust policy: critical without conditions, medium when a condition narrows it")
def _any(identity: Identity, as_of: datetime):
    trust = identity.trust_summary
    if trust.get("any_principal"):
        yield "critical", "anyone with an AWS account can assume this role", {}
    elif trust.get("any_principal_guarded"):
        yield "medium", "Principal * narrowed only by conditions in the trust policy", {}


@check("trust-cross-account-no-external-id", "Cross-account trust without ExternalId", ("NHI3",),
       ("GV.SC-07", "PR.AA-05"), "an external account may assume the role without sts:ExternalId or MFA "
       "(confused deputy); high when the role is privileged")
def _external(identity: Identity, as_of: datetime):
    for account in identity.trust_summary.get("external_accounts", []):
        if not account["external_id"] and not account["mfa"]:
            yield ("high" if _privileged(identity) else "medium"), (
                f"account {account['account_id']} can assume it without an ExternalId"), {
                "account_id": account["account_id"], "principal": account["principal"]}


@check("oidc-subject-too-broad", "OIDC trust does not pin the workload", ("NHI6",), ("PR.AA-03", "PR.PS-01"),
       "GitHub/GitLab/EKS trust: critical without `sub` or with a wildcard owner; high for every repository of an "
       "owner (repo:org/*); medium for any branch of one repository")
def _oidc_sub(identity: Identity, as_of: datetime):
    for oidc in identity.trust_summary.get("oidc", []):
        if oidc.get("weakness"):
            yield oidc["weakness_level"], f"{oidc['provider']}: {oidc['weakness']}", {
                "provider": oidc["provider"], "subjects": oidc["subjects"]}


@check("oidc-audience", "OIDC trust does not check the audience", ("NHI6",), ("PR.AA-03",),
       "no `aud` condition, or for GitHub an `aud` other than sts.amazonaws.com")
def _oidc_aud(identity: Identity, as_of: datetime):
    for oidc in identity.trust_summary.get("oidc", []):
        audiences = oidc.get("audiences") or []
        if not audiences:
            yield "medium", f"{oidc['provider']}: no condition on `aud`", {"provider": oidc["provider"]}
        elif oidc["kind"] == "github" and any(a != "sts.amazonaws.com" for a in audiences):
            yield "low", f"{oidc['provider']}: `aud` is {', '.join(audiences)}, not sts.amazonaws.com", {
                "provider": oidc["provider"], "audiences": audiences}


@check("no-permission-boundary", "Privileged NHI without a permission boundary", ("NHI5",), ("PR.AA-05",),
       "a non-human identity that is admin or can escalate, with no permission boundary to cap it")
def _boundary(identity: Identity, as_of: datetime):
    if identity.is_nhi and identity.boundary is None and _privileged(identity) \
            and identity.nhi_type not in ("service-linked-role", "group"):  # groups cannot have one
        yield "low", "privileged and not capped by a permission boundary", {}


@check("human-use-of-nhi", "People use a workload identity", ("NHI10",), ("PR.AA-01",),
       "a user with both a console password and active keys, or a role trusted by both SAML and workloads")
def _human_use(identity: Identity, as_of: datetime):
    if identity.category == "human-use-of-nhi":
        yield "medium", "shared by people and programs: actions cannot be attributed", {}


# Only AWS itself can use a service-linked role, so what it may do is context, not a finding to act on.
_SLR_CAPPED = {"admin-access", "privilege-escalation", "data-access-breadth", "service-wildcard",
               "no-permission-boundary"}


def run_checks(identity: Identity, as_of: datetime) -> list[PostureFinding]:
    findings = [finding for c in CHECKS for finding in c.run(identity, as_of)]
    if identity.nhi_type == "service-linked-role":
        for finding in findings:
            if finding.check in _SLR_CAPPED:
                finding.severity = Severity.INFO.value
                finding.detail += " (service-linked role: only AWS can use it)"
    return sorted(findings, key=lambda f: -severity_rank(f.severity))

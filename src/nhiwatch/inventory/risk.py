"""The risk score: 0-100, the sum of four capped factors, each point with its reason.

    score = exposure (<= 30) + privilege (<= 40) + trust breadth (<= 15) + activity (<= 15)

Within a factor the largest reason counts in full and every further reason adds half of its
points (rounded down), up to the cap, so piling up small issues cannot outrank one severe one. Levels:
critical >= 70, high >= 50, medium >= 25, else low. docs/posture.md prints this table.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from nhiwatch.core.times import parse_time
from nhiwatch.inventory.model import Identity, Reason, days_between
from nhiwatch.inventory.posture import IDENTITY_UNUSED_DAYS, KEY_MAX_AGE_DAYS, KEY_UNUSED_DAYS

CAPS = {"exposure": 30, "privilege": 40, "trust": 15, "activity": 15}
LEVELS = ((70, "critical"), (50, "high"), (25, "medium"), (0, "low"))
RISK_LEVELS = tuple(name for _, name in reversed(LEVELS))  # low first: core's severity scale without "info"

SENSITIVE_SERVICES = ("iam", "sts", "kms", "secretsmanager", "organizations")


class Weight(NamedTuple):
    factor: str
    points: int
    when: str  # the docs' words for it


# Every weight the score uses, by the name the scoring code asks for it; docs/posture.md prints the
# table in this order, so what is documented is what is counted.
WEIGHTS: dict[str, Weight] = {
    "root-key": Weight("exposure", 30, "root user with an active access key"),
    "static-key": Weight("exposure", 25, "active static access key (long-lived secret)"),
    "old-key": Weight("exposure", 5, f"static key older than {KEY_MAX_AGE_DAYS} days (added to the above)"),
    "console-on-nhi": Weight("exposure", 20, "console password on a non-human identity"),
    "oidc": Weight("exposure", 15, "OIDC federation (a token from outside AWS)"),
    "external-account": Weight("exposure", 12, "assumable from another AWS account"),
    "human-sign-in": Weight("exposure", 10, "human sign-in (console, SAML, Identity Center)"),
    "service-sessions": Weight("exposure", 5, "credentials issued to an AWS service (role session)"),
    "service-linked": Weight("exposure", 0, "service-linked role (AWS manages it end to end)"),
    "admin": Weight("privilege", 40, "full administrative access"),
    "privesc": Weight("privilege", 35, "privilege escalation"),
    "privesc-conditional": Weight("privilege", 20, "privilege escalation when every path is conditional"),
    "sensitive-wildcard": Weight("privilege", 20, "service-wide wildcard on " + ", ".join(SENSITIVE_SERVICES)),
    "wildcard": Weight("privilege", 10, "other service-wide wildcard"),
    "data-access": Weight("privilege", 20, "account-wide read of secrets, parameters or objects"),
    "any-principal": Weight("trust", 15, "any principal may assume it"),
    "oidc-unpinned": Weight("trust", 12, "OIDC trust without a pinned subject (critical weakness)"),
    "oidc-broad": Weight("trust", 8, "OIDC trust for every repository of an owner, or any branch"),
    "external-unguarded": Weight("trust", 10, "external account without ExternalId or MFA"),
    "external-guarded": Weight("trust", 4, "external account guarded by ExternalId or MFA"),
    "dormant-privileged": Weight("activity", 10, f"privileged and unused for {IDENTITY_UNUSED_DAYS} days "
                                                 "(a dormant door)"),
    "unused": Weight("activity", 5, f"unused for {IDENTITY_UNUSED_DAYS} days"),
    "shared-use": Weight("activity", 8, "people use a workload identity"),
    "key-unused": Weight("activity", 5, f"active key unused for {KEY_UNUSED_DAYS} days"),
}

# The weakness level trust.py gives an OIDC subject condition -> its weight (other levels add nothing).
OIDC_WEAKNESS = {"critical": "oidc-unpinned", "high": "oidc-broad", "medium": "oidc-broad"}


def _reason(weight: str, text: str) -> Reason:
    factor, points, _when = WEIGHTS[weight]
    return Reason(factor, points, text)


def _credential_reasons(identity: Identity, as_of: datetime) -> list[Reason]:
    """Secrets someone could steal: the root user, static keys (older ones more), a console password."""
    active = identity.active_keys()
    reasons = []
    if identity.kind == "root":
        reasons.append(_reason("root-key", "root user with an active access key") if active
                       else _reason("human-sign-in", "root user (console)"))
    elif active:
        reasons.append(_reason("static-key", f"{len(active)} active static access key(s)"))
        oldest = max((days_between(parse_time(k.created), as_of) or 0) for k in active)
        if oldest > KEY_MAX_AGE_DAYS:
            reasons.append(_reason("old-key", f"oldest active key is {oldest} days old"))
    if identity.password_enabled and identity.is_nhi:
        reasons.append(_reason("console-on-nhi", "console password on a non-human identity"))
    return reasons


def _role_exposure_reasons(identity: Identity) -> list[Reason]:
    """How a role's sessions are obtained: from AWS itself, an outside token, another account, people."""
    trust = identity.trust_summary
    service_linked = identity.nhi_type == "service-linked-role"
    reasons = []
    if service_linked:
        reasons.append(_reason("service-linked", "service-linked role managed by AWS"))
    if trust.get("oidc"):
        providers = ", ".join(o["provider"] for o in trust["oidc"])
        reasons.append(_reason("oidc", f"federated through OIDC ({providers})"))
    if trust.get("external_accounts"):
        reasons.append(_reason("external-account", "assumable from account(s) " + ", ".join(
            a["account_id"] for a in trust["external_accounts"])))
    if trust.get("saml") or identity.category == "human":
        reasons.append(_reason("human-sign-in", "human sign-in through SAML or Identity Center"))
    if trust.get("services") and not service_linked:
        reasons.append(_reason("service-sessions", "sessions issued to " + ", ".join(trust["services"])))
    return reasons


def _external_account_reason(account: dict) -> Reason:
    if account["external_id"] or account["mfa"]:
        guard = "ExternalId" if account["external_id"] else "MFA"
        return _reason("external-guarded", f"external account {account['account_id']} (guarded by {guard})")
    return _reason("external-unguarded", f"external account {account['account_id']} without ExternalId")


def _role_trust_reasons(identity: Identity) -> list[Reason]:
    """How broad the trust policy is: other accounts, anyone, loosely pinned OIDC subjects."""
    trust = identity.trust_summary
    reasons = [_external_account_reason(account) for account in trust.get("external_accounts", [])]
    if trust.get("any_principal"):
        reasons.append(_reason("any-principal", "any AWS principal may assume it"))
    for oidc in trust.get("oidc", []):
        weight = OIDC_WEAKNESS.get(oidc.get("weakness_level"))
        if weight:
            reasons.append(_reason(weight, f"OIDC {oidc['provider']}: {oidc['weakness']}"))
    return reasons


def _escalation_reason(methods: list[str], conditional: list[str]) -> Reason:
    # Escalation every route of which needs a condition to hold weighs less.
    if methods:
        return _reason("privesc", f"can escalate privileges ({len(methods)} methods, e.g. {methods[0]})")
    return _reason("privesc-conditional", f"can escalate privileges if conditions hold ({len(conditional)} "
                                          f"methods, e.g. {conditional[0]})")


def _privilege_reasons(identity: Identity) -> list[Reason]:
    """What the identity can do once someone holds it."""
    caps = identity.capabilities
    reasons = []
    if caps.get("admin"):
        reasons.append(_reason("admin", "full administrative access via " + ", ".join(caps["admin"])))
    if caps.get("privesc") or caps.get("privesc_conditional"):
        reasons.append(_escalation_reason(caps.get("privesc") or [], caps.get("privesc_conditional") or []))
    for service in sorted(caps.get("service_wildcards") or {}):
        sensitive = service in SENSITIVE_SERVICES or service.startswith("*")
        reasons.append(_reason("sensitive-wildcard" if sensitive else "wildcard", f"all actions of {service}"))
    if caps.get("data_access"):
        reasons.append(_reason("data-access", "reads " + ", ".join(caps["data_access"]) + " account-wide"))
    return reasons


def _activity_reasons(identity: Identity) -> list[Reason]:
    """What the posture checks saw of its use: dormant, shared by people and programs, idle keys."""
    caps = identity.capabilities
    checks = {f.check for f in identity.findings}
    reasons = []
    if "unused-identity" in checks:
        reasons.append(_reason("dormant-privileged", f"privileged and unused for {IDENTITY_UNUSED_DAYS} days")
                       if caps.get("admin") or caps.get("privesc") or caps.get("privesc_conditional")
                       else _reason("unused", f"unused for {IDENTITY_UNUSED_DAYS} days"))
    if identity.category == "human-use-of-nhi":
        reasons.append(_reason("shared-use", "people and programs share this identity"))
    if "static-key-unused" in checks:
        reasons.append(_reason("key-unused", f"an active key has not been used for {KEY_UNUSED_DAYS} days"))
    return reasons


def _reasons(identity: Identity, as_of: datetime) -> list[Reason]:
    reasons = _credential_reasons(identity, as_of)
    if identity.kind == "role":  # only roles have a trust policy
        reasons += _role_exposure_reasons(identity) + _role_trust_reasons(identity)
    return reasons + _privilege_reasons(identity) + _activity_reasons(identity)


def score(identity: Identity, as_of: datetime) -> None:
    reasons = sorted(_reasons(identity, as_of), key=lambda r: (-r.points, r.factor, r.text))
    total = 0
    for factor, cap in CAPS.items():
        room = cap
        for rank, reason in enumerate(r for r in reasons if r.factor == factor):
            reason.counted = min(room, reason.points if rank == 0 else reason.points // 2)
            room -= reason.counted
        total += cap - room
    identity.risk_score = min(100, total)
    identity.risk_level = next(level for threshold, level in LEVELS if identity.risk_score >= threshold)
    identity.risk_reasons = reasons

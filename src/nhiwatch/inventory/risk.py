"""The risk score: 0-100, the sum of four capped factors, each point with its reason.

    score = exposure (<= 30) + privilege (<= 40) + trust breadth (<= 15) + activity (<= 15)

Within a factor the largest reason counts in full and every further reason adds half of its
points (rounded down), up to the cap, so piling up small issues cannot outrank one severe one. Levels:
critical >= 70, high >= 50, medium >= 25, else low. docs/posture.md prints this table.
"""

from __future__ import annotations

from datetime import datetime

from nhiwatch.inventory.model import Identity, Reason, days_between, parse_time

CAPS = {"exposure": 30, "privilege": 40, "trust": 15, "activity": 15}
LEVELS = ((70, "critical"), (50, "high"), (25, "medium"), (0, "low"))

# (factor, points, when) — printed in the docs
WEIGHTS: list[tuple[str, int, str]] = [
    ("exposure", 30, "root user with an active access key"),
    ("exposure", 25, "active static access key (long-lived secret)"),
    ("exposure", 5, "static key older than 90 days (added to the above)"),
    ("exposure", 20, "console password on a non-human identity"),
    ("exposure", 15, "OIDC federation (a token from outside AWS)"),
    ("exposure", 12, "assumable from another AWS account"),
    ("exposure", 10, "human sign-in (console, SAML, Identity Center)"),
    ("exposure", 5, "credentials issued to an AWS service (role session)"),
    ("exposure", 0, "service-linked role (AWS manages it end to end)"),
    ("privilege", 40, "full administrative access"),
    ("privilege", 35, "privilege escalation (20 when every path is conditional)"),
    ("privilege", 20, "service-wide wildcard on iam, sts, kms, secretsmanager, organizations"),
    ("privilege", 10, "other service-wide wildcard"),
    ("privilege", 20, "account-wide read of secrets, parameters or objects"),
    ("trust", 15, "any principal may assume it"),
    ("trust", 12, "OIDC trust without a pinned subject (critical weakness)"),
    ("trust", 8, "OIDC trust for every repository of an owner, or any branch"),
    ("trust", 10, "external account without ExternalId"),
    ("trust", 4, "external account with ExternalId"),
    ("activity", 10, "privileged and unused for 90 days (a dormant door)"),
    ("activity", 5, "unused for 90 days"),
    ("activity", 8, "people use a workload identity"),
    ("activity", 5, "active key unused for 45 days"),
]

SENSITIVE_SERVICES = {"iam", "sts", "kms", "secretsmanager", "organizations"}


def _reasons(identity: Identity, as_of: datetime) -> list[Reason]:
    reasons: list[Reason] = []
    add = lambda factor, points, text: reasons.append(Reason(factor, points, text))  # noqa: E731
    caps = identity.capabilities
    trust = identity.trust_summary
    active = identity.active_keys()
    if identity.kind == "root":
        if active:
            add("exposure", 30, "root user with an active access key")
        else:
            add("exposure", 10, "root user (console)")
    elif active:
        oldest = max((days_between(parse_time(k.created), as_of) or 0) for k in active)
        add("exposure", 25, f"{len(active)} active static access key(s)")
        if oldest > 90:
            add("exposure", 5, f"oldest active key is {oldest} days old")
    if identity.password_enabled and identity.is_nhi:
        add("exposure", 20, "console password on a non-human identity")
    if identity.kind == "role":
        if identity.nhi_type == "service-linked-role":
            add("exposure", 0, "service-linked role managed by AWS")
        if trust.get("oidc"):
            add("exposure", 15, "federated through OIDC (" + ", ".join(o["provider"] for o in trust["oidc"]) + ")")
        if trust.get("external_accounts"):
            add("exposure", 12, "assumable from account(s) " + ", ".join(
                a["account_id"] for a in trust["external_accounts"]))
        if trust.get("saml") or identity.category == "human":
            add("exposure", 10, "human sign-in through SAML or Identity Center")
        if trust.get("services") and identity.nhi_type != "service-linked-role":
            add("exposure", 5, "sessions issued to " + ", ".join(trust["services"]))
        for account in trust.get("external_accounts", []):
            if account["external_id"] or account["mfa"]:
                add("trust", 4, f"external account {account['account_id']} (guarded by "
                                f"{'ExternalId' if account['external_id'] else 'MFA'})")
            else:
                add("trust", 10, f"external account {account['account_id']} without ExternalId")
        if trust.get("any_principal"):
            add("trust", 15, "any AWS principal may assume it")
        for oidc in trust.get("oidc", []):
            if oidc.get("weakness_level") == "critical":
                add("trust", 12, f"OIDC {oidc['provider']}: {oidc['weakness']}")
            elif oidc.get("weakness_level") in ("high", "medium"):
                add("trust", 8, f"OIDC {oidc['provider']}: {oidc['weakness']}")
    if caps.get("admin"):
        add("privilege", 40, "full administrative access via " + ", ".join(caps["admin"]))
    if caps.get("privesc"):
        unconditional = [m for m in caps["privesc"] if m not in set(caps.get("privesc_conditional") or [])]
        add("privilege", 35 if unconditional else 20,
            f"can escalate privileges ({len(caps['privesc'])} methods, e.g. {caps['privesc'][0]})")
    for service in sorted(caps.get("service_wildcards") or {}):
        add("privilege", 20 if service in SENSITIVE_SERVICES or service.startswith("*") else 10,
            f"all actions of {service}")
    if caps.get("data_access"):
        add("privilege", 20, "reads " + ", ".join(caps["data_access"]) + " account-wide")
    checks = {f.check for f in identity.findings}
    if "unused-identity" in checks:
        if caps.get("admin") or caps.get("privesc"):
            add("activity", 10, "privileged and unused for 90 days")
        else:
            add("activity", 5, "unused for 90 days")
    if identity.category == "human-use-of-nhi":
        add("activity", 8, "people and programs share this identity")
    if "static-key-unused" in checks:
        add("activity", 5, "an active key has not been used for 45 days")
    return reasons


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

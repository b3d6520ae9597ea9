"""Human or non-human, and which kind of non-human identity, with the evidence for each decision.

Humans sign in to the console (password, MFA) or arrive through SAML / Identity Center; workloads
hold access keys without a console, are assumed by AWS services, or federate through OIDC. An
identity showing both is the risky middle ground: people using a workload's credentials (NHI10).
"""

from __future__ import annotations

from nhiwatch.inventory.model import Identity
from nhiwatch.inventory.trust import OidcTrust, TrustSummary


def _short(service: str) -> str:
    return service.removesuffix(".amazonaws.com").removesuffix(".amazonaws.com.cn")


def _is_sso_principal(arn: str) -> bool:
    return ":assumed-role/AWSReservedSSO_" in arn or "/aws-reserved/sso.amazonaws.com/" in arn


def _is_sso_role(identity: Identity) -> bool:
    """An IAM Identity Center permission-set role (people sign in to it)."""
    return identity.name.startswith("AWSReservedSSO_")


def _sso_session_name(arn: str) -> str:
    """The readable tail of an SSO principal: 'AWSReservedSSO_X/jane@example.com' of a session, else the role."""
    return arn.split("/", 2)[-1] if ":assumed-role/" in arn else arn.rsplit("/", 1)[-1]


def _human_signals(identity: Identity, trust: TrustSummary) -> list[str]:
    """What in the trust policy or name says people assume the role."""
    signals = []
    if trust.saml:
        signals.append("trusts SAML provider " + ", ".join(p.rsplit("/", 1)[-1] for p in trust.saml))
    elif _is_sso_role(identity):
        signals.append("IAM Identity Center permission-set role (AWSReservedSSO_)")
    sso_sessions = [p for p in trust.own_account_principals if _is_sso_principal(p)]
    if sso_sessions:
        signals.append("assumed by Identity Center (SSO) session " + ", ".join(map(_sso_session_name, sso_sessions)))
    return signals


def _machine_signals(trust: TrustSummary) -> list[str]:
    """What in the trust policy says workloads assume the role."""
    signals = []
    if trust.services:
        signals.append("assumed by AWS service " + ", ".join(trust.services))
    if trust.oidc:
        signals.append("federated through OIDC " + ", ".join(f"{o.provider} ({o.kind})" for o in trust.oidc))
    return signals


def _categorize_by_trust(identity: Identity, human: list[str], machine: list[str]) -> None:
    """People, workloads, or both (NHI10) may assume it; neither leaves the category unknown for now."""
    if human and machine:
        identity.category = "human-use-of-nhi"
        identity.evidence.append("both people and workloads can assume it: " + "; ".join(human + machine))
    elif human:
        identity.category = "human"
        identity.evidence += human
    elif machine:
        identity.category = "non-human"
        identity.evidence += machine


def _oidc_detail(oidc: OidcTrust) -> str:
    parts = [oidc.kind]
    if oidc.subjects:
        parts.append("sub " + ", ".join(oidc.subjects))
    if oidc.audiences:
        parts.append("aud " + ", ".join(oidc.audiences))
    return "; ".join(parts)


def _cross_account_detail(trust: TrustSummary) -> str:
    return ", ".join(f"{a.account_id} ({'ExternalId' if a.external_id else 'no ExternalId'})"
                     for a in trust.external_accounts)


def _assumable_within_account(trust: TrustSummary) -> bool:
    """Some principal of the account (or anyone, guarded or not) may assume it."""
    return bool(trust.own_account_principals or trust.any_principal or trust.any_principal_guarded)


def _role_type(identity: Identity, trust: TrustSummary) -> tuple[str, str, str | None]:
    """(nhi_type, type_detail, evidence of it or None): the first way of use that applies, most telling first."""
    if identity.instance_profiles:
        profiles = ", ".join(identity.instance_profiles)
        return "instance-profile-role", "instance profile " + profiles, \
            f"in instance profile {profiles}: EC2 instances run as it"
    if trust.oidc:
        return "oidc-role", _oidc_detail(trust.oidc[0]), None
    if trust.services:
        return "service-role", ", ".join(map(_short, trust.services)), None
    if trust.saml or _is_sso_role(identity):
        return "saml-role", "Identity Center" if _is_sso_role(identity) else "SAML", None
    if trust.external_accounts:
        return "cross-account-role", _cross_account_detail(trust), None
    if _assumable_within_account(trust):
        return "internal-role", ", ".join(trust.own_account_principals) or "any principal", None
    return "internal-role", "no usable trust policy", "no Allow in the trust policy: nobody can assume it"


def _explain_other_accounts(identity: Identity, trust: TrustSummary) -> None:
    """Other accounts in the trust: a cross-account role is a workload's unless people showed up above."""
    evidence = identity.evidence
    if identity.nhi_type != "cross-account-role":
        if trust.external_accounts:
            evidence.append("also trusts external account " + ", ".join(a.account_id for a in trust.external_accounts))
        return
    evidence.append("assumed from another account: " + identity.type_detail)
    if identity.category == "unknown":
        identity.category = "non-human"
        evidence.append("cross-account roles are used by vendors' and other accounts' workloads")


def _explain_internal(identity: Identity, trust: TrustSummary) -> None:
    """An internal role nothing else classified: role chaining is workloads; users could be either."""
    principals = trust.own_account_principals
    if principals and all(":role/" in p for p in principals):
        identity.category = "non-human"
        identity.evidence.append("assumed only by other roles of the account (role chaining by workloads)")
    else:
        identity.evidence.append("assumed by account principals (" + (", ".join(principals) or "any") +
                                 "): whether people or workloads use it is not visible in IAM")


def classify_role(identity: Identity, trust: TrustSummary) -> None:
    path = identity.path or "/"
    if path.startswith("/aws-service-role/"):
        # AWS creates, trusts and uses service-linked roles; nothing else in the trust matters.
        identity.category, identity.nhi_type = "non-human", "service-linked-role"
        identity.type_detail = path.strip("/").split("/", 1)[-1]
        identity.evidence.append(f"path {path}: service-linked role of {identity.type_detail}, managed by AWS")
        return
    _categorize_by_trust(identity, _human_signals(identity, trust), _machine_signals(trust))
    identity.nhi_type, identity.type_detail, type_evidence = _role_type(identity, trust)
    if type_evidence:
        identity.evidence.append(type_evidence)
    if identity.nhi_type == "instance-profile-role" and identity.category == "unknown":
        identity.category = "non-human"  # EC2 instances run as it, whoever else may assume it
    _explain_other_accounts(identity, trust)
    if identity.category == "unknown" and identity.nhi_type == "internal-role":
        _explain_internal(identity, trust)


def classify_user(identity: Identity) -> None:
    evidence = identity.evidence
    if identity.kind == "root":
        identity.category, identity.nhi_type, identity.type_detail = "human", "root", "account root user"
        evidence.append("the account's root user")
        return
    active = identity.active_keys()
    if not identity.has_credential_report:
        identity.nhi_type = "user"
        identity.type_detail = "no credential report"
        evidence.append("no credential report for this account: console and key use unknown")
        return
    console = bool(identity.password_enabled)
    if console:
        evidence.append("console password enabled" + (" with MFA" if identity.mfa_active else " without MFA"))
    if active:
        used = [k for k in active if k.last_used]
        evidence.append(f"{len(active)} active access key(s)" + (f", {len(used)} used" if used else ", never used"))
    if console and active:
        identity.category, identity.nhi_type = "human-use-of-nhi", "user-with-keys"
        identity.type_detail = "console and access keys"
        evidence.append("console sign-in and static keys on one user: people and programs share it")
    elif active:
        identity.category, identity.nhi_type = "non-human", "user-with-keys"
        identity.type_detail = f"{len(active)} active key(s)"
    elif console or identity.mfa_active:
        identity.category, identity.nhi_type, identity.type_detail = "human", "console-user", "console only"
    else:
        identity.nhi_type, identity.type_detail = "user", "no active credentials"
        if identity.keys:
            identity.category = "non-human"
            evidence.append("only inactive access keys, no console: a workload user that was switched off")
        else:
            evidence.append("no console password and no access keys")


def classify_group(identity: Identity, members: list[Identity]) -> None:
    """A group is what its members are: it stands for them in the escalation graph."""
    identity.nhi_type = "group"
    identity.type_detail = f"{len(members)} member(s)"
    if not members:
        identity.evidence.append("a group without members")
        return
    identity.evidence.append("members: " + ", ".join(f"{m.name} ({m.category})" for m in members))
    if any(m.is_nhi for m in members):  # a workload's powers are in it, whoever else is a member
        identity.category = "non-human"
    elif all(m.category == "human" for m in members):
        identity.category = "human"

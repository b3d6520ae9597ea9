"""Human or non-human, and which kind of non-human identity, with the evidence for each decision.

Humans sign in to the console (password, MFA) or arrive through SAML / Identity Center; workloads
hold access keys without a console, are assumed by AWS services, or federate through OIDC. An
identity showing both is the risky middle ground: people using a workload's credentials (NHI10).
"""

from __future__ import annotations

from nhiwatch.inventory.model import Identity
from nhiwatch.inventory.trust import TrustSummary

COMPUTE_SERVICES = ("lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com",
                    "eks.amazonaws.com", "batch.amazonaws.com", "glue.amazonaws.com", "sagemaker.amazonaws.com",
                    "codebuild.amazonaws.com", "states.amazonaws.com", "apprunner.amazonaws.com")


def _short(service: str) -> str:
    return service.removesuffix(".amazonaws.com").removesuffix(".amazonaws.com.cn")


def _is_sso_principal(arn: str) -> bool:
    return ":assumed-role/AWSReservedSSO_" in arn or "/aws-reserved/sso.amazonaws.com/" in arn


def classify_role(identity: Identity, trust: TrustSummary) -> None:
    evidence = identity.evidence
    path = identity.path or "/"
    human_signals, machine_signals = [], []
    if trust.saml or identity.name.startswith("AWSReservedSSO_"):
        human_signals.append("trusts SAML provider " + ", ".join(p.rsplit("/", 1)[-1] for p in trust.saml)
                             if trust.saml else "IAM Identity Center permission-set role (AWSReservedSSO_)")
    sso_sessions = [p for p in trust.own_account_principals if _is_sso_principal(p)]
    if sso_sessions:
        human_signals.append("assumed by Identity Center (SSO) session " + ", ".join(
            p.split("/", 2)[-1] if ":assumed-role/" in p else p.rsplit("/", 1)[-1] for p in sso_sessions))
    if trust.services:
        machine_signals.append("assumed by AWS service " + ", ".join(trust.services))
    if trust.oidc:
        machine_signals.append("federated through OIDC " + ", ".join(f"{o.provider} ({o.kind})" for o in trust.oidc))
    if path.startswith("/aws-service-role/"):
        identity.category, identity.nhi_type = "non-human", "service-linked-role"
        identity.type_detail = path.strip("/").split("/", 1)[-1]
        evidence.append(f"path {path}: service-linked role of {identity.type_detail}, managed by AWS")
        return
    if human_signals and machine_signals:
        identity.category = "human-use-of-nhi"
        evidence.append("both people and workloads can assume it: " + "; ".join(human_signals + machine_signals))
    elif human_signals:
        identity.category = "human"
        evidence += human_signals
    elif machine_signals:
        identity.category = "non-human"
        evidence += machine_signals
    if identity.instance_profiles:
        identity.nhi_type = "instance-profile-role"
        identity.type_detail = "instance profile " + ", ".join(identity.instance_profiles)
        evidence.append(f"in instance profile {', '.join(identity.instance_profiles)}: EC2 instances run as it")
        if identity.category == "unknown":
            identity.category = "non-human"
    elif trust.oidc:
        identity.nhi_type = "oidc-role"
        first = trust.oidc[0]
        parts = [first.kind]
        if first.subjects:
            parts.append("sub " + ", ".join(first.subjects))
        if first.audiences:
            parts.append("aud " + ", ".join(first.audiences))
        identity.type_detail = "; ".join(parts)
    elif trust.services:
        identity.nhi_type = "service-role"
        identity.type_detail = ", ".join(_short(s) for s in trust.services)
    elif trust.saml or identity.name.startswith("AWSReservedSSO_"):
        identity.nhi_type = "saml-role"
        identity.type_detail = "Identity Center" if identity.name.startswith("AWSReservedSSO_") else "SAML"
    elif trust.external_accounts:
        identity.nhi_type = "cross-account-role"
        identity.type_detail = ", ".join(
            f"{a.account_id} ({'ExternalId' if a.external_id else 'no ExternalId'})" for a in trust.external_accounts)
    elif trust.own_account_principals or trust.any_principal or trust.any_principal_guarded:
        identity.nhi_type = "internal-role"
        identity.type_detail = ", ".join(trust.own_account_principals) or "any principal"
    else:
        identity.nhi_type = "internal-role"
        identity.type_detail = "no usable trust policy"
        evidence.append("no Allow in the trust policy: nobody can assume it")
    if trust.external_accounts and identity.nhi_type != "cross-account-role":
        evidence.append("also trusts external account " + ", ".join(a.account_id for a in trust.external_accounts))
    if identity.nhi_type == "cross-account-role":
        evidence.append("assumed from another account: " + identity.type_detail)
        if identity.category == "unknown":
            identity.category = "non-human"
            evidence.append("cross-account roles are used by vendors' and other accounts' workloads")
    if identity.category == "unknown" and identity.nhi_type == "internal-role":
        principals = trust.own_account_principals
        if principals and all(":role/" in p for p in principals):
            identity.category = "non-human"
            evidence.append("assumed only by other roles of the account (role chaining by workloads)")
        else:
            evidence.append("assumed by account principals (" + (", ".join(principals) or "any") +
                            "): whether people or workloads use it is not visible in IAM")


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

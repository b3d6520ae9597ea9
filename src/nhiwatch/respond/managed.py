"""Identities that AWS, or an AWS service on the organisation's behalf, owns: response never changes them.

A deny, a quarantine policy or a revoked session on one of these breaks the service that owns it (or
locks the organisation out), and the service may put the role back anyway. The fix belongs upstream:
the permission set in IAM Identity Center, the Control Tower landing zone, the StackSet. So a playbook
lists them as skipped, with the reason, and the executor refuses them.
"""

from __future__ import annotations

from nhiwatch.respond.actions import Target

ORG_ACCESS_ROLE = "OrganizationAccountAccessRole"
STACKSET_ROLES = ("awscloudformationstacksetexecutionrole", "awscloudformationstacksetadministrationrole")


def aws_managed(target: Target, *, allow_org_access: bool = False) -> str | None:
    """Why nhiwatch must not act on the identity (it is AWS-managed), or None."""
    if target.kind != "role":
        return None
    resource = target.arn.split(":", 5)[5]  # role/<path>/<name>
    name = target.name.lower()  # role names are unique without regard to case
    if target.service_linked or resource.startswith("role/aws-service-role/"):
        return "a service-linked role: AWS owns it and session revocation does not apply"
    if resource.startswith("role/aws-reserved/sso.amazonaws.com/") or name.startswith("awsreservedsso_"):
        return ("an IAM Identity Center role (AWSReservedSSO_*): Identity Center manages it; change the permission "
                "set or the user's assignment instead")
    if name.startswith("awscontroltower") or name.startswith("aws-controltower-"):
        return "a Control Tower role: Control Tower manages it and changing it breaks the landing zone"
    if name in STACKSET_ROLES or name.startswith("stacksets-exec-"):
        return "a CloudFormation StackSets role: StackSets deploys through it into every account"
    if name == ORG_ACCESS_ROLE.lower() and not allow_org_access:
        return (f"the Organizations access role ({ORG_ACCESS_ROLE}): the management account's way into this account; "
                "act on it only when allowed explicitly (allow_organization_access_role)")
    return None

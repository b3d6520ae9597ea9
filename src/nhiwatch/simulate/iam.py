"""IAM files for each simulated account, agreeing with the traffic: the output of
`aws iam get-account-authorization-details` and the credential report CSV.

Same roles, users, keys and trust policies as the CloudTrail; last-used dates come from the
generated events.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import orjson

from nhiwatch.simulate.org import Identity, Org

CREDENTIAL_REPORT_COLUMNS = [
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
    "password_next_rotation", "mfa_active", "access_key_1_active", "access_key_1_last_rotated",
    "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
    "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
    "access_key_2_last_used_region", "access_key_2_last_used_service", "cert_1_active", "cert_1_last_rotated",
    "cert_2_active", "cert_2_last_rotated"]

# The AWS managed policies the simulated identities use (simplified to their effect).
AWS_MANAGED = {
    "AdministratorAccess": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    "PowerUserAccess": [{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
                        {"Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole",
                                                       "iam:ListRoles", "organizations:DescribeOrganization",
                                                       "account:ListRegions"], "Resource": "*"}],
    "ReadOnlyAccess": [{"Effect": "Allow", "Action": ["*:Describe*", "*:Get*", "*:List*", "s3:GetObject",
                                                      "cloudtrail:LookupEvents"], "Resource": "*"}],
    "SecurityAudit": [{"Effect": "Allow", "Action": ["*:Describe*", "*:List*", "*:GetBucketPolicy",
                                                     "iam:GetAccountAuthorizationDetails", "iam:GenerateCredentialReport"],
                       "Resource": "*"}],
    "AWSLambdaBasicExecutionRole": [{"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                                                                   "logs:PutLogEvents"], "Resource": "*"}],
    "AmazonSSMManagedInstanceCore": [{"Effect": "Allow", "Action": ["ssm:UpdateInstanceInformation",
                                                                    "ssm:ListInstanceAssociations", "ssmmessages:*",
                                                                    "ec2messages:*", "ssm:GetParameter",
                                                                    "ssm:PutInventory", "ssm:PutComplianceItems",
                                                                    "ssm:UpdateInstanceAssociationStatus",
                                                                    "ssm:GetDeployablePatchSnapshotForInstance"],
                                      "Resource": "*"}],
    "ViewOnlyAccess": [{"Effect": "Allow", "Action": ["*:List*", "*:Describe*", "s3:ListAllMyBuckets",
                                                      "iam:GetAccountSummary"], "Resource": "*"}],
    "AmazonECSTaskExecutionRolePolicy": [{"Effect": "Allow", "Action": [
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}],
    "AWSBackupServiceRolePolicyForBackup": [{"Effect": "Allow", "Action": [
        "ec2:CreateSnapshot", "ec2:CreateTags", "ec2:DeleteSnapshot", "ec2:DescribeSnapshots", "ec2:DescribeVolumes",
        "dynamodb:CreateBackup", "dynamodb:DescribeTable", "dynamodb:DeleteBackup", "rds:CreateDBSnapshot",
        "backup:DescribeBackupVault", "tag:GetResources"], "Resource": "*"}],
    "AWSBackupServiceRolePolicyForRestores": [{"Effect": "Allow", "Action": [
        "ec2:CreateVolume", "dynamodb:RestoreTableFromBackup", "rds:RestoreDBInstanceFromDBSnapshot"],
        "Resource": "*"}],
    "AmazonGuardDutyServiceRolePolicy": [{"Effect": "Allow", "Action": [
        "ec2:Describe*", "eks:ListClusters", "eks:DescribeCluster", "ecs:ListClusters", "ecs:DescribeClusters",
        "lambda:ListFunctions", "organizations:DescribeOrganization", "s3:ListAllMyBuckets", "s3:GetBucket*"],
        "Resource": "*"}],
    "AmazonInspector2ServiceRolePolicy": [{"Effect": "Allow", "Action": [
        "ec2:DescribeInstances", "ec2:DescribeImages", "ssm:DescribeInstanceInformation", "ssm:ListInventoryEntries",
        "ecr:DescribeRepositories", "ecr:DescribeImages", "lambda:ListFunctions", "lambda:GetFunction",
        "organizations:DescribeOrganization"], "Resource": "*"}],
    "AccessAnalyzerServiceRolePolicy": [{"Effect": "Allow", "Action": [
        "iam:GetRole", "iam:ListRoles", "s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketPolicyStatus",
        "s3:GetBucketPublicAccessBlock", "s3:ListAllMyBuckets", "kms:ListKeys", "kms:GetKeyPolicy",
        "lambda:ListFunctions", "lambda:GetPolicy", "sqs:ListQueues", "secretsmanager:ListSecrets",
        "secretsmanager:GetResourcePolicy"], "Resource": "*"}],
    "ComputeOptimizerServiceRolePolicy": [{"Effect": "Allow", "Action": [
        "ec2:DescribeInstances", "ec2:DescribeVolumes", "autoscaling:DescribeAutoScalingGroups",
        "lambda:ListFunctions", "lambda:GetFunctionConfiguration", "ecs:ListClusters", "ecs:ListServices",
        "cloudwatch:GetMetricData"], "Resource": "*"}],
    "AutoScalingServiceRolePolicy": [{"Effect": "Allow", "Action": [
        "ec2:RunInstances", "ec2:TerminateInstances", "ec2:CreateTags", "ec2:Describe*", "iam:PassRole"],
        "Resource": "*"}],
}


def _date(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _report_date(seconds: float | None) -> str:
    if seconds is None:
        return "N/A"
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _tags(ident: Identity) -> list[dict]:
    if ident.path.startswith("/aws-service-role/") or ident.archetype in ("aws_backup", "scheduler_role",
                                                                          "stepfunctions_role"):
        return []  # made by AWS or by a console wizard: untagged
    return [{"Key": "team", "Value": ident.team}, {"Key": "owner", "Value": f"{ident.team}@acme.example"},
            {"Key": "archetype", "Value": ident.archetype}]


def _managed_ref(arn: str) -> dict:
    return {"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn}


def authorization_details(org: Org, account_id: str, last_used: dict) -> dict:
    account = next(a for a in org.accounts if a.id == account_id)
    roles, users, managed = [], [], set()
    for ident in account.identities:
        managed.update(ident.managed)
        if ident.is_user:
            users.append({"Path": ident.path, "UserName": ident.name, "UserId": ident.unique_id, "Arn": ident.arn,
                          "CreateDate": _date(ident.created), "UserPolicyList": ident.policies, "GroupList": [],
                          "AttachedManagedPolicies": [_managed_ref(a) for a in ident.managed], "Tags": _tags(ident)})
            continue
        used = last_used.get(ident.arn)
        role = {"Path": ident.path, "RoleName": ident.name, "RoleId": ident.unique_id, "Arn": ident.arn,
                "CreateDate": _date(ident.created), "AssumeRolePolicyDocument": ident.trust_policy,
                "MaxSessionDuration": 3600, "InstanceProfileList": [], "RolePolicyList": ident.policies,
                "AttachedManagedPolicies": [_managed_ref(a) for a in ident.managed], "Tags": _tags(ident),
                "RoleLastUsed": {"LastUsedDate": _date(used[0]), "Region": used[1]} if used else {}}
        if ident.archetype == "ec2_instance":
            role["InstanceProfileList"] = [{
                "Path": "/", "InstanceProfileName": ident.name, "InstanceProfileId": "AIPA" + ident.unique_id[4:],
                "Arn": f"arn:aws:iam::{account_id}:instance-profile/{ident.name}",
                "CreateDate": _date(ident.created),
                "Roles": [{k: role[k] for k in ("Path", "RoleName", "RoleId", "Arn", "CreateDate",
                                                "AssumeRolePolicyDocument")}]}]
        roles.append(role)
    policies = []
    for arn in sorted(managed):
        name = arn.rsplit("/", 1)[-1]
        statements = AWS_MANAGED.get(name, [{"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*"}])
        policies.append({"PolicyName": name, "PolicyId": "ANPA" + name.upper()[:17].ljust(17, "X"), "Arn": arn,
                         "Path": arn.split(":policy", 1)[1].rsplit("/", 1)[0] + "/", "DefaultVersionId": "v1",
                         "AttachmentCount": 1, "PermissionsBoundaryUsageCount": 0, "IsAttachable": True,
                         "CreateDate": "2015-02-06T18:39:46+00:00", "UpdateDate": "2015-02-06T18:39:46+00:00",
                         "PolicyVersionList": [{"Document": {"Version": "2012-10-17", "Statement": statements},
                                                "VersionId": "v1", "IsDefaultVersion": True,
                                                "CreateDate": "2015-02-06T18:39:46+00:00"}]})
    return {"UserDetailList": users, "GroupDetailList": [], "RoleDetailList": roles, "Policies": policies,
            "IsTruncated": False}


def credential_report(org: Org, account_id: str, last_used: dict) -> str:
    account = next(a for a in org.accounts if a.id == account_id)
    rotations = {c.identity: c for c in org.changes if c.kind == "key_rotation" and c.account == account_id}
    # A rotation function replaces the key: the old one inactive the next day, deleted the day after.
    replaced = {c.identity: c for c in org.changes if c.kind == "key_rotation_function" and c.account == account_id}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CREDENTIAL_REPORT_COLUMNS)
    root_created = min(i.created for i in account.identities) - 86400 * 30
    writer.writerow(["<root_account>", f"arn:aws:iam::{account_id}:root", _report_date(root_created), "not_supported",
                     "no_information", "not_supported", "not_supported", "true", "false", "N/A", "N/A", "N/A", "N/A",
                     "false", "N/A", "N/A", "N/A", "N/A", "false", "N/A", "false", "N/A"])
    for ident in account.identities:
        if not ident.is_user:
            continue
        keys = []
        for key in ident.access_keys:
            keys.append((key["id"], key["created"], True))
        rotation = rotations.get(ident.key)
        if rotation:
            keys[0] = (keys[0][0], keys[0][1], False)  # deactivated after the rotation
            keys.append((rotation.detail["new_key"], rotation.when, True))
        rotated = replaced.get(ident.key)
        if rotated and rotated.when < org.end:
            old = next((k for k in keys if k[0] == rotated.detail["old_key"]), None)
            keys = [(rotated.detail["new_key"], rotated.when, True)] + [k for k in keys if k is not old]
            deactivated = rotated.when + 86400 - 60 < org.end  # the function's run the next day
            deleted = rotated.when + 2 * 86400 - 60 < org.end  # and the day after
            if old is not None and not deleted:
                keys.append((old[0], old[1], not deactivated))
        cells = []
        for slot in range(2):
            if slot < len(keys):
                key_id, created, active = keys[slot]
                used = last_used.get(key_id)
                cells += ["true" if active else "false", _report_date(created),
                          _report_date(used[0]) if used else "N/A", used[1] if used else "N/A",
                          used[2] if used else "N/A"]
            else:
                cells += ["false", "N/A", "N/A", "N/A", "N/A"]
        writer.writerow([ident.name, ident.arn, _report_date(ident.created), "false", "N/A", "N/A", "N/A", "false",
                         *cells, "false", "N/A", "false", "N/A"])
    return buffer.getvalue()


def write_account_files(folder: Path, org: Org, last_used: dict) -> None:
    for account in org.accounts:
        target = folder / account.id
        target.mkdir(parents=True, exist_ok=True)
        details = authorization_details(org, account.id, last_used)
        (target / "authorization-details.json").write_bytes(orjson.dumps(details, option=orjson.OPT_INDENT_2))
        (target / "credential-report.csv").write_text(credential_report(org, account.id, last_used))

"""Sensitive API calls: what each one does for an attacker (tactic), how much it matters (weight 1-3),
and the ATT&CK techniques and Stratus Red Team techniques it belongs to.

Facts gathered from AWS documentation, GuardDuty finding types, Stratus Red Team and public
detection rule sets. The keys are nhiwatch's `api` field: `<service prefix>:<eventName>`.
Weight 3: one call is an incident on an identity that never makes it. Weight 2: worth a person's
look when new. Weight 1: notable only together with other signals.
"""

from __future__ import annotations

from typing import NamedTuple


class Sensitive(NamedTuple):
    tactic: str
    weight: int
    mitre: tuple[str, ...]
    stratus: tuple[str, ...] = ()


def _entries(tactic: str, weight: int, mitre: tuple[str, ...], apis: str, stratus: tuple[str, ...] = ()):
    return {api: Sensitive(tactic, weight, mitre, stratus) for api in apis.split()}


CATALOG: dict[str, Sensitive] = {}
CATALOG |= _entries("privilege-escalation", 3, ("T1098.003",), """
    iam:AttachUserPolicy iam:AttachRolePolicy iam:AttachGroupPolicy iam:PutUserPolicy iam:PutRolePolicy
    iam:PutGroupPolicy iam:CreatePolicyVersion iam:SetDefaultPolicyVersion iam:AddUserToGroup
    iam:PutUserPermissionsBoundary iam:DeleteUserPermissionsBoundary iam:DeleteRolePermissionsBoundary""")
# Escalation without an IAM write: a privileged role handed to compute the caller controls (iam:PassRole
# is not logged; these calls are where it shows) or a root session (Rhino Security Labs' and
# pathfinding.cloud's escalation methods; sts:AssumeRoot from AWS's centralized root access, 2024).
CATALOG |= _entries("privilege-escalation", 2, ("T1548",), """
    ec2:AssociateIamInstanceProfile ec2:ReplaceIamInstanceProfileAssociation glue:CreateDevEndpoint
    glue:UpdateDevEndpoint sagemaker:CreateNotebookInstance sagemaker:CreatePresignedNotebookInstanceUrl
    datapipeline:CreatePipeline codebuild:CreateProject codebuild:UpdateProject
    codestar:CreateProjectFromTemplate cloudformation:CreateStackSet""")
CATALOG |= _entries("privilege-escalation", 3, ("T1078.004",), "sts:AssumeRoot")
CATALOG |= _entries("privilege-escalation", 1, ("T1548",), """
    lambda:CreateFunction20150331 lambda:CreateEventSourceMapping20150331 ecs:RunTask
    sagemaker:CreateTrainingJob sagemaker:CreateProcessingJob""")
CATALOG |= _entries("persistence", 3, ("T1136.003",), "iam:CreateUser", ("aws.persistence.iam-create-admin-user",))
CATALOG |= _entries("persistence", 3, ("T1098.001",), "iam:CreateAccessKey", ("aws.persistence.iam-backdoor-user",))
CATALOG |= _entries("persistence", 3, ("T1098.001",), "iam:CreateLoginProfile iam:UpdateLoginProfile",
                    ("aws.persistence.iam-create-user-login-profile",))
CATALOG |= _entries("persistence", 3, ("T1098.003",), "iam:UpdateAssumeRolePolicy", ("aws.persistence.iam-backdoor-role",))
CATALOG |= _entries("persistence", 3, ("T1098.003",), "iam:CreateRole", ("aws.persistence.iam-create-backdoor-role",))
CATALOG |= _entries("persistence", 3, ("T1550.001",), "sts:GetFederationToken", ("aws.persistence.sts-federation-token",))
CATALOG |= _entries("persistence", 2, ("T1098",), """
    iam:CreateServiceSpecificCredential iam:UploadSSHPublicKey iam:CreateVirtualMFADevice iam:EnableMFADevice
    iam:DeactivateMFADevice iam:CreateOpenIDConnectProvider iam:CreateSAMLProvider iam:UpdateSAMLProvider
    iam:UploadServerCertificate iam:UploadSigningCertificate iam:CreateInstanceProfile iam:AddRoleToInstanceProfile
    sso:CreateAccountAssignment rolesanywhere:CreateTrustAnchor""")
CATALOG |= _entries("persistence", 2, ("T1525",), "lambda:UpdateFunctionCode lambda:UpdateFunctionCode20150331v2",
                    ("aws.persistence.lambda-overwrite-code",))
CATALOG |= _entries("persistence", 2, ("T1546",), """
    lambda:PublishLayerVersion lambda:PublishLayerVersion20181031 lambda:UpdateFunctionConfiguration
    lambda:UpdateFunctionConfiguration20150331v2""", ("aws.persistence.lambda-layer-extension",))
CATALOG |= _entries("persistence", 2, ("T1546",), "lambda:AddPermission lambda:AddPermission20150331v2",
                    ("aws.persistence.lambda-backdoor-function",))
CATALOG |= _entries("persistence", 2, ("T1098",), "rolesanywhere:CreateProfile", ("aws.persistence.rolesanywhere-create-trust-anchor",))
CATALOG |= _entries("defense-evasion", 3, ("T1562.008",), "cloudtrail:StopLogging", ("aws.defense-evasion.cloudtrail-stop",))
CATALOG |= _entries("defense-evasion", 3, ("T1562.008",), "cloudtrail:DeleteTrail", ("aws.defense-evasion.cloudtrail-delete",))
CATALOG |= _entries("defense-evasion", 3, ("T1562.008",), "cloudtrail:PutEventSelectors cloudtrail:PutInsightSelectors",
                    ("aws.defense-evasion.cloudtrail-event-selectors",))
CATALOG |= _entries("defense-evasion", 3, ("T1562.008",), "cloudtrail:UpdateTrail",
                    ("aws.defense-evasion.cloudtrail-lifecycle-rule",))
CATALOG |= _entries("defense-evasion", 3, ("T1562.008",), "ec2:DeleteFlowLogs", ("aws.defense-evasion.vpc-remove-flow-logs",))
CATALOG |= _entries("defense-evasion", 3, ("T1562.001",), """
    guardduty:DeleteDetector guardduty:UpdateDetector guardduty:DisassociateFromMasterAccount
    guardduty:DisassociateFromAdministratorAccount guardduty:CreateIPSet guardduty:UpdateIPSet
    guardduty:DeletePublishingDestination guardduty:CreateFilter guardduty:UpdateFilter
    config:StopConfigurationRecorder config:DeleteConfigurationRecorder config:DeleteDeliveryChannel
    config:DeleteConfigRule securityhub:DisableSecurityHub securityhub:BatchUpdateFindings
    detective:DeleteGraph access-analyzer:DeleteAnalyzer macie2:DisableMacie inspector2:Disable
    organizations:LeaveOrganization cloudtrail:DeleteEventDataStore cloudtrail:StopEventDataStoreIngestion""")
CATALOG |= _entries("defense-evasion", 3, ("T1562.008",), "route53resolver:DeleteResolverQueryLogConfig",
                    ("aws.defense-evasion.dns-delete-logs",))
CATALOG |= _entries("defense-evasion", 2, ("T1562.008",), """
    logs:DeleteLogGroup logs:DeleteLogStream logs:PutRetentionPolicy s3:PutBucketLogging
    s3:PutBucketLifecycle s3:PutLifecycleConfiguration kms:ScheduleKeyDeletion kms:DisableKey
    ec2:DisableEbsEncryptionByDefault wafv2:DeleteLoggingConfiguration iam:UpdateAccountPasswordPolicy
    iam:DeleteAccountPasswordPolicy""")
CATALOG |= _entries("credential-access", 2, ("T1555.006",), "secretsmanager:GetSecretValue",
                    ("aws.credential-access.secretsmanager-retrieve-secrets",))
CATALOG |= _entries("credential-access", 3, ("T1555.006",), "secretsmanager:BatchGetSecretValue",
                    ("aws.credential-access.secretsmanager-batch-retrieve-secrets",))
CATALOG |= _entries("credential-access", 2, ("T1552",), "ssm:GetParameters ssm:GetParameter ssm:GetParametersByPath",
                    ("aws.credential-access.ssm-retrieve-securestring-parameters",))
CATALOG |= _entries("credential-access", 3, ("T1552.005",), "ec2:GetPasswordData",
                    ("aws.credential-access.ec2-get-password-data",))
CATALOG |= _entries("credential-access", 2, ("T1552",), """
    ecr:GetAuthorizationToken redshift:GetClusterCredentials rds:GenerateDBAuthToken kms:Decrypt
    codecommit:GetCredentials sts:GetSessionToken""")
CATALOG |= _entries("discovery", 2, ("T1580",), "ec2:DescribeInstanceAttribute", ("aws.discovery.ec2-download-user-data",))
CATALOG |= _entries("discovery", 1, ("T1087.004",), """
    iam:ListUsers iam:ListRoles iam:ListAccessKeys iam:GetAccountAuthorizationDetails iam:ListAttachedUserPolicies
    iam:ListAttachedRolePolicies iam:ListPolicies iam:GetAccountSummary organizations:ListAccounts
    sts:GetCallerIdentity""", ("aws.discovery.ec2-enumerate-from-instance",))
CATALOG |= _entries("exfiltration", 3, ("T1537",), "ec2:ModifySnapshotAttribute", ("aws.exfiltration.ec2-share-ebs-snapshot",))
CATALOG |= _entries("exfiltration", 3, ("T1537",), "ec2:ModifyImageAttribute", ("aws.exfiltration.ec2-share-ami",))
CATALOG |= _entries("exfiltration", 3, ("T1537",), "rds:ModifyDBSnapshotAttribute rds:ModifyDBClusterSnapshotAttribute",
                    ("aws.exfiltration.rds-share-snapshot",))
CATALOG |= _entries("exfiltration", 3, ("T1537",), "s3:PutBucketPolicy s3:PutBucketAcl s3:DeleteBucketPolicy "
                    "s3:PutBucketPublicAccessBlock s3:DeletePublicAccessBlock s3:PutObjectAcl",
                    ("aws.exfiltration.s3-backdoor-bucket-policy",))
CATALOG |= _entries("exfiltration", 3, ("T1537",), "s3:PutBucketReplication", ("aws.exfiltration.s3-replicate-bucket",))
CATALOG |= _entries("exfiltration", 2, ("T1537",), "ec2:CreateSnapshot ec2:CopySnapshot rds:CreateDBSnapshot "
                    "ec2:CreateImage ec2:ExportImage rds:StartExportTask")
CATALOG |= _entries("defense-evasion", 3, ("T1562.007",), "ec2:AuthorizeSecurityGroupIngress",
                    ("aws.exfiltration.ec2-security-group-open-port-22-ingress",))
CATALOG |= _entries("lateral-movement", 2, ("T1651",), "ssm:SendCommand ssm:StartSession ec2-instance-connect:SendSSHPublicKey "
                    "ecs:ExecuteCommand", ("aws.execution.ssm-send-command", "aws.execution.ssm-start-session"))
CATALOG |= _entries("impact", 2, ("T1496",), "ec2:RunInstances ec2:RequestSpotInstances ec2:RequestSpotFleet "
                    "ec2:CreateFleet", ("aws.execution.ec2-launch-unusual-instances",))
CATALOG |= _entries("impact", 2, ("T1485",), """
    ec2:TerminateInstances ec2:DeleteSnapshot ec2:DeleteVolume rds:DeleteDBInstance rds:DeleteDBCluster
    s3:DeleteBucket dynamodb:DeleteTable secretsmanager:DeleteSecret kms:ScheduleKeyDeletion
    backup:DeleteBackupVault backup:DeleteRecoveryPoint""", ("aws.impact.s3-ransomware-batch-deletion",))
CATALOG |= _entries("impact", 2, ("T1496",), "bedrock:InvokeModel bedrock:InvokeModelWithResponseStream "
                    "bedrock:PutFoundationModelEntitlement", ("aws.impact.bedrock-invoke-model",))
CATALOG |= _entries("initial-access", 2, ("T1078.004",), "signin:ConsoleLogin signin:GetSigninToken",
                    ("aws.initial-access.console-login-without-mfa",))

CATALOG |= _entries("lateral-movement", 3, ("T1021",), "ec2:SendSerialConsoleSSHPublicKey ec2:EnableSerialConsoleAccess",
                    ("aws.lateral-movement.ec2-serial-console-send-ssh-public-key",))
CATALOG |= _entries("lateral-movement", 2, ("T1021",), "ec2-instance-connect:SendSSHPublicKey",
                    ("aws.lateral-movement.ec2-instance-connect",))
CATALOG |= _entries("persistence", 2, ("T1059.009",), "ec2:ModifyInstanceAttribute", ("aws.execution.ec2-user-data",))
CATALOG |= _entries("impact", 2, ("T1496",), "bedrock:PutUseCaseForModelAccess bedrock:CreateFoundationModelAgreement",
                    ("aws.impact.bedrock-invoke-model",))
CATALOG |= _entries("defense-evasion", 3, ("T1562.008",), "organizations:LeaveOrganization",
                    ("aws.defense-evasion.organizations-leave",))
CATALOG |= _entries("persistence", 3, ("T1098",), "rolesanywhere:CreateTrustAnchor",
                    ("aws.persistence.rolesanywhere-create-trust-anchor",))
CATALOG |= _entries("privilege-escalation", 3, ("T1098.001",), "iam:UpdateLoginProfile",
                    ("aws.privilege-escalation.iam-update-user-login-profile",))

TACTIC_ORDER = ("initial-access", "discovery", "credential-access", "privilege-escalation", "persistence",
                "lateral-movement", "defense-evasion", "exfiltration", "impact")


# Calls seen in public compromise reports and rule packs (Splunk attack_data, Elastic, GuardDuty's
# LLMjacking and SES abuse write-ups) that the lists above did not name.
CATALOG |= _entries("defense-evasion", 3, ("T1562.001",), """
    guardduty:StopMonitoringMembers guardduty:DeleteMembers guardduty:DisassociateMembers
    securityhub:DisassociateFromAdministratorAccount bedrock:DeleteModelInvocationLoggingConfiguration""")
CATALOG |= _entries("defense-evasion", 2, ("T1562.007",), "ec2:CreateNetworkAclEntry ec2:ReplaceNetworkAclEntry")
CATALOG |= _entries("defense-evasion", 2, ("T1562.001",), "wafv2:DeleteWebACL waf:DeleteWebACL waf-regional:DeleteWebACL")
CATALOG |= _entries("impact", 2, ("T1490",), "s3:PutBucketVersioning backup:DeleteBackupPlan")
CATALOG |= _entries("impact", 2, ("T1496",), """
    ses:UpdateAccountSendingEnabled ses:VerifyEmailIdentity ses:VerifyDomainIdentity ses:CreateEmailIdentity
    ses:PutAccountDetails""")
CATALOG |= _entries("exfiltration", 2, ("T1537",), """
    datasync:CreateTask datasync:CreateLocationS3 rds:RestoreDBInstanceFromDBSnapshot
    rds:RestoreDBClusterFromSnapshot ec2:CreateInstanceExportTask""")
CATALOG |= _entries("persistence", 2, ("T1098.004",), "ec2:CreateKeyPair ec2:ImportKeyPair")
CATALOG |= _entries("persistence", 2, ("T1098",), "kms:PutKeyPolicy lambda:CreateFunctionUrlConfig "
                    "lambda:UpdateFunctionUrlConfig")
CATALOG |= _entries("persistence", 1, ("T1525",), "ecr:PutImage")
CATALOG |= _entries("discovery", 2, ("T1580",), "bedrock:GetModelInvocationLoggingConfiguration ses:GetSendQuota")
CATALOG |= _entries("discovery", 1, ("T1580",), """
    bedrock:ListFoundationModels ses:ListIdentities ses:GetAccountSendingEnabled secretsmanager:ListSecrets
    ssm:DescribeParameters iam:GetAccountPasswordPolicy organizations:DescribeOrganization""")


def sensitive(api: str) -> Sensitive | None:
    return CATALOG.get(api)

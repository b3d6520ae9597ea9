"""Legitimate behaviours the simulator does not generate and the detectors were not tuned on, written
from how AWS documents them in CloudTrail: EKS controllers (External Secrets, Karpenter, pod identity),
service-linked roles (GuardDuty malware scans, Macie), S3 replication, Terraform applying IAM directly,
GitLab CI on Google Cloud runners, a central Cloud Custodian assuming into member accounts, a Lambda
moved into a VPC, Lambda@Edge writing logs in many regions, AWS Backup copying to the organisation's
vault account, secrets decrypted through Secrets Manager. Each is judged from a cold start (a new
user's first analyze) and after two days of learning: nothing at medium or above. The same streams
with an attacker's hands on one of the identities are caught, from outside every cloud and from the
intruder's own EC2 instances, so the quiet is not blindness."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nhiwatch.detect.cases import (ATTACKER, ATTACKER_CLI, ATTACKER_SDK, LAMBDA_FLEET, NAT_US_EAST_1, NAT_US_EAST_1_B,
                                   NODE_LAMBDA, T0, TERRAFORM, TOR_EXIT, Call, Caller, assume_role, queue, role_session,
                                   scoped_policy, secret, service_assumes, snapshot_share, web_identity_assume)
from nhiwatch.core.finding import Finding
from nhiwatch.core.severity import severity_rank
from nhiwatch.detect.runner import DetectSession
from nhiwatch.ingest.pipeline import Ingestor
from nhiwatch.store.db import Store

# The streams draw addresses from this generator; each test re-seeds it so a stream's events do not depend on
# which tests ran before it.
RNG = random.Random(5)

GO_SDK = "aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)"
KARPENTER_SDK = "aws-sdk-go/1.51.21 (go1.22.2; linux; amd64) karpenter.sh-v0.36.1"
GITLAB_CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/5.15.0-1057-gcp exe/x86_64.debian.12 prompt/off"
CUSTODIAN_BOTO3 = ("Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10 lang/python#3.12.1 "
                   "exec-env/AWS_Lambda_python3.12 Botocore/1.34.69")
EDGE_WORKER = "awslambda-worker/1.0 rusoto/0.48.0 rust/1.87.0 linux"
JAVA_SDK = ("aws-sdk-java/2.25.10 Linux/5.10.223 OpenJDK_64-Bit_Server_VM/17.0.11 Java/17.0.11 vendor/Amazon.com_Inc. "
            "io/sync http/Apache cfg/retry-mode/legacy")

# The trust policy Terraform writes for a Lambda function's new role.
LAMBDA_TRUST_POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                       '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}')


def ec2_ip() -> str:
    """A public address in EC2's us-east-1 ranges."""
    return f"44.{RNG.randint(192, 223)}.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}"


def gcp_ip() -> str:
    """A public address in Google Cloud's us-east1, where GitLab's hosted runners run."""
    return f"34.74.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}"


def github_runner_ip() -> str:
    """A public address in GitHub-hosted runners' (Azure) ranges."""
    return f"4.148.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}"


def hours_after_start(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def after(when: datetime, seconds: float) -> datetime:
    return when + timedelta(seconds=seconds)


def eso_secret_arns() -> list[str]:
    """The 40 secrets External Secrets syncs into the cluster (and a thief would take)."""
    return [secret(f"prod/app{i}/db-{i:02d}AbCd") for i in range(40)]


Stream = Callable[[], list[dict]]
STREAMS: dict[str, Stream] = {}


def register_stream(name: str) -> Callable[[Stream], Stream]:
    """Registers the decorated function's records under `name`, the test id."""
    def register(make: Stream) -> Stream:
        STREAMS[name] = make
        return make
    return register


@register_stream("external-secrets-irsa")
def external_secrets_irsa() -> list[dict]:
    """External Secrets (IRSA) re-reading its 40 secrets with GetSecretValue every hour from the cluster's NAT."""
    operator = Caller(role_session("external-secrets-prod", "1709251200123456789", path="/"), NAT_US_EAST_1, GO_SDK)
    secret_arns = eso_secret_arns()
    records = []
    for hour in range(96):
        refresh = hours_after_start(hour) + timedelta(minutes=7)
        records += [operator.call(after(refresh, i), "secretsmanager:GetSecretValue", {"secretId": arn})
                    for i, arn in enumerate(secret_arns)]
    return records


@register_stream("karpenter")
def karpenter() -> list[dict]:
    """Karpenter polling EC2 every 10 minutes, launching and terminating nodes, once adding an instance profile."""
    controller = Caller(role_session("KarpenterControllerRole-prod", "1709251200987654321"), NAT_US_EAST_1,
                        KARPENTER_SDK)
    discovery = ["ec2:DescribeInstanceTypes", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                 "ec2:DescribeLaunchTemplates", "ec2:DescribeInstances", "ec2:DescribeImages",
                 "ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeSpotPriceHistory"]
    ami_parameter = "/aws/service/eks/optimized-ami/1.29/amazon-linux-2/recommended/image_id"
    new_profile = "prod_99887766"
    records = []
    for minute in range(0, 96 * 60, 10):
        poll = hours_after_start(0) + timedelta(minutes=minute)
        for i, api in enumerate(discovery):
            records.append(controller.call(after(poll, i), api))
        if minute % 60 == 0:  # hourly: prices, the current AMI, the node instance profile
            records.append(controller.call(poll, "pricing:GetProducts", region="us-east-1"))
            records.append(controller.call(poll, "ssm:GetParameter", {"name": ami_parameter}))
            records.append(controller.call(poll, "iam:GetInstanceProfile", {"instanceProfileName": "prod_1234567890"}))
        if minute % 240 == 30:  # a node is launched
            records.append(controller.call(after(poll, 20), "ec2:CreateLaunchTemplate",
                                           {"launchTemplateName": f"karpenter.k8s.aws/{minute}"}))
            records.append(controller.call(after(poll, 21), "ec2:CreateFleet", {"type": "instant"}))
            records.append(controller.call(after(poll, 22), "ec2:CreateTags", {"resourcesSet": {}}))
        if minute % 240 == 150:  # a node is consolidated away
            records.append(controller.call(after(poll, 20), "ec2:TerminateInstances",
                                           {"instancesSet": {"items": [{"instanceId": "i-0abc"}]}}))
        if minute == 60 * 50:  # an instance profile for a new node class
            records.append(controller.call(after(poll, 30), "iam:CreateInstanceProfile",
                                           {"instanceProfileName": new_profile, "path": "/karpenter/"}))
            records.append(controller.call(after(poll, 31), "iam:TagInstanceProfile",
                                           {"instanceProfileName": new_profile}))
            records.append(controller.call(after(poll, 32), "iam:AddRoleToInstanceProfile",
                                           {"instanceProfileName": new_profile, "roleName": "KarpenterNodeRole-prod"}))
    return records


@register_stream("guardduty-malware-protection")
def guardduty_malware_protection() -> list[dict]:
    """GuardDuty's service-linked role snapshotting an instance, sharing the snapshot for a scan, then deleting it."""
    role = "AWSServiceRoleForAmazonGuardDutyMalwareProtection"
    service = "malware-protection.guardduty.amazonaws.com"
    scanner = Caller(role_session(role, "AmazonGuardDutyMalwareProtection", path=f"/aws-service-role/{service}/",
                                  invoked_by=service), service, service)
    records = []
    for day in (1, 3):
        scan = hours_after_start(24 * day + 5)
        records += [scanner.call(scan, "ec2:DescribeInstances"),
                    scanner.call(after(scan, 2), "ec2:DescribeVolumes"),
                    scanner.call(after(scan, 3), "ec2:CreateSnapshots",
                                 {"instanceSpecification": {"instanceId": "i-0123"}}),
                    # shared with GuardDuty's own account, where the scan runs
                    scanner.call(after(scan, 60), "ec2:ModifySnapshotAttribute", snapshot_share("471112799478")),
                    scanner.call(after(scan, 61), "kms:CreateGrant",
                                 {"keyId": "arn:aws:kms:us-east-1:111122223333:key/abcd"}),
                    scanner.call(after(scan, 3600), "ec2:DeleteSnapshot", {"snapshotId": "snap-0abc1234def567890"})]
    return records


@register_stream("macie-discovery")
def macie_discovery() -> list[dict]:
    """Macie's service-linked role inventorying 60 buckets daily; on one day a discovery job reads 800 objects."""
    service = "macie.amazonaws.com"
    macie = Caller(role_session("AWSServiceRoleForAmazonMacie", "AmazonMacieSession",
                                path=f"/aws-service-role/{service}/", invoked_by=service), service, service)
    inventory = ["s3:GetBucketLocation", "s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketEncryption",
                 "s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging", "s3:GetBucketVersioning"]
    records = []
    for day in range(4):
        start = hours_after_start(24 * day + 2)
        records.append(macie.call(start, "s3:ListBuckets"))
        for bucket in range(60):
            for i, api in enumerate(inventory):
                records.append(macie.call(after(start, bucket * 8 + i), api, {"bucketName": f"acme-data-{bucket}"}))
        if day == 2:  # a sensitive data discovery job
            for n in range(800):
                records.append(macie.call(after(start, 600 + n), "s3:GetObject",
                                          {"bucketName": f"acme-data-{n % 60}", "key": f"exports/{n}.csv"}))
    return records


@register_stream("s3-replication")
def s3_replication() -> list[dict]:
    """S3 assuming its replication role to copy object versions to the DR bucket; after 48h the volume rises tenfold."""
    role = "arn:aws:iam::111122223333:role/service-role/s3crr_role_for_acme-data"
    service = "s3.amazonaws.com"
    replicator = Caller(role_session("s3crr_role_for_acme-data", "s3-replication", path="/service-role/",
                                     invoked_by=service), service, service)
    records = []
    for hour in range(72):
        start = hours_after_start(hour)
        if hour % 12 == 0:  # the service's credentials are renewed
            records.append(service_assumes(service, start, role, "s3-replication"))
        for n in range(40 if hour < 48 else 400):
            key = f"lake/{hour}/{n}.parquet"
            records.append(replicator.call(after(start, n * 2), "s3:GetObjectVersionForReplication",
                                           {"bucketName": "acme-data", "key": key}))
            records.append(replicator.call(after(start, n * 2 + 1), "s3:ReplicateObject",
                                           {"bucketName": "acme-data-dr", "key": key}))
    return records


@register_stream("terraform-apply-iam")
def terraform_apply_iam() -> list[dict]:
    """Terraform in GitHub Actions (OIDC) planning daily; on day four its first apply creates a Lambda's role."""
    role = "arn:aws:iam::111122223333:role/github-terraform"
    reads = ["iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:GetPolicy",
             "iam:GetPolicyVersion", "lambda:GetFunction20150331v2", "lambda:GetPolicy20150331v2", "s3:GetBucketPolicy",
             "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "sqs:GetQueueAttributes",
             "dynamodb:DescribeTable"]
    records = []
    for day in range(4):
        run = hours_after_start(24 * day + 14)
        ip = github_runner_ip()
        records.append(web_identity_assume(run, role, "repo:acme/infra:ref:refs/heads/main", ip=ip))
        terraform = Caller(role_session("github-terraform", "GitHubActions", key=f"ASIAEXAMPLETF{day:07d}"), ip,
                           TERRAFORM)
        records += [terraform.call(after(run, 5 + i), api) for i, api in enumerate(reads)]
        if day == 3:  # the first apply that touches IAM: a new function and its role
            send_policy = scoped_policy("sqs:SendMessage")
            read_policy = scoped_policy("s3:GetObject", "arn:aws:s3:::acme-reports/*")
            app_policy = scoped_policy("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:111122223333:table/app")
            writes = [
                Call("iam:CreateRole", {"roleName": "reports-fn", "assumeRolePolicyDocument": LAMBDA_TRUST_POLICY}),
                Call("iam:PutRolePolicy", {"roleName": "reports-fn", "policyName": "sqs",
                                           "policyDocument": send_policy}),
                Call("iam:AttachRolePolicy", {
                    "roleName": "reports-fn",
                    "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}),
                Call("iam:CreatePolicy", {"policyName": "reports-read", "policyDocument": read_policy}),
                Call("iam:AttachRolePolicy", {"roleName": "reports-fn",
                                              "policyArn": "arn:aws:iam::111122223333:policy/reports-read"}),
                Call("iam:CreatePolicyVersion", {"policyArn": "arn:aws:iam::111122223333:policy/app-read",
                                                 "policyDocument": app_policy, "setAsDefault": True}),
                Call("iam:TagRole", {"roleName": "reports-fn"}),
                Call("lambda:CreateFunction20150331", {"functionName": "reports",
                                                       "role": "arn:aws:iam::111122223333:role/reports-fn"}),
            ]
            records += [terraform.call(after(run, 60 + i), write) for i, write in enumerate(writes)]
    return records


@register_stream("gitlab-oidc-deploy")
def gitlab_oidc_deploy() -> list[dict]:
    """GitLab CI on Google Cloud runners assuming a deploy role by OIDC every 8 hours to push an image to ECS."""
    role = "arn:aws:iam::111122223333:role/gitlab-deploy"
    subject = "project_path:acme/payments:ref_type:branch:ref:main"
    provider_arn = "arn:aws:iam::111122223333:oidc-provider/gitlab.com"
    job_identity = {"type": "WebIdentityUser", "principalId": f"{provider_arn}:https://gitlab.com:{subject}",
                    "userName": subject, "identityProvider": provider_arn, "accountId": "111122223333"}
    records = []
    for n in range(12):
        start = hours_after_start(n * 8 + 3)
        ip = gcp_ip()
        key = f"ASIAGITLAB{n:010d}"
        job = Caller(job_identity, ip, f"{GITLAB_CLI} command/sts.assume-role-with-web-identity",
                     recipient="111122223333")
        records.append(job.call(start, Call("sts:AssumeRoleWithWebIdentity",
                                            {"roleArn": role, "roleSessionName": f"gitlab-{n}"},
                                            {"subjectFromWebIdentityToken": subject, "audience": "https://gitlab.com",
                                             "provider": provider_arn, "credentials": {"accessKeyId": key}})))
        deploy = Caller(role_session("gitlab-deploy", f"gitlab-{n}", key=key), ip,
                        f"{GITLAB_CLI} command/ecs.update-service")
        records += [deploy.call(after(start, 10), "ecr:GetAuthorizationToken"),
                    deploy.call(after(start, 40), "ecr:InitiateLayerUpload"),
                    deploy.call(after(start, 50), "ecr:PutImage"),
                    deploy.call(after(start, 60), "ecs:RegisterTaskDefinition",
                                {"family": "payments", "taskRoleArn": "arn:aws:iam::111122223333:role/payments-task"}),
                    deploy.call(after(start, 62), "ecs:UpdateService", {"service": "payments", "cluster": "prod"}),
                    deploy.call(after(start, 70), "ecs:DescribeServices",
                                {"services": ["payments"], "cluster": "prod"})]
    return records


@register_stream("custodian-hub")
def custodian_hub() -> list[dict]:
    """Cloud Custodian's Lambda assuming into each member account hourly to audit it, stopping an instance daily."""
    hub = Caller(role_session("custodian-hub", "custodian-hub"), LAMBDA_FLEET, CUSTODIAN_BOTO3)
    audit = ["ec2:DescribeInstances", "s3:ListBuckets", "s3:GetBucketEncryption", "iam:ListRoles", "iam:ListUsers",
             "rds:DescribeDBInstances", "ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots", "kms:ListKeys",
             "lambda:ListFunctions20150331"]
    members = ["444455556666", "555566667777"]
    records = []
    for hour in range(96):
        run = hours_after_start(hour) + timedelta(minutes=15)
        if hour == 60:
            members.append("666677778888")  # a new account joins the organisation
        for j, account in enumerate(members):
            role = f"arn:aws:iam::{account}:role/custodian-member"
            key = f"ASIACUST{account}"
            records.append(assume_role(hub.but(recipient=account), after(run, j * 30), role, "custodian", key=key))
            # the first run comes from an EC2 address before the function settles on the Lambda fleet
            member = Caller(role_session("custodian-member", "custodian", account=account, key=key),
                            ec2_ip() if hour == 0 else LAMBDA_FLEET, hub.agent)
            for i, api in enumerate(audit):
                records.append(member.call(after(run, j * 30 + 1 + i), api))
            if hour % 24 == 9:  # a policy's action: stop a non-compliant instance
                records.append(member.call(after(run, j * 30 + 15), "ec2:StopInstances",
                                           {"instancesSet": {"items": [{"instanceId": "i-0bad"}]}}))
    return records


@register_stream("vpc-lambda-eni")
def vpc_lambda_eni() -> list[dict]:
    """A Lambda moved into a VPC: Lambda's service creates its ENI, then the function calls from private addresses."""
    role = "arn:aws:iam::111122223333:role/reports-vpc-fn"
    function = Caller(role_session("reports-vpc-fn", "reports-vpc"), LAMBDA_FLEET, NODE_LAMBDA)
    service = "lambda.amazonaws.com"
    lambda_service = Caller(role_session("reports-vpc-fn", "reports-vpc", invoked_by=service), service, service)
    records = []
    for hour in range(72):
        start = hours_after_start(hour)
        if hour % 6 == 0:  # the service's credentials are renewed
            records.append(service_assumes(service, start, role, "reports-vpc"))
        records.append(function.call(after(start, 30), "dynamodb:Query", {"tableName": "reports"}))
        if hour == 40:  # the function is moved into a VPC
            records += [lambda_service.call(after(start, 5), "ec2:DescribeNetworkInterfaces"),
                        lambda_service.call(after(start, 6), "ec2:CreateNetworkInterface", {"subnetId": "subnet-0a"}),
                        lambda_service.call(after(start, 7), "ec2:DescribeSubnets"),
                        lambda_service.call(after(start, 8), "ec2:DescribeSecurityGroups"),
                        lambda_service.call(after(start, 9), "ec2:AssignPrivateIpAddresses")]
        if hour > 40:  # from inside the VPC its calls come from the subnets' private addresses
            function = function.but(ip=f"10.0.{RNG.randint(0, 3)}.{RNG.randint(4, 250)}")
    return records


@register_stream("lambda-edge-regions")
def lambda_edge_regions() -> list[dict]:
    """Lambda@Edge replicas creating log streams from Lambda's workers in 2 regions, from hour 30 in 8."""
    regions = ["us-east-1", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2", "sa-east-1", "us-west-2",
               "ap-south-1"]
    records = []
    for hour in range(72):
        for k, region in enumerate(regions[: 2 if hour < 30 else 8]):
            worker = Caller(role_session("edge-auth-role", "us-east-1.edge-auth"), ec2_ip(), EDGE_WORKER, region=region)
            records.append(worker.call(hours_after_start(hour) + timedelta(minutes=k), "logs:CreateLogStream",
                                       {"logGroupName": "/aws/lambda/us-east-1.edge-auth"}, region=region))
    return records


@register_stream("eks-pod-identity")
def eks_pod_identity() -> list[dict]:
    """EKS Pod Identity assuming and tagging a pod's role hourly; the pod then reads SQS and writes DynamoDB."""
    role = "arn:aws:iam::111122223333:role/orders-pod-role"
    service = "pods.eks.amazonaws.com"
    agent = Caller({"type": "AWSService", "invokedBy": service}, service, service, recipient="111122223333")
    records = []
    for hour in range(72):
        start = hours_after_start(hour)
        session = f"eks-prod-orders-api-{hour:04d}-{RNG.randint(10**6, 10**7)}"
        key = f"ASIAPOD{hour:013d}"
        records.append(agent.call(start, Call("sts:AssumeRole", {"roleArn": role, "roleSessionName": session},
                                              {"credentials": {"accessKeyId": key}})))
        records.append(agent.call(after(start, 1), Call("sts:TagSession", {"roleArn": role})))
        # the pods run on nodes behind either of the cluster's NAT gateways
        pod = Caller(role_session("orders-pod-role", session, key=key), NAT_US_EAST_1 if hour % 2 else NAT_US_EAST_1_B,
                     JAVA_SDK)
        records += [pod.call(after(start, 5 + i), Call("sqs:ReceiveMessage", {"queueUrl": queue("orders")}))
                    for i in range(3)]
        records.append(pod.call(after(start, 20), "dynamodb:PutItem", {"tableName": "orders"}))
    return records


@register_stream("backup-cross-account-copy")
def backup_cross_account_copy() -> list[dict]:
    """AWS Backup's service role snapshotting a volume daily; from day three also copying it to the vault account."""
    role = "arn:aws:iam::111122223333:role/service-role/AWSBackupDefaultServiceRole"
    service = "backup.amazonaws.com"
    session = "AWSBackup-AWSBackupDefaultServiceRole"
    backup = Caller(role_session("AWSBackupDefaultServiceRole", session, path="/service-role/", invoked_by=service),
                    service, service)
    records = []
    for day in range(4):
        start = hours_after_start(24 * day + 5)
        records.append(service_assumes(service, start, role, session))
        records += [backup.call(after(start, 10), "ec2:CreateSnapshot", {"volumeId": "vol-0abc"}),
                    backup.call(after(start, 12), "ec2:CreateTags"),
                    backup.call(after(start, 20), "ec2:DescribeSnapshots")]
        if day >= 2:  # the plan gains a copy to the organisation's vault account
            records += [backup.call(after(start, 900), "ec2:CopySnapshot",
                                    {"sourceSnapshotId": "snap-0abc1234def567890", "sourceRegion": "us-east-1"}),
                        backup.call(after(start, 960), "ec2:ModifySnapshotAttribute", snapshot_share("444455556666"))]
    return records


@register_stream("secrets-via-kms")
def secrets_via_kms() -> list[dict]:
    """A Lambda reading a secret from hour 50; Secrets Manager logs the kms:Decrypt it makes for the function."""
    function = Caller(role_session("billing-fn-role", "billing-fn"), LAMBDA_FLEET, NODE_LAMBDA)
    service = "secretsmanager.amazonaws.com"
    secrets_manager = Caller(role_session("billing-fn-role", "billing-fn", invoked_by=service), service, service)
    stripe_key = secret("billing/stripe-AbCd")
    records = []
    for hour in range(72):
        start = hours_after_start(hour)
        records.append(function.call(start, "dynamodb:PutItem", {"tableName": "billing"}))
        if hour >= 50:
            records.append(function.call(after(start, 2), "secretsmanager:GetSecretValue", {"secretId": stripe_key}))
            records.append(secrets_manager.call(after(start, 2), "kms:Decrypt",
                                                {"encryptionContext": {"SecretARN": stripe_key}}))
    return records


# -- the same streams with one identity in an attacker's hands --------------------------------------

def with_attack(base: str, thief: Caller, calls: list[Call | str], at_hour: int = 60) -> Stream:
    """`base`'s legitimate stream plus `calls` by `thief`, three seconds apart from `at_hour` on."""
    def stream() -> list[dict]:
        records = STREAMS[base]()
        start = hours_after_start(at_hour)
        records += [thief.call(after(start, 3 * i), call) for i, call in enumerate(calls)]
        return records
    return stream


# The IRSA role's session used from a laptop outside every provider, taking every secret at once.
STREAMS["ATTACK-eso-stolen"] = with_attack(
    "external-secrets-irsa",
    Caller(role_session("external-secrets-prod", "1709251200123456789"), ip=ATTACKER, agent=ATTACKER_CLI),
    ["sts:GetCallerIdentity", "secretsmanager:ListSecrets"]
    + [Call("secretsmanager:GetSecretValue", {"secretId": arn}) for arn in eso_secret_arns()])

# Karpenter's own address and client, but making an administrator user with a key.
STREAMS["ATTACK-karpenter-escalate"] = with_attack(
    "karpenter",
    Caller(role_session("KarpenterControllerRole-prod", "x"), NAT_US_EAST_1, KARPENTER_SDK),
    [Call("iam:CreateUser", {"userName": "svc-backup2"}),
     Call("iam:AttachUserPolicy", {"userName": "svc-backup2",
                                   "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
     Call("iam:CreateAccessKey", {"userName": "svc-backup2"})])

# A member account's Custodian session used off-cloud to look around and read payroll.
STREAMS["ATTACK-custodian-member-offcloud"] = with_attack(
    "custodian-hub",
    Caller(role_session("custodian-member", "custodian", account="444455556666"), ATTACKER, ATTACKER_SDK),
    ["sts:GetCallerIdentity", "iam:ListUsers", "iam:ListRoles", Call("secretsmanager:ListSecrets"),
     Call("s3:GetObject", {"bucketName": "acme-payroll", "key": "2026.csv"})])

# A GitLab job's session used from Tor.
STREAMS["ATTACK-gitlab-role-offcloud"] = with_attack(
    "gitlab-oidc-deploy",
    Caller(role_session("gitlab-deploy", "gitlab-3"), TOR_EXIT, ATTACKER_CLI),
    ["sts:GetCallerIdentity", "iam:ListAttachedRolePolicies", "ecr:GetAuthorizationToken", "ecr:BatchGetImage",
     "secretsmanager:ListSecrets"])

# Intruders working from their own EC2 instances: the address is in AWS's ranges like the victim's own.
LINUX_CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-cloud-amd64 exe/x86_64.debian.12 prompt/off"

# The IRSA role's session used from an instance in another region with the CLI.
STREAMS["ATTACK-eso-from-another-region"] = with_attack(
    "external-secrets-irsa",
    Caller(role_session("external-secrets-prod", "1709251200123456789"), ip="3.250.1.1", agent=LINUX_CLI),
    ["sts:GetCallerIdentity", "secretsmanager:ListSecrets"]
    + [Call("secretsmanager:GetSecretValue", {"secretId": arn}) for arn in eso_secret_arns()])

# Karpenter's session used from an instance in the same region with the CLI: a user and a key for it.
STREAMS["ATTACK-karpenter-from-an-instance"] = with_attack(
    "karpenter",
    Caller(role_session("KarpenterControllerRole-prod", "x"), "44.200.17.9", LINUX_CLI),
    [Call("iam:ListRoles"), Call("iam:CreateUser", {"userName": "svc-backup2"}),
     Call("iam:CreateAccessKey", {"userName": "svc-backup2"})])


principal_arn = {
    "ATTACK-eso-from-another-region": "arn:aws:iam::111122223333:role/external-secrets-prod",
    "ATTACK-karpenter-from-an-instance": "arn:aws:iam::111122223333:role/KarpenterControllerRole-prod",
    "ATTACK-eso-stolen": "arn:aws:iam::111122223333:role/external-secrets-prod",
    "ATTACK-karpenter-escalate": "arn:aws:iam::111122223333:role/KarpenterControllerRole-prod",
    "ATTACK-custodian-member-offcloud": "arn:aws:iam::444455556666:role/custodian-member",
    "ATTACK-gitlab-role-offcloud": "arn:aws:iam::111122223333:role/gitlab-deploy",
}


def judge(records: list[dict], home: Path, learn_until: datetime | None) -> list[Finding]:
    """Ingest the records as one CloudTrail file, learn up to `learn_until` (None: a cold start) and judge."""
    records.sort(key=lambda r: r["eventTime"])
    path = home.parent / f"{home.name}.json"
    path.write_text(json.dumps({"Records": records}))
    with Store(home) as store:
        summary = Ingestor(store, workers=1).run([str(path)])
        assert summary.accepted == len(records)
        _, findings = DetectSession(store).process(learn_until=learn_until)
    return findings


LEGITIMATE = sorted(n for n in STREAMS if not n.startswith("ATTACK-"))
ATTACKS = sorted(n for n in STREAMS if n.startswith("ATTACK-"))


@pytest.mark.parametrize("mode", ["cold-start", "after-learning"])
@pytest.mark.parametrize("name", LEGITIMATE)
def test_unseen_legitimate_behaviour_stays_below_medium(name: str, mode: str, tmp_path: Path) -> None:
    RNG.seed(5)
    findings = judge(STREAMS[name](), tmp_path / "home", None if mode == "cold-start" else hours_after_start(48))
    alerts = [(f.severity, f.detector, f.identity["arn"], f.explanation[:200]) for f in findings
              if severity_rank(f.severity) >= severity_rank("medium")]
    assert not alerts, f"{name} ({mode}): {alerts}"


@pytest.mark.parametrize("name", ATTACKS)
def test_the_same_identities_in_an_attackers_hands_are_caught(name: str, tmp_path: Path) -> None:
    RNG.seed(5)
    findings = judge(STREAMS[name](), tmp_path / "home", None)
    victim = principal_arn[name]
    caught = [f for f in findings
              if f.identity["arn"] == victim and severity_rank(f.severity) >= severity_rank("medium")]
    assert caught, f"{name}: nothing at medium+ on {victim}; got {[(f.detector, f.severity) for f in findings]}"

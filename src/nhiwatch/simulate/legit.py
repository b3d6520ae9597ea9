"""The library of legitimate behaviour real AWS accounts show, written from how CloudTrail logs it.

AWS services acting with an identity's credentials (Lambda's workers and runtime, CloudFormation,
Athena, Auto Scaling, Backup, service-linked roles), vendors' scanners and pollers, deploy
pipelines and releases. Every kind is on by default and labelled: each record a kind makes is
tagged with its `Change` (DayContext.tag), and labels.json lists the event ids per change.

Who acts is set up in legit_org.py (identities, trust, permissions, dates); here is what each
kind writes to the trail in a day. Each kind draws from its own random stream (DayContext.stream),
so one kind's volume does not reshuffle another's.
"""

from __future__ import annotations

import bisect
import json
import math
from typing import Callable, Iterable, Iterator
from urllib.parse import quote

from nhiwatch.simulate import netranges
from nhiwatch.simulate.activity import (AUTOMATION_JOBS, BOTO, GH_ACTIONS, GH_CLI, DayContext, Emitted,
                                        admin_console, poisson, service_assume, workday)
from nhiwatch.simulate.legit_org import EKS_OIDC, is_month_end
from nhiwatch.simulate.org import GITHUB_OIDC, HOME_REGION, Change, Identity
from nhiwatch.simulate.records import (Actor, assume_response, aws_date, iso, role_session_identity, service_identity,
                                       stable_hash, user_identity)

# -- what each kind looks like in CloudTrail (docs/scenarios.md is generated from this) ----------------

KINDS: dict[str, str] = {
    "lambda_log_stream": "logs:CreateLogStream (CreateLogGroup after ResourceNotFoundException on a new function's "
                         "first cold start) with the execution role's session = function name and the function's ASIA "
                         "key, userAgent awslambda-worker/1.0 rusoto, no invokedBy, a new EC2 address of the region",
    "lambda_env_decrypt": "kms:Decrypt with encryptionContext aws:lambda:FunctionArn, aws-internal/3 aws-sdk-java agent, "
                          "no invokedBy, Lambda fleet address, at every cold start",
    "release_new_apis": "the CI role's lambda:UpdateFunctionCode20150331v2 (and UpdateFunctionConfiguration20150331v2) "
                        "minutes before the function first calls ssm:GetParameter, kms:Decrypt, SQS and SNS",
    "cspm_onboarding": "admin's cloudformation:CreateStack, then iam:CreateRole/AttachRolePolicy SecurityAudit/"
                       "PutRolePolicy with invokedBy cloudformation.amazonaws.com; the vendor's AssumeRole "
                       "(AWSAccount caller, vendor account from accounts.yaml, ExternalId) and a nightly sweep of "
                       "30+ Describe/List/Get APIs over 17 regions plus iam and per-bucket s3 reads",
    "service_linked_role_enabled": "iam:CreateServiceLinkedRole with the admin's session invokedBy the service, then "
                                   "AWSService AssumeRole of the new SLR and hundreds of reads across services with "
                                   "invokedBy/sourceIPAddress/userAgent = the service host on its first day",
    "cloudformation_iam_deploy": "the OIDC deploy role's CreateChangeSet/ExecuteChangeSet, then with its session "
                                 "invokedBy cloudformation.amazonaws.com: iam:CreateRole, TagRole, PutRolePolicy (scoped "
                                 "JSON document), AttachRolePolicy, lambda:CreateFunction20150331 / ecs:RegisterTask"
                                 "Definition, CreateService; DeleteRolePolicy on stack updates",
    "dr_drill": "for six hours some ECS and Lambda roles make their usual calls in us-west-2 from us-west-2 EC2 "
                "addresses (new sessions there, log groups created there), then go back",
    "key_rotation_function": "a Lambda role's iam:CreateAccessKey for an automation user, sts:GetCallerIdentity and a "
                             "job call with the NEW AKIA key from the Lambda's address (Boto3 exec-env/AWS_Lambda_"
                             "python3.12), UpdateAccessKey Inactive the next day, DeleteAccessKey the day after",
    "dual_stack_instance": "an instance role session (session = instance id, ec2RoleDelivery 2.0) calling from an "
                           "IPv6 address in EC2 us-east-1's 2600:1f18::/33 and from the instance's IPv4 address",
    "ecs_task_execution": "ecs-tasks AssumeRole of ecsTaskExecutionRole (session = task id), ecr:GetAuthorizationToken, "
                          "BatchGetImage, GetDownloadUrlForLayer, logs:CreateLogStream with the ECS agent's userAgent "
                          "at every task start",
    "ecs_task_definition_update": "the CI role's ecs:RegisterTaskDefinition (taskRoleArn, executionRoleArn) and "
                                  "UpdateService; a new task starts and the task role calls sqs:GetQueueUrl and "
                                  "ssm:GetParametersByPath for the first time",
    "ssm_inventory_patching": "admin's ssm:CreateAssociation, then instances' SSM agent sessions call "
                              "ssm:ListInstanceAssociations, PutInventory, UpdateInstanceAssociationStatus, "
                              "GetDeployablePatchSnapshotForInstance, PutComplianceItems and ec2messages",
    "athena_glue": "athena:StartQueryExecution/GetQueryExecution/GetQueryResults by a Lambda role, then glue:GetTable, "
                   "GetPartitions, s3 reads and result writes with its session invokedBy athena.amazonaws.com",
    "autoscaling_scale_out": "AWSServiceRoleForAutoScaling's ec2:RunInstances (invokedBy autoscaling.amazonaws.com); "
                             "the new instances' role sessions (new instance ids) from new EC2 addresses; "
                             "TerminateInstances at scale-in",
    "terraform_plan": "AssumeRoleWithWebIdentity from a GitHub runner (pull_request subject), then ~100 Describe/List/"
                      "Get calls over ~12 services in minutes with the Terraform AWS provider's userAgent, state in "
                      "S3 and a DynamoDB lock",
    "terraform_new_repository": "an admin adds a repository's subject to the Terraform role's trust policy "
                                "(UpdateAssumeRolePolicy), then that repository's first plan",
    "aws_backup": "admin creates the plan and AWSBackupDefaultServiceRole (/service-role/); nightly AWSService "
                  "AssumeRole by backup.amazonaws.com (session AWSBackup-AWSBackupDefaultServiceRole) and "
                  "ec2:CreateSnapshot, CreateTags, DescribeSnapshots, dynamodb:CreateBackup invokedBy backup",
    "stepfunctions_scheduler": "scheduler.amazonaws.com assumes its role and calls states:StartExecution; "
                               "states.amazonaws.com assumes the workflow role to lambda:Invoke (data events) and "
                               "ecs:RunTask, invokedBy states.amazonaws.com",
    "secrets_rotation": "admin's RotateSecret; RotationStarted/RotationSucceeded service events; Secrets Manager "
                        "invokes the rotation function, whose role calls DescribeSecret, GetSecretValue, "
                        "GetRandomPassword, PutSecretValue, UpdateSecretVersionStage",
    "vendor_monitoring": "Datadog's account 464622532012 assumes its role with an ExternalId and polls "
                         "monitoring:GetMetricData, ListMetrics, ec2:DescribeInstances, tag:GetResources every five "
                         "minutes around the clock, from a new us-east-1 AWS address most polls",
    "codebuild_build": "codebuild.amazonaws.com AssumeRole (session AWSCodeBuild-<build id>), logs and source reads "
                       "invokedBy codebuild, then the build's aws-cli (exec-env/AWS_ECS_EC2) and docker calls from "
                       "CodeBuild's published addresses, a new one every build",
    "eks_irsa": "AssumeRoleWithWebIdentity from oidc.eks.<region>.amazonaws.com/id/... with subject "
                "system:serviceaccount:<ns>:<sa>, SDK session names, then the pods' calls from the nodes' NAT address",
    "month_end_batch": "a batch ECS service's calls at five times the usual rate over the month's last two days",
    "new_ecs_service": "a task role created mid-period by CloudFormation whose first hour is its whole history",
    "new_function": "a new Lambda function and role go live mid-period (created by the deploy role's stack)",
    "region_rollout": "an ECS service starts calling in eu-west-1",
    "nat_change": "the NAT gateways' addresses change (new EC2 Elastic IPs)",
    "key_rotation": "an admin creates a new key for an automation user and deactivates the old one",
    "new_repository": "a new repository deploys through an existing GitHub OIDC role after a trust-policy update",
    "incident_response": "on-call engineers make unusual reads during an incident",
}

LAMBDA_WORKER = "awslambda-worker/1.0 rusoto/0.48.0 rust/1.87.0 linux"
LAMBDA_RUNTIME_KMS = ("aws-internal/3 aws-sdk-java/1.12.{v} Linux/5.10.227-198.884.amzn2int.x86_64 "
                      "OpenJDK_64-Bit_Server_VM/25.422-b05 java/1.8.0_422 kotlin/1.3.72 vendor/Oracle_Corporation "
                      "cfg/retry-mode/standard")
ECS_EXEC_AGENT = "Amazon ECS Agent - v1.82.{v} ({h}) (+http://aws.amazon.com/ecs/)"
TERRAFORM = ("APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.64.0 "
             "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.4 ua/2.1 os/linux "
             "lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/{api}")
CODEBUILD_CLI = ("aws-cli/2.17.{v} md/awscrt#0.20.11 ua/2.0 os/linux#4.14.355-275.572.amzn2.x86_64 md/arch#x86_64 "
                 "lang/python#3.11.9 md/pyimpl#CPython exec-env/AWS_ECS_EC2 cfg/retry-mode#standard md/installer#exe "
                 "md/distrib#amzn.2 md/prompt#off md/command#{cmd}")
EKS_AGENTS = {
    "python": "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10.223-212.873.amzn2.x86_64 md/arch#x86_64 "
              "lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.{v}",
    "java": "aws-sdk-java/2.25.{v} Linux/5.10.223-212.873.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS "
            "Java/17.0.11 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
}
ENABLED_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
                   "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
                   "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "sa-east-1"]

_SAME = object()


class Out:
    """The events one generator makes, each tagged with the change it shows (or another, or none)."""

    __slots__ = ("s", "change", "events")

    def __init__(self, s: DayContext, change: Change | None) -> None:
        self.s = s
        self.change = change
        self.events: list[Emitted] = []

    def call(self, t: float, actor: Actor, source: str, name: str, region: str = HOME_REGION,
             request: dict | None = None, response: dict | None = None, change: object = _SAME, **kw) -> dict:
        record = self.s.rec.call(t, actor, source, name, region, request, response, **kw)
        self.events.append((t, region, record))
        c = self.change if change is _SAME else change
        if c is not None:
            self.s.tag(c, record)
        return record

    def add(self, emitted: Emitted, change: object = _SAME) -> None:
        self.events.append(emitted)
        c = self.change if change is _SAME else change
        if c is not None:
            self.s.tag(c, emitted[2])


def fas(identity: dict, service: str) -> dict:
    """A forward access session: the caller's session, used by an AWS service on its behalf."""
    return {**identity, "invokedBy": service}


def service_actor(identity: dict, service: str, account: str) -> Actor:
    return Actor(fas(identity, service), service, service, account)


def aws_service_assume(s: DayContext, t: float, service: str, role: Identity, session: str, key: str,
                       region: str = HOME_REGION) -> Emitted:
    """AssumeRole by an AWS service, as the service logs it (no durationSeconds in the request)."""
    actor = Actor(service_identity(service), service, service, s.account.id)
    request = {"roleArn": role.arn, "roleSessionName": session}
    response = assume_response(s.ids, role.arn, role.unique_id, session, key, t)
    res = [s.resource("AWS::IAM::Role", role.arn)]
    return t, region, s.rec.call(t, actor, "sts.amazonaws.com", "AssumeRole", region, request, response,
                                 resources=res, extra={"sharedEventID": s.ids.uuid()})


def web_identity_login(s: DayContext, out: Out, role: Identity, t: float, provider: str, subject: str, session: str,
                       ip: str, agent: str) -> dict:
    """AssumeRoleWithWebIdentity (GitHub Actions, EKS service accounts); returns the session's identity."""
    provider_arn = f"arn:aws:iam::{s.account.id}:oidc-provider/{provider}"
    key = s.session_key()
    user = {"type": "WebIdentityUser", "principalId": f"{provider_arn}:sts.amazonaws.com:{subject}",
            "userName": subject, "identityProvider": provider_arn}
    response = assume_response(s.ids, role.arn, role.unique_id, session, key, t, subjectFromWebIdentityToken=subject,
                               audience="sts.amazonaws.com", provider=provider_arn)
    out.call(t, Actor(user, ip, agent, s.account.id), "sts.amazonaws.com", "AssumeRoleWithWebIdentity", HOME_REGION,
             {"roleArn": role.arn, "roleSessionName": session, "durationSeconds": 3600}, response,
             resources=[s.resource("AWS::IAM::Role", role.arn)])
    return role_session_identity(role.arn, role.unique_id, session, key, t, web_provider=provider_arn)


def github_session(s: DayContext, out: Out, role: Identity, t: float, repo: str,
                   ref: str = "ref:refs/heads/main") -> tuple[dict, str, str]:
    """A GitHub Actions job's login to a deploy role: (session identity, runner address, CLI agent template)."""
    ip = netranges.github_runner(s.rng)
    identity = web_identity_login(s, out, role, t, GITHUB_OIDC, f"repo:acme/{repo}:{ref}", "GitHubActions", ip,
                                  GH_ACTIONS)
    cli = GH_CLI.format(v=20 + stable_hash(repo) % 20, cmd="{cmd}")
    out.call(t + 4, Actor(identity, ip, cli.format(cmd="sts.get-caller-identity"), s.account.id),
             "sts.amazonaws.com", "GetCallerIdentity")
    return identity, ip, cli


def _role_response(role: Identity, t: float) -> dict:
    return {"role": {"path": role.path, "roleName": role.name, "roleId": role.unique_id, "arn": role.arn,
                     "createDate": aws_date(t)}}


def _identity(s: DayContext, key: str | None) -> Identity | None:
    if key is None:
        return None
    for ident in s.account.identities:
        if ident.key == key:
            return ident
    return None


def _changes(ctx: DayContext, kind: str) -> list[Change]:
    return [c for c in ctx.changes if c.kind == kind]


def _today(ctx: DayContext, c: Change | None, before: float = 0.0) -> bool:
    return c is not None and ctx.t0 - before <= c.when < ctx.t1 + before


# -- 1, 2. Lambda's workers and runtime at every cold start ---------------------------------------------

class LambdaRuntime:
    """What Lambda itself does with a function's credentials when it starts an execution environment."""

    def __init__(self, ctx: DayContext, ident: Identity) -> None:
        self.s = ctx.stream("lambda-fleet")
        self.ident = ident
        self.fn = ident.params["function"]
        self.logs = ctx.change("lambda_log_stream")
        self.encrypted = bool(ident.params.get("env_encrypted"))
        self.decrypt = ctx.change("lambda_env_decrypt") if self.encrypted else None
        self.keys = ctx.account.facts.get("lambda_key", {})
        # Log groups that do not exist yet: a new function's, and the DR region's on a drill day.
        self.missing = {HOME_REGION} if ident.created >= ctx.t0 else set()
        drill = Drill.of(ctx, ident)
        if drill is not None:
            self.missing.add(drill.region)
        self.runtime_agent = LAMBDA_RUNTIME_KMS.format(v=700 + stable_hash(ctx.account.id) % 80)

    def fleet_ip(self, region: str) -> str:
        return netranges.ec2(self.s.rng, region)

    def cold_start(self, identity: dict, t: float, region: str) -> list[Emitted]:
        s = self.s
        acct = s.account.id
        out = Out(s, self.logs)
        if self.encrypted:
            key = self.keys.get(region) or self.keys.get(HOME_REGION, "00000000-0000-4000-8000-000000000000")
            res = [s.resource("AWS::KMS::Key", f"arn:aws:kms:{region}:{acct}:key/{key}")]
            out.call(t + 0.1, Actor(identity, self.fleet_ip(region), self.runtime_agent, acct), "kms.amazonaws.com",
                     "Decrypt", region, {"encryptionContext": {
                         "aws:lambda:FunctionArn": f"arn:aws:lambda:{region}:{acct}:function:{self.fn}"},
                         "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, None, change=self.decrypt, resources=res)
        worker = Actor(identity, self.fleet_ip(region), LAMBDA_WORKER, acct)
        group = f"/aws/lambda/{self.fn}"
        stream = {"logStreamName": f"{iso(t)[:10].replace('-', '/')}/[$LATEST]{s.ids.hex(32)}", "logGroupName": group}
        if region in self.missing:
            self.missing.discard(region)
            out.call(t + 0.15, worker, "logs.amazonaws.com", "CreateLogStream", region, stream,
                     error=("ResourceNotFoundException", "The specified log group does not exist."))
            out.call(t + 0.2, worker, "logs.amazonaws.com", "CreateLogGroup", region, {"logGroupName": group})
        out.call(t + 0.25, worker, "logs.amazonaws.com", "CreateLogStream", region, stream)
        return out.events


def lambda_start(ctx: DayContext, rt: LambdaRuntime, ident: Identity, t: float, agent: str,
                 region: str = HOME_REGION) -> tuple[Actor, list[Emitted]]:
    """A cold start of one of the library's functions: Lambda's AssumeRole, its workers' calls, the function's actor."""
    key = ctx.session_key()
    issued = t - 0.4
    events = [service_assume(ctx, issued, "lambda.amazonaws.com", ident, rt.fn, key, region)]
    identity = role_session_identity(ident.arn, ident.unique_id, rt.fn, key, issued)
    events += rt.cold_start(identity, issued, region)
    return Actor(identity, rt.fleet_ip(region), agent, ctx.account.id), events


# -- 7. the DR drill, seen from the workloads ------------------------------------------------------------

class Drill:
    __slots__ = ("change", "start", "end", "region")

    def __init__(self, change: Change) -> None:
        self.change = change
        self.start = change.when
        self.end = change.detail["end"]
        self.region = change.detail["region"]

    @staticmethod
    def of(ctx: DayContext, ident: Identity) -> "Drill | None":
        for c in ctx.changes:
            if c.kind == "dr_drill" and ident.key in c.detail["identities"] and c.when < ctx.t1 and \
                    c.detail["end"] > ctx.t0:
                return Drill(c)
        return None

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    def tag(self, ctx: DayContext, events: Iterable[Emitted]) -> None:
        for t, _region, record in events:
            if self.start - 2 <= t < self.end:
                ctx.tag(self.change, record)


# -- 10. ECS task execution role, task definition updates, month-end peaks ---------------------------------

class EcsHooks:
    def __init__(self, ctx: DayContext, ident: Identity) -> None:
        self.ctx = ctx
        self.ident = ident
        self.s = ctx.stream("ecs-agent")
        self.exec_role = _identity(ctx, ctx.account.facts.get("ecs_exec"))
        self.exec_change = ctx.change("ecs_task_execution")
        self.update = ctx.change("ecs_task_definition_update", ident)
        self.drill = Drill.of(ctx, ident)
        self.month_end = None
        if ident.params.get("batch") and is_month_end(ctx.t0):
            self.month_end = ctx.change("month_end_batch", ident)
        self.new_service = ctx.change("new_ecs_service", ident)
        self.dr_ip = netranges.ec2(self.s.rng, self.drill.region) if self.drill else None
        self.agent = ECS_EXEC_AGENT.format(v=stable_hash(ctx.account.id) % 3, h=f"{stable_hash(ident.name):08x}")

    def task_start(self, task: str, t: float, region: str, ip: str) -> list[Emitted]:
        """The ECS agent starting a task: the execution role pulls the image and creates the log stream."""
        role = self.exec_role
        if role is None:
            return []
        s, acct = self.s, self.ctx.account.id
        service = self.ident.params["service"]
        out = Out(s, self.exec_change)  # (a new service's first day is tagged in finish())
        key = s.session_key()
        out.add(aws_service_assume(s, t - 20, "ecs-tasks.amazonaws.com", role, task, key, region))
        actor = Actor(role_session_identity(role.arn, role.unique_id, task, key, t - 20), ip, self.agent, acct)
        repo = f"acme/{service}"
        out.call(t - 19, actor, "ecr.amazonaws.com", "GetAuthorizationToken", region, {"registryIds": [acct]})
        out.call(t - 18.5, actor, "ecr.amazonaws.com", "BatchGetImage", region,
                 {"repositoryName": repo, "registryId": acct, "imageIds": [{"imageTag": "latest"}],
                  "acceptedMediaTypes": ["application/vnd.docker.distribution.manifest.v2+json",
                                         "application/vnd.oci.image.manifest.v1+json"]})
        for n in range(2 + stable_hash(task) % 4):
            out.call(t - 18 + n * 0.3, actor, "ecr.amazonaws.com", "GetDownloadUrlForLayer", region,
                     {"repositoryName": repo, "registryId": acct, "layerDigest": f"sha256:{s.ids.hex(64)}"})
        out.call(t - 4, actor, "logs.amazonaws.com", "CreateLogStream", region,
                 {"logGroupName": f"/ecs/{service}", "logStreamName": f"ecs/{service}/{task}"})
        return out.events

    def new_calls(self, t: float, actor: Actor, region: str) -> list[Emitted]:
        """What the new task definition revision's code calls (first seen after the update)."""
        c = self.update
        s = self.ctx
        queue = c.detail["queue"]
        if s.rng.random() < 0.5:
            record = s.rec.call(t + 0.3, actor, "sqs.amazonaws.com", "GetQueueUrl", region,
                                {"queueName": queue, "queueOwnerAWSAccountId": s.account.id})
        else:
            record = s.rec.call(t + 0.3, actor, "ssm.amazonaws.com", "GetParametersByPath", region,
                                {"path": f"/{s.account.name}/{self.ident.params['service']}/", "recursive": True,
                                 "withDecryption": True})
        s.tag(c, record)
        return [(t + 0.3, region, record)]

    def finish(self, events: list[Emitted]) -> list[Emitted]:
        if self.drill is not None:
            self.drill.tag(self.ctx, events)
        if self.month_end is not None:
            for _t, _r, record in events:
                self.ctx.tag(self.month_end, record)
        if self.new_service is not None and self.new_service.when < self.ctx.t1 and \
                self.new_service.when + 86400 > self.ctx.t0:
            for t, _r, record in events:
                if t < self.new_service.when + 86400:
                    self.ctx.tag(self.new_service, record)
        return events


# -- 9, 11. instances: dual stack, SSM inventory and patching ----------------------------------------------

class Ec2Hooks:
    def __init__(self, ctx: DayContext, ident: Identity) -> None:
        self.ctx = ctx
        self.s = ctx.stream("ssm-agent")
        self.dual = ctx.change("dual_stack_instance", ident)
        inv = ctx.change("ssm_inventory_patching")
        self.inventory = inv if inv is not None and ident.key in inv.detail.get("principals", []) else None

    def public_ip(self, instance: str) -> str:
        return netranges.address_for(stable_hash(instance), netranges.EC2[HOME_REGION])

    def app_actor(self, instance: str, t: float, v4: Actor, v6: Actor | None) -> tuple[Actor, Change | None]:
        """Which of the instance's addresses an app call leaves from."""
        if v6 is not None and self.dual is not None and t >= self.dual.when:
            return (v6 if self.s.rng.random() < 0.6 else v4), self.dual
        return v4, None

    def inventory_calls(self, instance: str, t: float, agent: Actor, first_run: bool, patch_scan: bool) -> list[Emitted]:
        c = self.inventory
        if c is None or t < c.when:
            return []
        s = self.s
        out = Out(s, c)
        inventory_assoc, patch_assoc = c.detail["associations"]
        if s.rng.random() < 0.66 or first_run:  # the agent polls its associations about every 30 minutes
            out.call(t + 2, agent, "ssm.amazonaws.com", "ListInstanceAssociations", HOME_REGION,
                     {"instanceId": instance, "maxResults": 50})
        if first_run or s.rng.random() < 0.06:  # the inventory run found changes to upload
            out.call(t + 4, agent, "ec2messages.amazonaws.com", "GetMessages", HOME_REGION,
                     {"destination": instance, "messagesRequestId": s.ids.uuid(), "visibilityTimeoutInSeconds": 10})
            out.call(t + 5, agent, "ec2messages.amazonaws.com", "AcknowledgeMessage", HOME_REGION,
                     {"messageId": f"aws.ssm.{s.ids.uuid()}.{instance}"})
            out.call(t + 9, agent, "ssm.amazonaws.com", "PutInventory", HOME_REGION,
                     {"instanceId": instance, "items": [{"typeName": "AWS:Application", "schemaVersion": "1.1",
                                                         "captureTime": iso(t + 8)},
                                                        {"typeName": "AWS:InstanceInformation",
                                                         "schemaVersion": "1.0", "captureTime": iso(t + 8)}]})
            out.call(t + 10, agent, "ssm.amazonaws.com", "UpdateInstanceAssociationStatus", HOME_REGION,
                     {"associationId": inventory_assoc, "instanceId": instance,
                      "executionResult": {"status": "Success", "executionDate": aws_date(t + 10)}})
            out.call(t + 10.5, agent, "ec2messages.amazonaws.com", "SendReply", HOME_REGION,
                     {"messageId": f"aws.ssm.{s.ids.uuid()}.{instance}", "replyId": s.ids.uuid()})
        if patch_scan or first_run:
            snapshot = s.ids.uuid()
            out.call(t + 30, agent, "ssm.amazonaws.com", "GetDeployablePatchSnapshotForInstance", HOME_REGION,
                     {"instanceId": instance, "snapshotId": snapshot})
            out.call(t + 95, agent, "ssm.amazonaws.com", "PutInventory", HOME_REGION,
                     {"instanceId": instance, "items": [{"typeName": "AWS:PatchSummary", "schemaVersion": "1.0",
                                                         "captureTime": iso(t + 95)}]})
            out.call(t + 96, agent, "ssm.amazonaws.com", "PutComplianceItems", HOME_REGION,
                     {"resourceId": instance, "resourceType": "ManagedInstance", "complianceType": "Patch",
                      "executionSummary": {"executionTime": aws_date(t + 96), "executionId": snapshot,
                                           "executionType": "Command"}, "items": [], "itemContentHash": s.ids.hex(64)})
            out.call(t + 97, agent, "ssm.amazonaws.com", "UpdateInstanceAssociationStatus", HOME_REGION,
                     {"associationId": patch_assoc, "instanceId": instance,
                      "executionResult": {"status": "Success", "executionDate": aws_date(t + 97)}})
        return out.events


# -- generators for changes made by people and pipelines (account level) -----------------------------------

def _ssm_associations(ctx: DayContext, c: Change) -> list[Emitted]:
    s = ctx.stream("changes")
    out = Out(s, c)
    admin = admin_console(s, 0, c.when - 900, 0)
    if admin is None:
        return []
    inv, patch = c.detail["associations"]
    for n, (doc, name, schedule, assoc) in enumerate([
            ("AWS-GatherSoftwareInventory", "Inventory-Association", "rate(30 minutes)", inv),
            ("AWS-RunPatchBaseline", "PatchScan-Association", "cron(0 2 ? * * *)", patch)]):
        request = {"name": doc, "associationName": name, "scheduleExpression": schedule,
                   "targets": [{"key": "InstanceIds", "values": ["*"]}]}
        if doc == "AWS-RunPatchBaseline":
            request["parameters"] = {"Operation": ["Scan"]}
        out.call(c.when - 60 + n * 20, admin, "ssm.amazonaws.com", "CreateAssociation", HOME_REGION, request,
                 {"associationDescription": {"name": doc, "associationId": assoc, "associationVersion": "1",
                                             "date": aws_date(c.when), "scheduleExpression": schedule}})
    return out.events


def release_deploy(ctx: DayContext, c: Change, first_run: float | None = None) -> list[Emitted]:
    """The CI role ships the release: code update (and sometimes configuration) minutes before it first runs."""
    s = ctx.stream("changes")
    deployer = _identity(s, c.detail.get("deployer"))
    target = _identity(s, c.identity)
    if deployer is None or target is None:
        return []
    out = Out(s, c)
    fn = target.params["function"]
    acct = s.account.id
    t = (first_run if first_run is not None else c.when) - s.rng.uniform(180, 600)
    identity, ip, cli = github_session(s, out, deployer, t, deployer.params["repos"][0])
    actor = Actor(identity, ip, cli.format(cmd="lambda.update-function-code"), acct)
    fn_arn = f"arn:aws:lambda:{HOME_REGION}:{acct}:function:{fn}"
    key = f"builds/{fn}/{s.ids.hex(12)}.zip"
    out.call(t + 30, actor, "lambda.amazonaws.com", "UpdateFunctionCode20150331v2", HOME_REGION,
             {"functionName": fn, "s3Bucket": deployer.params["bucket"], "s3Key": key, "publish": True},
             {"functionName": fn, "functionArn": f"{fn_arn}:{s.rng.randrange(20, 400)}", "runtime": target.params["runtime"],
              "role": target.arn, "lastUpdateStatus": "InProgress", "revisionId": s.ids.uuid()})
    waiter = Actor(identity, ip, cli.format(cmd="lambda.wait"), acct)
    out.call(t + 35, waiter, "lambda.amazonaws.com", "GetFunction20150331v2", HOME_REGION, {"functionName": fn})
    if s.rng.random() < 0.6:
        conf = Actor(identity, ip, cli.format(cmd="lambda.update-function-configuration"), acct)
        out.call(t + 50, conf, "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2", HOME_REGION,
                 {"functionName": fn, "timeout": 60, "memorySize": 512},
                 {"functionName": fn, "functionArn": fn_arn, "role": target.arn, "lastUpdateStatus": "InProgress"})
    out.call(t + 60, waiter, "lambda.amazonaws.com", "GetFunction20150331v2", HOME_REGION, {"functionName": fn})
    return out.events


def _task_definition_update(ctx: DayContext, c: Change) -> list[Emitted]:
    s = ctx.stream("changes")
    deployer = _identity(s, c.detail.get("deployer"))
    target = _identity(s, c.identity)
    exec_role = _identity(s, s.account.facts.get("ecs_exec"))
    if deployer is None or target is None or exec_role is None:
        return []
    out = Out(s, c)
    acct = s.account.id
    service = target.params["service"]
    t = c.when - s.rng.uniform(240, 600)
    identity, ip, cli = github_session(s, out, deployer, t, deployer.params["repos"][0])
    docker = Actor(identity, ip, "docker/25.0.3 go/go1.21.6", acct)
    out.call(t + 20, Actor(identity, ip, cli.format(cmd="ecr.get-login-password"), acct), "ecr.amazonaws.com",
             "GetAuthorizationToken")
    step = t + 25
    for name in ("BatchCheckLayerAvailability", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload",
                 "PutImage"):
        step += s.rng.uniform(2, 12)
        out.call(step, docker, "ecr.amazonaws.com", name, HOME_REGION,
                 {"repositoryName": f"acme/{service}", "registryId": acct})
    rev = c.detail["revision"]
    image = f"{acct}.dkr.ecr.{HOME_REGION}.amazonaws.com/acme/{service}:{s.ids.hex(12)}"
    register = Actor(identity, ip, cli.format(cmd="ecs.register-task-definition"), acct)
    out.call(step + 10, register, "ecs.amazonaws.com", "RegisterTaskDefinition", HOME_REGION,
             {"family": service, "taskRoleArn": target.arn, "executionRoleArn": exec_role.arn,
              "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024",
              "containerDefinitions": [{"name": service, "image": image, "essential": True,
                                        "logConfiguration": {"logDriver": "awslogs", "options": {
                                            "awslogs-group": f"/ecs/{service}", "awslogs-region": HOME_REGION,
                                            "awslogs-stream-prefix": "ecs"}}}]},
             {"taskDefinition": {"taskDefinitionArn": f"arn:aws:ecs:{HOME_REGION}:{acct}:task-definition/"
                                                      f"{service}:{rev}", "family": service, "revision": rev,
                                 "taskRoleArn": target.arn, "executionRoleArn": exec_role.arn}})
    update = Actor(identity, ip, cli.format(cmd="ecs.update-service"), acct)
    cluster = s.account.facts.get("cluster", "default")
    out.call(step + 14, update, "ecs.amazonaws.com", "UpdateService", HOME_REGION,
             {"cluster": cluster, "service": service, "taskDefinition": f"{service}:{rev}", "forceNewDeployment": True})
    out.call(step + 20, Actor(identity, ip, cli.format(cmd="ecs.wait"), acct), "ecs.amazonaws.com", "DescribeServices",
             HOME_REGION, {"cluster": cluster, "services": [service]})
    return out.events


def _cloudformation_deploy(ctx: DayContext, c: Change) -> list[Emitted]:
    """The deploy role runs a stack; CloudFormation makes the IAM and service calls with its session."""
    s = ctx.stream("changes")
    deployer = _identity(s, c.identity)
    if deployer is None:
        return []
    out = Out(s, c)
    acct = s.account.id
    stack = c.detail["stack"]
    action = c.detail["action"]
    fn_ident = _identity(s, c.detail.get("function"))
    svc_ident = _identity(s, c.detail.get("ecs_service"))
    extra = None
    if fn_ident is not None:
        extra = _changes(ctx, "new_function")
        extra = next((x for x in extra if x.identity == fn_ident.key), None)
    elif svc_ident is not None:
        extra = ctx.change("new_ecs_service", svc_ident)
    t_role = c.when
    t = t_role - s.rng.uniform(90, 200)
    identity, ip, cli = github_session(s, out, deployer, t, deployer.params["repos"][0])
    cfn_cli = Actor(identity, ip, cli.format(cmd="cloudformation.deploy"), acct)
    out.call(t + 8, Actor(identity, ip, cli.format(cmd="s3.cp"), acct), "s3.amazonaws.com", "PutObject", HOME_REGION,
             {"bucketName": deployer.params["bucket"], "key": f"cfn/{stack}/{s.ids.hex(16)}.template",
              "Host": f"{deployer.params['bucket']}.s3.{HOME_REGION}.amazonaws.com"},
             resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{deployer.params['bucket']}/cfn/{stack}"},
                        s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{deployer.params['bucket']}")])
    stack_id = f"arn:aws:cloudformation:{HOME_REGION}:{acct}:stack/{stack}/{s.ids.uuid()}"
    change_set = f"{stack}-{s.ids.hex(8)}"
    out.call(t + 15, cfn_cli, "cloudformation.amazonaws.com", "CreateChangeSet", HOME_REGION,
             {"stackName": stack, "changeSetName": change_set, "changeSetType": "CREATE" if action == "create"
              else "UPDATE", "capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
              "templateURL": f"https://{deployer.params['bucket']}.s3.amazonaws.com/cfn/{stack}.template"},
             {"id": f"arn:aws:cloudformation:{HOME_REGION}:{acct}:changeSet/{change_set}/{s.ids.uuid()}",
              "stackId": stack_id})
    out.call(t + 25, cfn_cli, "cloudformation.amazonaws.com", "DescribeChangeSet", HOME_REGION,
             {"stackName": stack, "changeSetName": change_set})
    out.call(t_role - 6, cfn_cli, "cloudformation.amazonaws.com", "ExecuteChangeSet", HOME_REGION,
             {"stackName": stack, "changeSetName": change_set})
    cfn = service_actor(identity, "cloudformation.amazonaws.com", acct)

    def iam(at: float, name: str, request: dict, response: dict | None = None) -> None:
        record = out.call(at, cfn, "iam.amazonaws.com", name, HOME_REGION, request, response)
        if extra is not None:
            s.tag(extra, record)

    role = fn_ident or svc_ident
    tags = [{"key": "team", "value": role.team if role else "platform"}, {"key": "stack", "value": stack}]
    if action == "create" and role is not None:
        iam(t_role, "CreateRole", {"roleName": role.name, "path": role.path,
                                   "assumeRolePolicyDocument": json.dumps(role.trust_policy), "tags": tags},
            _role_response(role, t_role))
        iam(t_role + 1, "TagRole", {"roleName": role.name, "tags": [{"key": "owner", "value": f"{role.team}@acme.example"}]})
        iam(t_role + 2, "GetRole", {"roleName": role.name})
        for arn in role.managed:
            iam(t_role + 3, "AttachRolePolicy", {"roleName": role.name, "policyArn": arn})
        for policy in role.policies:
            iam(t_role + 4, "PutRolePolicy", {"roleName": role.name, "policyName": policy["PolicyName"],
                                              "policyDocument": json.dumps(policy["PolicyDocument"])})
        if fn_ident is not None:
            bootstrap = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{deployer.params['bucket']}/builds/{fn_ident.params['function']}/*"]}]}
            iam(t_role + 5, "PutRolePolicy", {"roleName": role.name, "policyName": "bootstrap-s3-access",
                                              "policyDocument": json.dumps(bootstrap)})
            fn = fn_ident.params["function"]
            record = out.call(t_role + 18, cfn, "lambda.amazonaws.com", "CreateFunction20150331", HOME_REGION,
                              {"functionName": fn, "runtime": fn_ident.params["runtime"], "role": role.arn,
                               "handler": "app.handler", "timeout": 30, "memorySize": 256, "publish": False,
                               "code": {"s3Bucket": deployer.params["bucket"], "s3Key": f"builds/{fn}/{s.ids.hex(12)}.zip"},
                               "tags": {"team": role.team}},
                              {"functionName": fn, "functionArn": f"arn:aws:lambda:{HOME_REGION}:{acct}:function:{fn}",
                               "runtime": fn_ident.params["runtime"], "role": role.arn, "state": "Pending"})
            if extra is not None:
                s.tag(extra, record)
            out.call(t_role + 21, cfn, "lambda.amazonaws.com", "GetFunction20150331v2", HOME_REGION,
                     {"functionName": fn})
        else:
            exec_role = _identity(s, s.account.facts.get("ecs_exec"))
            service = role.params["service"]
            cluster = s.account.facts.get("cluster", "default")
            record = out.call(t_role + 12, cfn, "ecs.amazonaws.com", "RegisterTaskDefinition", HOME_REGION,
                              {"family": service, "taskRoleArn": role.arn,
                               "executionRoleArn": exec_role.arn if exec_role else None, "networkMode": "awsvpc",
                               "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
                               "containerDefinitions": [{"name": service, "essential": True, "image":
                                                         f"{acct}.dkr.ecr.{HOME_REGION}.amazonaws.com/acme/{service}:1"}]},
                              {"taskDefinition": {"family": service, "revision": 1, "taskRoleArn": role.arn,
                                                  "taskDefinitionArn": f"arn:aws:ecs:{HOME_REGION}:{acct}:"
                                                                       f"task-definition/{service}:1"}})
            if extra is not None:
                s.tag(extra, record)
            record = out.call(t_role + 16, cfn, "ecs.amazonaws.com", "CreateService", HOME_REGION,
                              {"cluster": cluster, "serviceName": service, "taskDefinition": f"{service}:1",
                               "desiredCount": 2, "launchType": "FARGATE"})
            if extra is not None:
                s.tag(extra, record)
    elif role is not None:  # a stack update rewrites the inline policy and drops the bootstrap one
        for policy in role.policies:
            iam(t_role, "PutRolePolicy", {"roleName": role.name, "policyName": policy["PolicyName"],
                                          "policyDocument": json.dumps(policy["PolicyDocument"])})
        iam(t_role + 2, "DeleteRolePolicy", {"roleName": role.name, "policyName": "bootstrap-s3-access"})
        if fn_ident is not None:
            out.call(t_role + 6, cfn, "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2", HOME_REGION,
                     {"functionName": fn_ident.params["function"], "timeout": 60, "memorySize": 512})
    out.call(t_role + 40, cfn_cli, "cloudformation.amazonaws.com", "DescribeStackEvents", HOME_REGION,
             {"stackName": stack})
    out.call(t_role + 75, cfn_cli, "cloudformation.amazonaws.com", "DescribeStacks", HOME_REGION, {"stackName": stack})
    return out.events


def _cspm_onboarding(ctx: DayContext, c: Change) -> list[Emitted]:
    s = ctx.stream("changes")
    role = _identity(s, c.identity)
    admin = admin_console(s, 1, c.when - 1200, 0)
    if role is None or admin is None:
        return []
    out = Out(s, c)
    acct = s.account.id
    slug = role.params["session_prefix"]
    stack = f"{role.name}-onboarding"
    out.call(c.when, admin, "cloudformation.amazonaws.com", "CreateStack", HOME_REGION,
             {"stackName": stack, "templateURL": f"https://{slug}-onboarding.s3.amazonaws.com/aws/cross-account-role.yaml",
              "parameters": [{"parameterKey": "ExternalId", "parameterValue": role.params["external_id"]},
                             {"parameterKey": "RoleName", "parameterValue": role.name}],
              "capabilities": ["CAPABILITY_NAMED_IAM"]},
             {"stackId": f"arn:aws:cloudformation:{HOME_REGION}:{acct}:stack/{stack}/{s.ids.uuid()}"})
    cfn = service_actor(admin.identity, "cloudformation.amazonaws.com", acct)
    t = role.created
    out.call(t, cfn, "iam.amazonaws.com", "CreateRole", HOME_REGION,
             {"roleName": role.name, "assumeRolePolicyDocument": json.dumps(role.trust_policy),
              "description": f"Read-only access for {role.params['vendor']}", "maxSessionDuration": 3600},
             _role_response(role, t))
    for n, arn in enumerate(role.managed):
        out.call(t + 2 + n, cfn, "iam.amazonaws.com", "AttachRolePolicy", HOME_REGION,
                 {"roleName": role.name, "policyArn": arn})
    for policy in role.policies:
        out.call(t + 5, cfn, "iam.amazonaws.com", "PutRolePolicy", HOME_REGION,
                 {"roleName": role.name, "policyName": policy["PolicyName"],
                  "policyDocument": json.dumps(policy["PolicyDocument"])})
    out.call(t + 6, cfn, "iam.amazonaws.com", "GetRole", HOME_REGION, {"roleName": role.name})
    for k in range(3):
        out.call(t + 20 + 15 * k, admin, "cloudformation.amazonaws.com", "DescribeStacks", HOME_REGION,
                 {"stackName": stack})
    return out.events


SLR_ENABLE = {
    "guardduty.amazonaws.com": ("CreateDetector", {"enable": True, "findingPublishingFrequency": "SIX_HOURS",
                                                   "dataSources": {"s3Logs": {"enable": True}}}),
    "inspector2.amazonaws.com": ("Enable", {"resourceTypes": ["EC2", "ECR", "LAMBDA"]}),
    "access-analyzer.amazonaws.com": ("CreateAnalyzer", {"type": "ACCOUNT"}),
    "compute-optimizer.amazonaws.com": ("UpdateEnrollmentStatus", {"status": "Active", "includeMemberAccounts": False}),
}


def _slr_enable(ctx: DayContext, c: Change) -> list[Emitted]:
    s = ctx.stream("changes")
    role = _identity(s, c.identity)
    admin = admin_console(s, 2, c.when - 600, 1)
    if role is None or admin is None:
        return []
    out = Out(s, c)
    service = role.params["service"]
    name, request = SLR_ENABLE[service]
    request = dict(request)
    if service == "access-analyzer.amazonaws.com":
        request["analyzerName"] = f"ConsoleAnalyzer-{s.ids.uuid()}"
    if service == "inspector2.amazonaws.com":
        request["accountIds"] = [s.account.id]
    out.call(role.created, service_actor(admin.identity, service, s.account.id), "iam.amazonaws.com",
             "CreateServiceLinkedRole", HOME_REGION, {"aWSServiceName": service},
             {"role": {**_role_response(role, role.created)["role"],
                       "assumeRolePolicyDocument": quote(json.dumps(role.trust_policy))}})
    out.call(role.created + 2, admin, service, name, HOME_REGION, request, None)
    return out.events


def _backup_setup(ctx: DayContext, c: Change) -> list[Emitted]:
    s = ctx.stream("changes")
    role = _identity(s, c.identity)
    admin = admin_console(s, 0, c.when - 900, 1)
    if role is None or admin is None:
        return []
    out = Out(s, c)
    acct = s.account.id
    plan_id = role.params["plan_id"]
    out.call(c.when, admin, "backup.amazonaws.com", "CreateBackupPlan", HOME_REGION,
             {"backupPlan": {"backupPlanName": "daily-35-day-retention", "rules": [{
                 "ruleName": "DailyBackups", "targetBackupVaultName": "Default",
                 "scheduleExpression": "cron(0 5 ? * * *)", "startWindowMinutes": 480,
                 "lifecycle": {"deleteAfterDays": 35}}]}},
             {"backupPlanId": plan_id, "backupPlanArn": f"arn:aws:backup:{HOME_REGION}:{acct}:backup-plan:{plan_id}",
              "versionId": s.ids.uuid()})
    out.call(role.created, admin, "iam.amazonaws.com", "CreateRole", HOME_REGION,
             {"roleName": role.name, "path": role.path, "assumeRolePolicyDocument": json.dumps(role.trust_policy),
              "description": "Provides AWS Backup permission to create backups and perform restores on your behalf"},
             _role_response(role, role.created))
    for n, arn in enumerate(role.managed):
        out.call(role.created + 1 + n, admin, "iam.amazonaws.com", "AttachRolePolicy", HOME_REGION,
                 {"roleName": role.name, "policyArn": arn})
    out.call(role.created + 20, admin, "backup.amazonaws.com", "CreateBackupSelection", HOME_REGION,
             {"backupPlanId": plan_id, "backupSelection": {
                 "selectionName": "all-volumes-and-tables", "iamRoleArn": role.arn,
                 "resources": [f"arn:aws:ec2:{HOME_REGION}:{acct}:volume/{v}" for v in role.params["volumes"]] +
                              [f"arn:aws:dynamodb:{HOME_REGION}:{acct}:table/{t}" for t in role.params["tables"]]}},
             {"selectionId": s.ids.uuid(), "backupPlanId": plan_id})
    return out.events


def _rotation_setup(ctx: DayContext, c: Change) -> list[Emitted]:
    s = ctx.stream("changes")
    fn_role = _identity(s, c.identity)
    admin = admin_console(s, 1, fn_role.created - 600 if fn_role else c.when, 0)
    if fn_role is None or admin is None:
        return []
    out = Out(s, c)
    acct = s.account.id
    t = fn_role.created
    fn = fn_role.params["function"]
    out.call(t, admin, "iam.amazonaws.com", "CreateRole", HOME_REGION,
             {"roleName": fn_role.name, "path": fn_role.path, "assumeRolePolicyDocument": json.dumps(fn_role.trust_policy)},
             _role_response(fn_role, t))
    for arn in fn_role.managed:
        out.call(t + 2, admin, "iam.amazonaws.com", "AttachRolePolicy", HOME_REGION,
                 {"roleName": fn_role.name, "policyArn": arn})
    for policy in fn_role.policies:
        out.call(t + 4, admin, "iam.amazonaws.com", "PutRolePolicy", HOME_REGION,
                 {"roleName": fn_role.name, "policyName": policy["PolicyName"],
                  "policyDocument": json.dumps(policy["PolicyDocument"])})
    fn_arn = f"arn:aws:lambda:{HOME_REGION}:{acct}:function:{fn}"
    out.call(t + 40, admin, "lambda.amazonaws.com", "CreateFunction20150331", HOME_REGION,
             {"functionName": fn, "runtime": "python3.12", "role": fn_role.arn, "handler": "lambda_function.lambda_handler",
              "timeout": 30, "code": {}}, {"functionName": fn, "functionArn": fn_arn, "role": fn_role.arn})
    out.call(t + 60, admin, "lambda.amazonaws.com", "AddPermission20150331v2", HOME_REGION,
             {"functionName": fn, "statementId": "SecretsManagerAccess", "action": "lambda:InvokeFunction",
              "principal": "secretsmanager.amazonaws.com", "sourceAccount": acct})
    out.call(c.when - 4, admin, "secretsmanager.amazonaws.com", "RotateSecret", HOME_REGION,
             {"secretId": ctx.secret_arn(HOME_REGION, fn_role.params["secret"]), "rotationLambdaARN": fn_arn,
              "rotationRules": {"automaticallyAfterDays": fn_role.params["every_days"]}, "rotateImmediately": True},
             {"aRN": ctx.secret_arn(HOME_REGION, fn_role.params["secret"]), "name": fn_role.params["secret"]})
    return out.events


def _terraform_trust(ctx: DayContext, c: Change) -> list[Emitted]:
    s = ctx.stream("changes")
    role = _identity(s, c.identity)
    admin = admin_console(s, 0, c.when - 1200, 0)
    if role is None or admin is None:
        return []
    out = Out(s, c)
    out.call(c.when - 600, admin, "iam.amazonaws.com", "UpdateAssumeRolePolicy", HOME_REGION,
             {"roleName": role.name, "policyDocument": json.dumps(role.trust_policy)})
    return out.events


def _autoscaling(ctx: DayContext, c: Change) -> list[Emitted]:
    """Scale-outs on the change day and on about half the workdays after it; scale-in in the evening."""
    if c.when >= ctx.t1:
        return []
    s = ctx.stream("autoscaling")
    on_day = ctx.t0 <= c.when < ctx.t1
    if not on_day and not (workday(ctx.t0) and s.rng.random() < 0.5):
        return []
    slr = _identity(s, c.detail["slr"])
    role = _identity(s, c.identity)
    if slr is None or role is None:
        return []
    out = Out(s, c)
    acct = s.account.id
    t = c.when if on_day else ctx.t0 + s.rng.uniform(13 * 3600, 15 * 3600)
    key = s.session_key()
    out.add(aws_service_assume(s, t - 2, "autoscaling.amazonaws.com", slr, "AutoScaling", key))
    asg_actor = service_actor(role_session_identity(slr.arn, slr.unique_id, "AutoScaling", key, t - 2),
                              "autoscaling.amazonaws.com", acct)
    profile = f"arn:aws:iam::{acct}:instance-profile/{role.name}"
    new = [f"i-0{s.ids.hex(16)}" for _ in range(s.rng.choice([1, 2, 2, 3]))]
    for n, instance in enumerate(new):
        out.call(t + n * 3, asg_actor, "ec2.amazonaws.com", "RunInstances", HOME_REGION,
                 {"instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]},
                  "launchTemplate": {"launchTemplateId": c.detail["launch_template"], "version": "$Latest"},
                  "availabilityZone": f"{HOME_REGION}{'abcdef'[stable_hash(instance) % 6]}",
                  "subnetId": c.detail["subnet"], "monitoring": {"enabled": False}, "disableApiTermination": False,
                  "clientToken": s.ids.uuid(), "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [
                      {"key": "aws:autoscaling:groupName", "value": c.detail["asg"]}]}]}},
                 {"reservationId": f"r-0{s.ids.hex(16)}", "ownerId": acct, "requesterId": "226008221399",
                  "instancesSet": {"items": [{"instanceId": instance, "instanceType": "m6i.large",
                                              "iamInstanceProfile": {"arn": profile, "id": "AIPA" + role.unique_id[4:]}}]}})
    end = ctx.t0 + s.rng.uniform(19 * 3600, 21 * 3600)
    agent = f"aws-sdk-go/1.44.{s.rng.randrange(200, 400)} (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.1142.0"
    app_agent = "aws-cli/1.32.70 Python/3.9.16 Linux/6.1.84-99.169.amzn2023.x86_64 botocore/1.34.70"
    for n, instance in enumerate(new):
        boot = t + n * 3 + s.rng.uniform(40, 90)
        key = s.session_key()
        out.add(aws_service_assume(s, boot, "ec2.amazonaws.com", role, instance, key))
        identity = role_session_identity(role.arn, role.unique_id, instance, key, boot, ec2_delivery=True)
        ssm = Actor(identity, f"10.0.{8 + n}.{stable_hash(instance) % 200 + 20}", agent, acct,
                    vpc_endpoint=s.account.vpc_endpoint)
        app = Actor(identity, netranges.ec2(s.rng, HOME_REGION), app_agent, acct)  # a new address in the same pool
        out.call(boot + 5, app, "ec2.amazonaws.com", "DescribeTags", HOME_REGION,
                 {"filterSet": {"items": [{"name": "resource-id", "valueSet": {"items": [{"value": instance}]}}]}})
        bucket = role.params["bucket"]
        out.call(boot + 8, app, "s3.amazonaws.com", "GetObject", HOME_REGION,
                 {"bucketName": bucket, "key": f"{role.params['app']}/releases/current.tar.gz",
                  "Host": f"{bucket}.s3.{HOME_REGION}.amazonaws.com"},
                 resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{role.params['app']}/releases"},
                            s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{bucket}")])
        hb = boot + 20
        while hb < end - 60:
            out.call(hb, ssm, "ssm.amazonaws.com", "UpdateInstanceInformation", HOME_REGION,
                     {"instanceId": instance, "agentVersion": "3.3.1142.0", "platformType": "Linux"})
            hb += 1200 + s.rng.uniform(0, 20)
    out.call(end, asg_actor, "ec2.amazonaws.com", "TerminateInstances", HOME_REGION,
             {"instancesSet": {"items": [{"instanceId": i} for i in new]}})
    return out.events


ACCOUNT_CHANGES: dict[str, Callable[[DayContext, Change], list[Emitted]]] = {
    "ssm_inventory_patching": _ssm_associations,
    "ecs_task_definition_update": _task_definition_update,
    "cloudformation_iam_deploy": _cloudformation_deploy,
    "cspm_onboarding": _cspm_onboarding,
    "service_linked_role_enabled": _slr_enable,
    "aws_backup": _backup_setup,
    "secrets_rotation": _rotation_setup,
    "terraform_new_repository": _terraform_trust,
}


def account_extras(ctx: DayContext) -> list[Emitted]:
    """Changes people and pipelines make on their day, and account-wide behaviour (scale-outs)."""
    out: list[Emitted] = []
    for c in ctx.changes:
        make = ACCOUNT_CHANGES.get(c.kind)
        if make is not None and _today(ctx, c, before=1800):
            out.extend(make(ctx, c))
        elif c.kind == "autoscaling_scale_out":
            out.extend(_autoscaling(ctx, c))
    return out


# -- identities of the library ---------------------------------------------------------------------------

def _nothing(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    return iter(())


CSPM_REGIONAL = [
    ("ec2", "DescribeInstances"), ("ec2", "DescribeSecurityGroups"), ("ec2", "DescribeVpcs"), ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeVolumes"), ("ec2", "DescribeSnapshots"), ("ec2", "DescribeImages"), ("ec2", "DescribeNetworkAcls"),
    ("ec2", "DescribeFlowLogs"), ("ec2", "DescribeRouteTables"), ("ec2", "DescribeNetworkInterfaces"),
    ("lambda", "ListFunctions20150331"), ("rds", "DescribeDBInstances"), ("rds", "DescribeDBSnapshots"),
    ("kms", "ListKeys"), ("kms", "ListAliases"), ("cloudtrail", "DescribeTrails"),
    ("config", "DescribeConfigurationRecorders"), ("guardduty", "ListDetectors"), ("ecs", "ListClusters"),
    ("eks", "ListClusters"), ("elasticloadbalancing", "DescribeLoadBalancers"), ("sns", "ListTopics"),
    ("sqs", "ListQueues"), ("dynamodb", "ListTables"), ("secretsmanager", "ListSecrets"),
    ("ssm", "DescribeInstanceInformation"), ("logs", "DescribeLogGroups"), ("autoscaling", "DescribeAutoScalingGroups"),
    ("ecr", "DescribeRepositories"), ("cloudformation", "DescribeStacks"), ("acm", "ListCertificates"),
    ("elasticache", "DescribeCacheClusters"), ("access-analyzer", "ListAnalyzers"), ("apigateway", "GetRestApis"),
]
_SELF = {"ownersSet": {"items": [{"owner": "self"}]}}
CSPM_IAM = ["GetAccountAuthorizationDetails", "GetAccountAuthorizationDetails", "ListUsers", "ListRoles", "ListPolicies",
            "GetAccountPasswordPolicy", "GetAccountSummary", "GenerateCredentialReport", "GetCredentialReport",
            "ListVirtualMFADevices", "ListOpenIDConnectProviders", "ListSAMLProviders"]
S3_BUCKET_READS = ["GetBucketAcl", "GetBucketPolicy", "GetBucketPublicAccessBlock", "GetBucketEncryption",
                   "GetBucketVersioning", "GetBucketLogging", "GetBucketLocation", "GetBucketTagging"]


# The sub-resource each bucket read names in requestParameters (as S3 logs the query string).
_S3_SUBRESOURCE = {"GetBucketAcl": "acl", "GetBucketPolicy": "policy", "GetBucketPublicAccessBlock": "publicAccessBlock",
                   "GetBucketEncryption": "encryption", "GetBucketVersioning": "versioning",
                   "GetBucketLogging": "logging", "GetBucketLocation": "location", "GetBucketTagging": "tagging"}


def _s3_bucket_call(out: Out, t: float, actor: Actor, name: str, bucket: str) -> None:
    request = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", _S3_SUBRESOURCE.get(name, "acl"): ""}
    error = None
    if name == "GetBucketPolicy" and stable_hash(bucket) % 3:
        error = ("NoSuchBucketPolicy", "The bucket policy does not exist")
    elif name == "GetBucketTagging" and stable_hash(bucket) % 2:
        error = ("NoSuchTagSet", "The TagSet does not exist")
    out.call(t, actor, "s3.amazonaws.com", name, HOME_REGION, request, None, error=error,
             resources=[out.s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{bucket}")])


def vendor_cspm(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """The CSPM vendor: a validation right after onboarding, then a full sweep every night."""
    s = ctx.stream("cspm")
    p = ident.params
    c = ctx.change("cspm_onboarding", ident)
    out = Out(s, c)
    acct = s.account.id
    vendor_net = netranges.EC2[HOME_REGION]

    def login(t: float) -> tuple[dict, str]:
        ip = netranges.address(s.rng, vendor_net)
        session = f"{p['session_prefix']}-{int(t)}"
        key = s.session_key()
        caller = {"type": "AWSAccount", "principalId": f"{p['caller_id']}:{p['session_prefix']}",
                  "accountId": p["external_account"]}
        out.call(t, Actor(caller, ip, p["user_agent"], acct), "sts.amazonaws.com", "AssumeRole", HOME_REGION,
                 {"roleArn": ident.arn, "roleSessionName": session, "externalId": p["external_id"],
                  "durationSeconds": 3600}, assume_response(s.ids, ident.arn, ident.unique_id, session, key, t),
                 resources=[s.resource("AWS::IAM::Role", ident.arn)])
        return role_session_identity(ident.arn, ident.unique_id, session, key, t), ip

    if ctx.t0 <= ident.created < ctx.t1:  # the vendor checks the new role right away
        t = ident.created + s.rng.uniform(120, 400)
        identity, ip = login(t)
        actor = Actor(identity, ip, p["user_agent"], acct)
        out.call(t + 2, actor, "sts.amazonaws.com", "GetCallerIdentity")
        out.call(t + 3, actor, "iam.amazonaws.com", "GetRole", HOME_REGION, {"roleName": ident.name})
        out.call(t + 4, actor, "iam.amazonaws.com", "ListAttachedRolePolicies", HOME_REGION, {"roleName": ident.name})
    t = ctx.t0 + p["sweep_minute"] * 60 + s.rng.uniform(0, 300)
    if t >= ident.created:
        identity, ip = login(t)
        actor = Actor(identity, ip, p["user_agent"], acct)
        step = t + 2
        out.call(step, actor, "sts.amazonaws.com", "GetCallerIdentity")
        out.call(step + 1, actor, "organizations.amazonaws.com", "DescribeOrganization")
        for name in CSPM_IAM:
            step += s.rng.uniform(0.2, 1.5)
            out.call(step, actor, "iam.amazonaws.com", name, HOME_REGION,
                     {"filter": ["User", "Role", "Group", "LocalManagedPolicy"]} if name.startswith("GetAccountAuth")
                     else None)
        for user in (i for i in s.account.identities if i.is_user):
            for name in ("ListAccessKeys", "ListMFADevices", "ListAttachedUserPolicies"):
                step += s.rng.uniform(0.1, 0.6)
                out.call(step, actor, "iam.amazonaws.com", name, HOME_REGION, {"userName": user.name})
        step += 1
        out.call(step, actor, "s3.amazonaws.com", "ListBuckets", HOME_REGION, {"Host": "s3.amazonaws.com"})
        for bucket in s.account.buckets:
            for name in S3_BUCKET_READS:
                step += s.rng.uniform(0.1, 0.5)
                _s3_bucket_call(out, step, actor, name, bucket)
        for region in ENABLED_REGIONS:
            for service, name in CSPM_REGIONAL:
                step += s.rng.uniform(0.05, 0.7)
                request = _SELF if name in ("DescribeSnapshots", "DescribeImages") else None
                error = None
                if service == "guardduty" and region != HOME_REGION and stable_hash(region) % 4 == 0:
                    error = ("AccessDeniedException", "The request is rejected because the region is not enabled")
                out.call(step, actor, f"{service}.amazonaws.com", name, region, request, None, error=error)
    return iter(out.events)


SLR_SESSIONS = {"guardduty.amazonaws.com": "GuardDutyAssumeRole", "access-analyzer.amazonaws.com": "access-analyzer",
                "compute-optimizer.amazonaws.com": "ComputeOptimizer"}


def _slr_first_sweep(s: DayContext, service: str) -> list[tuple[str, str, dict | None]]:
    """What each service reads when it starts: (source, name, request) over the account's real resources."""
    acct = s.account
    functions = [i.params["function"] for i in acct.identities if "function" in i.params]
    roles = [i for i in acct.identities if not i.is_user]
    instances = [i for ids in acct.instances.values() for i in ids]
    calls: list[tuple[str, str, dict | None]] = []
    if service == "guardduty.amazonaws.com":
        for name in ("DescribeInstances", "DescribeImages", "DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups",
                     "DescribeVpcEndpoints", "DescribeVpcPeeringConnections", "DescribeTransitGatewayAttachments",
                     "DescribeNetworkInterfaces"):
            calls.append(("ec2.amazonaws.com", name, None))
        calls += [("eks.amazonaws.com", "ListClusters", None), ("ecs.amazonaws.com", "ListClusters", None),
                  ("lambda.amazonaws.com", "ListFunctions20150331", None),
                  ("organizations.amazonaws.com", "DescribeOrganization", None), ("s3.amazonaws.com", "ListBuckets", None)]
        for b in acct.buckets:
            calls += [("s3.amazonaws.com", n, {"bucketName": b, "Host": f"{b}.s3.amazonaws.com"})
                      for n in ("GetBucketPolicy", "GetBucketAcl", "GetBucketPublicAccessBlock", "GetBucketEncryption")]
    elif service == "inspector2.amazonaws.com":
        calls += [("ec2.amazonaws.com", "DescribeInstances", None), ("ec2.amazonaws.com", "DescribeImages", None),
                  ("ssm.amazonaws.com", "DescribeInstanceInformation", None),
                  ("ecr.amazonaws.com", "DescribeRepositories", None),
                  ("organizations.amazonaws.com", "DescribeOrganization", None),
                  ("lambda.amazonaws.com", "ListFunctions20150331", None)]
        calls += [("ssm.amazonaws.com", "ListInventoryEntries", {"instanceId": i, "typeName": "AWS:Application"})
                  for i in instances]
        calls += [("lambda.amazonaws.com", "GetFunction20150331v2", {"functionName": f}) for f in functions]
        calls += [("ecr.amazonaws.com", "DescribeImages", {"repositoryName": f"acme/{i.params['service']}"})
                  for i in acct.identities if "service" in i.params]
    elif service == "access-analyzer.amazonaws.com":
        calls.append(("iam.amazonaws.com", "ListRoles", None))
        calls += [("iam.amazonaws.com", "GetRole", {"roleName": r.name}) for r in roles]
        calls += [("s3.amazonaws.com", "ListBuckets", None), ("kms.amazonaws.com", "ListKeys", None),
                  ("kms.amazonaws.com", "GetKeyPolicy", {"keyId": acct.kms_key, "policyName": "default"}),
                  ("lambda.amazonaws.com", "ListFunctions20150331", None), ("sqs.amazonaws.com", "ListQueues", None),
                  ("secretsmanager.amazonaws.com", "ListSecrets", None)]
        for b in acct.buckets:
            calls += [("s3.amazonaws.com", n, {"bucketName": b, "Host": f"{b}.s3.amazonaws.com"})
                      for n in ("GetBucketPolicy", "GetBucketAcl", "GetBucketPolicyStatus", "GetBucketPublicAccessBlock")]
        calls += [("lambda.amazonaws.com", "GetPolicy20150331v2", {"functionName": f}) for f in functions]
        calls += [("secretsmanager.amazonaws.com", "GetResourcePolicy", {"secretId": sec}) for sec in acct.secrets]
    else:  # compute optimizer
        calls += [("ec2.amazonaws.com", "DescribeInstances", None), ("ec2.amazonaws.com", "DescribeVolumes", None),
                  ("autoscaling.amazonaws.com", "DescribeAutoScalingGroups", None),
                  ("lambda.amazonaws.com", "ListFunctions20150331", None), ("ecs.amazonaws.com", "ListClusters", None),
                  ("ecs.amazonaws.com", "ListServices", {"cluster": acct.facts.get("cluster", "default")})]
        calls += [("lambda.amazonaws.com", "GetFunctionConfiguration20150331v2", {"functionName": f})
                  for f in functions]
        calls += [("monitoring.amazonaws.com", "GetMetricData", None) for _ in range(len(instances) + len(functions))]
    return calls


SLR_PERIODIC = {
    "guardduty.amazonaws.com": (360, [("ec2.amazonaws.com", "DescribeInstances"), ("eks.amazonaws.com", "ListClusters"),
                                      ("ecs.amazonaws.com", "ListClusters")]),
    "inspector2.amazonaws.com": (720, [("ec2.amazonaws.com", "DescribeInstances"),
                                       ("lambda.amazonaws.com", "ListFunctions20150331"),
                                       ("ecr.amazonaws.com", "DescribeRepositories")]),
    "access-analyzer.amazonaws.com": (1440, [("iam.amazonaws.com", "ListRoles"), ("s3.amazonaws.com", "ListBuckets"),
                                             ("kms.amazonaws.com", "ListKeys")]),
    "compute-optimizer.amazonaws.com": (1440, [("ec2.amazonaws.com", "DescribeInstances"),
                                               ("autoscaling.amazonaws.com", "DescribeAutoScalingGroups"),
                                               ("lambda.amazonaws.com", "ListFunctions20150331")]),
}


def service_linked_sweep(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """A newly enabled service's SLR: a broad sweep on its first day, light periodic reads after."""
    s = ctx.stream(f"slr-{ident.name}")
    service = ident.params["service"]
    c = ctx.change("service_linked_role_enabled", ident)
    out = Out(s, c)
    acct = s.account.id

    def session(t: float) -> Actor:
        name = SLR_SESSIONS.get(service) or f"inspector{s.rng.getrandbits(62)}"
        key = s.session_key()
        out.add(aws_service_assume(s, t, service, ident, name, key))
        return service_actor(role_session_identity(ident.arn, ident.unique_id, name, key, t), service, acct)

    if ctx.t0 <= ident.created < ctx.t1:
        t = ident.created + s.rng.uniform(20, 90)
        actor = session(t)
        for n, (source, name, request) in enumerate(_slr_first_sweep(s, service)):
            if n and n % 400 == 0:
                t += 3600
                actor = session(t)
            step = t + 1 + n * s.rng.uniform(0.3, 1.2)
            out.call(step, actor, source, name, HOME_REGION, request, None)
    every, calls = SLR_PERIODIC[service]
    for t in ctx.times_every(every, jitter=120.0):
        if t < ident.created + 3600:
            continue
        actor = session(t)
        for n, (source, name) in enumerate(calls):
            out.call(t + 1 + n, actor, source, name)
    return iter(out.events)


def aws_backup(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """AWS Backup's nightly job with the default service role (from 05:00 UTC, the plan's window)."""
    s = ctx.stream("backup")
    c = ctx.change("aws_backup", ident)
    t = ctx.t0 + 5 * 3600 + s.rng.uniform(0, 1800)
    if t < ident.created:
        return iter(())
    out = Out(s, c)
    acct = s.account.id
    session = "AWSBackup-AWSBackupDefaultServiceRole"
    key = s.session_key()
    out.add(aws_service_assume(s, t, "backup.amazonaws.com", ident, session, key))
    actor = service_actor(role_session_identity(ident.arn, ident.unique_id, session, key, t), "backup.amazonaws.com",
                          acct)
    step = t + 3
    for volume in ident.params["volumes"]:
        snapshot = f"snap-0{s.ids.hex(16)}"
        out.call(step, actor, "ec2.amazonaws.com", "CreateSnapshot", HOME_REGION,
                 {"volumeId": volume, "description": "This snapshot is created by the AWS Backup service."},
                 {"snapshotId": snapshot, "volumeId": volume, "status": "pending", "ownerId": acct})
        out.call(step + 1, actor, "ec2.amazonaws.com", "CreateTags", HOME_REGION,
                 {"resourcesSet": {"items": [{"resourceId": snapshot}]}, "tagSet": {"items": [
                     {"key": "aws:backup:source-resource", "value": f"{volume}:{ident.params['plan_id']}"}]}})
        for k in range(2):
            out.call(step + 60 + 240 * k, actor, "ec2.amazonaws.com", "DescribeSnapshots", HOME_REGION,
                     {"snapshotSet": {"items": [{"snapshotId": snapshot}]}})
        step += s.rng.uniform(2, 8)
    for table in ident.params["tables"]:
        out.call(step, actor, "dynamodb.amazonaws.com", "DescribeTable", HOME_REGION, {"tableName": table})
        out.call(step + 1, actor, "dynamodb.amazonaws.com", "CreateBackup", HOME_REGION,
                 {"tableName": table, "backupName": f"AwsBackup-{s.ids.uuid()}"})
        step += s.rng.uniform(2, 6)
    return iter(out.events)


def lambda_key_rotator(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """The rotation function's daily run: list keys; on rotation days create, test, deactivate, delete."""
    s = ctx.stream("key-rotator")
    p = ident.params
    rotation = next((c for c in _changes(ctx, "key_rotation_function") if c.detail["rotator"] == ident.key), None)
    t = ctx.t0 + 2 * 3600 + p["minute"] * 60 + s.rng.uniform(0, 20)
    agent = BOTO.format(v=s.rng.randrange(60, 99), rt=p["runtime"])
    rt = LambdaRuntime(ctx, ident)
    actor, events = lambda_start(s, rt, ident, t, agent)
    out = Out(s, None)
    for e in events:
        out.add(e)
    users = [i for i in s.account.identities if i.archetype == "automation_user"]
    out.call(t + 0.2, actor, "iam.amazonaws.com", "ListUsers", HOME_REGION, {"pathPrefix": "/"})
    for n, user in enumerate(users):
        out.call(t + 0.5 + n * 0.2, actor, "iam.amazonaws.com", "ListAccessKeys", HOME_REGION, {"userName": user.name})
    if rotation is not None:
        user = _identity(s, rotation.identity)
        day = int((rotation.when - ctx.t0) // 86400)  # 0 on the rotation day, -1 and -2 the days after
        step = t + 2
        old, new = rotation.detail["old_key"], rotation.detail["new_key"]
        if day == 0 and user is not None:
            step = rotation.when
            out.call(step, actor, "iam.amazonaws.com", "CreateAccessKey", HOME_REGION, {"userName": user.name},
                     {"accessKey": {"userName": user.name, "accessKeyId": new, "status": "Active",
                                    "createDate": aws_date(step)}}, change=rotation)
            out.call(step + 1, actor, "secretsmanager.amazonaws.com", "PutSecretValue", HOME_REGION,
                     {"secretId": ctx.secret_arn(HOME_REGION, f"automation/{user.name}/access-key"),
                      "clientRequestToken": s.ids.uuid()}, change=rotation)
            # The function tests the new key before anyone relies on it: from its own address, as the user.
            tester = Actor(user_identity(user.arn, user.unique_id, new), actor.source_ip, agent, s.account.id)
            out.call(step + 11, tester, "sts.amazonaws.com", "GetCallerIdentity", change=rotation)
            job = AUTOMATION_JOBS[user.params["job"].split("-")[0]]
            source, name = next(((src, n) for src, n in job if n.startswith(("Describe", "List", "Get"))), job[0])
            request = {"bucketName": user.params["bucket"], "prefix": f"{user.params['job']}/", "max-keys": 1} \
                if source == "s3.amazonaws.com" else None
            out.call(step + 12, tester, source, name, HOME_REGION, request, change=rotation)
        elif day == -1 and user is not None:
            out.call(step, actor, "iam.amazonaws.com", "UpdateAccessKey", HOME_REGION,
                     {"userName": user.name, "accessKeyId": old, "status": "Inactive"}, change=rotation)
        elif day == -2 and user is not None:
            out.call(step, actor, "iam.amazonaws.com", "DeleteAccessKey", HOME_REGION,
                     {"userName": user.name, "accessKeyId": old}, change=rotation)
    return iter(out.events)


def athena_reporting(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """Athena queries from a Lambda role; Athena reads Glue and S3 with the role's session."""
    s = ctx.stream("athena")
    p = ident.params
    c = ctx.change("athena_glue", ident)
    out = Out(s, c)
    acct = s.account.id
    agent = BOTO.format(v=75, rt=p["runtime"])
    rt = LambdaRuntime(ctx, ident)
    bucket = p["data_bucket"]
    for hour in p["hours"]:
        t = ctx.t0 + hour * 3600 + 300 + s.rng.uniform(0, 60)
        actor, events = lambda_start(s, rt, ident, t, agent)
        for e in events:
            out.add(e)
        athena = service_actor(actor.identity, "athena.amazonaws.com", acct)
        date = iso(ctx.t0 - 86400)[:10]
        step = t + 0.3
        for table in p["tables"]:
            qid = s.ids.uuid()
            out.call(step, actor, "athena.amazonaws.com", "StartQueryExecution", HOME_REGION,
                     {"queryString": f"SELECT * FROM {p['database']}.{table} WHERE dt = '{date}'",
                      "queryExecutionContext": {"database": p["database"]}, "workGroup": "primary",
                      "resultConfiguration": {"outputLocation": f"s3://{bucket}/athena-results/"},
                      "clientRequestToken": s.ids.uuid()}, {"queryExecutionId": qid})
            out.call(step + 0.4, athena, "glue.amazonaws.com", "GetDatabase", HOME_REGION, {"name": p["database"]})
            out.call(step + 0.5, athena, "glue.amazonaws.com", "GetTable", HOME_REGION,
                     {"databaseName": p["database"], "name": table})
            out.call(step + 0.7, athena, "glue.amazonaws.com", "GetPartitions", HOME_REGION,
                     {"databaseName": p["database"], "tableName": table, "expression": f"dt = '{date}'"})
            res = [s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{bucket}")]
            out.call(step + 0.9, athena, "s3.amazonaws.com", "GetBucketLocation", HOME_REGION,
                     {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com", "location": ""}, resources=res)
            out.call(step + 1.0, athena, "s3.amazonaws.com", "ListObjects", HOME_REGION,
                     {"bucketName": bucket, "prefix": f"lake/{table}/dt={date}/", "list-type": "2",
                      "Host": f"{bucket}.s3.{HOME_REGION}.amazonaws.com"}, resources=res)
            for part in range(2):
                key = f"lake/{table}/dt={date}/part-{part:05d}.snappy.parquet"
                out.call(step + 1.3 + part * 0.2, athena, "s3.amazonaws.com", "GetObject", HOME_REGION,
                         {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.{HOME_REGION}.amazonaws.com"},
                         resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"}] + res)
            key = f"athena-results/{qid}.csv"
            out.call(step + 2.5, athena, "s3.amazonaws.com", "PutObject", HOME_REGION,
                     {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.{HOME_REGION}.amazonaws.com"},
                     resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"}] + res)
            for k in range(2):
                out.call(step + 1.5 + k * 1.5, actor, "athena.amazonaws.com", "GetQueryExecution", HOME_REGION,
                         {"queryExecutionId": qid})
            out.call(step + 4.6, actor, "athena.amazonaws.com", "GetQueryResults", HOME_REGION,
                     {"queryExecutionId": qid, "maxResults": 1000})
            step += 6 + s.rng.uniform(0, 3)
    return iter(out.events)


TERRAFORM_READS = [
    ("ec2", "DescribeVpcs", 1), ("ec2", "DescribeVpcAttribute", 2), ("ec2", "DescribeSubnets", 1),
    ("ec2", "DescribeSecurityGroups", 1), ("ec2", "DescribeSecurityGroupRules", 1), ("ec2", "DescribeRouteTables", 1),
    ("ec2", "DescribeInternetGateways", 1), ("ec2", "DescribeNatGateways", 1), ("ec2", "DescribeAvailabilityZones", 1),
    ("ec2", "DescribeAddresses", 1), ("kms", "DescribeKey", 1), ("kms", "GetKeyPolicy", 1),
    ("kms", "GetKeyRotationStatus", 1), ("kms", "ListResourceTags", 1), ("logs", "DescribeLogGroups", 2),
    ("logs", "ListTagsForResource", 2), ("ecs", "DescribeClusters", 1), ("ecs", "DescribeServices", 1),
    ("ecs", "DescribeTaskDefinition", 2), ("sns", "GetTopicAttributes", 1), ("sns", "ListTagsForResource", 1),
    ("sqs", "GetQueueAttributes", 1), ("sqs", "ListQueueTags", 1), ("route53", "GetHostedZone", 1),
    ("route53", "ListResourceRecordSets", 1), ("elasticloadbalancing", "DescribeLoadBalancers", 1),
    ("elasticloadbalancing", "DescribeTargetGroups", 1), ("elasticloadbalancing", "DescribeListeners", 1),
]
TERRAFORM_S3 = ["GetBucketPolicy", "GetBucketAcl", "GetBucketCors", "GetBucketWebsite", "GetBucketVersioning",
                "GetAccelerateConfiguration", "GetBucketRequestPayment", "GetBucketLogging",
                "GetBucketLifecycle", "GetBucketReplication", "GetBucketEncryption",
                "GetBucketObjectLockConfiguration", "GetBucketTagging"]
_API_VERSIONS = {"ec2": "1.177.0", "kms": "1.35.3", "logs": "1.37.0", "ecs": "1.45.0", "sns": "1.31.3",
                 "sqs": "1.34.3", "route53": "1.42.3", "elasticloadbalancing": "1.33.3", "s3": "1.60.0",
                 "iam": "1.34.3", "lambda": "1.58.0", "dynamodb": "1.34.5", "sts": "1.30.3"}


def cicd_terraform(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """terraform plan on pull requests: a burst of reads over many services from a GitHub runner."""
    s = ctx.stream("terraform")
    p = ident.params
    c = ctx.change("terraform_plan", ident)
    new_repo = ctx.change("terraform_new_repository", ident)
    out = Out(s, c)
    runs: list[tuple[float, str, Change | None]] = []
    if workday(ctx.t0):
        repos = list(p["repos"])
        if new_repo is not None and new_repo.when < ctx.t0:
            repos.append(new_repo.detail["repo"])
        for _ in range(poisson(s.rng, p["runs_per_day"])):
            runs.append((ctx.t0 + s.rng.uniform(9 * 3600, 18 * 3600), s.rng.choice(repos), None))
    if _today(ctx, new_repo):
        runs.append((new_repo.when + s.rng.uniform(300, 1200), new_repo.detail["repo"], new_repo))
    agents = {svc: TERRAFORM.format(api=f"{svc}#{v}") for svc, v in _API_VERSIONS.items()}
    roles = [i for i in s.account.identities if not i.is_user and i.archetype in ("lambda_scheduled", "ecs_task")]
    functions = [i.params["function"] for i in s.account.identities if "function" in i.params]
    for t, repo, first in sorted(runs, key=lambda r: r[0]):
        begin = len(out.events)
        _terraform_run(s, out, ident, t, repo, agents, roles, functions)
        if first is not None:  # a new repository's first plan shows that change too
            for _t, _r, record in out.events[begin:]:
                s.tag(first, record)
    return iter(out.events)


def _terraform_run(s: DayContext, out: Out, ident: Identity, t: float, repo: str, agents: dict[str, str],
                   roles: list[Identity], functions: list[str]) -> None:
    p = ident.params
    acct = s.account.id
    identity = web_identity_login(s, out, ident, t, GITHUB_OIDC, f"repo:acme/{repo}:pull_request",
                                  "GitHubActions", netranges.github_runner(s.rng), GH_ACTIONS)
    ip = out.events[-1][2]["sourceIPAddress"]

    def actor(svc: str) -> Actor:
        return Actor(identity, ip, agents[svc], acct)

    step = t + 20
    out.call(step, actor("sts"), "sts.amazonaws.com", "GetCallerIdentity")
    state = p["state_bucket"]
    lock = {"tableName": p["lock_table"], "key": {"LockID": f"{state}/{repo}/terraform.tfstate"}}
    out.call(step + 1, actor("dynamodb"), "dynamodb.amazonaws.com", "PutItem", HOME_REGION, lock)
    out.call(step + 1.5, actor("s3"), "s3.amazonaws.com", "GetObject", HOME_REGION,
             {"bucketName": state, "key": f"{repo}/terraform.tfstate", "Host": f"{state}.s3.amazonaws.com"},
             resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{state}/{repo}/terraform.tfstate"},
                        s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{state}")])
    step += 3
    for role in s.rng.sample(roles, min(6, len(roles))):
        for name in ("GetRole", "ListRolePolicies", "ListAttachedRolePolicies", "GetRolePolicy"):
            step += s.rng.uniform(0.05, 0.8)
            request = {"roleName": role.name}
            if name == "GetRolePolicy":
                request["policyName"] = role.policies[0]["PolicyName"] if role.policies else "app"
            out.call(step, actor("iam"), "iam.amazonaws.com", name, HOME_REGION, request)
    for bucket in s.rng.sample(s.account.buckets, 2):
        for name in TERRAFORM_S3:
            step += s.rng.uniform(0.05, 0.6)
            request = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"}
            out.call(step, actor("s3"), "s3.amazonaws.com", name, HOME_REGION, request,
                     resources=[s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{bucket}")])
    for fn in s.rng.sample(functions, min(3, len(functions))):
        for name in ("GetFunction20150331v2", "ListVersionsByFunction20150331", "GetFunctionCodeSigningConfig",
                     "GetPolicy20150331v2"):
            step += s.rng.uniform(0.05, 0.6)
            out.call(step, actor("lambda"), "lambda.amazonaws.com", name, HOME_REGION, {"functionName": fn})
    for table in s.account.tables[:2]:
        for name in ("DescribeTable", "DescribeContinuousBackups", "DescribeTimeToLive", "ListTagsOfResource"):
            step += s.rng.uniform(0.05, 0.6)
            out.call(step, actor("dynamodb"), "dynamodb.amazonaws.com", name, HOME_REGION, {"tableName": table})
    for svc, name, n in TERRAFORM_READS:
        for _ in range(n):
            step += s.rng.uniform(0.05, 0.9)
            out.call(step, actor(svc), f"{svc}.amazonaws.com", name, HOME_REGION)
    out.call(step + 2, actor("dynamodb"), "dynamodb.amazonaws.com", "DeleteItem", HOME_REGION, lock)


def stepfunctions_role(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """EventBridge Scheduler starts the nightly workflow; Step Functions runs its steps with its role."""
    s = ctx.stream("stepfunctions")
    p = ident.params
    c = ctx.change("stepfunctions_scheduler", ident)
    sched = _identity(s, p["scheduler"])
    if sched is None:
        return iter(())
    out = Out(s, c)
    acct = s.account.id
    t = ctx.t0 + p["hour"] * 3600 + s.rng.uniform(0, 40)
    session, key = s.ids.hex(32), s.session_key()
    out.add(aws_service_assume(s, t, "scheduler.amazonaws.com", sched, session, key))
    scheduler = service_actor(role_session_identity(sched.arn, sched.unique_id, session, key, t),
                              "scheduler.amazonaws.com", acct)
    machine = f"arn:aws:states:{HOME_REGION}:{acct}:stateMachine:{p['machine']}"
    execution = s.ids.uuid()
    out.call(t + 0.5, scheduler, "states.amazonaws.com", "StartExecution", HOME_REGION,
             {"stateMachineArn": machine, "name": execution, "input": "HIDDEN_DUE_TO_SECURITY_REASONS"},
             {"executionArn": f"arn:aws:states:{HOME_REGION}:{acct}:execution:{p['machine']}:{execution}",
              "startDate": aws_date(t + 0.5)})
    session, key = s.ids.hex(32), s.session_key()
    out.add(aws_service_assume(s, t + 1, "states.amazonaws.com", ident, session, key))
    states = service_actor(role_session_identity(ident.arn, ident.unique_id, session, key, t + 1),
                           "states.amazonaws.com", acct)
    step = t + 2
    for fn in p["functions"]:
        arn = f"arn:aws:lambda:{HOME_REGION}:{acct}:function:{fn}"
        out.call(step, states, "lambda.amazonaws.com", "Invoke", HOME_REGION,
                 {"functionName": arn, "invocationType": "RequestResponse"}, None,
                 resources=[s.resource("AWS::Lambda::Function", arn)])
        step += s.rng.uniform(20, 120)
    task = _identity(s, p["task"])
    exec_role = _identity(s, s.account.facts.get("ecs_exec"))
    if task is not None:
        cluster = s.account.facts.get("cluster", "default")
        out.call(step, states, "ecs.amazonaws.com", "RunTask", HOME_REGION,
                 {"cluster": cluster, "taskDefinition": task.params["service"], "launchType": "FARGATE", "count": 1,
                  "startedBy": "AWS Step Functions", "overrides": {"taskRoleArn": task.arn,
                                                                  "executionRoleArn": exec_role.arn if exec_role else None}})
        for k in range(2):
            out.call(step + 30 + 60 * k, states, "ecs.amazonaws.com", "DescribeTasks", HOME_REGION,
                     {"cluster": cluster, "tasks": [s.ids.hex(32)]})
    return iter(out.events)


def lambda_secret_rotation(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """A rotation: Secrets Manager's service events and invocations, the function's four steps."""
    s = ctx.stream("secret-rotation")
    p = ident.params
    c = ctx.change("secrets_rotation", ident)
    if c is None:
        return iter(())
    offset = ctx.t0 - c.when
    k = math.ceil(offset / (p["every_days"] * 86400)) if offset > 0 else 0
    t = c.when + k * p["every_days"] * 86400
    if not ctx.t0 <= t < ctx.t1:
        return iter(())
    out = Out(s, c)
    acct = s.account.id
    secret_arn = ctx.secret_arn(HOME_REGION, p["secret"])
    sm = Actor({"accountId": acct, "invokedBy": "secretsmanager.amazonaws.com"}, "secretsmanager.amazonaws.com",
               "secretsmanager.amazonaws.com", acct)
    out.call(t, sm, "secretsmanager.amazonaws.com", "RotationStarted", HOME_REGION, None, None,
             event_type="AwsServiceEvent", read_only=False, extra={"additionalEventData": {"SecretId": secret_arn}})
    fn_arn = f"arn:aws:lambda:{HOME_REGION}:{acct}:function:{p['function']}"
    invoker = Actor(service_identity("secretsmanager.amazonaws.com"), "secretsmanager.amazonaws.com",
                    "secretsmanager.amazonaws.com", acct)
    agent = BOTO.format(v=81, rt=p["runtime"])
    rt = LambdaRuntime(ctx, ident)
    token = s.ids.uuid()
    step = t + 1
    actor = None
    for n, phase in enumerate(("createSecret", "setSecret", "testSecret", "finishSecret")):
        out.call(step, invoker, "lambda.amazonaws.com", "Invoke", HOME_REGION,
                 {"functionName": fn_arn, "invocationType": "RequestResponse"}, None,
                 resources=[s.resource("AWS::Lambda::Function", fn_arn)])
        if actor is None:
            actor, events = lambda_start(s, rt, ident, step + 0.5, agent)
            for e in events:
                out.add(e)
        step += 0.6
        out.call(step, actor, "secretsmanager.amazonaws.com", "DescribeSecret", HOME_REGION, {"secretId": secret_arn})
        if phase == "createSecret":
            out.call(step + 0.1, actor, "secretsmanager.amazonaws.com", "GetSecretValue", HOME_REGION,
                     {"secretId": secret_arn, "versionStage": "AWSCURRENT"})
            out.call(step + 0.2, actor, "secretsmanager.amazonaws.com", "GetSecretValue", HOME_REGION,
                     {"secretId": secret_arn, "versionId": token, "versionStage": "AWSPENDING"},
                     error=("ResourceNotFoundException",
                            "Secrets Manager can't find the specified secret value for VersionId: " + token))
            out.call(step + 0.3, actor, "secretsmanager.amazonaws.com", "GetRandomPassword", HOME_REGION,
                     {"excludeCharacters": "/@\"'\\"})
            out.call(step + 0.4, actor, "secretsmanager.amazonaws.com", "PutSecretValue", HOME_REGION,
                     {"secretId": secret_arn, "clientRequestToken": token, "versionStages": ["AWSPENDING"]},
                     {"arn": secret_arn, "versionId": token, "versionStages": ["AWSPENDING"]})
        elif phase in ("setSecret", "testSecret"):
            out.call(step + 0.1, actor, "secretsmanager.amazonaws.com", "GetSecretValue", HOME_REGION,
                     {"secretId": secret_arn, "versionId": token, "versionStage": "AWSPENDING"})
            if phase == "setSecret":
                out.call(step + 0.2, actor, "secretsmanager.amazonaws.com", "GetSecretValue", HOME_REGION,
                         {"secretId": secret_arn, "versionStage": "AWSCURRENT"})
        else:
            out.call(step + 0.2, actor, "secretsmanager.amazonaws.com", "UpdateSecretVersionStage", HOME_REGION,
                     {"secretId": secret_arn, "versionStage": "AWSCURRENT", "moveToVersionId": token,
                      "removeFromVersionId": s.ids.uuid()})
        step += s.rng.uniform(1.5, 6) + (8 if n == 1 else 0)
    out.call(step + 1, sm, "secretsmanager.amazonaws.com", "RotationSucceeded", HOME_REGION, None, None,
             event_type="AwsServiceEvent", read_only=False, extra={"additionalEventData": {"SecretId": secret_arn}})
    return iter(out.events)


def codebuild(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """Builds: CodeBuild assumes the project role; the build container calls from CodeBuild's addresses."""
    if not workday(ctx.t0):
        return iter(())
    s = ctx.stream("codebuild")
    p = ident.params
    c = ctx.change("codebuild_build", ident)
    out = Out(s, c)
    acct = s.account.id
    project = p["project"]
    bucket = p["artifact_bucket"]
    for _ in range(poisson(s.rng, p["builds_per_day"])):
        t = ctx.t0 + s.rng.uniform(8 * 3600, 19 * 3600)
        build = s.ids.uuid()
        session, key = f"AWSCodeBuild-{build}", s.session_key()
        out.add(aws_service_assume(s, t, "codebuild.amazonaws.com", ident, session, key))
        identity = role_session_identity(ident.arn, ident.unique_id, session, key, t)
        service = service_actor(identity, "codebuild.amazonaws.com", acct)
        out.call(t + 2, service, "logs.amazonaws.com", "CreateLogStream", HOME_REGION,
                 {"logGroupName": f"/aws/codebuild/{project}", "logStreamName": build})
        source = f"{project}/source/{s.ids.hex(8)}.zip"
        res = [s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{bucket}")]
        out.call(t + 4, service, "s3.amazonaws.com", "GetObject", HOME_REGION,
                 {"bucketName": bucket, "key": source, "Host": f"{bucket}.s3.amazonaws.com"},
                 resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{source}"}] + res)
        ip = netranges.codebuild(s.rng, HOME_REGION)  # a new build host
        version = s.rng.randrange(20, 40)
        cli = CODEBUILD_CLI.format(v=version, cmd="{cmd}")
        step = t + s.rng.uniform(40, 120)
        out.call(step, Actor(identity, ip, cli.format(cmd="ssm.get-parameters"), acct), "ssm.amazonaws.com",
                 "GetParameters", HOME_REGION, {"names": [f"/{s.account.name}/{project}/npm-token"],
                                                "withDecryption": True})
        out.call(step + 5, Actor(identity, ip, cli.format(cmd="ecr.get-login-password"), acct), "ecr.amazonaws.com",
                 "GetAuthorizationToken")
        docker = Actor(identity, ip, "docker/24.0.9 go/go1.20.13 git-commit/fca702d kernel/4.14.355-275.572.amzn2.x86_64 "
                                     "os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.9 \\(linux\\))", acct)
        step += s.rng.uniform(120, 400)
        for name in ("BatchCheckLayerAvailability", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload",
                     "PutImage"):
            step += s.rng.uniform(1, 10)
            out.call(step, docker, "ecr.amazonaws.com", name, HOME_REGION,
                     {"repositoryName": p["repository"], "registryId": acct})
        key_out = f"{project}/artifacts/{build}.zip"
        out.call(step + 15, Actor(identity, ip, cli.format(cmd="s3.cp"), acct), "s3.amazonaws.com", "PutObject",
                 HOME_REGION, {"bucketName": bucket, "key": key_out, "Host": f"{bucket}.s3.amazonaws.com"},
                 resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key_out}"}] + res)
    return iter(out.events)


def eks_irsa(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """A deployment's pods: web-identity logins from the cluster's OIDC issuer, then SDK calls via the NAT."""
    s = ctx.stream(f"eks-{ident.name}")
    p = ident.params
    c = ctx.change("eks_irsa")
    out = Out(s, c)
    acct = s.account.id
    issuer = s.account.facts.get("eks_oidc", EKS_OIDC + "0" * 32)
    subject = f"system:serviceaccount:{p['namespace']}:{p['service_account']}"
    agent = EKS_AGENTS[p["sdk"]].format(v=60 + stable_hash(ident.name) % 30)
    actors: list[tuple[float, Actor]] = []
    for replica in range(p["replicas"]):
        t = ctx.t0 + s.rng.uniform(0, 3000)
        while t < ctx.t1:
            name = f"botocore-session-{int(t)}" if p["sdk"] == "python" else f"aws-sdk-java-{int(t * 1000)}"
            ip = ctx.nat_ip(t)
            identity = web_identity_login(s, out, ident, t, issuer, subject, name, ip, agent)
            actors.append((t, Actor(identity, ip, agent, acct)))
            out.call(t + 0.5, actors[-1][1], "secretsmanager.amazonaws.com", "GetSecretValue", HOME_REGION,
                     {"secretId": ctx.secret_arn(HOME_REGION, p["secret"])})
            t += s.rng.uniform(2700, 3300)  # the SDK refreshes before the hour's credentials expire
    actors.sort(key=lambda a: a[0])
    starts = [a[0] for a in actors]
    bucket, table = p["bucket"], p["table"]
    for t in ctx.times_poisson(p["per_hour"]):
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            continue
        actor = actors[i - s.rng.randrange(min(i + 1, p["replicas"]))][1]
        if s.rng.random() < 0.6:
            out.call(t, actor, "dynamodb.amazonaws.com", "Query", HOME_REGION,
                     {"tableName": table, "keyConditionExpression": "pk = :pk"},
                     resources=[s.resource("AWS::DynamoDB::Table", f"arn:aws:dynamodb:{HOME_REGION}:{acct}:table/{table}")])
        else:
            key = f"{p['app']}/{s.ids.hex(8)}.json"
            out.call(t, actor, "s3.amazonaws.com", "GetObject", HOME_REGION,
                     {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.{HOME_REGION}.amazonaws.com"},
                     resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                                s.resource("AWS::S3::Bucket", f"arn:aws:s3:::{bucket}")])
    return iter(out.events)


def vendor_monitoring(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """Datadog-style polling: a worker from the vendor's AWS pool assumes the role and polls, every few minutes."""
    s = ctx.stream("vendor-monitoring")
    p = ident.params
    c = ctx.change("vendor_monitoring", ident)
    out = Out(s, c)
    acct = s.account.id
    session = "DatadogAWSIntegration"
    caller = {"type": "AWSAccount", "principalId": f"{p['caller_id']}:{session.lower()}",
              "accountId": p["external_account"]}
    sessions: list[tuple[float, dict]] = []
    for n, t in enumerate(ctx.times_every(p["poll_min"], jitter=20.0)):
        ip = netranges.address(s.rng, netranges.VENDOR_POOL_US_EAST_1)  # a new worker address most polls
        if not sessions or t - sessions[-1][0] > 3000 or s.rng.random() < 0.3:
            key = s.session_key()
            out.call(t, Actor(caller, ip, p["user_agent"], acct), "sts.amazonaws.com", "AssumeRole", HOME_REGION,
                     {"roleArn": ident.arn, "roleSessionName": session, "externalId": p["external_id"],
                      "durationSeconds": 3600}, assume_response(s.ids, ident.arn, ident.unique_id, session, key, t),
                     resources=[s.resource("AWS::IAM::Role", ident.arn)])
            sessions.append((t, role_session_identity(ident.arn, ident.unique_id, session, key, t)))
        actor = Actor(sessions[-1][1], ip, p["user_agent"], acct)
        region = HOME_REGION if n % 3 else "eu-west-1"
        out.call(t + 1, actor, "monitoring.amazonaws.com", "GetMetricData", region)
        if n % 2 == 0:
            out.call(t + 2, actor, "monitoring.amazonaws.com", "ListMetrics", region)
        if n % 3 == 0:
            out.call(t + 3, actor, "ec2.amazonaws.com", "DescribeInstances", region)
            out.call(t + 4, actor, "tagging.amazonaws.com", "GetResources", region)
        if n % 12 == 0:
            for k, (source, name) in enumerate((("ec2.amazonaws.com", "DescribeVolumes"),
                                                ("rds.amazonaws.com", "DescribeDBInstances"),
                                                ("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancers"),
                                                ("lambda.amazonaws.com", "ListFunctions20150331"),
                                                ("autoscaling.amazonaws.com", "DescribeAutoScalingGroups"))):
                out.call(t + 5 + k, actor, source, name, region)
    return iter(out.events)


BEHAVIOURS: dict[str, Callable[[DayContext, Identity], Iterator[Emitted]]] = {
    "ecs_task_execution": _nothing,  # acts at ECS task starts (EcsHooks)
    "scheduler_role": _nothing,  # acts in the workflow it starts (stepfunctions_role)
    "vendor_cspm": vendor_cspm,
    "service_linked_sweep": service_linked_sweep,
    "aws_backup": aws_backup,
    "lambda_key_rotator": lambda_key_rotator,
    "athena_reporting": athena_reporting,
    "cicd_terraform": cicd_terraform,
    "stepfunctions_role": stepfunctions_role,
    "lambda_secret_rotation": lambda_secret_rotation,
    "codebuild": codebuild,
    "eks_irsa": eks_irsa,
}


def automation_key(ctx: DayContext, ident: Identity, t: float) -> tuple[str, Change | None]:
    """The access key an automation user's job uses at t, and the rotation whose first day it shows."""
    key = ident.access_keys[0]["id"]
    tag = None
    for c in ctx.changes:
        if c.identity != ident.key:
            continue
        if c.kind == "key_rotation" and t >= c.when + 3600:
            key = c.detail["new_key"]
        elif c.kind == "key_rotation_function" and t >= c.when + 600:
            key = c.detail["new_key"]
            if t < c.when + 86400:
                tag = c
    return key, tag

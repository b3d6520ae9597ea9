"""The organisation side of the legitimate-behaviour library: the identities real accounts have
besides their own workloads (AWS services' roles, vendors, pipelines), with the trust policies and
permissions AWS and the vendors give them, and the dated, labelled `Change`s that make them act.

Runs after the core organisation is built, from its own random stream, so adding a behaviour does
not reshuffle the identities, changes and attack placements of the core. What each kind does in
the CloudTrail is in legit.py.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from nhiwatch.simulate import netranges
from nhiwatch.simulate.org import (GITHUB_OIDC, HOME_REGION, TEAMS, Change, Identity, Org, allow_policy,
                                   service_trust)

if TYPE_CHECKING:
    from nhiwatch.simulate.org import Account, OrgBuilder

DR_REGION = "us-west-2"
EKS_OIDC = "oidc.eks.us-east-1.amazonaws.com/id/"

# Cloud security posture vendors onboarded by cross-account role: (name, the vendor's AWS account as
# listed in shared/data/vendors/accounts.yaml, role name, session prefix, the vendor scanner's SDK agent).
CSPM_VENDORS = [
    ("Orca Security", "976280145156", "OrcaSecurityRole", "orca-scan",
     "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#5.10.215-203.850.amzn2.x86_64 md/arch#x86_64 "
     "lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#adaptive Botocore/1.34.84"),
    ("Prisma Cloud", "188619942792", "PrismaCloudReadOnlyRole", "redlock",
     "aws-sdk-java/1.12.620 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS "
     "java/17.0.10 vendor/Eclipse_Adoptium cfg/retry-mode/standard"),
    ("Lacework", "434813966438", "LaceworkCWSAuditRole", "lacework", "aws-sdk-go/1.50.30 (go1.21.8; linux; amd64)"),
    ("Sysdig", "263844535661", "SysdigCloudBench", "sysdig-secure",
     "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.7 md/GOOS#linux md/GOARCH#amd64"),
    ("Upwind", "340457201789", "UpwindOrchestratorRole", "upwind",
     "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64"),
]

# Services whose service-linked role appears when someone enables them: role name and managed policy.
SLR_LIBRARY = {
    "guardduty.amazonaws.com": ("AWSServiceRoleForAmazonGuardDuty", "AmazonGuardDutyServiceRolePolicy"),
    "inspector2.amazonaws.com": ("AWSServiceRoleForAmazonInspector2", "AmazonInspector2ServiceRolePolicy"),
    "access-analyzer.amazonaws.com": ("AWSServiceRoleForAccessAnalyzer", "AccessAnalyzerServiceRolePolicy"),
    "compute-optimizer.amazonaws.com": ("AWSServiceRoleForComputeOptimizer", "ComputeOptimizerServiceRolePolicy"),
}

# Kinds whose events are found by who made them around the change (runner._change_events); every
# other kind's generator tags the records it makes.
HEURISTIC_KINDS = frozenset({"new_function", "release_new_apis", "region_rollout", "nat_change", "key_rotation",
                             "new_repository", "incident_response"})


def _is_workday(t: float) -> bool:
    return int((t // 86400 + 3) % 7) < 5


class _Plan:
    """Dates for the changes of one account, drawn from the library's random stream."""

    def __init__(self, b: "OrgBuilder") -> None:
        self.b = b
        self.rng = b.rng

    def moment(self, lo: float, hi: float, hours: tuple[int, int] = (9, 17), workday: bool = True) -> float:
        days = max(self.b.days, 1)
        d = int(days * lo) + self.rng.randrange(max(1, int(days * (hi - lo))))
        d = min(d, days - 1)
        if workday:
            for cand in [d + k for k in (0, 1, 2, -1, -2, 3, -3)]:
                if 0 <= cand < days and _is_workday(self.b.start + cand * 86400):
                    d = cand
                    break
        return self.b.start + d * 86400 + self.rng.randrange(hours[0] * 3600, hours[1] * 3600 + 1)


def _lambda_role(b: "OrgBuilder", account: "Account", archetype: str, fn: str, team: str, created: float | None,
                 statements: list, **params) -> Identity:
    ident = b.identity(account, archetype, f"{fn}-role", path="/service-role/", created=created, team=team,
                       function=fn, **params)
    ident.trust_policy = service_trust("lambda.amazonaws.com")
    ident.managed = ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    ident.policies = [{"PolicyName": "function", "PolicyDocument": allow_policy(statements)}]
    return ident


def _ecs_task_iam(ident: Identity, account: "Account") -> None:
    p = ident.params
    ident.trust_policy = service_trust("ecs-tasks.amazonaws.com")
    ident.policies = [{"PolicyName": "app", "PolicyDocument": allow_policy([
        (["s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{p['bucket']}/*"]),
        (["secretsmanager:GetSecretValue"], [f"arn:aws:secretsmanager:*:{account.id}:secret:{p['secret']}*"]),
        (["ssm:GetParameter", "ssm:GetParameters"], [f"arn:aws:ssm:*:{account.id}:parameter/*"]),
        (["dynamodb:*"], [f"arn:aws:dynamodb:*:{account.id}:table/{p['table']}"]),
        (["kms:Decrypt"], "*")])}]


def _add_statement(ident: Identity, actions: list[str], resources: list[str] | str) -> None:
    ident.policies[0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": actions, "Resource": resources})


def extend_org(b: "OrgBuilder", org: Org) -> None:
    """Add the library's identities and changes to every account of the organisation."""
    for account in org.accounts:
        _extend_account(b, org, account)


def _extend_account(b: "OrgBuilder", org: Org, account: "Account") -> None:
    rng = b.rng
    plan = _Plan(b)
    start = b.start
    by: dict[str, list[Identity]] = {}
    for ident in account.identities:
        by.setdefault(ident.archetype, []).append(ident)
    mine = [c for c in org.changes if c.account == account.id]
    facts = account.facts

    def change(kind: str, when: float, description: str, identity: Identity | None, **detail) -> Change:
        c = Change(f"change-{len(org.changes) + 1:03d}", kind, account.id, when, description,
                   identity.key if identity else None, detail)
        org.changes.append(c)
        return c

    # -- facts of the account: real AWS addresses for its NAT gateways, AWS managed keys ------------
    account.nat_ips = [netranges.ec2(rng, HOME_REGION) for _ in account.nat_ips]
    for c in mine:
        if c.kind == "nat_change":
            c.detail["ips"] = [netranges.ec2(rng, HOME_REGION) for _ in c.detail["ips"]]
            c.description = f"NAT gateway addresses change to {', '.join(c.detail['ips'])}"
    facts["lambda_key"] = {r: str(uuid.UUID(int=rng.getrandbits(128), version=4))
                           for r in (HOME_REGION, DR_REGION, "eu-west-1")}  # the aws/lambda key per region
    facts["cluster"] = f"{account.name}-cluster"
    lambdas = by.get("lambda_scheduled", []) + by.get("lambda_event", [])
    for ident in lambdas:
        ident.params["env_encrypted"] = rng.random() < 0.7
    cicd = by["cicd_oidc"][0]
    facts["deployer"] = cicd.key
    _add_statement(cicd, ["iam:CreateRole", "iam:GetRole", "iam:TagRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                          "iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                   f"arn:aws:iam::{account.id}:role/service-role/*")
    _add_statement(cicd, ["lambda:CreateFunction", "ecs:RegisterTaskDefinition", "ecs:UpdateService",
                          "ecs:CreateService", "ecs:DescribeServices", "iam:PassRole"], "*")

    # 1, 2. Lambda's own calls at every cold start: log streams, and the runtime decrypting the environment.
    change("lambda_log_stream", start, "Lambda's workers create each function's log stream at every cold start "
           "(logs:CreateLogStream with the execution role's session, from Lambda's fleet)", None,
           principals=[i.key for i in lambdas])
    change("lambda_env_decrypt", start, "Lambda's runtime decrypts functions' environment variables at cold start "
           "(kms:Decrypt with the aws:lambda:FunctionArn encryption context)", None,
           principals=[i.key for i in lambdas if i.params["env_encrypted"]])

    # 3. The release change gains its deploy: the CI role updates the function minutes before.
    for c in mine:
        if c.kind == "release_new_apis":
            target = org.identity(c.identity)
            fn = target.params["function"]
            c.detail.update(deployer=cicd.key, parameter=f"/{account.name}/{fn}/feature-flags")
            c.description = (f"release of {fn}: {cicd.name} updates the code, then the function also calls "
                             "ssm:GetParameter, kms:Decrypt, SQS and SNS")
            _add_statement(target, ["ssm:GetParameter"], [f"arn:aws:ssm:*:{account.id}:parameter{c.detail['parameter']}"])
            _add_statement(target, ["sqs:GetQueueAttributes", "sns:ListSubscriptionsByTopic"], "*")

    # 10. The ECS task execution role (image pulls, log streams at every task start).
    ex = b.identity(account, "ecs_task_execution", "ecsTaskExecutionRole", team="platform")
    ex.trust_policy = service_trust("ecs-tasks.amazonaws.com")
    ex.managed = ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]
    facts["ecs_exec"] = ex.key
    change("ecs_task_execution", start, "ECS pulls images and creates log streams with ecsTaskExecutionRole at "
           "every task start (ecr:GetAuthorizationToken, BatchGetImage, GetDownloadUrlForLayer, logs:CreateLogStream)",
           ex)
    tasks = by["ecs_task"]
    rollout = next((c.identity for c in mine if c.kind == "region_rollout"), None)
    target = next((i for i in tasks if i.key != rollout), tasks[0])
    c = change("ecs_task_definition_update", plan.moment(0.3, 0.7),
               f"{cicd.name} registers a new task definition revision of {target.params['service']} and updates "
               "the service; the new code also calls sqs:GetQueueUrl and ssm:GetParametersByPath", target,
               deployer=cicd.key, revision=rng.randrange(12, 90), queue=f"{target.params['service']}-jobs")
    _add_statement(target, ["sqs:GetQueueUrl", "ssm:GetParametersByPath"], "*")

    # 22. A new ECS service goes live: its stack creates the task role, its first hour is its whole history.
    svc = f"{rng.choice(TEAMS)}-{rng.choice(['notifier', 'pricing', 'webhooks', 'ledger'])}"
    when = plan.moment(0.3, 0.8)
    new_svc = b.identity(account, "ecs_task", f"{svc}-task-role", created=when, team=svc.split("-")[0], service=svc,
                         per_hour=rng.choice([4, 8]), batch=False, bucket=rng.choice(account.buckets),
                         secret=rng.choice(account.secrets), parameters=rng.sample(account.parameters, 2),
                         table=rng.choice(account.tables))
    _ecs_task_iam(new_svc, account)
    change("new_ecs_service", when, f"new ECS service {svc} goes live: {cicd.name}'s CloudFormation stack creates "
           "its task role, task definition and service", new_svc, deployer=cicd.key)

    # 6. CloudFormation creates the new functions' roles with the deploy role's session (forward access).
    new_functions = [c for c in mine if c.kind == "new_function"]
    for n, nf in enumerate(new_functions):
        fn_ident = org.identity(nf.identity)
        fn = fn_ident.params["function"]
        change("cloudformation_iam_deploy", fn_ident.created,
               f"{cicd.name} deploys stack {fn}-stack: CloudFormation creates role {fn_ident.name} (CreateRole, "
               "PutRolePolicy, AttachRolePolicy, TagRole) and the function, with the deploy role's session", cicd,
               function=fn_ident.key, stack=f"{fn}-stack", action="create")
        if n == 0:  # a later stack update of the first new function
            update = fn_ident.created + rng.randrange(1, 3) * 86400 + rng.randrange(-3600, 3600)
            while not _is_workday(update) and update < org.end:
                update += 86400
            if update < org.end:
                change("cloudformation_iam_deploy", update,
                       f"stack update of {fn}-stack: CloudFormation rewrites the role's inline policy and deletes "
                       "the bootstrap one (PutRolePolicy, DeleteRolePolicy)", cicd,
                       function=fn_ident.key, stack=f"{fn}-stack", action="update")
    # The new ECS service's stack too.
    change("cloudformation_iam_deploy", new_svc.created, f"{cicd.name} deploys stack {svc}-stack: CloudFormation "
           f"creates task role {new_svc.name}, registers the task definition and creates the service", cicd,
           ecs_service=new_svc.key, stack=f"{svc}-stack", action="create")

    # 4. A CSPM vendor is onboarded: a stack creates its cross-account role, the first sweep runs that night.
    vendor, vendor_account, role_name, session_prefix, agent = rng.choice(CSPM_VENDORS)
    when = plan.moment(0.25, 0.6)
    external_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    cspm = b.identity(account, "vendor_cspm", role_name, created=when + 25, team="security", vendor=vendor,
                      external_account=vendor_account, external_id=external_id, user_agent=agent,
                      session_prefix=session_prefix, caller_id=b.unique_id("AROA"),
                      sweep_minute=rng.randrange(22 * 60, 23 * 60 + 20))
    cspm.trust_policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{vendor_account}:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_id}}}]}
    cspm.managed = ["arn:aws:iam::aws:policy/SecurityAudit", "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"]
    cspm.policies = [{"PolicyName": f"{role_name}ExtraReads", "PolicyDocument": allow_policy([
        (["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "lambda:GetFunction", "eks:DescribeCluster",
          "ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock", "s3:GetBucketNotification"], "*")])}]
    change("cspm_onboarding", when, f"{vendor} is onboarded: an admin's CloudFormation stack creates {role_name} "
           f"trusting the vendor's account {vendor_account} with an ExternalId; the vendor sweeps every region "
           "that night and nightly after", cspm)

    # 5. Services enabled mid-period: their service-linked roles appear and sweep on their first day.
    for service in rng.sample(sorted(SLR_LIBRARY), 2):
        role_name, policy = SLR_LIBRARY[service]
        when = plan.moment(0.2, 0.7)
        slr = b.identity(account, "service_linked_sweep", role_name, path=f"/aws-service-role/{service}/",
                         created=when + 4, team="aws", service=service)
        slr.trust_policy = service_trust(service)
        slr.managed = [f"arn:aws:iam::aws:policy/aws-service-role/{policy}"]
        change("service_linked_role_enabled", when, f"an admin enables {service.split('.')[0]}: "
               f"CreateServiceLinkedRole makes {role_name}, whose sessions then read across services", slr)

    # 13. Auto Scaling launches instances on a scale-out (its service-linked role must exist).
    asg_role = next((i for i in by.get("service_linked", []) if i.name == "AWSServiceRoleForAutoScaling"), None)
    if asg_role is None:
        asg_role = b.identity(account, "service_linked", "AWSServiceRoleForAutoScaling",
                              path="/aws-service-role/autoscaling.amazonaws.com/", team="aws",
                              service="autoscaling.amazonaws.com")
        asg_role.trust_policy = service_trust("autoscaling.amazonaws.com")
        asg_role.managed = ["arn:aws:iam::aws:policy/aws-service-role/AutoScalingServiceRolePolicy"]
    ec2_roles = by["ec2_instance"]
    web = next((i for i in ec2_roles if "web" in i.name), ec2_roles[0])
    change("autoscaling_scale_out", plan.moment(0.15, 0.5, hours=(13, 15)),
           f"{web.params['app']}-asg scales out on busy afternoons: AWSServiceRoleForAutoScaling runs instances, "
           f"whose {web.name} sessions (new instance ids) call from new AWS addresses; scale-in in the evening",
           web, slr=asg_role.key, asg=f"{web.params['app']}-asg",
           launch_template=f"lt-0{rng.getrandbits(64):016x}", subnet=f"subnet-0{rng.getrandbits(64):016x}")

    # 9. An instance goes dual-stack: its role session calls from its IPv6 and IPv4 addresses.
    instance = account.instances[ec2_roles[0].name][0]
    change("dual_stack_instance", plan.moment(0.2, 0.6),
           f"{instance}'s subnet gets IPv6: its {ec2_roles[0].name} session calls AWS from an IPv6 address as well",
           ec2_roles[0], instance=instance, ipv6=netranges.ec2_v6_for(rng.getrandbits(48), HOME_REGION))

    # 11. SSM Quick Setup: inventory and patch scans on every managed instance.
    change("ssm_inventory_patching", plan.moment(0.2, 0.6),
           "an admin creates State Manager associations (AWS-GatherSoftwareInventory, AWS-RunPatchBaseline): "
           "instances call ssm:PutInventory, ListInstanceAssociations, GetDeployablePatchSnapshotForInstance, "
           "ec2messages", ec2_roles[0], principals=[i.key for i in ec2_roles],
           associations=[str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2)])

    # 7. A disaster-recovery drill: some workloads run in the DR region for a few hours.
    drilled = rng.sample(tasks, min(2, len(tasks))) + rng.sample(lambdas, min(2, len(lambdas)))
    when = plan.moment(0.3, 0.8, hours=(10, 11))
    change("dr_drill", when, f"disaster-recovery drill: {', '.join(i.name for i in drilled)} run in {DR_REGION} "
           "for six hours, then go back", drilled[0], region=DR_REGION, end=when + 6 * 3600,
           identities=[i.key for i in drilled])

    # 8. A key-rotation function rotates an automation user's key and tests the new key.
    users = by["automation_user"]
    human_rotated = next((c.identity for c in mine if c.kind == "key_rotation"), None)
    user = next((u for u in users if u.key != human_rotated), None)
    if user is None:
        user = b.identity(account, "automation_user", "svc-partner-export", user=True, team="platform",
                          job="etl-export", hours=[3], bucket=rng.choice(account.buckets),
                          source_ip=rng.choice(account.office_ips), agent=users[0].params["agent"])
        user.access_keys = [{"id": f"AKIA{b.unique_id('')[:16]}", "created": user.created + 86400, "retired": None}]
        user.policies = [{"PolicyName": "job", "PolicyDocument": allow_policy([
            (["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
             [f"arn:aws:s3:::{user.params['bucket']}", f"arn:aws:s3:::{user.params['bucket']}/*"])])}]
    rotator = _lambda_role(b, account, "lambda_key_rotator", "iam-key-rotator", "platform", None, [
        (["iam:ListUsers"], "*"),
        (["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"],
         [f"arn:aws:iam::{account.id}:user/svc-*"]),
        (["secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret"],
         [f"arn:aws:secretsmanager:*:{account.id}:secret:automation/*"])],
        runtime="python3.12", env_encrypted=False, minute=rng.randrange(0, 20))
    day = int((plan.moment(0.2, 0.6, workday=False) - start) // 86400)
    when = start + day * 86400 + 2 * 3600 + rotator.params["minute"] * 60 + 30  # during its 02:00 run
    change("key_rotation_function", when, f"{rotator.params['function']} rotates {user.name}'s access key: "
           "CreateAccessKey, a test call with the new key from the function, the old key made inactive the next "
           "day and deleted the day after", user, rotator=rotator.key, old_key=user.access_keys[0]["id"],
           new_key=f"AKIA{b.unique_id('')[:16]}")

    # 12. Athena reports: the data role queries, Athena reads Glue and S3 with its session.
    lake = f"acme_{account.name.replace('-', '_')}_lake"
    athena = _lambda_role(b, account, "athena_reporting", "data-athena-report", "data", None, [
        (["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"],
         [f"arn:aws:athena:*:{account.id}:workgroup/primary"]),
        (["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
         [f"arn:aws:glue:*:{account.id}:catalog", f"arn:aws:glue:*:{account.id}:database/{lake}",
          f"arn:aws:glue:*:{account.id}:table/{lake}/*"]),
        (["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:GetBucketLocation"],
         [f"arn:aws:s3:::{account.buckets[0]}", f"arn:aws:s3:::{account.buckets[0]}/*"])],
        runtime="python3.12", env_encrypted=False, database=lake, data_bucket=account.buckets[0],
        tables=rng.sample(["orders", "payments", "sessions", "clicks", "invoices", "refunds"], 3),
        hours=[1, 7, 13, 19])
    change("athena_glue", start, "data-athena-report runs Athena queries; Athena reads Glue tables and S3 with its "
           "session (invokedBy athena.amazonaws.com)", athena)

    # 14. Terraform plans in CI, and a new repository's first plan.
    tf_subjects = ["repo:acme/platform-infra:pull_request", "repo:acme/platform-infra:ref:refs/heads/main",
                   "repo:acme/data-infra:pull_request"]
    tf = b.identity(account, "cicd_terraform", "github-terraform-plan", team="platform", repos=["platform-infra"],
                    runs_per_day=3, state_bucket=f"acme-{account.name}-tfstate", lock_table="terraform-locks")
    tf.trust_policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{account.id}:oidc-provider/{GITHUB_OIDC}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com"},
                      "StringLike": {f"{GITHUB_OIDC}:sub": tf_subjects}}}]}
    tf.managed = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    tf.policies = [{"PolicyName": "terraform-state", "PolicyDocument": allow_policy([
        (["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
         [f"arn:aws:s3:::{tf.params['state_bucket']}", f"arn:aws:s3:::{tf.params['state_bucket']}/*"]),
        (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
         [f"arn:aws:dynamodb:*:{account.id}:table/terraform-locks"])])}]
    change("terraform_plan", start, "terraform plan on pull requests: github-terraform-plan reads ~10 services in "
           "minutes from GitHub-hosted runners", tf)
    change("terraform_new_repository", plan.moment(0.4, 0.8), "repository acme/data-infra starts running terraform "
           "plan: an admin adds its subject to github-terraform-plan's trust policy, then its first plan runs", tf,
           repo="data-infra", subjects=tf_subjects)

    # 15. AWS Backup is set up: its default service role backs up volumes and tables nightly.
    when = plan.moment(0.2, 0.6)
    backup = b.identity(account, "aws_backup", "AWSBackupDefaultServiceRole", path="/service-role/",
                        created=when + 20, team="aws", plan_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        volumes=[f"vol-0{rng.getrandbits(64):016x}" for _ in range(rng.randrange(3, 6))],
                        tables=list(account.tables[:2]))
    backup.trust_policy = service_trust("backup.amazonaws.com")
    backup.managed = ["arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
                      "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"]
    change("aws_backup", when, "an admin creates a backup plan: AWSBackupDefaultServiceRole (assumed by "
           "backup.amazonaws.com) snapshots volumes and backs up tables nightly", backup)

    # 16. A nightly Step Functions workflow started by EventBridge Scheduler.
    machine = f"{rng.choice(TEAMS)}-nightly-etl"
    sm_role = b.identity(account, "stepfunctions_role", f"StepFunctions-{machine}-role-{rng.getrandbits(32):08x}",
                         path="/service-role/", team="data", machine=machine,
                         functions=[i.params["function"] for i in rng.sample(lambdas, min(2, len(lambdas)))],
                         task=rng.choice(tasks).key, hour=1)
    sched = b.identity(account, "scheduler_role", f"Amazon_EventBridge_Scheduler_SFN_{rng.getrandbits(40):010x}",
                       path="/service-role/", team="data", machine=machine)
    sm_arn = f"arn:aws:states:{HOME_REGION}:{account.id}:stateMachine:{machine}"
    sm_role.trust_policy = service_trust("states.amazonaws.com")
    sm_role.policies = [{"PolicyName": "LambdaInvokeScopedAccessPolicy", "PolicyDocument": allow_policy([
        (["lambda:InvokeFunction"], [f"arn:aws:lambda:{HOME_REGION}:{account.id}:function:{f}:*"
                                     for f in sm_role.params["functions"]] +
         [f"arn:aws:lambda:{HOME_REGION}:{account.id}:function:{f}" for f in sm_role.params["functions"]]),
        (["ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks"], "*"),
        (["iam:PassRole"], [org.identity(sm_role.params["task"]).arn, ex.arn]),
        (["events:PutTargets", "events:PutRule", "events:DescribeRule"],
         [f"arn:aws:events:{HOME_REGION}:{account.id}:rule/StepFunctionsGetEventsForECSTaskRule"])])}]
    sched.trust_policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account.id}}}]}
    sched.policies = [{"PolicyName": f"Amazon-EventBridge-Scheduler-Execution-Policy-{machine}",
                       "PolicyDocument": allow_policy([(["states:StartExecution"], [sm_arn])])}]
    sm_role.params["scheduler"] = sched.key
    change("stepfunctions_scheduler", start, f"EventBridge Scheduler starts {machine} nightly (scheduler.amazonaws.com "
           "assumes its role, states:StartExecution); states.amazonaws.com assumes the workflow's role to invoke "
           "functions and run an ECS task", sm_role, principals=[sm_role.key, sched.key])

    # 17. Secrets Manager rotation is turned on for a database secret.
    secret = rng.choice(account.secrets)
    slug = secret.split("/")[1] if secret.count("/") >= 2 else "db"
    when = plan.moment(0.3, 0.7)
    rot = _lambda_role(b, account, "lambda_secret_rotation", f"rotate-{slug}-db", slug.split("-")[0], when - 1500, [
        (["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
          "secretsmanager:UpdateSecretVersionStage"], [f"arn:aws:secretsmanager:*:{account.id}:secret:{secret}*"]),
        (["secretsmanager:GetRandomPassword"], "*")],
        runtime="python3.12", env_encrypted=False, secret=secret, every_days=7)
    change("secrets_rotation", when, f"rotation is turned on for {secret}: secretsmanager.amazonaws.com invokes "
           f"{rot.params['function']}, whose role calls DescribeSecret, GetSecretValue, PutSecretValue, "
           "UpdateSecretVersionStage (weekly)", rot)

    # 18. The monitoring vendor polls CloudWatch, EC2 and tags every few minutes, around the clock.
    datadog = next((i for i in by.get("vendor_readonly", []) if i.params["vendor"] == "datadog-integration"), None)
    if datadog is not None:
        datadog.params["poll_min"] = 5
        change("vendor_monitoring", start, "Datadog's AWS integration (account 464622532012) assumes its role and "
               "polls CloudWatch, EC2 and tagging every few minutes from many AWS us-east-1 addresses", datadog)

    # 19. CodeBuild builds with the project's service role.
    team = rng.choice(TEAMS)
    project = f"{team}-build"
    cb = b.identity(account, "codebuild", f"codebuild-{project}-service-role", path="/service-role/", team=team,
                    project=project, builds_per_day=4, artifact_bucket=rng.choice(account.buckets),
                    repository=f"acme/{team}-service")
    cb.trust_policy = service_trust("codebuild.amazonaws.com")
    cb.policies = [{"PolicyName": f"CodeBuildBasePolicy-{project}-{HOME_REGION}", "PolicyDocument": allow_policy([
        (["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         [f"arn:aws:logs:{HOME_REGION}:{account.id}:log-group:/aws/codebuild/{project}:*"]),
        (["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketAcl", "s3:GetBucketLocation"],
         [f"arn:aws:s3:::{cb.params['artifact_bucket']}", f"arn:aws:s3:::{cb.params['artifact_bucket']}/*"]),
        (["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload",
          "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"], "*"),
        (["ssm:GetParameters"], [f"arn:aws:ssm:{HOME_REGION}:{account.id}:parameter/{account.name}/*"])])}]
    change("codebuild_build", start, f"CodeBuild project {project} builds with its service role: the service "
           "assumes it (AWSCodeBuild-<build id>), the build container calls from CodeBuild's addresses", cb)

    # 20. EKS pods with IAM roles for service accounts.
    oidc_id = f"{rng.getrandbits(128):032X}"
    facts["eks_oidc"] = EKS_OIDC + oidc_id
    provider = f"arn:aws:iam::{account.id}:oidc-provider/{EKS_OIDC}{oidc_id}"
    pods = []
    for app in rng.sample(["checkout", "catalog", "fraud-scorer", "mailer", "thumbnailer"], 2):
        ns = rng.choice(TEAMS)
        sa = f"{app}-sa"
        pod = b.identity(account, "eks_irsa", f"eks-{ns}-{app}-irsa", team=ns, app=app, namespace=ns,
                         service_account=sa, replicas=rng.choice([2, 3]), per_hour=rng.choice([6, 10, 16]),
                         sdk=rng.choice(["python", "java"]), bucket=rng.choice(account.buckets),
                         table=rng.choice(account.tables), secret=rng.choice(account.secrets))
        pod.trust_policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{EKS_OIDC}{oidc_id}:sub": f"system:serviceaccount:{ns}:{sa}",
                                           f"{EKS_OIDC}{oidc_id}:aud": "sts.amazonaws.com"}}}]}
        pod.policies = [{"PolicyName": "pod", "PolicyDocument": allow_policy([
            (["s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{pod.params['bucket']}/*"]),
            (["dynamodb:Query", "dynamodb:PutItem", "dynamodb:GetItem"],
             [f"arn:aws:dynamodb:*:{account.id}:table/{pod.params['table']}"]),
            (["secretsmanager:GetSecretValue"],
             [f"arn:aws:secretsmanager:*:{account.id}:secret:{pod.params['secret']}*"])])}]
        pods.append(pod)
    change("eks_irsa", start, "EKS pods get role credentials by AssumeRoleWithWebIdentity from the cluster's OIDC "
           "issuer (system:serviceaccount subjects) and call from the nodes' NAT addresses", pods[0],
           principals=[p.key for p in pods])

    # 21. Month-end batch peaks (when the period has a month end and the account a batch service).
    batch = next((i for i in tasks if i.params.get("batch")), None)
    if batch is not None:
        for d in range(b.days):
            t = start + d * 86400
            if is_month_end(t):
                change("month_end_batch", t, f"{batch.params['service']} runs five times its usual load over the "
                       "month's last two days", batch)
                break


def is_month_end(t: float) -> bool:
    from datetime import datetime, timedelta, timezone

    date = datetime.fromtimestamp(t, timezone.utc)
    return (date + timedelta(days=1)).day == 1 or (date + timedelta(days=2)).day == 1

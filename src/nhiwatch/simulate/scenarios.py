"""The attack scenario library: a compromised non-human identity inside the simulated org.

Each scenario names its Stratus Red Team technique(s) and MITRE ATT&CK ids, the kind of identity
it compromises, where the attacker works from (the internet, or the workload's own network) and
its steps. A step either replays the real detonation records of a Stratus technique
(../shared/data/cloudtrail/stratus-detonations), re-targeted onto the victim (account, principal,
session and key, network, region, time, fresh ids), or builds calls the detonation logs lack.
The stolen credentials are the victim's own: the same session and access key it was using.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from nhiwatch.ingest.timestamps import BadTimestamp, parse_event_time
from nhiwatch.simulate.activity import DayContext, Emitted
from nhiwatch.simulate.org import HOME_REGION, Identity
from nhiwatch.simulate.records import (Actor, assume_response, role_session_identity, stable_hash,
                                       user_identity)

ATTACKER_NETS = ["185.220.101.", "45.134.26.", "91.219.236.", "193.32.162.", "5.188.206.", "146.70.53."]
ATTACKER_AGENTS = [
    "aws-cli/2.13.5 Python/3.11.4 Linux/6.3.0-kali1-amd64 exe/x86_64.kali.2023 prompt/off command/{cmd}",
    "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.5 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.57",
    "aws-sdk-go/1.44.298 (go1.20.5; linux; amd64)",
    "aws-cli/1.29.40 Python/3.9.2 Linux/5.10.0-23-cloud-amd64 botocore/1.31.40",
]
_ACCOUNT = re.compile(r"\b\d{12}\b")
_INSTANCE = re.compile(r"\bi-[0-9a-zA-Z]{8,17}\b")
_STRATUS_NAME = re.compile(r"stratus[-_]red[-_]team", re.IGNORECASE)


def default_detonations_dir() -> Path | None:
    """../shared/data/cloudtrail/stratus-detonations beside the checkout or the working folder."""
    here = Path(__file__).resolve()
    candidates = [Path.cwd().parent / "shared", here.parents[3].parent / "shared", Path.cwd() / "shared"]
    for base in candidates:
        folder = base / "data" / "cloudtrail" / "stratus-detonations"
        if folder.is_dir():
            return folder
    return None


class Detonations:
    """Loads the real detonation records of a technique, ordered by time."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._cache: dict[str, list[dict]] = {}

    def records(self, technique: str) -> list[dict]:
        if technique not in self._cache:
            records: list[dict] = []
            path = self.folder / f"{technique}.json" if self.folder else None
            if path is not None and path.is_file():
                records = json.loads(path.read_text())
            records.sort(key=lambda r: r.get("eventTime", ""))
            self._cache[technique] = records
        return self._cache[technique]


class Call(NamedTuple):
    """One API call a built step makes."""

    when: float
    source: str
    name: str
    request: dict | None = None
    response: dict | None = None
    error: tuple[str, str] | None = None
    region: str | None = None  # default: the attack's region
    as_web_identity: bool = False  # made by the web-identity user before it holds the role


@dataclass
class Step:
    """One part of an attack: a Stratus technique's real records, or calls built here."""

    technique: str | None = None
    build: Callable[["Attack", float], list[Call]] | None = None
    keep: Callable[[dict], bool] | None = None  # which detonation records the victim makes
    region: str | None = None


@dataclass
class Scenario:
    id: str
    title: str
    stratus: list[str]
    mitre: list[str]
    victim: str  # archetype of the compromised identity
    network: str  # "internet" or "workload"
    steps: list[Step]
    prefer: str | None = None  # a victim whose name has this, when there is one (the plausible insider)
    # Detectors whose job this attack is: at least one must raise a medium+ finding on the victim
    # (tests/test_detect.py), so a detector cannot go silent with every test green.
    must_catch: tuple[str, ...] = ()


@dataclass
class Attack:
    """A scenario placed on a victim at a time: everything the steps need."""

    scenario: Scenario
    ctx: DayContext
    victim: Identity
    start: float
    identity: dict  # the stolen userIdentity
    source_ip: str
    agent: str
    region: str
    ids: list[str] = field(default_factory=list)
    events: list[Emitted] = field(default_factory=list)
    account: str = ""
    pre_identity: dict | None = None  # who logs in before holding the role (web identity)
    chained: tuple[str, dict] | None = None  # (account, identity) after a hop into another role
    stolen: dict | None = None  # the victim's own credentials, to come back to after a hop

    def actor(self, command: str = "") -> Actor:
        return Actor(self.identity, self.source_ip, self.agent.replace("{cmd}", command or "unknown"),
                     self.account or self.victim.account)


# -- steps built here (techniques without detonation logs, and the glue between them) ------------------

def enumeration(attack: Attack, t: float) -> list[Call]:
    """What a fresh key holder runs first: who am I, what is here."""
    calls = [("sts.amazonaws.com", "GetCallerIdentity", None), ("iam.amazonaws.com", "ListUsers", None),
             ("iam.amazonaws.com", "ListRoles", None), ("iam.amazonaws.com", "GetAccountAuthorizationDetails",
                                                        {"filter": ["User", "Role", "LocalManagedPolicy"]}),
             ("iam.amazonaws.com", "ListAttachedUserPolicies", None), ("s3.amazonaws.com", "ListBuckets", None),
             ("ec2.amazonaws.com", "DescribeInstances", None), ("ec2.amazonaws.com", "DescribeSnapshots",
                                                                {"ownersSet": {"items": [{"owner": "self"}]}}),
             ("secretsmanager.amazonaws.com", "ListSecrets", None), ("lambda.amazonaws.com", "ListFunctions20150331",
                                                                     None),
             ("rds.amazonaws.com", "DescribeDBInstances", None), ("cloudtrail.amazonaws.com", "DescribeTrails", None),
             ("guardduty.amazonaws.com", "ListDetectors", None), ("organizations.amazonaws.com", "DescribeOrganization",
                                                                  None),
             ("kms.amazonaws.com", "ListKeys", None), ("ssm.amazonaws.com", "DescribeParameters", None)]
    out = []
    for source, name, request in calls:
        t += attack.ctx.rng.uniform(0.5, 4)
        denied = name in ("GetAccountAuthorizationDetails", "DescribeOrganization") and attack.victim.archetype not in (
            "automation_user",)
        error = ("AccessDenied", f"User: {attack.identity.get('arn')} is not authorized to perform: "
                 f"{source.split('.')[0]}:{name}") if denied else None
        out.append(Call(t, source, name, request, error=error))
    return out


def bulk_s3_download(attack: Attack, t: float) -> list[Call]:
    rng = attack.ctx.rng
    out = []
    for bucket in rng.sample(attack.ctx.account.buckets, 3):
        t += 2
        out.append(Call(t, "s3.amazonaws.com", "ListObjects", {"bucketName": bucket, "prefix": ""}))
        for n in range(rng.randrange(60, 120)):
            t += rng.uniform(0.05, 0.4)
            out.append(Call(t, "s3.amazonaws.com", "GetObject", {"bucketName": bucket, "key": f"export/{n:05d}.csv"}))
    return out


def bucket_policy_backdoor(attack: Attack, t: float) -> list[Call]:
    bucket = attack.ctx.rng.choice(attack.ctx.account.buckets)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::619843286753:root"},
        "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
    return [Call(t + 1, "s3.amazonaws.com", "GetBucketPolicy", {"bucketName": bucket, "policy": ""},
                 error=("NoSuchBucketPolicy", "The bucket policy does not exist")),
            Call(t + 9, "s3.amazonaws.com", "PutBucketPolicy", {"bucketName": bucket, "bucketPolicy": policy})]


def _assume_ops_role(attack: Attack, t: float, account) -> list[Call]:
    """sts:AssumeRole with the stolen credentials into an account's operations role; the next steps act as it."""
    role = next(i for i in account.identities if i.archetype == "cross_account_ops")
    key = attack.ctx.session_key()
    session = attack.ctx.rng.choice(["maintenance", "ops-check", "debug"])
    response = assume_response(attack.ctx.ids, role.arn, role.unique_id, session, key, t)
    attack.chained = (account.id, role_session_identity(role.arn, role.unique_id, session, key, t + 1))
    return [Call(t + 1, "sts.amazonaws.com", "AssumeRole", {"roleArn": role.arn, "roleSessionName": session},
                 response)]


def chain_into_other_account(attack: Attack, t: float) -> list[Call]:
    """sts:AssumeRole from the victim into another account's role (the chain's next hop)."""
    others = [a for a in attack.ctx.org.accounts if a.id != attack.victim.account]
    return _assume_ops_role(attack, t, others[0]) if others else []


def chain_within_account(attack: Attack, t: float) -> list[Call]:
    """sts:AssumeRole from the victim into its own account's operations role."""
    return _assume_ops_role(attack, t, attack.ctx.account)


def back_to_stolen_key(attack: Attack, t: float) -> list[Call]:
    """The attacker drops the assumed role and works with the stolen credentials again."""
    attack.identity, attack.account = attack.stolen, attack.victim.account
    return []


def mining_run(attack: Attack, t: float) -> list[Call]:
    region = "ap-southeast-3"
    request = {"instancesSet": {"items": [{"imageId": "ami-0c2b8ca1dad447f8a", "minCount": 10, "maxCount": 10}]},
               "instanceType": "p3.16xlarge", "blockDeviceMapping": {}, "monitoring": {"enabled": False},
               "disableApiTermination": False}
    return [Call(t + 1, "ec2.amazonaws.com", "DescribeRegions"),
            Call(t + 3, "ec2.amazonaws.com", "RunInstances", request,
                 error=("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
                 region=region),
            Call(t + 30, "ec2.amazonaws.com", "RunInstances", {**request, "instanceType": "g4dn.12xlarge"},
                 region=region)]


def foreign_repo_login(attack: Attack, t: float) -> list[Call]:
    """AssumeRoleWithWebIdentity with a token from a repository outside the organisation."""
    victim = attack.victim
    provider = f"arn:aws:iam::{victim.account}:oidc-provider/token.actions.githubusercontent.com"
    subject = "repo:octo-pwn/ci-playground:ref:refs/heads/main"
    key = attack.ctx.session_key()
    response = assume_response(attack.ctx.ids, victim.arn, victim.unique_id, "GitHubActions", key, t,
                               subjectFromWebIdentityToken=subject, audience="sts.amazonaws.com", provider=provider)
    attack.pre_identity = {"type": "WebIdentityUser",
                           "principalId": f"{provider}:sts.amazonaws.com:{subject}", "userName": subject,
                           "identityProvider": provider}
    attack.identity = role_session_identity(victim.arn, victim.unique_id, "GitHubActions", key, t,
                                            web_provider=provider)
    return [Call(t, "sts.amazonaws.com", "AssumeRoleWithWebIdentity",
                 {"roleArn": victim.arn, "roleSessionName": "GitHubActions"}, response, as_web_identity=True)]


def admin_through_a_function(attack: Attack, t: float) -> list[Call]:
    """The deploy role's route to admin, walked (its inventory route iam-005 then lambda-003): an admin policy
    written on the key-rotation function's role, then the function's code replaced, so the attacker's code
    runs with that role."""
    rotator = next((i for i in attack.ctx.account.identities if i.archetype == "lambda_key_rotator"), None)
    if rotator is None:
        return []
    admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    return [Call(t + 2, "iam.amazonaws.com", "GetRole", {"roleName": rotator.name}),
            Call(t + 21, "iam.amazonaws.com", "PutRolePolicy",
                 {"roleName": rotator.name, "policyName": "maintenance", "policyDocument": admin}),
            Call(t + 74, "lambda.amazonaws.com", "UpdateFunctionCode20150331v2",
                 {"functionName": rotator.params["function"], "zipFile": "<sensitiveDataRemoved>", "publish": True})]


def _steal(keep_types: tuple[str, ...]) -> Callable[[dict], bool]:
    return lambda r: (r.get("userIdentity") or {}).get("type") in keep_types


def _not_helper_assume(record: dict) -> bool:
    # Stratus switches into its own helper role first; the victim already holds its credentials.
    return not (record.get("eventName") == "AssumeRole" and (record.get("userIdentity") or {}).get("type") == "IAMUser")


S = Step
SCENARIOS: list[Scenario] = [
    Scenario("lambda-creds-from-internet", "Lambda role credentials used from the internet",
             ["aws.credential-access.ec2-steal-instance-credentials"], ["T1552.005", "T1078.004", "T1087.004"],
             "lambda_scheduled", "internet",
             [S("aws.credential-access.ec2-steal-instance-credentials", keep=_steal(("AssumedRole",))),
              S(build=enumeration)],
             must_catch=("workload-credentials-outside-runtime",)),
    Scenario("ec2-creds-off-instance", "EC2 instance-role credentials used off the instance",
             ["aws.credential-access.ec2-steal-instance-credentials"], ["T1552.005", "T1078.004"],
             "ec2_instance", "internet",
             [S("aws.credential-access.ec2-steal-instance-credentials", keep=_steal(("AssumedRole",))),
              S(build=enumeration)],
             must_catch=("instance-credentials-off-instance",)),
    Scenario("ci-key-leak-escalation", "Leaked CI key: enumeration, admin user, login profile",
             ["aws.persistence.iam-create-admin-user", "aws.persistence.iam-create-user-login-profile"],
             ["T1078.004", "T1087.004", "T1136.003", "T1098.001"], "automation_user", "internet",
             [S(build=enumeration), S("aws.persistence.iam-create-admin-user"),
              S("aws.persistence.iam-create-user-login-profile")],
             must_catch=("iam-permission-change",)),
    Scenario("oidc-foreign-repository", "Misconfigured GitHub OIDC trust used from a foreign repository",
             ["aws.credential-access.secretsmanager-retrieve-secrets"], ["T1078.004", "T1199", "T1555.006"],
             "cicd_oidc", "internet",
             [S(build=foreign_repo_login), S("aws.credential-access.secretsmanager-retrieve-secrets")],
             must_catch=("new-web-identity-subject",)),
    Scenario("role-chain-cross-account", "ECS task role chained into another account, backdoor role created there",
             ["aws.persistence.iam-create-backdoor-role"], ["T1078.004", "T1550.001", "T1098.003"],
             "ecs_task", "internet",
             [S(build=chain_into_other_account), S("aws.persistence.iam-create-backdoor-role")],
             must_catch=("cross-account-role-chaining",)),
    Scenario("ci-key-two-roles", "Leaked CI key assumes two roles: secrets read in one, a backdoor role "
             "created with the other in a second account",
             ["aws.credential-access.secretsmanager-retrieve-secrets", "aws.persistence.iam-create-backdoor-role"],
             ["T1078.004", "T1087.004", "T1550.001", "T1555.006", "T1098.003"], "automation_user", "internet",
             [S(build=enumeration), S(build=chain_within_account),
              S("aws.credential-access.secretsmanager-retrieve-secrets"), S(build=back_to_stolen_key),
              S(build=chain_into_other_account), S("aws.persistence.iam-create-backdoor-role")],
             must_catch=("cross-account-role-chaining",)),
    Scenario("bulk-secret-retrieval", "Secrets read in bulk from inside a workload",
             ["aws.credential-access.secretsmanager-retrieve-secrets"], ["T1555.006"], "ecs_task", "workload",
             [S("aws.credential-access.secretsmanager-retrieve-secrets")],
             must_catch=("bulk-secret-access",)),
    Scenario("batch-secret-retrieval", "BatchGetSecretValue from the internet with a Lambda role",
             ["aws.credential-access.secretsmanager-batch-retrieve-secrets"], ["T1555.006", "T1078.004"],
             "lambda_event", "internet", [S("aws.credential-access.secretsmanager-batch-retrieve-secrets")],
             must_catch=("bulk-secret-access",)),
    Scenario("ssm-securestring-parameters", "SecureString parameters decrypted in bulk on an instance",
             ["aws.credential-access.ssm-retrieve-securestring-parameters"], ["T1552"], "ec2_instance", "workload",
             [S("aws.credential-access.ssm-retrieve-securestring-parameters")],
             must_catch=("bulk-secret-access",)),
    Scenario("s3-bulk-download", "Bulk download from several buckets with an automation key",
             [], ["T1530", "T1078.004"], "automation_user", "internet", [S(build=bulk_s3_download)],
             must_catch=('bulk-s3-download',)),
    Scenario("s3-bucket-policy-backdoor", "Bucket policy opened to an external account from a CI session",
             ["aws.exfiltration.s3-backdoor-bucket-policy"], ["T1537", "T1098"], "cicd_oidc", "internet",
             [S(build=bucket_policy_backdoor)],
             must_catch=("resource-shared-externally",)),
    Scenario("ebs-snapshot-shared", "EBS snapshot shared with an external account by the backup bot's key",
             ["aws.exfiltration.ec2-share-ebs-snapshot"], ["T1537"], "automation_user", "internet",
             [S("aws.exfiltration.ec2-share-ebs-snapshot")], prefer="backup",
             must_catch=("resource-shared-externally",)),
    Scenario("ami-shared", "AMI shared with an external account by an instance role off-instance",
             ["aws.exfiltration.ec2-share-ami"], ["T1537"], "ec2_instance", "internet",
             [S("aws.exfiltration.ec2-share-ami")],
             must_catch=("resource-shared-externally",)),
    Scenario("rds-snapshot-shared", "RDS snapshot shared with an external account",
             ["aws.exfiltration.rds-share-snapshot"], ["T1537"], "automation_user", "internet",
             [S("aws.exfiltration.rds-share-snapshot")],
             must_catch=("resource-shared-externally",)),
    Scenario("cloudtrail-stopped", "CloudTrail logging stopped by a CI session",
             ["aws.defense-evasion.cloudtrail-stop"], ["T1562.008"], "cicd_oidc", "internet",
             [S("aws.defense-evasion.cloudtrail-stop")],
             must_catch=("defense-evasion-first-use",)),
    Scenario("cloudtrail-deleted", "Trail deleted with an automation key", ["aws.defense-evasion.cloudtrail-delete"],
             ["T1562.008"], "automation_user", "internet", [S("aws.defense-evasion.cloudtrail-delete")],
             must_catch=("defense-evasion-first-use",)),
    Scenario("cloudtrail-selectors-changed", "Trail event selectors narrowed by a Lambda role",
             ["aws.defense-evasion.cloudtrail-event-selectors"], ["T1562.008"], "lambda_scheduled", "workload",
             [S("aws.defense-evasion.cloudtrail-event-selectors")],
             must_catch=("defense-evasion-first-use",)),
    Scenario("gpu-instances-for-mining", "GPU instances launched in an unused region",
             ["aws.execution.ec2-launch-unusual-instances"], ["T1496", "T1535"], "ecs_task", "internet",
             [S("aws.execution.ec2-launch-unusual-instances", keep=_not_helper_assume, region="ap-southeast-3"),
              S(build=mining_run)],
             must_catch=("unusual-instances",)),
    Scenario("trust-policy-backdoor", "Role trust policy opened to an external account",
             ["aws.persistence.iam-backdoor-role"], ["T1098.003", "T1484"], "cicd_oidc", "internet",
             [S("aws.persistence.iam-backdoor-role")],
             must_catch=("iam-permission-change",)),
    Scenario("access-key-for-another-user", "New access key created for another IAM user",
             ["aws.persistence.iam-backdoor-user"], ["T1098.001"], "lambda_event", "internet",
             [S(build=enumeration), S("aws.persistence.iam-backdoor-user")],
             must_catch=("iam-permission-change",)),
    Scenario("access-denied-probing", "Probing of the permission boundary: password data and user data",
             ["aws.credential-access.ec2-get-password-data", "aws.discovery.ec2-download-user-data"],
             ["T1552.005", "T1580"], "lambda_event", "internet",
             [S("aws.credential-access.ec2-get-password-data", keep=_not_helper_assume),
              S("aws.discovery.ec2-download-user-data", keep=_not_helper_assume)],
             must_catch=("access-denied-probing", "credential-access-first-use", "discovery-first-use")),
    Scenario("flow-logs-removed", "VPC flow logs deleted from an instance role session",
             ["aws.defense-evasion.vpc-remove-flow-logs"], ["T1562.008"], "ec2_instance", "workload",
             [S("aws.defense-evasion.vpc-remove-flow-logs")],
             must_catch=("defense-evasion-first-use",)),
    Scenario("ssm-lateral-movement", "Commands sent to instances through SSM by a CI session",
             ["aws.execution.ssm-send-command"], ["T1651", "T1021"], "cicd_oidc", "internet",
             [S("aws.execution.ssm-send-command")],
             must_catch=("lateral-movement-first-use",)),
    Scenario("federation-token-persistence", "Federation token minted from an automation key",
             ["aws.persistence.sts-federation-token"], ["T1550.001", "T1078.004"], "automation_user", "internet",
             [S("aws.persistence.sts-federation-token")],
             must_catch=("persistence-first-use",)),
    Scenario("lambda-code-overwrite", "Function code and layers replaced outside the pipeline",
             ["aws.persistence.lambda-overwrite-code", "aws.persistence.lambda-layer-extension"],
             ["T1525", "T1546"], "automation_user", "internet",
             [S("aws.persistence.lambda-overwrite-code"), S("aws.persistence.lambda-layer-extension")],
             must_catch=("persistence-first-use",)),
    Scenario("security-group-opened", "SSH opened to the world from an ECS task role",
             ["aws.exfiltration.ec2-security-group-open-port-22-ingress"], ["T1562.007"], "ecs_task", "internet",
             [S("aws.exfiltration.ec2-security-group-open-port-22-ingress")],
             must_catch=("resource-shared-externally", "defense-evasion-first-use")),
    Scenario("route-to-admin-through-a-function", "A deploy session walks its route to admin: an admin policy "
             "on the key-rotation function's role, then the function's code replaced",
             [], ["T1098.003", "T1525", "T1078.004"], "cicd_oidc", "internet",
             [S(build=admin_through_a_function)], prefer="payments-service",
             must_catch=("escalation-route-walked",)),
]


# -- placing and playing a scenario ---------------------------------------------------------------------

@dataclass
class Placement:
    scenario: Scenario
    victim: str  # Identity.key
    account: str
    start: float


def place(org, scenarios: list[Scenario], rng) -> list[Placement]:
    """Put each scenario on a victim of the right kind, in the second half of the period."""
    placements = []
    span = org.end - org.start
    for scenario in scenarios:
        candidates = [i for i in org.identities() if i.archetype == scenario.victim and i.created < org.start]
        if not candidates:
            continue
        if scenario.prefer:
            candidates = [i for i in candidates if scenario.prefer in i.name] or candidates
        victim = rng.choice(candidates)
        # A day in the second half (baselines have history by then), after the victim's first calls.
        first_day = int(org.days * 0.45) if span > 4 * 86400 else 0
        day = rng.randrange(first_day, org.days)
        start = org.start + day * 86400 + rng.uniform(2 * 3600, 23 * 3600)
        placements.append(Placement(scenario, victim.key, victim.account, start))
    return placements


def _victim_identity(ctx: DayContext, victim: Identity, day_events: list[Emitted], start: float) -> dict:
    """The credentials the attacker holds: the victim's own most recent session before the attack."""
    latest = None
    for t, _region, record in day_events:
        if t > start:
            break
        ident = record.get("userIdentity")
        if isinstance(ident, dict) and ident.get("arn", "").startswith(
                (victim.arn, f"arn:aws:sts::{victim.account}:assumed-role/{victim.name}/")):
            latest = ident
    if latest is not None:
        return latest
    if victim.is_user:
        return user_identity(victim.arn, victim.unique_id, victim.access_keys[0]["id"])
    session = victim.params.get("function") or (ctx.account.instances.get(victim.name) or ["session"])[0]
    return role_session_identity(victim.arn, victim.unique_id, session, ctx.session_key(), start - 900)


def _victim_ip(ctx: DayContext, victim: Identity, identity: dict, day_events: list[Emitted]) -> str:
    for _t, _region, record in reversed(day_events):
        if record.get("userIdentity") is identity:
            return record["sourceIPAddress"]
    return ctx.nat_ip(ctx.t0)


def play(ctx: DayContext, placement: Placement, detonations: Detonations, day_events: list[Emitted]) -> Attack:
    scenario = placement.scenario
    rng = ctx.rng
    victim = next(i for i in ctx.account.identities if i.key == placement.victim)
    identity = _victim_identity(ctx, victim, day_events, placement.start)
    if scenario.network == "internet":
        ip = f"{rng.choice(ATTACKER_NETS)}{rng.randrange(2, 250)}"
        agent = rng.choice(ATTACKER_AGENTS)
    else:
        ip = _victim_ip(ctx, victim, identity, day_events)
        agent = rng.choice(ATTACKER_AGENTS[2:])
    attack = Attack(scenario, ctx, victim, placement.start, identity, ip, agent, HOME_REGION, account=victim.account,
                    stolen=identity)
    t = placement.start
    for step in scenario.steps:
        if step.build is not None:
            for call in step.build(attack, t):
                region = call.region or attack.region
                if call.as_web_identity:
                    actor = Actor(attack.pre_identity, ip, "aws-sdk-nodejs/2.1580.0 linux/v20.12.2 "
                                  "configure-aws-credentials-for-github-actions promise", victim.account)
                else:
                    actor = attack.actor(f"{call.source.split('.')[0]}.{call.name.lower()}")
                _emit(attack, call.when, region, ctx.rec.call(call.when, actor, call.source, call.name, region,
                                                              call.request, call.response, call.error))
                t = max(t, call.when)
            if attack.chained:  # the hop is made: the next steps act as the assumed role
                account, chained_identity = attack.chained
                attack.identity, attack.account, attack.chained = chained_identity, account, None
        else:
            t = _replay(attack, step, detonations, t)
        t += rng.uniform(20, 240)
    return attack


def _emit(attack: Attack, when: float, region: str, record: dict) -> None:
    attack.events.append((when, region, record))
    attack.ids.append(record["eventID"])


def _replay(attack: Attack, step: Step, detonations: Detonations, t: float) -> float:
    """Re-target a technique's real records onto the victim."""
    records = [r for r in detonations.records(step.technique) if step.keep is None or step.keep(r)]
    if not records:
        records = [r for r in _fallback(step.technique) if step.keep is None or step.keep(r)]
    ctx = attack.ctx
    region = step.region or attack.region
    originals = {r.get("recipientAccountId") for r in records} | {
        (r.get("userIdentity") or {}).get("accountId") for r in records}
    originals.discard(None)
    fake_regions = {r.get("awsRegion") for r in records if r.get("awsRegion")}
    instances = ctx.account.instances.get(attack.victim.name) or [i for ids in ctx.account.instances.values()
                                                                  for i in ids] or ["i-0123456789abcdef0"]
    name_prefix = ctx.rng.choice(["ops-tmp", "svc-maint", "backup-sync", "infra-helper"])
    first = records[0].get("eventTime", "") if records else ""
    previous = None
    when = t
    for original in records:
        stamp = original.get("eventTime", first)
        gap = _seconds_between(previous, stamp) if previous else 0.0
        when += min(max(gap, 0.2), 300.0)
        previous = stamp
        text = json.dumps({k: original.get(k) for k in ("requestParameters", "responseElements", "resources",
                                                         "additionalEventData", "errorCode", "errorMessage")})
        for account in originals:
            text = text.replace(account, attack.account or attack.victim.account)
        for fake in fake_regions:
            text = text.replace(fake, region)
        text = _INSTANCE.sub(lambda m: instances[stable_hash(m.group(0)) % len(instances)], text)
        text = _STRATUS_NAME.sub(name_prefix, text)
        parts = json.loads(text)
        identity = attack.identity
        if (original.get("userIdentity") or {}).get("type") == "FederatedUser" and attack.victim.is_user:
            identity = _federated(attack, original)
        actor = Actor(identity, attack.source_ip, attack.agent.replace("{cmd}", original.get("eventName", "").lower()),
                      attack.account or attack.victim.account)
        error = (parts["errorCode"], parts.get("errorMessage") or "") if parts.get("errorCode") else None
        record = ctx.rec.call(when, actor, original["eventSource"], original["eventName"], region,
                              parts["requestParameters"], parts["responseElements"], error,
                              resources=parts["resources"], read_only=original.get("readOnly"),
                              event_type=original.get("eventType") or "AwsApiCall")
        if parts.get("additionalEventData"):
            record["additionalEventData"] = parts["additionalEventData"]
        _emit(attack, when, region, record)
    return when


def _federated(attack: Attack, original: dict) -> dict:
    victim = attack.victim
    name = (original.get("userIdentity") or {}).get("arn", "x/temp").rsplit("/", 1)[-1]
    name = _STRATUS_NAME.sub("ops", name)
    return {"type": "FederatedUser", "principalId": f"{victim.account}:{name}",
            "arn": f"arn:aws:sts::{victim.account}:federated-user/{name}", "accountId": victim.account,
            "accessKeyId": attack.ctx.session_key(),
            "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": victim.unique_id,
                                                 "arn": victim.arn, "accountId": victim.account,
                                                 "userName": victim.name},
                               "attributes": {"creationDate": original.get("eventTime"), "mfaAuthenticated": "false"}}}


def _seconds_between(a: str, b: str) -> float:
    try:
        return (parse_event_time(b)[0] - parse_event_time(a)[0]) / 1e6
    except BadTimestamp:
        return 1.0


def _fallback(technique: str) -> list[dict]:
    """Without the detonation logs, the technique's key calls (facts from the Stratus docs)."""
    calls = {
        "aws.credential-access.ec2-steal-instance-credentials": [("sts", "GetCallerIdentity"), ("ec2", "DescribeInstances")],
        "aws.credential-access.secretsmanager-retrieve-secrets": [("secretsmanager", "ListSecrets")] + [
            ("secretsmanager", "GetSecretValue")] * 20,
        "aws.credential-access.secretsmanager-batch-retrieve-secrets": [("secretsmanager", "BatchGetSecretValue")] * 5,
        "aws.credential-access.ssm-retrieve-securestring-parameters": [("ssm", "DescribeParameters"),
                                                                       ("ssm", "GetParameters")] * 5,
        "aws.credential-access.ec2-get-password-data": [("ec2", "GetPasswordData")] * 30,
        "aws.discovery.ec2-download-user-data": [("ec2", "DescribeInstanceAttribute")] * 15,
        "aws.persistence.iam-create-admin-user": [("iam", "CreateUser"), ("iam", "AttachUserPolicy"),
                                                  ("iam", "CreateAccessKey")],
        "aws.persistence.iam-create-user-login-profile": [("iam", "CreateLoginProfile")],
        "aws.persistence.iam-create-backdoor-role": [("iam", "CreateRole"), ("iam", "AttachRolePolicy")],
        "aws.persistence.iam-backdoor-role": [("iam", "UpdateAssumeRolePolicy")],
        "aws.persistence.iam-backdoor-user": [("iam", "CreateAccessKey")],
        "aws.persistence.sts-federation-token": [("sts", "GetFederationToken")],
        "aws.persistence.lambda-overwrite-code": [("lambda", "UpdateFunctionCode20150331v2")],
        "aws.persistence.lambda-layer-extension": [("lambda", "UpdateFunctionConfiguration20150331v2")],
        "aws.exfiltration.ec2-share-ebs-snapshot": [("ec2", "ModifySnapshotAttribute")],
        "aws.exfiltration.ec2-share-ami": [("ec2", "ModifyImageAttribute")],
        "aws.exfiltration.rds-share-snapshot": [("rds", "ModifyDBSnapshotAttribute")],
        "aws.exfiltration.ec2-security-group-open-port-22-ingress": [("ec2", "AuthorizeSecurityGroupIngress")],
        "aws.defense-evasion.cloudtrail-stop": [("cloudtrail", "StopLogging")],
        "aws.defense-evasion.cloudtrail-delete": [("cloudtrail", "DeleteTrail")],
        "aws.defense-evasion.cloudtrail-event-selectors": [("cloudtrail", "PutEventSelectors")],
        "aws.defense-evasion.vpc-remove-flow-logs": [("ec2", "DeleteFlowLogs")],
        "aws.execution.ec2-launch-unusual-instances": [("ec2", "RunInstances")],
        "aws.execution.ssm-send-command": [("ssm", "SendCommand"), ("ssm", "GetCommandInvocation")],
    }.get(technique, [])
    return [{"eventSource": f"{svc}.amazonaws.com", "eventName": name, "eventTime": f"2024-01-01T00:00:{i:02d}Z",
             "requestParameters": None, "responseElements": None} for i, (svc, name) in enumerate(calls)]


# Victims for replayed detonations, in turn, so that attacks spread over several identities.
REPLAY_VICTIMS = ("automation_user", "lambda_event", "ecs_task", "cicd_oidc", "lambda_scheduled", "ec2_instance")
REPLAY_AS_USER = ("sts-federation-token", "console-login", "update-user-login-profile")
REPLAY_PREFIX = "replay:"


def replay_scenario(technique: str, index: int = 0) -> Scenario:
    """One Stratus detonation file replayed as-is by a compromised NHI from the internet."""
    if "steal-instance-credentials" in technique:
        victim = "ec2_instance"
    elif any(part in technique for part in REPLAY_AS_USER):
        victim = "automation_user"
    else:
        victim = REPLAY_VICTIMS[index % len(REPLAY_VICTIMS)]
    return Scenario(f"{REPLAY_PREFIX}{technique}", f"Stratus detonation {technique} replayed", [technique],
                    [], victim, "internet", [Step(technique)])


def detonation_techniques(folder: Path | None = None) -> list[str]:
    folder = folder or default_detonations_dir()
    return sorted(p.stem for p in folder.glob("aws.*.json")) if folder else []


def scenario_by_id(ident: str) -> Scenario:
    if ident.startswith(REPLAY_PREFIX):
        techniques = detonation_techniques()
        technique = ident[len(REPLAY_PREFIX):]
        if technique not in techniques:
            raise KeyError(f"no detonation file for {technique!r}")
        return replay_scenario(technique, techniques.index(technique))
    for scenario in SCENARIOS:
        if scenario.id == ident:
            return scenario
    raise KeyError(f"no scenario {ident!r}; known: {', '.join(s.id for s in SCENARIOS)} "
                   f"or {REPLAY_PREFIX}<Stratus technique>")



def scenarios_markdown() -> str:
    """The scenario library as Markdown; docs/scenarios.md is this text."""
    lines = [
        "# Attack scenario library",
        "",
        "Generated from `src/nhiwatch/simulate/scenarios.py` (`nhiwatch scenarios --markdown`); do not edit by hand.",
        "",
        "Each scenario is carried out by a compromised non-human identity of the simulated organisation, with its "
        "own credentials (same session and access key). Steps marked *replayed* re-target the real Stratus Red Team "
        "detonation records onto the victim; *built* steps are calls the detonation logs lack.",
        "",
        "| id | what happens | compromised identity | from | Stratus technique(s) | ATT&CK | steps | caught by one of |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in SCENARIOS:
        steps = ", ".join(f"replayed `{step.technique}`" if step.technique else f"built: {step.build.__name__}"
                          for step in s.steps)
        stratus = ", ".join(f"`{t}`" for t in s.stratus) or "none (ATT&CK only)"
        caught = ", ".join(f"`{d}`" for d in s.must_catch)
        lines.append(f"| `{s.id}` | {s.title} | {s.victim} | {s.network} | {stratus} | {', '.join(s.mitre)} | {steps} "
                     f"| {caught} |")
    from nhiwatch.simulate.legit import KINDS

    lines += [
        "",
        "# Legitimate behaviour library",
        "",
        "Generated from `src/nhiwatch/simulate/legit.py`. Every kind is on by default in `nhiwatch simulate`, `demo` "
        "and `eval --simulate`; labels.json lists each occurrence under `changes` (kind, principal, description, "
        "start, and the event ids it produced), so that false alerts on legitimate behaviour can be counted per kind. "
        "Source addresses of AWS-hosted callers come from AWS's published ranges of the right service and region, "
        "GitHub-hosted runners from GitHub's published `actions` ranges (`src/nhiwatch/simulate/netranges.py`).",
        "",
        "| kind | how CloudTrail shows it |",
        "|---|---|",
    ]
    for kind, shape in KINDS.items():
        lines.append(f"| `{kind}` | {shape} |")
    return "\n".join(lines) + "\n"

"""The simulated organisation: accounts, their non-human identities, resources and networks.

Everything is derived from the seed, so the same arguments always build the same organisation.
Identities are grouped by archetype (what kind of workload they are); each archetype has its
own trust policy, permissions, rhythm, APIs, resources, regions, networks and user agents
(see activity.py for the behaviour).
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

HOME_REGION = "us-east-1"
ROLLOUT_REGION = "eu-west-1"
GITHUB_OIDC = "token.actions.githubusercontent.com"

# Archetype -> identities per account at scale 1.
ARCHETYPE_COUNTS = {
    "lambda_scheduled": 14,
    "lambda_event": 8,
    "ecs_task": 8,
    "ec2_instance": 6,
    "cicd_oidc": 3,
    "vendor_readonly": 3,
    "automation_user": 5,
    "service_linked": 4,
    "human_sso": 3,
}
# Identities the library of legitimate behaviours adds (legit_org.py): AWS services' roles, vendors, pipelines.
LEGIT_ARCHETYPES = frozenset({
    "ecs_task_execution", "vendor_cspm", "service_linked_sweep", "aws_backup", "lambda_key_rotator",
    "athena_reporting", "cicd_terraform", "scheduler_role", "stepfunctions_role", "lambda_secret_rotation",
    "codebuild", "eks_irsa"})
NHI_ARCHETYPES = frozenset(ARCHETYPE_COUNTS) - {"human_sso"} | LEGIT_ARCHETYPES

TEAMS = ["payments", "orders", "search", "identity", "data", "platform", "growth", "billing"]
NOUNS = ["ingest", "export", "sync", "report", "resize", "notify", "reconcile", "index", "cleanup",
         "enrich", "archive", "audit", "digest", "scorer", "router", "watcher"]
VENDORS = [
    # (name, external account, user agent, source networks)
    ("datadog-integration", "464622532012", "Datadog/1.0 aws-sdk-go/1.44.327 (go1.20.6; linux; amd64)",
     ["3.233.144.", "3.233.145."]),
    ("wiz-scanner", "197171649850", "aws-sdk-go-v2/1.21.0 os/linux lang/go#1.21.1 md/GOOS#linux api/wiz",
     ["52.207.29.", "34.227.91."]),
    ("cloudhealth-billing", "454464851268", "Boto3/1.28.40 md/Botocore#1.31.40 ua/2.0 os/linux#5.15 "
     "lang/python#3.10.12 Botocore/1.31.40 cloudhealth", ["54.172.36.", "54.172.37."]),
]
SERVICE_LINKED = [
    ("AWSServiceRoleForConfig", "config.amazonaws.com"),
    ("AWSServiceRoleForAutoScaling", "autoscaling.amazonaws.com"),
    ("AWSServiceRoleForElasticLoadBalancing", "elasticloadbalancing.amazonaws.com"),
    ("AWSServiceRoleForECS", "ecs.amazonaws.com"),
    ("AWSServiceRoleForRDS", "rds.amazonaws.com"),
    ("AWSServiceRoleForSecurityHub", "securityhub.amazonaws.com"),
]
HUMANS = ["alice.nguyen", "bruno.costa", "chen.wei", "dana.okafor", "eli.kaplan", "farah.haddad",
          "gus.lindqvist", "hana.sato"]
PERMISSION_SETS = ["AdministratorAccess", "AWSReadOnlyAccess", "PowerUserAccess"]  # admins first: changes need one


@dataclass
class Identity:
    key: str  # unique in the simulation
    archetype: str
    account: str
    name: str
    arn: str
    unique_id: str  # AROA... / AIDA...
    created: float  # epoch seconds
    regions: list[str]
    team: str
    trust_policy: dict | None = None
    policies: list[dict] = field(default_factory=list)  # inline {PolicyName, PolicyDocument}
    managed: list[str] = field(default_factory=list)  # attached managed policy ARNs
    path: str = "/"
    params: dict = field(default_factory=dict)  # behaviour: rates, resources, networks ...
    access_keys: list[dict] = field(default_factory=list)  # users: {id, created, retired}

    @property
    def is_user(self) -> bool:
        return ":user/" in self.arn

    @property
    def nhi(self) -> bool:
        return self.archetype in NHI_ARCHETYPES


@dataclass
class Account:
    id: str
    name: str
    nat_ips: list[str]
    office_ips: list[str]
    vpc_endpoint: str
    kms_key: str
    buckets: list[str]
    secrets: list[str]
    parameters: list[str]
    tables: list[str]
    instances: dict[str, list[str]] = field(default_factory=dict)  # role name -> instance ids
    identities: list[Identity] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # what the legitimate-behaviour library needs (legit_org.py)


@dataclass
class Change:
    """A legitimate change the simulated teams make, with when it starts."""

    id: str
    kind: str
    account: str
    when: float
    description: str
    identity: str | None = None  # Identity.key
    detail: dict = field(default_factory=dict)


@dataclass
class Org:
    seed: int
    start: float
    days: int
    org_id: str
    accounts: list[Account]
    changes: list[Change]

    @property
    def end(self) -> float:
        return self.start + self.days * 86400

    def identities(self) -> list[Identity]:
        return [i for a in self.accounts for i in a.identities]

    def identity(self, key: str) -> Identity:
        for ident in self.identities():
            if ident.key == key:
                return ident
        raise KeyError(key)


def allow_policy(statements: list[tuple[list[str], list[str] | str]]) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": resources} for actions, resources in statements]}


def service_trust(service: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                                                   "Action": "sts:AssumeRole"}]}


class OrgBuilder:
    def __init__(self, seed: int, accounts: int, scale: float, days: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.n_accounts = accounts
        self.scale = scale
        self.days = days
        self.start = start.replace(tzinfo=timezone.utc).timestamp()

    def count(self, archetype: str) -> int:
        return max(1, round(ARCHETYPE_COUNTS[archetype] * self.scale))

    def unique_id(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(17))

    def account(self, index: int) -> Account:
        rng = self.rng
        acct = f"{rng.randrange(10**11, 10**12 - 1):012d}"
        name = ["prod", "staging", "data", "shared-services", "sandbox"][index % 5] + (
            f"-{index // 5 + 1}" if index >= 5 else "")
        nat = [f"{rng.choice([3, 18, 34, 44, 52, 54])}.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}."
               f"{rng.randrange(2, 250)}" for _ in range(2)]
        office = [f"198.51.100.{rng.randrange(2, 250)}", f"203.0.113.{rng.randrange(2, 250)}"]
        team_words = [f"{t}-{n}" for t in TEAMS for n in NOUNS]
        return Account(
            id=acct, name=name, nat_ips=nat, office_ips=office,
            vpc_endpoint=f"vpce-{rng.getrandbits(68):017x}",
            kms_key=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            buckets=[f"acme-{name}-{w}" for w in rng.sample(team_words, 8)],
            secrets=[f"{name}/{w}/db-credentials" for w in rng.sample(team_words, 10)],
            parameters=[f"/{name}/{w}/config" for w in rng.sample(team_words, 12)],
            tables=[f"{name}-{w}" for w in rng.sample(team_words, 6)],
        )

    def identity(self, account: Account, archetype: str, name: str, *, user: bool = False, path: str = "/",
                 created: float | None = None, team: str | None = None, **params) -> Identity:
        kind = "user" if user else "role"
        arn = f"arn:aws:iam::{account.id}:{kind}{path}{name}"
        ident = Identity(
            key=f"{account.id}/{kind}/{name}", archetype=archetype, account=account.id, name=name, arn=arn,
            unique_id=self.unique_id("AIDA" if user else "AROA"),
            created=created if created is not None else self.start - self.rng.randrange(30, 900) * 86400,
            regions=[HOME_REGION], team=team or self.rng.choice(TEAMS), path=path, params=params)
        account.identities.append(ident)
        return ident

    def build(self) -> Org:
        rng = self.rng
        org_id = "o-" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
        accounts = [self.account(i) for i in range(self.n_accounts)]
        for account in accounts:
            self.populate(account, accounts)
        org = Org(self.seed, self.start, self.days, org_id, accounts, [])
        org.changes = self.changes(org)
        # The library of legitimate behaviour real accounts show (AWS services acting with an identity's
        # credentials, vendors, pipelines, releases), from its own random stream so the rest stays put.
        from nhiwatch.simulate.legit_org import extend_org

        extend_org(self.forked("legit"), org)
        return org

    def forked(self, salt: str) -> "OrgBuilder":
        """The same builder drawing from another random stream (seeded by text: stable across processes)."""
        other = copy.copy(self)
        other.rng = random.Random(f"{self.seed}:{salt}")
        return other

    # -- identities per archetype ----------------------------------------------------------------

    def populate(self, account: Account, accounts: list[Account]) -> None:
        rng = self.rng
        used: set[str] = set()

        def fresh(words: list[str]) -> str:
            while True:
                name = "-".join(rng.choice(w) if isinstance(w, list) else w for w in words)
                if name not in used:
                    used.add(name)
                    return name

        for _ in range(self.count("lambda_scheduled")):
            fn = fresh([TEAMS, NOUNS, ["job", "cron", "task"]])
            ident = self.identity(account, "lambda_scheduled", f"{fn}-role", path="/service-role/", team=fn.split("-")[0],
                                  function=fn, every_min=rng.choice([10, 15, 30, 60, 60, 120]),
                                  runtime=rng.choice(["python3.12", "nodejs20.x", "python3.11"]),
                                  bucket=rng.choice(account.buckets), secret=rng.choice(account.secrets),
                                  table=rng.choice(account.tables))
            self.lambda_iam(ident)
        for _ in range(self.count("lambda_event")):
            fn = fresh([TEAMS, NOUNS, ["handler", "consumer", "api"]])
            ident = self.identity(account, "lambda_event", f"{fn}-role", path="/service-role/", team=fn.split("-")[0],
                                  function=fn, per_hour=rng.choice([2, 4, 8, 20]),
                                  runtime=rng.choice(["python3.12", "nodejs20.x", "java21"]),
                                  bucket=rng.choice(account.buckets), secret=rng.choice(account.secrets),
                                  table=rng.choice(account.tables))
            self.lambda_iam(ident)
        for _ in range(self.count("ecs_task")):
            svc = fresh([TEAMS, ["api", "worker", "gateway", "scheduler", "batch"]])
            ident = self.identity(account, "ecs_task", f"{svc}-task-role", team=svc.split("-")[0], service=svc,
                                  per_hour=rng.choice([4, 8, 15]), batch=svc.endswith("batch"),
                                  bucket=rng.choice(account.buckets), secret=rng.choice(account.secrets),
                                  parameters=rng.sample(account.parameters, 2), table=rng.choice(account.tables))
            ident.trust_policy = service_trust("ecs-tasks.amazonaws.com")
            ident.policies = [{"PolicyName": "app", "PolicyDocument": allow_policy([
                (["s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{ident.params['bucket']}/*"]),
                (["secretsmanager:GetSecretValue"], [f"arn:aws:secretsmanager:*:{account.id}:secret:"
                                                     f"{ident.params['secret']}*"]),
                (["ssm:GetParameter", "ssm:GetParameters"], [f"arn:aws:ssm:*:{account.id}:parameter/*"]),
                (["dynamodb:*"], [f"arn:aws:dynamodb:*:{account.id}:table/{ident.params['table']}"]),
                (["kms:Decrypt"], "*")])}]
        for _ in range(self.count("ec2_instance")):
            app = fresh([TEAMS, ["web", "legacy", "etl", "bastion", "build"]])
            count = rng.choice([1, 2, 3])
            ident = self.identity(account, "ec2_instance", f"{app}-ec2-role", team=app.split("-")[0], app=app,
                                  bucket=rng.choice(account.buckets), parameters=rng.sample(account.parameters, 2))
            account.instances[ident.name] = [f"i-0{rng.getrandbits(64):016x}" for _ in range(count)]
            ident.trust_policy = service_trust("ec2.amazonaws.com")
            ident.managed = ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
            ident.policies = [{"PolicyName": "app", "PolicyDocument": allow_policy([
                (["s3:GetObject", "s3:ListBucket"], [f"arn:aws:s3:::{ident.params['bucket']}",
                                                     f"arn:aws:s3:::{ident.params['bucket']}/*"]),
                (["ec2:DescribeInstances", "ec2:DescribeTags"], "*")])}]
        repos = [f"{t}-service" for t in TEAMS]
        for i in range(self.count("cicd_oidc")):
            repo = repos[i % len(repos)] if i < len(repos) else fresh([TEAMS, ["infra", "app"]])
            ident = self.identity(account, "cicd_oidc", f"github-deploy-{repo}", team=repo.split("-")[0],
                                  repos=[repo], deploys_per_day=rng.choice([1, 2, 3, 5]),
                                  bucket=rng.choice(account.buckets),
                                  functions=[i.params["function"] for i in account.identities
                                             if i.archetype.startswith("lambda")][:3])
            subject_pattern = f"repo:acme/{repo}:ref:refs/heads/main"
            ident.params["subject_pattern"] = subject_pattern
            ident.trust_policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{account.id}:oidc-provider/{GITHUB_OIDC}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com"},
                              "StringLike": {f"{GITHUB_OIDC}:sub": subject_pattern}}}]}
            ident.policies = [{"PolicyName": "deploy", "PolicyDocument": allow_policy([
                (["cloudformation:*", "ecr:*", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
                  "lambda:GetFunction", "s3:PutObject", "s3:GetObject"], "*"),
                (["iam:PassRole"], f"arn:aws:iam::{account.id}:role/service-role/*")])}]
        for vendor, external, agent, nets in VENDORS[: self.count("vendor_readonly")]:
            ident = self.identity(account, "vendor_readonly", f"{vendor}-role", team="platform", vendor=vendor,
                                  external_account=external, user_agent=agent, networks=nets,
                                  every_min=rng.choice([30, 60, 60]), external_id=f"ext-{rng.getrandbits(64):016x}",
                                  caller_id=self.unique_id("AROA"))
            ident.trust_policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{external}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": ident.params["external_id"]}}}]}
            ident.managed = ["arn:aws:iam::aws:policy/SecurityAudit", "arn:aws:iam::aws:policy/ReadOnlyAccess"]
        for _ in range(self.count("automation_user")):
            job = fresh([["backup", "dns", "cert", "report", "etl", "inventory"], ["bot", "sync", "cron"]])
            ident = self.identity(account, "automation_user", f"svc-{job}", user=True, team="platform", job=job,
                                  hours=sorted(rng.sample(range(24), rng.choice([1, 2, 4]))),
                                  bucket=rng.choice(account.buckets), source_ip=rng.choice(account.office_ips),
                                  agent=rng.choice(["aws-cli/2.15.30 Python/3.11.8 Linux/5.15.0 exe/x86_64.ubuntu.22",
                                                    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 "
                                                    "md/arch#x86_64 lang/python#3.11.8 Botocore/1.34.69"]))
            key_created = ident.created + rng.randrange(0, 60) * 86400
            ident.access_keys = [{"id": f"AKIA{self.unique_id('')[:16]}", "created": key_created, "retired": None}]
            ident.policies = [{"PolicyName": "job", "PolicyDocument": allow_policy([
                (["s3:PutObject", "s3:GetObject", "s3:ListBucket"], [f"arn:aws:s3:::{ident.params['bucket']}",
                                                                      f"arn:aws:s3:::{ident.params['bucket']}/*"]),
                (["ec2:CreateSnapshot", "ec2:DescribeSnapshots", "ec2:DescribeVolumes", "route53:*",
                  "rds:CreateDBSnapshot"], "*")])}]
        for name, service in SERVICE_LINKED[: self.count("service_linked")]:
            ident = self.identity(account, "service_linked", name, path=f"/aws-service-role/{service}/",
                                  team="aws", service=service)
            ident.trust_policy = service_trust(service)
            ident.managed = [f"arn:aws:iam::aws:policy/aws-service-role/{name.replace('AWSServiceRoleFor', '')}"
                             "ServiceRolePolicy"]
        for perm in PERMISSION_SETS[: self.count("human_sso")]:
            role = f"AWSReservedSSO_{perm}_{rng.getrandbits(64):016x}"
            ident = self.identity(account, "human_sso", role, team="people",
                                  path=f"/aws-reserved/sso.amazonaws.com/{HOME_REGION}/",
                                  people=rng.sample(HUMANS, 3), permission_set=perm)
            ident.trust_policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{account.id}:saml-provider/"
                                                              "AWSSSO_5a2c1d3e4f5a6b7c_DO_NOT_DELETE"},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}]}
            ident.managed = [f"arn:aws:iam::aws:policy/{'ReadOnlyAccess' if 'Read' in perm else perm}"]
        # A role other accounts' workloads may assume (role chaining target).
        ident = self.identity(account, "cross_account_ops", "org-ops-access", team="platform")
        ident.trust_policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{a.id}:root" for a in accounts]},
            "Action": "sts:AssumeRole"}]}
        ident.managed = ["arn:aws:iam::aws:policy/PowerUserAccess"]

    def lambda_iam(self, ident: Identity) -> None:
        p = ident.params
        ident.trust_policy = service_trust("lambda.amazonaws.com")
        ident.managed = ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
        ident.policies = [{"PolicyName": "function", "PolicyDocument": allow_policy([
            (["s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{p['bucket']}/*"]),
            (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
             [f"arn:aws:dynamodb:*:{ident.account}:table/{p['table']}"]),
            (["secretsmanager:GetSecretValue"], [f"arn:aws:secretsmanager:*:{ident.account}:secret:{p['secret']}*"]),
            (["kms:Decrypt"], "*")])}]

    # -- legitimate change ------------------------------------------------------------------------

    def changes(self, org: Org) -> list[Change]:
        rng = self.rng
        out: list[Change] = []
        span = max(self.days, 2)

        def day(lo: float, hi: float) -> float:
            """A work-hours moment between fractions lo and hi of the simulated period."""
            d = int(span * lo) + rng.randrange(max(1, int(span * (hi - lo))))
            return self.start + min(d, span - 1) * 86400 + rng.randrange(9 * 3600, 17 * 3600)

        for account in org.accounts:
            by_kind = {}
            for ident in account.identities:
                by_kind.setdefault(ident.archetype, []).append(ident)
            # New functions go live (their roles are created that day by the CI deploy role).
            for _ in range(max(1, round(2 * self.scale))):
                fn = f"{rng.choice(TEAMS)}-{rng.choice(NOUNS)}-v2-job"
                when = day(0.3, 0.8)
                ident = self.identity(account, "lambda_scheduled", f"{fn}-role", path="/service-role/",
                                      created=when, team=fn.split("-")[0], function=fn,
                                      every_min=rng.choice([15, 30, 60]), runtime="python3.12",
                                      bucket=rng.choice(account.buckets), secret=rng.choice(account.secrets),
                                      table=rng.choice(account.tables))
                self.lambda_iam(ident)
                out.append(Change(f"change-{len(out) + 1:03d}", "new_function", account.id, when,
                                  f"new Lambda function {fn} goes live with a new role", ident.key))
            # A code release adds API calls to an existing function.
            target = rng.choice(by_kind["lambda_scheduled"])
            out.append(Change(f"change-{len(out) + 1:03d}", "release_new_apis", account.id, day(0.4, 0.7),
                              f"release of {target.params['function']} adds SQS and SNS calls", target.key))
            # A service rolls out to a second region.
            target = rng.choice(by_kind["ecs_task"])
            out.append(Change(f"change-{len(out) + 1:03d}", "region_rollout", account.id, day(0.5, 0.8),
                              f"{target.params['service']} rolls out to {ROLLOUT_REGION}", target.key,
                              {"region": ROLLOUT_REGION}))
            # The NAT gateways get new addresses.
            new_ips = [f"44.{rng.randrange(192, 255)}.{rng.randrange(1, 255)}.{rng.randrange(2, 250)}"
                       for _ in account.nat_ips]
            out.append(Change(f"change-{len(out) + 1:03d}", "nat_change", account.id, day(0.4, 0.6),
                              f"NAT gateway addresses change to {', '.join(new_ips)}", None, {"ips": new_ips}))
            # An automation user's key is rotated.
            target = rng.choice(by_kind["automation_user"])
            out.append(Change(f"change-{len(out) + 1:03d}", "key_rotation", account.id, day(0.3, 0.7),
                              f"access key of {target.name} rotated", target.key,
                              {"new_key": f"AKIA{self.unique_id('')[:16]}"}))
            # A new repository starts deploying through an existing CI role.
            target = rng.choice(by_kind["cicd_oidc"])
            out.append(Change(f"change-{len(out) + 1:03d}", "new_repository", account.id, day(0.5, 0.8),
                              f"repository acme/{target.team}-web starts deploying via {target.name}", target.key,
                              {"repo": f"{target.team}-web"}))
            # An incident: humans investigate with unusual reads.
            target = rng.choice(by_kind["human_sso"])
            out.append(Change(f"change-{len(out) + 1:03d}", "incident_response", account.id, day(0.2, 0.9),
                              "on-call engineers investigate an incident", target.key))
        return out


def build_org(seed: int, accounts: int = 2, scale: float = 1.0, days: int = 30,
              start: datetime | None = None) -> Org:
    if accounts < 1 or days < 1 or scale <= 0:
        raise ValueError("accounts and days must be >= 1 and scale > 0")
    start = start or datetime(2026, 3, 1)
    return OrgBuilder(seed, accounts, scale, days, start).build()

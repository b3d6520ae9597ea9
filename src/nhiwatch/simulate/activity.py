"""What each kind of identity does in a day: its rhythm, APIs, resources, regions, networks, agents.

One function per archetype yields (time, region, record). The legitimate changes of org.py
take effect from their moment on (a new region, new APIs, new addresses, a rotated key, a new
repository), because being quiet on legitimate change is what users judge a detector by.
"""

from __future__ import annotations

import copy
import json
import math
import random
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from nhiwatch.simulate import netranges
from nhiwatch.simulate.org import GITHUB_OIDC, HOME_REGION, Account, Change, Identity, Org
from nhiwatch.simulate.records import (Actor, Ids, Recorder, assume_response, aws_date, role_session_identity,
                                       service_identity, stable_hash, user_identity)

Emitted = tuple[float, str, dict]

BOTO = ("Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10.219-229.851.amzn2.x86_64 md/arch#x86_64 "
        "lang/python#3.12.3 md/pyimpl#CPython exec-env/AWS_Lambda_{rt} cfg/retry-mode#legacy Botocore/1.34.{v}")
NODE = "aws-sdk-js/3.58{v}.0 ua/2.1 os/linux#5.10.219-229.851.amzn2.x86_64 lang/js md/nodejs#20.13.1 exec-env/AWS_Lambda_{rt}"
JAVA = "aws-sdk-java/2.25.{v} Linux/5.10.219-229.851.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS Java/21.0.3 vendor/Amazon.com_Inc. exec-env/{rt}"
ECS_AGENT = "aws-sdk-go-v2/1.26.{v} os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 exec-env/AWS_ECS_FARGATE"
SSM_AGENT = "aws-sdk-go/1.44.{v} (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.{v}.0"
GH_ACTIONS = "aws-sdk-nodejs/2.1580.0 linux/v20.12.2 configure-aws-credentials-for-github-actions promise"
GH_CLI = "aws-cli/2.15.{v} Python/3.11.8 Linux/6.5.0-1018-azure exe/x86_64.ubuntu.22 prompt/off command/{cmd}"
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")
CONSOLE = "AWS Internal"


def workday(t: float) -> bool:
    return int((t // 86400 + 3) % 7) < 5  # 1970-01-01 was a Thursday


def hour_of(t: float) -> int:
    return int(t % 86400 // 3600)


def diurnal(t: float) -> float:
    """Load factor: office hours busier, nights and weekends quieter."""
    h = hour_of(t)
    base = 0.35 + 0.65 * math.exp(-((h - 14) / 4.5) ** 2)
    return base * (1.0 if workday(t) else 0.45)


class DayContext:
    """What one account-day's generation shares: clock, randomness, ids, active changes."""

    def __init__(self, org: Org, account: Account, day: int, seed: int) -> None:
        self.org = org
        self.account = account
        self.day = day
        self.seed = seed
        self.t0 = org.start + day * 86400
        self.t1 = self.t0 + 86400
        self.rng = random.Random(seed)
        self.ids = Ids(self.rng)
        self.rec = Recorder(self.ids)
        self.changes = [c for c in org.changes if c.account == account.id]
        self._resources: dict[str, dict] = {}
        self._streams: dict[str, DayContext] = {}
        self.tagged: dict[str, list[str]] = {}  # change id -> event ids of the records that show it

    def stream(self, name: str) -> "DayContext":
        """The same day drawing from its own random stream (a behaviour's volume does not reshuffle the others).

        Shares everything else with this context: account, changes, resources, tags."""
        other = self._streams.get(name)
        if other is None:
            other = copy.copy(self)
            other.rng = random.Random(f"{self.seed}:{name}")
            other.ids = Ids(other.rng)
            other.rec = Recorder(other.ids)
            self._streams[name] = other
        return other

    def tag(self, change: Change | None, record: dict) -> dict:
        """Label a record as showing a legitimate change (labels.json lists it under the change)."""
        if change is not None:
            self.tagged.setdefault(change.id, []).append(record["eventID"])
        return record

    def resource(self, kind: str, arn: str) -> dict:
        """A resources[] entry; the same resource is one shared object (records are serialized, not mutated)."""
        entry = self._resources.get(arn)
        if entry is None:
            entry = self._resources[arn] = {"accountId": self.account.id, "type": kind, "ARN": arn}
        return entry

    def secret_arn(self, region: str, name: str) -> str:
        """Secrets Manager ARNs end in six characters fixed when the secret is created."""
        suffix = f"{stable_hash(name) & 0xFFFFFF:06x}"
        return f"arn:aws:secretsmanager:{region}:{self.account.id}:secret:{name}-{suffix}"

    def change(self, kind: str, ident: Identity | None = None) -> Change | None:
        for c in self.changes:
            if c.kind == kind and (ident is None or c.identity == ident.key):
                return c
        return None

    def after(self, kind: str, t: float, ident: Identity | None = None) -> Change | None:
        c = self.change(kind, ident)
        return c if c is not None and t >= c.when else None

    def nat_ip(self, t: float) -> str:
        c = self.after("nat_change", t)
        return self.rng.choice(c.detail["ips"] if c else self.account.nat_ips)

    def times_every(self, minutes: int, jitter: float = 3.0, offset: float | None = None) -> list[float]:
        step = minutes * 60
        first = self.t0 + (offset if offset is not None else self.rng.uniform(0, step))
        out, t = [], first
        while t < self.t1:
            out.append(t + self.rng.uniform(0, jitter))
            t += step
        return out

    def times_poisson(self, per_hour: float, shape: Callable[[float], float] = diurnal) -> list[float]:
        """Event-driven arrivals: a rate that follows the day, with occasional bursts."""
        out: list[float] = []
        rng = self.rng
        for hour in range(24):
            start = self.t0 + hour * 3600
            rate = per_hour * shape(start)
            if rng.random() < 0.03:
                rate *= rng.choice([5, 10])  # a burst: a backlog, a campaign, a retry storm
            n = poisson(rng, rate)
            out.extend(start + rng.uniform(0, 3600) for _ in range(n))
        out.sort()
        return out

    def session_key(self) -> str:
        return self.ids.key_id("ASIA")


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def service_assume(ctx: DayContext, t: float, service: str, ident: Identity, session: str, key: str,
                   region: str = HOME_REGION) -> Emitted:
    """The AssumeRole a service makes to hand a workload its role credentials (logged as AWSService)."""
    actor = Actor(service_identity(service), service, service, ctx.account.id)
    request = {"roleArn": ident.arn, "roleSessionName": session, "durationSeconds": 3600}
    response = assume_response(ctx.ids, ident.arn, ident.unique_id, session, key, t)
    res = [{"accountId": ident.account, "type": "AWS::IAM::Role", "ARN": ident.arn}]
    return t, region, ctx.rec.call(t, actor, "sts.amazonaws.com", "AssumeRole", region, request, response,
                                   resources=res, extra={"sharedEventID": ctx.ids.uuid()})


_S3_EXTRA = {"additionalEventData": {"SignatureVersion": "SigV4", "AuthenticationMethod": "AuthHeader",
                                     "bytesTransferredOut": 2048}}


def _s3(ctx: DayContext, t: float, actor: Actor, region: str, name: str, bucket: str, key: str) -> Emitted:
    request = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", "key": key}
    res = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
           ctx.resource("AWS::S3::Bucket", f"arn:aws:s3:::{bucket}")]
    return t, region, ctx.rec.call(t, actor, "s3.amazonaws.com", name, region, request, None, resources=res,
                                   extra=_S3_EXTRA)


def _secret(ctx: DayContext, t: float, actor: Actor, region: str, secret: str) -> Emitted:
    return t, region, ctx.rec.call(t, actor, "secretsmanager.amazonaws.com", "GetSecretValue", region,
                                   {"secretId": ctx.secret_arn(region, secret)}, None)


def _kms_decrypt(ctx: DayContext, t: float, actor: Actor, region: str) -> Emitted:
    key = ctx.resource("AWS::KMS::Key", f"arn:aws:kms:{region}:{ctx.account.id}:key/{ctx.account.kms_key}")
    return t, region, ctx.rec.call(t, actor, "kms.amazonaws.com", "Decrypt", region,
                                   {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, None, resources=[key])


def _dynamo(ctx: DayContext, t: float, actor: Actor, region: str, name: str, table: str) -> Emitted:
    table_arn = ctx.resource("AWS::DynamoDB::Table", f"arn:aws:dynamodb:{region}:{ctx.account.id}:table/{table}")
    return t, region, ctx.rec.call(t, actor, "dynamodb.amazonaws.com", name, region,
                                   {"tableName": table, "key": {"pk": ctx.ids.hex(8)}}, None, resources=[table_arn])


# -- archetypes -------------------------------------------------------------------------------------

def lambda_function(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    from nhiwatch.simulate.legit import Drill, LambdaRuntime, release_deploy

    p = ident.params
    rng = ctx.rng
    if ident.archetype == "lambda_scheduled":
        times = ctx.times_every(p["every_min"], jitter=2.0)
    else:
        times = ctx.times_poisson(p["per_hour"])
    rt = p["runtime"]
    version = rng.randrange(60, 99)
    agent = (BOTO if rt.startswith("python") else NODE if rt.startswith("node") else JAVA).format(v=version, rt=rt)
    fn = p["function"]
    release = ctx.change("release_new_apis", ident)
    runtime = LambdaRuntime(ctx, ident)  # Lambda's own calls at each cold start (log stream, environment)
    drill = Drill.of(ctx, ident)
    actor = None
    key_expires = -1.0
    session_region = None
    released_session = False
    out: list[Emitted] = []
    if release is not None and ctx.t0 <= release.when < ctx.t1 + 3600:  # the deploy, minutes before the next run
        first_run = next((t for t in times if t >= release.when and t >= ident.created), release.when)
        out.extend(release_deploy(ctx, release, first_run))
    for t in times:
        if t < ident.created:
            continue
        region = drill.region if drill is not None and drill.active(t) else HOME_REGION
        released = release is not None and t >= release.when
        if t >= key_expires or region != session_region or released != released_session:
            # A cold start (a new execution environment: after idling, a new release, another region):
            # Lambda assumes the role, its workers create the log stream, the function reads its secret.
            session_region, released_session = region, released
            key = ctx.session_key()
            issued = t - 0.4
            out.append(service_assume(ctx, issued, "lambda.amazonaws.com", ident, fn, key, region))
            identity = role_session_identity(ident.arn, ident.unique_id, fn, key, issued)
            actor = Actor(identity, runtime.fleet_ip(region), agent, ctx.account.id)
            key_expires = t + rng.uniform(1800, 3600)
            out.extend(runtime.cold_start(identity, issued, region))
            out.append(_secret(ctx, t + 0.05, actor, region, p["secret"]))
            if released:
                parameter = release.detail.get("parameter", f"/{fn}/config")
                out.append((t + 0.08, region, ctx.tag(release, ctx.rec.call(
                    t + 0.08, actor, "ssm.amazonaws.com", "GetParameter", region,
                    {"name": parameter, "withDecryption": True}, None))))
        assert actor is not None
        day_key = f"{p['team']}/" if "team" in p else ""
        out.append(_s3(ctx, t + 0.1, actor, region, "GetObject", p["bucket"], f"{day_key}{fn}/in/{int(t) // 60}.json"))
        out.append(_dynamo(ctx, t + 0.2, actor, region, "PutItem", p["table"]))
        if rng.random() < 0.3:
            out.append(_s3(ctx, t + 0.3, actor, region, "PutObject", p["bucket"], f"{fn}/out/{int(t)}.json"))
        if released:
            queue = f"https://sqs.{region}.amazonaws.com/{ctx.account.id}/{fn}-events"
            out.append((t + 0.4, region, ctx.tag(release, ctx.rec.call(
                t + 0.4, actor, "sqs.amazonaws.com", "GetQueueAttributes", region,
                {"queueUrl": queue, "attributeNames": ["All"]}, None))))
            out.append((t + 0.5, region, ctx.tag(release, ctx.rec.call(
                t + 0.5, actor, "sns.amazonaws.com", "ListSubscriptionsByTopic", region,
                {"topicArn": f"arn:aws:sns:{region}:{ctx.account.id}:{fn}-done"}, None))))
            if rng.random() < 0.3:
                out.append((t + 0.6, region, ctx.tag(release, ctx.rec.call(
                    t + 0.6, actor, "kms.amazonaws.com", "Decrypt", region,
                    {"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"function": fn}}, None,
                    resources=[ctx.resource("AWS::KMS::Key",
                                            f"arn:aws:kms:{region}:{ctx.account.id}:key/{ctx.account.kms_key}")]))))
    if drill is not None:
        drill.tag(ctx, out)
    return out


def ecs_task(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    from nhiwatch.simulate.legit import EcsHooks

    hooks = EcsHooks(ctx, ident)
    return hooks.finish(list(_ecs_task(ctx, ident, hooks)))


def _ecs_task(ctx: DayContext, ident: Identity, hooks) -> Iterator[Emitted]:
    p = ident.params
    rng = ctx.rng
    rate = p["per_hour"]
    # The last two days of the month: tomorrow or the day after is the 1st.
    date = datetime.fromtimestamp(ctx.t0, timezone.utc)
    month_end = (date + timedelta(days=1)).day == 1 or (date + timedelta(days=2)).day == 1
    if p.get("batch") and month_end:
        rate *= 5  # month-end batch peak
    rollout = ctx.change("region_rollout", ident)
    update = hooks.update
    drill = hooks.drill
    agent = ECS_AGENT.format(v=rng.randrange(10, 30))
    times = ctx.times_poisson(rate)
    task = ctx.ids.hex(32)
    key = ctx.session_key()
    issued = ctx.t0
    actor = None
    session_home = True
    updated = False
    for t in times:
        if t < ident.created:
            continue
        in_drill = drill is not None and drill.active(t)
        is_updated = update is not None and t >= update.when
        if actor is None or t - issued > 3600 or in_drill == session_home or is_updated != updated:
            new_task = actor is None or rng.random() < 0.1 or in_drill == session_home or is_updated != updated
            if new_task:
                task = ctx.ids.hex(32)  # a new deployment, a task in another region: a new task id
            session_home, updated = not in_drill, is_updated
            region = hooks.drill.region if in_drill else HOME_REGION
            ip = hooks.dr_ip if in_drill else ctx.nat_ip(t)
            key, issued = ctx.session_key(), t - 1
            if new_task:
                yield from hooks.task_start(task, issued, region, ip)
            yield service_assume(ctx, issued, "ecs-tasks.amazonaws.com", ident, task, key, region)
            actor = Actor(role_session_identity(ident.arn, ident.unique_id, task, key, issued),
                          ip, agent, ctx.account.id)
            yield _secret(ctx, t, actor, region, p["secret"])
            yield t + 0.1, region, ctx.rec.call(t + 0.1, actor, "ssm.amazonaws.com", "GetParameters",
                                                region, {"names": p["parameters"], "withDecryption": True}, None)
        region = HOME_REGION
        if in_drill:
            region = drill.region
        elif rollout and t >= rollout.when and rng.random() < 0.5:
            region = rollout.detail["region"]
        actor.source_ip = hooks.dr_ip if in_drill else ctx.nat_ip(t)
        choice = rng.random()
        if choice < 0.5:
            yield _dynamo(ctx, t, actor, region, "Query", p["table"])
        elif choice < 0.85:
            yield _s3(ctx, t, actor, region, "GetObject", p["bucket"], f"{p['service']}/{ctx.ids.hex(8)}.parquet")
        else:
            yield _kms_decrypt(ctx, t, actor, region)
        if updated and rng.random() < 0.35:
            yield from hooks.new_calls(t, actor, region)


def ec2_instances(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    from nhiwatch.simulate.legit import Ec2Hooks

    p = ident.params
    rng = ctx.rng
    hooks = Ec2Hooks(ctx, ident)
    agent = SSM_AGENT.format(v=rng.randrange(200, 400))
    app_agent = "aws-cli/1.32.{v} Python/3.9.16 Linux/6.1.84-99.169.amzn2023.x86_64 botocore/1.34.{v}".format(
        v=rng.randrange(50, 99))
    dual = hooks.dual
    for n, instance in enumerate(ctx.account.instances.get(ident.name, [])):
        public_ip = hooks.public_ip(instance)  # the instance's public IPv4, in EC2's published ranges
        private_ip = f"10.0.{n + 1}.{(stable_hash(instance) >> 4) % 200 + 20}"
        is_dual = dual is not None and dual.detail["instance"] == instance
        actor = None
        issued = -1.0
        first_run = True
        patched = False
        for t in ctx.times_every(20, jitter=20.0):  # the SSM agent's heartbeat
            if t - issued > 6 * 3600:
                key, issued = ctx.session_key(), t - 2
                yield service_assume(ctx, issued, "ec2.amazonaws.com", ident, instance, key)
                identity = role_session_identity(ident.arn, ident.unique_id, instance, key, issued, ec2_delivery=True)
                actor = Actor(identity, private_ip, agent, ctx.account.id, vpc_endpoint=ctx.account.vpc_endpoint)
                app = Actor(identity, public_ip, app_agent, ctx.account.id)
                app_v6 = Actor(identity, dual.detail["ipv6"], app_agent, ctx.account.id) if is_dual else None
            assert actor is not None
            yield t, HOME_REGION, ctx.rec.call(t, actor, "ssm.amazonaws.com", "UpdateInstanceInformation",
                                               HOME_REGION, {"instanceId": instance, "agentVersion": "3.3.131.0",
                                                             "platformType": "Linux"}, None)
            if hooks.inventory is not None and t >= hooks.inventory.when:
                scan = not patched and hour_of(t) == 2
                patched = patched or scan
                yield from hooks.inventory_calls(instance, t, actor, first_run, scan)
                first_run = False
            if rng.random() < 0.08 * diurnal(t) * 2:
                caller, tag = hooks.app_actor(instance, t, app, app_v6)
                yield t + 1, HOME_REGION, ctx.tag(tag, _s3(ctx, t + 1, caller, HOME_REGION, "GetObject", p["bucket"],
                                                           f"{p['app']}/releases/{ctx.ids.hex(6)}.tar.gz")[2])
            if rng.random() < 0.02:
                caller, tag = hooks.app_actor(instance, t, app, app_v6)
                yield t + 2, HOME_REGION, ctx.tag(tag, ctx.rec.call(
                    t + 2, caller, "ec2.amazonaws.com", "DescribeTags", HOME_REGION,
                    {"filterSet": {"items": [{"name": "resource-id", "valueSet": {"items": [{"value": instance}]}}]}},
                    None))
            if app_v6 is not None and t >= dual.when and rng.random() < 0.3:
                # The app reads its configuration through the dual-stack endpoints now.
                caller, tag = hooks.app_actor(instance, t, app, app_v6)
                yield t + 3, HOME_REGION, ctx.tag(tag, ctx.rec.call(
                    t + 3, caller, "ssm.amazonaws.com", "GetParameter", HOME_REGION,
                    {"name": p["parameters"][0], "withDecryption": True}, None))


def cicd(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    p = ident.params
    rng = ctx.rng
    if not workday(ctx.t0):
        return
    repos = list(p["repos"])
    new_repo = ctx.change("new_repository", ident)
    if new_repo and new_repo.when < ctx.t1:
        if ctx.t0 <= new_repo.when:
            yield from trust_update(ctx, ident, new_repo)
        repos.append(new_repo.detail["repo"])
    provider_arn = f"arn:aws:iam::{ctx.account.id}:oidc-provider/{GITHUB_OIDC}"
    for _ in range(poisson(rng, p["deploys_per_day"])):
        t = ctx.t0 + rng.uniform(8 * 3600, 19 * 3600)
        repo = rng.choice([r for r in repos if r in p["repos"] or (new_repo and t >= new_repo.when)] or repos)
        subject = f"repo:acme/{repo}:ref:refs/heads/main"
        session = "GitHubActions"
        runner_ip = netranges.github_runner(rng)  # GitHub-hosted runners: GitHub's published "actions" ranges
        key = ctx.session_key()
        web_user = {"type": "WebIdentityUser", "principalId": f"{provider_arn}:sts.amazonaws.com:{subject}",
                    "userName": subject, "identityProvider": provider_arn}
        request = {"roleArn": ident.arn, "roleSessionName": session, "durationSeconds": 3600}
        response = assume_response(ctx.ids, ident.arn, ident.unique_id, session, key, t,
                                   subjectFromWebIdentityToken=subject, audience="sts.amazonaws.com",
                                   provider=provider_arn)
        yield t, HOME_REGION, ctx.rec.call(t, Actor(web_user, runner_ip, GH_ACTIONS, ctx.account.id),
                                           "sts.amazonaws.com", "AssumeRoleWithWebIdentity", HOME_REGION,
                                           request, response,
                                           resources=[{"accountId": ctx.account.id, "type": "AWS::IAM::Role",
                                                       "ARN": ident.arn}])
        identity = role_session_identity(ident.arn, ident.unique_id, session, key, t, web_provider=provider_arn)
        cli = GH_CLI.format(v=rng.randrange(10, 40), cmd="{cmd}")
        actor = Actor(identity, runner_ip, cli.format(cmd="sts.get-caller-identity"), ctx.account.id)
        step = t + 5
        yield step, HOME_REGION, ctx.rec.call(step, actor, "sts.amazonaws.com", "GetCallerIdentity", HOME_REGION)
        actor = Actor(identity, runner_ip, cli.format(cmd="ecr.get-login-password"), ctx.account.id)
        step += 20
        yield step, HOME_REGION, ctx.rec.call(step, actor, "ecr.amazonaws.com", "GetAuthorizationToken", HOME_REGION)
        repo_name = f"acme/{repo}"
        for name in ("BatchCheckLayerAvailability", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload",
                     "PutImage"):
            step += rng.uniform(2, 15)
            yield step, HOME_REGION, ctx.rec.call(step, Actor(identity, runner_ip, "docker/25.0.3 go/go1.21.6",
                                                              ctx.account.id),
                                                  "ecr.amazonaws.com", name, HOME_REGION,
                                                  {"repositoryName": repo_name, "registryId": ctx.account.id}, None)
        stack = f"{repo}-stack"
        for name in ("DescribeStacks", "CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet",
                     "DescribeStackEvents", "DescribeStacks"):
            step += rng.uniform(3, 40)
            actor = Actor(identity, runner_ip, cli.format(cmd="cloudformation.deploy"), ctx.account.id)
            yield step, HOME_REGION, ctx.rec.call(step, actor, "cloudformation.amazonaws.com", name, HOME_REGION,
                                                  {"stackName": stack}, None)
        for fn in p["functions"][:1]:
            step += 10
            actor = Actor(identity, runner_ip, cli.format(cmd="lambda.update-function-code"), ctx.account.id)
            yield step, HOME_REGION, ctx.rec.call(step, actor, "lambda.amazonaws.com",
                                                  "UpdateFunctionCode20150331v2", HOME_REGION,
                                                  {"functionName": fn, "publish": True,
                                                   "s3Bucket": p["bucket"], "s3Key": f"builds/{ctx.ids.hex(12)}.zip"},
                                                  {"functionName": fn, "version": str(rng.randrange(10, 400))})


def admin_console(ctx: DayContext, person: int, issued: float, office: int) -> Actor | None:
    """An administrator's SSO console session, for the changes people make by hand."""
    admin = next((i for i in ctx.account.identities if i.archetype == "human_sso"
                  and "Admin" in i.params["permission_set"]), None)
    if admin is None:
        return None
    session = f"{admin.params['people'][person]}@acme.example"
    return Actor(role_session_identity(admin.arn, admin.unique_id, session, ctx.session_key(), issued),
                 ctx.account.office_ips[office], BROWSER, ctx.account.id)


def trust_update(ctx: DayContext, ident: Identity, change: Change) -> Iterator[Emitted]:
    """A platform engineer lets a new repository deploy: the CI role's trust policy gains a subject."""
    t = change.when - 600
    actor = admin_console(ctx, 0, t - 300, 0)
    if actor is None:
        return
    subjects = [f"repo:acme/{r}:ref:refs/heads/main" for r in ident.params["repos"] + [change.detail["repo"]]]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ctx.account.id}:oidc-provider/{GITHUB_OIDC}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{GITHUB_OIDC}:aud": "sts.amazonaws.com"},
                      "StringLike": {f"{GITHUB_OIDC}:sub": subjects}}}]}
    yield t, HOME_REGION, ctx.rec.call(t, actor, "iam.amazonaws.com", "UpdateAssumeRolePolicy", HOME_REGION,
                                       {"roleName": ident.name, "policyDocument": json.dumps(policy)}, None)


def vendor(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    p = ident.params
    if p.get("poll_min"):  # a monitoring integration polling around the clock (legit.vendor_monitoring)
        from nhiwatch.simulate.legit import vendor_monitoring

        yield from vendor_monitoring(ctx, ident)
        return
    rng = ctx.rng
    external = p["external_account"]
    session_base = {"datadog-integration": "DatadogAWSIntegration", "wiz-scanner": "WizScanner",
                    "cloudhealth-billing": "CloudHealth"}.get(p["vendor"], p["vendor"])
    sweep = [("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "DescribeVolumes"),
             ("ec2.amazonaws.com", "DescribeSecurityGroups"), ("rds.amazonaws.com", "DescribeDBInstances"),
             ("elasticloadbalancing.amazonaws.com", "DescribeLoadBalancers"),
             ("lambda.amazonaws.com", "ListFunctions20150331"), ("monitoring.amazonaws.com", "GetMetricData"),
             ("tagging.amazonaws.com", "GetResources"), ("cloudtrail.amazonaws.com", "DescribeTrails"),
             ("autoscaling.amazonaws.com", "DescribeAutoScalingGroups")]
    if p["vendor"] == "wiz-scanner":
        sweep += [("iam.amazonaws.com", "ListRoles"), ("iam.amazonaws.com", "ListUsers"),
                  ("iam.amazonaws.com", "GetAccountAuthorizationDetails"), ("s3.amazonaws.com", "ListBuckets"),
                  ("kms.amazonaws.com", "ListKeys"), ("secretsmanager.amazonaws.com", "ListSecrets")]
    regions = [HOME_REGION, "eu-west-1"]
    for t in ctx.times_every(p["every_min"], jitter=5.0):
        ip = f"{rng.choice(p['networks'])}{rng.randrange(2, 250)}"
        session = f"{session_base}-{int(t)}" if p["vendor"] != "datadog-integration" else session_base
        key = ctx.session_key()
        caller = {"type": "AWSAccount", "principalId": f"{p['caller_id']}:{session_base.lower()}",
                  "accountId": external}
        request = {"roleArn": ident.arn, "roleSessionName": session, "externalId": p["external_id"],
                   "durationSeconds": 3600}
        response = assume_response(ctx.ids, ident.arn, ident.unique_id, session, key, t)
        yield t, HOME_REGION, ctx.rec.call(t, Actor(caller, ip, p["user_agent"], ctx.account.id),
                                           "sts.amazonaws.com", "AssumeRole", HOME_REGION, request, response,
                                           resources=[{"accountId": ctx.account.id, "type": "AWS::IAM::Role",
                                                       "ARN": ident.arn}])
        actor = Actor(role_session_identity(ident.arn, ident.unique_id, session, key, t), ip, p["user_agent"],
                      ctx.account.id)
        step = t + 1
        for region in regions:
            for source, name in sweep:
                if source in ("iam.amazonaws.com", "s3.amazonaws.com") and region != HOME_REGION:
                    continue
                step += rng.uniform(0.05, 0.6)
                yield step, region, ctx.rec.call(step, actor, source, name, region, None, None)


AUTOMATION_JOBS = {
    "backup": [("ec2.amazonaws.com", "DescribeVolumes"), ("ec2.amazonaws.com", "CreateSnapshot"),
               ("ec2.amazonaws.com", "CreateSnapshot"), ("ec2.amazonaws.com", "DescribeSnapshots"),
               ("ec2.amazonaws.com", "DeleteSnapshot")],
    "dns": [("route53.amazonaws.com", "ListHostedZones"), ("route53.amazonaws.com", "ChangeResourceRecordSets"),
            ("route53.amazonaws.com", "GetChange")],
    "cert": [("acm.amazonaws.com", "ListCertificates"), ("route53.amazonaws.com", "ListHostedZones"),
             ("route53.amazonaws.com", "ChangeResourceRecordSets")],
    "report": [("ce.amazonaws.com", "GetCostAndUsage"), ("s3.amazonaws.com", "PutObject")],
    "etl": [("s3.amazonaws.com", "ListObjects"), ("s3.amazonaws.com", "GetObject"), ("s3.amazonaws.com", "PutObject")],
    "inventory": [("ec2.amazonaws.com", "DescribeInstances"), ("rds.amazonaws.com", "DescribeDBInstances"),
                  ("s3.amazonaws.com", "PutObject")],
}


def automation_user(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    from nhiwatch.simulate.legit import automation_key

    p = ident.params
    rng = ctx.rng
    job = AUTOMATION_JOBS[p["job"].split("-")[0]]
    rotation = ctx.change("key_rotation", ident)
    if rotation and ctx.t0 <= rotation.when < ctx.t1:
        yield from key_rotation(ctx, ident, rotation)
    minute = (stable_hash(ident.name) % 50) + 5
    for hour in p["hours"]:
        t = ctx.t0 + hour * 3600 + minute * 60 + rng.uniform(0, 8)
        key, tag = automation_key(ctx, ident, t)  # after a rotation, the new key
        actor = Actor(user_identity(ident.arn, ident.unique_id, key), p["source_ip"], p["agent"], ctx.account.id)
        for source, name in job:
            t += rng.uniform(0.3, 4)
            if source == "s3.amazonaws.com":
                event = _s3(ctx, t, actor, HOME_REGION, name, p["bucket"], f"{p['job']}/{int(t) // 86400}/{name}.json")
            else:
                request = {"volumeId": f"vol-0{ctx.ids.hex(16)}"} if name == "CreateSnapshot" else None
                event = t, HOME_REGION, ctx.rec.call(t, actor, source, name, HOME_REGION, request, None)
            ctx.tag(tag, event[2])
            yield event


def key_rotation(ctx: DayContext, ident: Identity, change: Change) -> Iterator[Emitted]:
    """An administrator gives an automation user a new key, then deactivates the old one."""
    t = change.when
    actor = admin_console(ctx, -1, t - 600, 1)
    if actor is None:
        return
    yield t, HOME_REGION, ctx.rec.call(t, actor, "iam.amazonaws.com", "CreateAccessKey", HOME_REGION,
                                       {"userName": ident.name},
                                       {"accessKey": {"userName": ident.name, "accessKeyId": change.detail["new_key"],
                                                      "status": "Active", "createDate": aws_date(t)}})
    old = ident.access_keys[0]["id"]
    yield t + 5400, HOME_REGION, ctx.rec.call(t + 5400, actor, "iam.amazonaws.com", "UpdateAccessKey", HOME_REGION,
                                              {"userName": ident.name, "accessKeyId": old, "status": "Inactive"}, None)


SLR_CALLS = {
    "config.amazonaws.com": ("AWSConfig-Describe", [("ec2.amazonaws.com", "DescribeInstances"),
                                                    ("ec2.amazonaws.com", "DescribeSecurityGroups"),
                                                    ("iam.amazonaws.com", "GetRole"),
                                                    ("s3.amazonaws.com", "GetBucketAcl"),
                                                    ("config.amazonaws.com", "PutEvaluations")], 30),
    "autoscaling.amazonaws.com": ("AutoScaling", [("ec2.amazonaws.com", "DescribeInstanceStatus")], 60),
    "elasticloadbalancing.amazonaws.com": ("ElasticLoadBalancing", [("ec2.amazonaws.com", "DescribeNetworkInterfaces")], 120),
    "ecs.amazonaws.com": ("ECS", [("ec2.amazonaws.com", "DescribeNetworkInterfaces"),
                                  ("elasticloadbalancing.amazonaws.com", "DescribeTargetHealth")], 60),
    "rds.amazonaws.com": ("RDS", [("ec2.amazonaws.com", "DescribeSecurityGroups")], 180),
    "securityhub.amazonaws.com": ("securityhub", [("config.amazonaws.com", "BatchGetResourceConfig")], 60),
}


def service_linked(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    service = ident.params["service"]
    session, calls, every = SLR_CALLS[service]
    for t in ctx.times_every(every, jitter=30.0):
        key = ctx.session_key()
        identity = role_session_identity(ident.arn, ident.unique_id, session, key, t - 1, invoked_by=service)
        actor = Actor(identity, service, service, ctx.account.id)
        for i, (source, name) in enumerate(calls):
            yield t + i, HOME_REGION, ctx.rec.call(t + i, actor, source, name, HOME_REGION)
    if service == "config.amazonaws.com" and ctx.rng.random() < 0.2:
        t = ctx.t0 + ctx.rng.uniform(0, 86400)
        actor = Actor({"accountId": ctx.account.id, "invokedBy": "AWS Internal"}, CONSOLE, CONSOLE, ctx.account.id)
        yield t, HOME_REGION, ctx.rec.call(t, actor, "kms.amazonaws.com", "RotateKey", HOME_REGION,
                                           event_type="AwsServiceEvent", read_only=False,
                                           extra={"serviceEventDetails": {"keyId": ctx.ids.uuid()}})


CONSOLE_READS = [("ec2.amazonaws.com", "DescribeInstances"), ("monitoring.amazonaws.com", "DescribeAlarms"),
                 ("logs.amazonaws.com", "DescribeLogGroups"), ("s3.amazonaws.com", "ListBuckets"),
                 ("lambda.amazonaws.com", "ListFunctions20150331"), ("cloudformation.amazonaws.com", "DescribeStacks"),
                 ("ecs.amazonaws.com", "ListClusters"), ("health.amazonaws.com", "DescribeEventAggregates")]
INCIDENT_READS = [("cloudtrail.amazonaws.com", "LookupEvents"), ("iam.amazonaws.com", "GetAccountAuthorizationDetails"),
                  ("ec2.amazonaws.com", "DescribeSnapshots"), ("secretsmanager.amazonaws.com", "ListSecrets"),
                  ("guardduty.amazonaws.com", "ListFindings"), ("iam.amazonaws.com", "ListAccessKeys")]


def human(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    rng = ctx.rng
    incident = ctx.change("incident_response", ident)
    on_incident = bool(incident and ctx.t0 <= incident.when < ctx.t1)
    if not workday(ctx.t0) and not on_incident:
        return
    for person in ident.params["people"]:
        if rng.random() < 0.35 and not on_incident:
            continue
        t = ctx.t0 + rng.uniform(8 * 3600, 17 * 3600)
        if on_incident:
            t = incident.when + rng.uniform(0, 1800)
        session = f"{person}@acme.example"
        key = ctx.session_key()
        ip = rng.choice(ctx.account.office_ips)
        saml = {"type": "SAMLUser", "principalId": f"Xb3kQ9mZ0nL4wP7rT2yV5sA8cE1=:{session}", "userName": session,
                "identityProvider": "Xb3kQ9mZ0nL4wP7rT2yV5sA8cE1="}
        response = {"credentials": {"accessKeyId": key, "sessionToken": ctx.ids.token(),
                                    "expiration": aws_date(t + 3600 * 8)},
                    "subjectType": "persistent", "subject": session, "audience": "https://signin.aws.amazon.com/saml",
                    "issuer": "https://portal.sso.us-east-1.amazonaws.com/saml/assertion/QUNNRS0xMjM0NTY3ODkw"}
        yield t, HOME_REGION, ctx.rec.call(t, Actor(saml, ip, "aws-internal/3 aws-sdk-java/1.12.720", ctx.account.id),
                                           "sts.amazonaws.com", "AssumeRoleWithSAML", HOME_REGION,
                                           {"roleArn": ident.arn, "principalArn": f"arn:aws:iam::{ctx.account.id}:"
                                            "saml-provider/AWSSSO_5a2c1d3e4f5a6b7c_DO_NOT_DELETE",
                                            "durationSeconds": 28800}, response)
        actor = Actor(role_session_identity(ident.arn, ident.unique_id, session, key, t), ip, BROWSER, ctx.account.id)
        reads = CONSOLE_READS + (INCIDENT_READS if on_incident else [])
        for _ in range(rng.randrange(5, 25) * (3 if on_incident else 1)):
            t += rng.uniform(2, 120)
            source, name = rng.choice(reads)
            yield t, HOME_REGION, ctx.rec.call(t, actor, source, name, HOME_REGION, None, None)


def cross_account_ops(ctx: DayContext, ident: Identity) -> Iterator[Emitted]:
    """The platform's deploy tooling in the first account checks every other account's stacks daily."""
    first = ctx.org.accounts[0]
    if ident.account == first.id:
        return
    caller = next((i for i in first.identities if i.archetype == "ecs_task"), None)
    if caller is None:
        return
    rng = ctx.rng
    t = ctx.t0 + 6 * 3600 + rng.uniform(0, 600)
    session = "platform-drift-check"
    key = ctx.session_key()
    task = ctx.ids.hex(32)
    source = Actor(role_session_identity(caller.arn, caller.unique_id, task, ctx.session_key(), t - 60),
                   first.nat_ips[0], ECS_AGENT.format(v=20), ctx.account.id)
    response = assume_response(ctx.ids, ident.arn, ident.unique_id, session, key, t)
    yield t, HOME_REGION, ctx.rec.call(t, source, "sts.amazonaws.com", "AssumeRole", HOME_REGION,
                                       {"roleArn": ident.arn, "roleSessionName": session}, response,
                                       resources=[{"accountId": ctx.account.id, "type": "AWS::IAM::Role",
                                                   "ARN": ident.arn}])
    actor = Actor(role_session_identity(ident.arn, ident.unique_id, session, key, t), first.nat_ips[0],
                  ECS_AGENT.format(v=20), ctx.account.id)
    for i in range(3):
        yield t + 2 + i, HOME_REGION, ctx.rec.call(t + 2 + i, actor, "cloudformation.amazonaws.com", "DescribeStacks",
                                                   HOME_REGION)


BEHAVIOURS: dict[str, Callable[[DayContext, Identity], Iterator[Emitted]]] = {
    "lambda_scheduled": lambda_function,
    "lambda_event": lambda_function,
    "ecs_task": ecs_task,
    "ec2_instance": ec2_instances,
    "cicd_oidc": cicd,
    "vendor_readonly": vendor,
    "automation_user": automation_user,
    "service_linked": service_linked,
    "human_sso": human,
    "cross_account_ops": cross_account_ops,
}


def account_day(ctx: DayContext) -> list[Emitted]:
    """Every benign event of one account on one day, in time order: each identity's behaviour, and the
    library of legitimate behaviour (legit.py: AWS services, vendors, pipelines, the changes people make)."""
    from nhiwatch.simulate import legit

    out: list[Emitted] = []
    t0, t1 = ctx.t0, ctx.t1
    for ident in ctx.account.identities:
        if ident.created >= t1:
            continue
        behave = BEHAVIOURS.get(ident.archetype) or legit.BEHAVIOURS[ident.archetype]
        out.extend(e for e in behave(ctx, ident) if t0 <= e[0] < t1)
    out.extend(e for e in legit.account_extras(ctx) if t0 <= e[0] < t1)
    out.sort(key=lambda e: e[0])
    return out

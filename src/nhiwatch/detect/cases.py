"""Detector cases: each detector carries event streams it must alarm on and streams it must stay quiet
on (pypanther's rule tests are the model). A case is CloudTrail records as AWS writes them: a history
the identity learns from, then the events judged. `tests/test_detector_cases.py` runs every case of
every detector through ingestion and detection.

Streams are compact: a `Habit` says "this caller made these calls every hour for three days", `each`
"these calls one after another"; both expand into records only when a test asks, so importing the
detectors stays cheap."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence

from nhiwatch.core.times import iso_z

ACCOUNT = "111122223333"         # the organisation's account in every case
OTHER_ACCOUNT = "444455556666"   # another account of the same organisation
FOREIGN_ACCOUNT = "999988887777"  # nobody's the organisation knows: an attacker's
T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday: histories start here
NOW = T0 + timedelta(days=3, hours=10)          # judged events start here, after a 3-day history

# Addresses and clients as CloudTrail shows them. AWS and GitHub addresses are in the providers'
# published ranges (knowledge/netranges); the others are documentation ranges or ISP space.
NAT_US_EAST_1 = "3.209.238.232"        # a NAT gateway in us-east-1 (AWS EC2 range)
NAT_US_EAST_1_B = "52.23.1.1"          # another us-east-1 address (a second NAT)
LAMBDA_FLEET = "34.234.236.212"        # Lambda's fleet in us-east-1
LAMBDA_FLEET_B = "44.192.0.1"          # a new fleet host after a cold start
EU_WEST_3 = "35.180.1.1"               # AWS EC2 in eu-west-3
GITHUB_RUNNER = "4.148.0.1"            # GitHub-hosted runners (published actions ranges)
OFFICE = "81.2.69.160"                 # an ISP address: an office or a data centre
ATTACKER = "203.0.113.7"               # documentation range: outside every provider
ATTACKER_B = "198.51.100.23"
TOR_EXIT = "185.220.101.47"
PRIVATE = "10.0.1.17"

GO_ECS = "aws-sdk-go-v2/1.26.19 os/linux lang/go#1.22.2 md/GOOS#linux exec-env/AWS_ECS_FARGATE"
NODE_LAMBDA = "aws-sdk-nodejs/2.1580.0 linux/v20.12.2 exec-env/AWS_Lambda_nodejs20.x promise"
JAVA_EC2 = "aws-sdk-java/1.12.500 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10"
BOTO3 = ("Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0-1057-aws md/arch#x86_64 lang/python#3.11.8 "
         "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69")
CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-azure exe/x86_64.ubuntu.22 prompt/off command/s3.cp"
ATTACKER_CLI = "aws-cli/2.13.5 Python/3.11.4 Darwin/22.6.0 exe/x86_64 prompt/off"  # the CLI on a laptop
ATTACKER_SDK = "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/macos#23.1.0 md/arch#arm64 lang/python#3.11.5 Botocore/1.31.57"
TERRAFORM = ("APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 "
             "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1")
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36"

_SERIAL = itertools.count()
_READS = ("Describe", "List", "Get", "Head", "Search", "Lookup", "Scan", "Query", "BatchGet", "Select")


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


# -- who calls --------------------------------------------------------------------------------------

def _principal_id(prefix: str, account: str, name: str) -> str:
    """A principal's unique id, the same in its CloudTrail records and in IAM exports of the cases."""
    return prefix + hashlib.blake2b(f"{account}{name}".encode(), digest_size=8).hexdigest().upper()[:17]


def role_session(role: str, session: str, *, account: str = ACCOUNT, path: str = "/", key: str = "ASIAEXAMPLESESSION01",
                 invoked_by: str | None = None, created: datetime = T0) -> dict:
    """The userIdentity of a call made with a role's session (the role's path shows in the issuer)."""
    role_id = _principal_id("AROA", account, role)
    identity = {"type": "AssumedRole", "principalId": f"{role_id}:{session}",
                "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "accountId": account,
                "accessKeyId": key,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id,
                                                     "arn": f"arn:aws:iam::{account}:role{path}{role}",
                                                     "accountId": account, "userName": role},
                                   "attributes": {"creationDate": iso_z(created), "mfaAuthenticated": "false"}}}
    if invoked_by:
        identity["invokedBy"] = invoked_by
    return identity


def iam_user(name: str, *, account: str = ACCOUNT, key: str = "AKIAEXAMPLEUSERKEY01") -> dict:
    user_id = _principal_id("AIDA", account, name)
    identity = {"type": "IAMUser", "principalId": user_id, "arn": f"arn:aws:iam::{account}:user/{name}",
                "accountId": account, "userName": name}
    if key:
        identity["accessKeyId"] = key
    return identity


def root_user(*, account: str = ACCOUNT, key: str | None = None, invoked_by: str | None = None) -> dict:
    identity = {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account}
    if key:
        identity["accessKeyId"] = key
    if invoked_by:
        identity["invokedBy"] = invoked_by
    return identity


def other_account(account: str, principal_id: str = "AIDAEXTERNALPRINCIPAL") -> dict:
    """How a principal of another account appears in the trail of the account it calls into."""
    return {"type": "AWSAccount", "principalId": principal_id, "accountId": account}


def principal_of(identity: Mapping) -> str:
    """The stable identity nhiwatch judges: a session's role, a user, the root."""
    if identity.get("type") == "AssumedRole":
        return identity["sessionContext"]["sessionIssuer"]["arn"]
    return str(identity.get("arn") or identity.get("invokedBy") or identity.get("userName") or identity.get("accountId"))


class Call(NamedTuple):
    """One API call: `service:EventName` and what CloudTrail records of its request and response."""
    api: str
    request: Mapping | None = None
    response: Mapping | None = None
    error: str | None = None
    resources: Sequence[Mapping] | None = None


@dataclass(frozen=True)
class Caller:
    """Credentials in someone's hands: who they are, the address and the client they call from."""
    identity: Mapping
    ip: str
    agent: str
    region: str = "us-east-1"
    recipient: str | None = None  # the account whose trail records the call, when not the caller's own

    @property
    def arn(self) -> str:
        return principal_of(self.identity)

    def but(self, **changes) -> "Caller":
        """The same credentials from elsewhere or with another client."""
        return replace(self, **changes)

    def call(self, when: datetime, call: Call | str, request: Mapping | None = None, *, region: str | None = None,
             **fields) -> dict:
        """One CloudTrail record of this caller making `call` at `when`."""
        if isinstance(call, str):
            call = Call(call, request, **fields)
        elif request is not None or fields:
            changes: dict[str, object] = {"request": request} if request is not None else {}
            call = call._replace(**changes, **fields)  # type: ignore[arg-type]  # the fields are Call's own
        service, name = call.api.split(":", 1)
        source = f"{service}.amazonaws.com"
        serial = next(_SERIAL)
        digest = hashlib.blake2b(f"{serial}|{self.arn}|{iso_z(when)}|{call.api}".encode(), digest_size=16).hexdigest()
        record = {
            "eventVersion": "1.09", "userIdentity": dict(self.identity), "eventTime": iso_z(when), "eventSource": source,
            "eventName": name, "awsRegion": region or self.region, "sourceIPAddress": self.ip,
            "userAgent": self.agent, "requestParameters": dict(call.request) if call.request is not None else None,
            "responseElements": dict(call.response) if call.response is not None else None,
            "requestID": _uuid(digest[::-1]), "eventID": _uuid(digest),
            "readOnly": name.startswith(_READS), "eventType": "AwsApiCall", "managementEvent": True,
            "recipientAccountId": self.recipient or self.identity.get("accountId") or ACCOUNT, "eventCategory": "Management"}
        if service == "s3" and name in ("GetObject", "PutObject", "DeleteObject", "DeleteObjects", "HeadObject"):
            record["managementEvent"], record["eventCategory"] = False, "Data"
        if service == "signin":
            record["eventType"] = "AwsConsoleSignIn"
        if call.error:
            record["errorCode"], record["errorMessage"] = call.error, f"User is not authorized to perform {call.api}"
        if call.resources:
            record["resources"] = [dict(r) for r in call.resources]
        if "invokedBy" in self.identity:
            record["sourceIPAddress"] = record["userAgent"] = self.identity["invokedBy"]
        return record


def assume_role(caller: Caller, when: datetime, role_arn: str, session: str, key: str = "ASIAEXAMPLEISSUED001",
                error: str | None = None) -> dict:
    """sts:AssumeRole by `caller`: the caller's outbound call and the role's inbound assumption."""
    response = None if error else {
        "credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": iso_z(when + timedelta(hours=1))},
        "assumedRoleUser": {"assumedRoleId": f"AROAEXAMPLE:{session}",
                            "arn": role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + f"/{session}"}}
    return caller.call(when, Call("sts:AssumeRole", {"roleArn": role_arn, "roleSessionName": session}, response, error,
                                  [{"ARN": role_arn, "accountId": role_arn.split(":")[4], "type": "AWS::IAM::Role"}]))


def service_assumes(service: str, when: datetime, role_arn: str, session: str) -> dict:
    """An AWS service (lambda.amazonaws.com, ecs-tasks.amazonaws.com ...) assuming a role for the code it runs."""
    caller = Caller({"type": "AWSService", "invokedBy": service}, service, service, recipient=role_arn.split(":")[4])
    return assume_role(caller, when, role_arn, session)


def web_identity_assume(when: datetime, role_arn: str, subject: str, *, ip: str = GITHUB_RUNNER,
                        provider: str = "token.actions.githubusercontent.com") -> dict:
    """AssumeRoleWithWebIdentity by a CI job's OIDC token (`sub` names the repository and ref)."""
    account = role_arn.split(":")[4]
    provider_arn = f"arn:aws:iam::{account}:oidc-provider/{provider}"
    caller = Caller({"type": "WebIdentityUser", "principalId": f"{provider_arn}:sts.amazonaws.com:{subject}",
                     "userName": subject, "identityProvider": provider_arn, "accountId": account}, ip,
                    "aws-sdk-nodejs/2.1580.0 linux/v20.12.2 configure-aws-credentials-for-github-actions promise",
                    recipient=account)
    session = "GitHubActions"
    return caller.call(when, Call("sts:AssumeRoleWithWebIdentity", {"roleArn": role_arn, "roleSessionName": session},
                                  {"credentials": {"accessKeyId": "ASIAEXAMPLEOIDC00001", "expiration": iso_z(when + timedelta(hours=1))},
                                   "subjectFromWebIdentityToken": subject, "audience": "sts.amazonaws.com",
                                   "provider": provider_arn,
                                   "assumedRoleUser": {"arn": role_arn.replace(":iam::", ":sts::").replace(
                                       ":role/", ":assumed-role/") + f"/{session}"}}))


# -- histories ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Habit:
    """A caller making the same calls once every `every` seconds for `days` days from `start` (at
    `offset` seconds into each period, one second apart), optionally only in some UTC hours and on
    weekdays. Expanded into records on demand."""
    caller: Caller
    calls: tuple[Call | str, ...]
    days: float = 3
    every: int = 3600
    offset: int = 1800
    start: datetime = T0
    hours: tuple[int, ...] | None = None
    weekdays: bool = False

    def records(self) -> list[dict]:
        out = []
        for period in range(int(self.days * 86400 // self.every)):
            t = self.start + timedelta(seconds=period * self.every + self.offset)
            if self.hours is not None and t.hour not in self.hours or self.weekdays and t.weekday() >= 5:
                continue
            out += [self.caller.call(t + timedelta(seconds=n), call) for n, call in enumerate(self.calls)]
        return out


def habit(caller: Caller, *calls: Call | str, **options) -> Habit:
    return Habit(caller, calls, **options)


@dataclass(frozen=True)
class Repeat:
    """One record made by `make(when)` every `every` seconds for `days` days (an AWS service assuming a
    role at each cold start, a CI job's OIDC login ...)."""
    make: Callable[[datetime], dict]
    days: float = 3
    every: int = 3600
    offset: int = 600
    start: datetime = T0

    def records(self) -> list[dict]:
        return [self.make(self.start + timedelta(seconds=n * self.every + self.offset))
                for n in range(int(self.days * 86400 // self.every))]


@dataclass(frozen=True)
class Calls:
    """Calls made one after another, `step` seconds apart from `start`."""
    caller: Caller
    calls: tuple[Call | str, ...]
    start: datetime = NOW
    step: float = 2

    def records(self) -> list[dict]:
        return [self.caller.call(self.start + timedelta(seconds=n * self.step), call)
                for n, call in enumerate(self.calls)]


@dataclass(frozen=True)
class Later:
    """Records made by `make()` when a test asks (streams with a new address on every call ...)."""
    make: Callable[[], list[dict]]

    def records(self) -> list[dict]:
        return self.make()


Records = dict | Habit | Repeat | Calls | Later  # one record, or a recipe for some


def expand(items: Iterable[Records]) -> list[dict]:
    out: list[dict] = []
    for item in items:
        out += [item] if isinstance(item, dict) else item.records()
    return out


# -- cases -------------------------------------------------------------------------------------------

POSITIVE, NEGATIVE = "positive", "negative"


@dataclass(frozen=True)
class Case:
    """A stream for one detector. Positive: the detector raises a finding at `severity` or above on
    `identity` (by default the caller of the first judged event). Negative: it raises nothing at
    `severity` or above on anyone. `about` says which attack, or which legitimate behaviour, it is."""
    name: str
    kind: str
    about: str
    events: tuple[Records, ...]
    history: tuple[Records, ...] = ()
    severity: str = "medium"
    identity: str | None = None
    xfail: str | None = None   # a known detector gap: the case shows it until the detector is mended
    iam: Mapping | None = field(default=None, compare=False, hash=False)  # an IAM export loaded as the inventory

    @property
    def positive(self) -> bool:
        return self.kind == POSITIVE

    def history_records(self) -> list[dict]:
        return expand(self.history)

    @cached_property
    def event_records(self) -> list[dict]:
        return expand(self.events)

    @property
    def judged_from(self) -> datetime:
        """Where learning stops: the first judged event."""
        return min(datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00")) for e in self.event_records)

    @property
    def target(self) -> str:
        return self.identity or principal_of(self.event_records[0]["userIdentity"])


def _flatten(items: Iterable) -> tuple:
    out: list = []
    for item in items:
        if type(item) in (list, tuple):
            out += _flatten(item)
        else:
            out.append(item)
    return tuple(out)


def positive(name: str, attack: str, events: Records | Iterable, history: Records | Iterable = (), **options) -> Case:
    """A case the detector must catch: `attack` says what the attacker does."""
    return Case(name, POSITIVE, attack, _flatten([events]), _flatten([history]), **options)


def negative(name: str, behaviour: str, events: Records | Iterable, history: Records | Iterable = (),
             **options) -> Case:
    """A case the detector must stay quiet on: `behaviour` names the legitimate behaviour."""
    return Case(name, NEGATIVE, behaviour, _flatten([events]), _flatten([history]), **options)


def at(seconds: float = 0, *, start: datetime = NOW) -> datetime:
    """A moment `seconds` after the judged events start."""
    return start + timedelta(seconds=seconds)


def each(caller: Caller, calls: Iterable[Call | str], *, start: datetime = NOW, step: float = 2) -> Calls:
    """Calls made one after another, `step` seconds apart."""
    return Calls(caller, tuple(calls), start, step)


def later(make: Callable[[], list[dict]]) -> Later:
    return Later(make)


# -- request parameters -------------------------------------------------------------------------------

def queue(name: str, region: str = "us-east-1") -> str:
    return f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{name}"


def secret(name: str) -> str:
    return f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}"


def admin_policy() -> str:
    """A policy document as CloudTrail records it (a JSON string) that grants everything."""
    return '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'


def scoped_policy(action: str, resource: str = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders") -> str:
    return ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "%s", "Resource": "%s"}]}'
            % (action, resource))


def snapshot_share(account: str) -> dict:
    """ModifySnapshotAttribute's parameters granting `account` the right to create volumes from a snapshot."""
    return {"snapshotId": "snap-0abc1234def567890", "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": account}]}}}


def launch(instance_type: str, count: int) -> dict:
    """RunInstances' request parameters as CloudTrail records them."""
    return {"instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": count, "maxCount": count}]},
            "instanceType": instance_type, "blockDeviceMapping": {}, "monitoring": {"enabled": False},
            "disableApiTermination": False, "clientToken": "f3a1c2d4-launch"}


def federated_user(user: str, name: str, *, account: str = ACCOUNT) -> dict:
    """The userIdentity of a GetFederationToken session of an IAM user."""
    return {"type": "FederatedUser", "principalId": f"{account}:{name}",
            "arn": f"arn:aws:sts::{account}:federated-user/{name}", "accountId": account,
            "accessKeyId": "ASIAEXAMPLEFEDERATE1",
            "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": "AIDAEXAMPLEFEDISSUER",
                                                 "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
                                                 "userName": user},
                               "attributes": {"creationDate": iso_z(NOW), "mfaAuthenticated": "false"}}}


# -- IAM exports for cases that need an inventory (the shape of `aws iam get-account-authorization-details`) --

def statement(actions: str | Sequence[str], resources: str | Sequence[str] = "*", effect: str = "Allow") -> dict:
    return {"Effect": effect, "Action": actions, "Resource": resources}


def _inline(policies: Mapping[str, Sequence[dict]]) -> list[dict]:
    return [{"PolicyName": name, "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)}}
            for name, statements in policies.items()]


def export_user(name: str, policies: Mapping[str, Sequence[dict]], *, account: str = ACCOUNT) -> dict:
    return {"UserName": name, "UserId": _principal_id("AIDA", account, name), "Path": "/",
            "Arn": f"arn:aws:iam::{account}:user/{name}", "CreateDate": iso_z(T0 - timedelta(days=200)),
            "UserPolicyList": _inline(policies), "AttachedManagedPolicies": [], "GroupList": [], "Tags": []}


def export_role(name: str, trusts: Mapping, policies: Mapping[str, Sequence[dict]], *, account: str = ACCOUNT,
                profile: bool = False) -> dict:
    arn = f"arn:aws:iam::{account}:role/{name}"
    return {"RoleName": name, "RoleId": _principal_id("AROA", account, name), "Path": "/", "Arn": arn,
            "CreateDate": iso_z(T0 - timedelta(days=200)),
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": dict(trusts), "Action": "sts:AssumeRole"}]},
            "RolePolicyList": _inline(policies), "AttachedManagedPolicies": [], "Tags": [],
            "InstanceProfileList": [{"InstanceProfileName": name, "Arn": arn.replace(":role/", ":instance-profile/"),
                                     "Roles": []}] if profile else []}


def iam_export(*entries: dict) -> dict:
    return {"UserDetailList": [e for e in entries if "UserName" in e], "GroupDetailList": [],
            "RoleDetailList": [e for e in entries if "RoleName" in e], "Policies": []}



# -- the identities cases start from, and their habits ----------------------------------------------------

SECRET = secret("orders/db-AbCdEf")

# An ECS Fargate task role: reads its queue, its table and its one secret every hour, through a NAT.
ECS_TASK = Caller(role_session("orders-api", "8f3c0b1d2e4a4b6c", path="/service/"), NAT_US_EAST_1, GO_ECS)
ECS_HABIT = habit(ECS_TASK, Call("sqs:ReceiveMessage", {"queueUrl": queue("orders")}),
                  Call("dynamodb:Query", {"tableName": "orders"}),
                  Call("secretsmanager:GetSecretValue", {"secretId": SECRET}))

# A Lambda function's role: the Lambda service assumes it at cold starts, the function's code calls from
# Lambda's fleet with the runtime's mark, the Lambda worker writes its logs.
LAMBDA_ROLE = f"arn:aws:iam::{ACCOUNT}:role/invoice-fn-role"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:invoice-fn"
LAMBDA_FN = Caller(role_session("invoice-fn-role", "invoice-fn"), LAMBDA_FLEET, NODE_LAMBDA)
LAMBDA_WORKER = LAMBDA_FN.but(agent="awslambda-worker")
LAMBDA_HISTORY = (
    Repeat(lambda t: service_assumes("lambda.amazonaws.com", t, LAMBDA_ROLE, "invoice-fn"), every=6 * 3600),
    habit(LAMBDA_FN, Call("dynamodb:PutItem", {"tableName": "invoices"}),
          Call("s3:PutObject", {"bucketName": "invoices-archive", "key": "2026/03/invoice.pdf"})),
    habit(LAMBDA_WORKER, Call("logs:CreateLogStream", {"logGroupName": "/aws/lambda/invoice-fn"}),
          Call("logs:PutLogEvents", {"logGroupName": "/aws/lambda/invoice-fn"}), offset=1810),
)

# An EC2 instance's role: its session is named after the instance; it calls from its private address.
INSTANCE = "i-0abc123def4567890"
OTHER_INSTANCE = "i-0fedcba9876543210"
EC2_APP = Caller(role_session("app-server", INSTANCE), PRIVATE, JAVA_EC2)
EC2_HABIT = habit(EC2_APP, Call("s3:GetObject", {"bucketName": "app-config", "key": "app.yaml"}),
                  Call("sqs:SendMessage", {"queueUrl": queue("jobs")}))

# A CI user's static key, used only by GitHub-hosted runners with the CLI.
CI_USER = Caller(iam_user("ci-deploy", key="AKIAEXAMPLECIDEPLOY1"), GITHUB_RUNNER, CLI)
CI_HABIT = habit(CI_USER, Call("s3:PutObject", {"bucketName": "artifacts", "key": "build.zip"}),
                 Call("ecs:UpdateService", {"cluster": "prod", "service": "orders-api"}),
                 Call("ecs:DescribeServices", {"cluster": "prod", "services": ["orders-api"]}))

# A backup job's key on a server in the company's data centre (an ISP address, not a cloud).
BACKUP_BOT = Caller(iam_user("backup-bot", key="AKIAEXAMPLEBACKUPBT1"), OFFICE, BOTO3)
BACKUP_HABIT = habit(BACKUP_BOT, Call("s3:PutObject", {"bucketName": "backups", "key": "db/dump.sql.gz"}),
                     Call("s3:ListObjectsV2", {"bucketName": "backups"}))

# The same credentials in an attacker's hands: from outside any cloud, with the attacker's own client.
CI_THIEF = CI_USER.but(ip=ATTACKER, agent=ATTACKER_SDK)
ECS_THIEF = ECS_TASK.but(ip=ATTACKER, agent=ATTACKER_CLI)
BACKUP_THIEF = BACKUP_BOT.but(ip=ATTACKER, agent=ATTACKER_CLI)

# Another account of the organisation at work (a reporting job there): makes that account known.
OTHER_ACCOUNT_HABIT = habit(Caller(role_session("reporting", "nightly", account=OTHER_ACCOUNT), NAT_US_EAST_1_B,
                                   GO_ECS), Call("dynamodb:Query", {"tableName": "reports"}), every=6 * 3600)

# A person: an engineer's IAM Identity Center (SSO) role in the console from the office, on weekdays.
SSO_PERSON = Caller(role_session("AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6789", "jane.doe@example.com",
                                 path="/aws-reserved/sso.amazonaws.com/"), OFFICE, "console.amazonaws.com")
SSO_HABIT = habit(SSO_PERSON, "ec2:DescribeInstances", "cloudwatch:GetMetricData", "logs:FilterLogEvents",
                  hours=tuple(range(9, 18)), weekdays=True)

# A GitHub Actions deploy role assumed through OIDC by the company's own repository every hour.
GH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/gh-deploy"
GH_HABIT = Repeat(lambda t: web_identity_assume(t, GH_ROLE, "repo:acme/web-app:ref:refs/heads/main"))

# CloudFormation making a stack's IAM calls with the deploy role's session (invokedBy), on every deploy.
CFN_DEPLOY = Caller(role_session("cfn-deploy", "AWSCloudFormation", invoked_by="cloudformation.amazonaws.com"), "", "")
CFN_HABIT = habit(CFN_DEPLOY, Call("iam:PutRolePolicy", {"roleName": "invoice-fn-role", "policyName": "table",
                                                         "policyDocument": scoped_policy("dynamodb:PutItem")}),
                  Call("iam:GetRole", {"roleName": "invoice-fn-role"}), every=6 * 3600)

# A role that the organisation's own principals assume to export data; its sessions read a bucket.
EXPORT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/data-export"
_REPORTING = Caller(role_session("reporting", "nightly"), NAT_US_EAST_1_B, GO_ECS)
EXPORT_HISTORY = (
    Repeat(lambda t: assume_role(ECS_TASK, t, EXPORT_ROLE, "export")),
    Repeat(lambda t: assume_role(_REPORTING, t, EXPORT_ROLE, "export"), every=4 * 3600, offset=900),
    habit(Caller(role_session("data-export", "export"), NAT_US_EAST_1, GO_ECS),
          Call("s3:GetObject", {"bucketName": "exports", "key": "daily.parquet"}), offset=700),
)

# An ETL job that reads two buckets every hour.
ETL_JOB = Caller(role_session("etl-job", "run", path="/service/"), NAT_US_EAST_1, BOTO3 + " exec-env/AWS_ECS_EC2")
ETL_HABIT = habit(ETL_JOB, *[Call("s3:GetObject", {"bucketName": bucket, "key": f"hourly/{n}.json"})
                             for bucket in ("raw-events", "reference-data") for n in range(3)])

# The ML platform's launcher: starts GPU training instances four times a day.
ML_LAUNCHER = Caller(role_session("ml-launcher", "scheduler"), NAT_US_EAST_1, BOTO3)
ML_HABIT = habit(ML_LAUNCHER, Call("ec2:RunInstances", launch("g5.12xlarge", 8)), "ec2:DescribeInstances",
                 every=6 * 3600)

# A retention job that deletes expired backups every hour.
PRUNER = Caller(iam_user("backup-pruner", key="AKIAEXAMPLEPRUNER001"), OFFICE, BOTO3)
PRUNER_HABIT = habit(PRUNER, Call("s3:ListObjectsV2", {"bucketName": "backups"}),
                     *[Call("s3:DeleteObject", {"bucketName": "backups", "key": f"db/expired-{n}.sql.gz"})
                       for n in range(3)])

# A nightly batch: four hundred writes in the 02:00 hour, two calls every hour.
BATCH = Caller(role_session("orders-batch", "nightly", path="/service/"), NAT_US_EAST_1, GO_ECS)
BATCH_WRITE = Call("dynamodb:BatchWriteItem", {"requestItems": "orders"})
BATCH_HISTORY = (
    habit(BATCH, "dynamodb:DescribeTable", Call("sqs:GetQueueAttributes", {"queueUrl": queue("orders")})),
    *[Habit(BATCH, (BATCH_WRITE,), days=1, every=9, offset=0, start=T0 + timedelta(days=day), hours=(2,))
      for day in range(3)],
)

# A reporting key used on weekdays in office hours, for two weeks and a half.
BI_USER = Caller(iam_user("bi-reports", key="AKIAEXAMPLEBIREPORT1"), OFFICE, BOTO3)
BI_HABIT = habit(BI_USER, Call("athena:StartQueryExecution", {"queryString": "SELECT 1"}), "athena:GetQueryResults",
                 start=T0 - timedelta(days=14), days=17, hours=tuple(range(8, 18)), weekdays=True)

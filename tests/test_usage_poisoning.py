"""An attacker's calls never become "what the identity needs": events behind an unresolved finding are
held out of the used actions and of the suggested policy until the finding is resolved as benign, and
a suggested policy never grants more than the identity's own policies do."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nhiwatch.core.finding import Finding, finding_id
from nhiwatch.detect.findings_store import resolve
from nhiwatch.detect.runner import _commit
from nhiwatch.inventory.build import _collect_policies, _permissions, _Policies
from nhiwatch.inventory.model import Identity
from nhiwatch.inventory.persist import get_identity, list_identities, load_sources, rebuild, save_sources
from nhiwatch.inventory.policy import PermissionSet
from nhiwatch.inventory.sources import read_source

from conftest import ingest

HAND_MADE = Path(__file__).parent / "fixtures" / "iam" / "hand-made"
ACCOUNT = "111122223333"
AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-AbCdEf"


def _role(name: str, session: str = "s1") -> dict:
    return {"type": "AssumedRole", "principalId": f"AROA{name.upper()[:12]}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}", "accountId": ACCOUNT,
            "accessKeyId": "ASIA" + name.upper().replace("-", "")[:12].ljust(16, "0"),
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROA{name.upper()[:12]}",
                                                 "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
                                                 "accountId": ACCOUNT, "userName": name}}}


def _user(name: str) -> dict:
    return {"type": "IAMUser", "principalId": f"AIDA{name.upper()[:12]}", "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "accountId": ACCOUNT, "accessKeyId": "AKIA" + name.upper().replace("-", "")[:12].ljust(16, "0"),
            "userName": name}


ROOT = {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


class Trail:
    """CloudTrail records with sequential event ids."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def add(self, who: dict, source: str, name: str, when: str, request: dict | None = None, *,
            agent: str = "aws-sdk-go-v2/1.30", ip: str = "10.1.2.3", error: str | None = None) -> str:
        number = len(self.records) + 1
        event_id = f"00000000-0000-4000-9000-{number:012d}"
        record = {"eventVersion": "1.09", "userIdentity": who, "eventTime": when, "eventSource": source,
                  "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": agent,
                  "requestParameters": request, "responseElements": None, "requestID": f"req-{number}",
                  "eventID": event_id, "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
                  "recipientAccountId": ACCOUNT}
        if error:
            record["errorCode"] = error
        self.records.append(record)
        return event_id


def _finding(detector: str, severity: str, arn: str, kind: str, event_ids: list[str]) -> Finding:
    return Finding(id=finding_id(detector, arn, event_ids[0]), detector=detector, title=f"{detector} on {arn}",
                   severity=severity, score=80 if severity == "high" else 20,
                   identity={"arn": arn, "type": kind, "account_id": ACCOUNT}, session=None,
                   first_seen="2026-05-28T03:00:00Z", last_seen="2026-05-28T03:30:00Z", event_ids=event_ids,
                   mitre=["T1078.004"], stratus=[], explanation="attacker calls", evidence={}, tactic="discovery")


def _insert(store, findings: list[Finding]) -> None:
    """Through the detection run's own commit (the one that writes findings as 'open')."""
    judged = store.con.execute("SELECT value FROM meta WHERE key = 'detect_judged_batch'").fetchone()
    _commit(store, {}, findings, int(judged[0]) if judged else 0)


def _usage(store, name: str) -> dict:
    identity = get_identity(store, name)
    assert identity is not None and identity.usage is not None, name
    return identity.usage


def _used(usage: dict) -> set[str]:
    return {u["action"] for u in usage["used"]}


def _suggested(usage: dict) -> set[str]:
    return {a for s in usage["suggested_policy"]["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}


def _permission_sets(store) -> dict[str, PermissionSet]:
    """Every identity's permissions, evaluated from the stored IAM exports the way the inventory does."""
    authz, _ = load_sources(store)
    managed = _Policies(authz)
    out: dict[str, PermissionSet] = {}
    for account, payload in authz.items():
        if account == "aws":
            continue
        groups = {g.get("GroupName"): g for g in payload.get("GroupDetailList", [])}
        for entry in payload.get("UserDetailList", []):
            scratch = Identity(entry["Arn"], account, "user", entry["UserName"])
            statements = _collect_policies(scratch, entry, "UserPolicyList", managed, groups)
            self_resources = (entry["Arn"], *[p.arn for p in scratch.policies if p.arn],
                              *[f"arn:aws:iam::{account}:group/{g}" for g in entry.get("GroupList") or []])
            out[entry["Arn"]] = _permissions(scratch, entry, statements, managed, self_resources)
        for entry in payload.get("RoleDetailList", []):
            scratch = Identity(entry["Arn"], account, "role", entry["RoleName"])
            statements = _collect_policies(scratch, entry, "RolePolicyList", managed, {})
            self_resources = (entry["Arn"], *[p.arn for p in scratch.policies if p.arn])
            out[entry["Arn"]] = _permissions(scratch, entry, statements, managed, self_resources)
    return out


def _assert_every_suggestion_is_granted(store) -> int:
    """For every identity in the store: each action of each Allow in its suggested policy is granted by its
    policies on each Resource the statement names. Returns how many identities had a non-empty suggestion."""
    permissions = _permission_sets(store)
    _, rows = list_identities(store)
    checked = 0
    for row in rows:
        identity = get_identity(store, row["arn"])
        usage = identity.usage
        if usage is None:
            continue
        allows = [s for s in usage["suggested_policy"]["Statement"] if s["Effect"] == "Allow"]
        perms = permissions.get(identity.arn)
        if perms is None:  # known from the credential report only: nothing is known to be granted
            assert allows == [] and usage["suggested_policy_reason"], identity.arn
            continue
        for statement in allows:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in statement["Action"]:
                assert perms.allows_somewhere(action), (identity.arn, action)
                for resource in resources:
                    granted = perms.grant(action) if resource == "*" else perms.grant_on(action, resource)
                    assert granted is not None, (identity.arn, action, resource)
                    if statement.get("Condition") is None:  # an unconditional suggestion needs an unconditional grant
                        assert not granted.conditional, (identity.arn, action, resource)
        # what was used but is not granted is still listed, never suggested
        assert not set(usage["used_not_granted"]) & _suggested(usage), identity.arn
        checked += bool(allows)
    return checked


@pytest.fixture
def poisoned(store, tmp_path):
    """A store with the hand-made IAM exports, normal use of several identities, and an attacker using
    the ecs-api-task role (granted only secretsmanager:GetSecretValue and ssm:GetParameter*) and dormant-bot."""
    trail = Trail()
    task = _role("ecs-api-task")
    normal_task = [trail.add(task, "secretsmanager.amazonaws.com", "GetSecretValue", f"2026-05-2{n}T08:00:00Z",
                             {"secretId": SECRET}) for n in range(3)]
    normal_task += [trail.add(task, "ssm.amazonaws.com", "GetParameter", f"2026-05-2{n}T08:05:00Z",
                              {"name": "/app/db"}) for n in range(2)]
    pacu = {"agent": "pacu/1.0 (attacker)", "ip": "203.0.113.66"}
    attack = [trail.add(task, "ssm.amazonaws.com", "GetParametersByPath", "2026-05-28T03:00:00Z", {"path": "/"},
                        **pacu),
              trail.add(task, "secretsmanager.amazonaws.com", "ListSecrets", "2026-05-28T03:01:00Z", **pacu),
              trail.add(task, "iam.amazonaws.com", "ListRoles", "2026-05-28T03:02:00Z", **pacu),
              trail.add(task, "s3.amazonaws.com", "ListBuckets", "2026-05-28T03:03:00Z", **pacu),
              trail.add(task, "iam.amazonaws.com", "CreateUser", "2026-05-28T03:04:00Z", {"userName": "x"}, **pacu),
              trail.add(task, "iam.amazonaws.com", "CreateUser", "2026-05-28T03:05:00Z", {"userName": "y"}, **pacu),
              trail.add(task, "ec2.amazonaws.com", "DescribeInstances", "2026-05-28T03:06:00Z", **pacu),
              # the attacker also reads the same secret as normal use does: that call is held out too
              trail.add(task, "secretsmanager.amazonaws.com", "GetSecretValue", "2026-05-28T03:07:00Z",
                        {"secretId": SECRET}, **pacu)]
    dormant = [trail.add(_user("dormant-bot"), "s3.amazonaws.com", "ListBuckets", "2026-05-28T04:00:00Z", **pacu),
               trail.add(_user("dormant-bot"), "sts.amazonaws.com", "GetCallerIdentity", "2026-05-28T04:01:00Z",
                         **pacu)]
    # other identities: granted and not granted use, scoped and unscoped
    gh = _role("gh-pinned")
    trail.add(gh, "s3.amazonaws.com", "GetObject", "2026-05-20T09:00:00Z",
              {"bucketName": "acme-artifacts", "key": "build/app.zip"})
    trail.add(gh, "s3.amazonaws.com", "GetObject", "2026-05-20T09:01:00Z",  # a bucket policy let it: not granted
              {"bucketName": "partner-drop", "key": "x"})
    trail.add(gh, "s3.amazonaws.com", "ListObjects", "2026-05-20T09:02:00Z", {"bucketName": "acme-artifacts"})
    denied = _role("lambda-iam-denied")
    trail.add(denied, "iam.amazonaws.com", "ListUsers", "2026-05-21T09:00:00Z")
    trail.add(denied, "iam.amazonaws.com", "CreateUser", "2026-05-21T09:01:00Z", {"userName": "z"})  # Deny iam:Create*
    bounded = _role("lambda-iam-bounded")
    trail.add(bounded, "iam.amazonaws.com", "GetRole", "2026-05-21T10:00:00Z", {"roleName": "r"})
    trail.add(bounded, "iam.amazonaws.com", "AttachRolePolicy", "2026-05-21T10:01:00Z", {"roleName": "r"})  # boundary
    deployer = _user("ci-deployer")
    trail.add(deployer, "cloudformation.amazonaws.com", "DescribeStacks", "2026-05-22T10:00:00Z")
    trail.add(deployer, "s3.amazonaws.com", "PutObject", "2026-05-22T10:01:00Z", {"bucketName": "acme-artifacts",
                                                                                 "key": "a"})
    trail.add(deployer, "lambda.amazonaws.com", "UpdateFunctionCode20150331v2", "2026-05-22T10:02:00Z",
              {"functionName": "api"})  # not granted
    escalator = _user("self-escalator")  # granted only on its own ARN; the event names it without one
    trail.add(escalator, "iam.amazonaws.com", "PutUserPolicy", "2026-05-23T10:00:00Z", {"userName": "self-escalator"})
    trail.add(_user("alice"), "ec2.amazonaws.com", "DescribeInstances", "2026-05-23T11:00:00Z")  # admin via group
    trail.add(ROOT, "iam.amazonaws.com", "GetAccountSummary", "2026-05-24T11:00:00Z")  # credential report only
    (tmp_path / "trail.json").write_text(json.dumps({"Records": trail.records}))
    assert ingest(store, tmp_path / "trail.json").accepted == len(trail.records)
    save_sources(store, [read_source(HAND_MADE / "authorization-details.json"),
                         read_source(HAND_MADE / "credential-report.csv")], "test")

    task_arn = f"arn:aws:iam::{ACCOUNT}:role/ecs-api-task"
    attack_finding = _finding("attack-tool-agent", "high", task_arn, "role", attack)
    findings = [attack_finding,
                # low findings are leads, not verdicts: their events still count
                _finding("unusual-hour", "low", task_arn, "role", normal_task[:1]),
                # another identity's finding naming the task's normal events does not hold them out
                _finding("novel-api", "high", f"arn:aws:iam::{ACCOUNT}:user/alice", "user", normal_task[1:2]),
                _finding("attack-tool-agent", "high", f"arn:aws:iam::{ACCOUNT}:user/dormant-bot", "user", dormant)]
    _insert(store, findings)
    assert store.con.execute("SELECT count(*) FROM findings WHERE status = 'open'").fetchone()[0] == 4
    rebuild(store, AS_OF)
    return store, attack_finding, findings[-1]


ATTACKER_ONLY = {"ssm:GetParametersByPath", "secretsmanager:ListSecrets", "iam:ListRoles", "s3:ListAllMyBuckets",
                 "iam:CreateUser", "ec2:DescribeInstances"}


def test_open_finding_holds_the_attack_out_of_used_and_suggested(poisoned):
    store, attack, _ = poisoned
    usage = _usage(store, "ecs-api-task")
    assert _used(usage) == {"secretsmanager:GetSecretValue", "ssm:GetParameter"}
    assert not _used(usage) & ATTACKER_ONLY and not _suggested(usage) & ATTACKER_ONLY
    assert _suggested(usage) == {"secretsmanager:GetSecretValue", "ssm:GetParameter"}
    assert usage["held_out_calls"] == len(attack.event_ids) == 8
    assert usage["held_out_actions"] == {"ec2:DescribeInstances": 1, "iam:CreateUser": 2, "iam:ListRoles": 1,
                                         "s3:ListAllMyBuckets": 1, "secretsmanager:GetSecretValue": 1,
                                         "secretsmanager:ListSecrets": 1, "ssm:GetParametersByPath": 1}
    by_action = {u["action"]: u for u in usage["used"]}
    # the attacker's read of the secret is not a call of the role's own; the low finding's event still counts
    assert by_action["secretsmanager:GetSecretValue"]["calls"] == 3
    assert by_action["secretsmanager:GetSecretValue"]["last_seen"] == "2026-05-22T08:00:00Z"
    assert by_action["ssm:GetParameter"]["calls"] == 2
    # what it was granted and did not use stays unused: the attacker's GetParametersByPath is not use
    assert usage["unused_grants"] == []
    assert usage["used_not_granted"] == []

    # an identity whose only calls are the attacker's: it says so, and suggests nothing
    dormant = _usage(store, "dormant-bot")
    assert dormant["used"] == [] and dormant["held_out_calls"] == 2
    assert dormant["suggested_policy"]["Statement"] == []
    assert "unresolved findings" in dormant["suggested_policy_reason"]


def test_resolving_benign_counts_the_calls_again_but_never_suggests_ungranted(poisoned):
    store, attack, dormant = poisoned
    resolve(store, attack.id, benign=True, reason="it was the red team")
    resolve(store, dormant.id, benign=False, reason="confirmed compromise")  # malicious: stays held out
    rebuild(store, AS_OF)
    usage = _usage(store, "ecs-api-task")
    assert _used(usage) == {"secretsmanager:GetSecretValue", "ssm:GetParameter"} | ATTACKER_ONLY
    assert usage["held_out_calls"] == 0 and usage["held_out_actions"] == {}
    assert {u["action"]: u["calls"] for u in usage["used"]}["secretsmanager:GetSecretValue"] == 4
    # granted through ssm:GetParameter*: suggested now; the rest was never granted and stays out
    assert _suggested(usage) == {"secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParametersByPath"}
    assert set(usage["used_not_granted"]) == ATTACKER_ONLY - {"ssm:GetParametersByPath"}
    assert {n["action"] for n in usage["not_suggested"]} == set(usage["used_not_granted"])
    assert _usage(store, "dormant-bot")["held_out_calls"] == 2
    assert _assert_every_suggestion_is_granted(store) >= 6


def test_every_suggested_policy_is_within_the_grant(poisoned):
    store, _, _ = poisoned
    assert _assert_every_suggestion_is_granted(store) >= 6

    gh = _usage(store, "gh-pinned")  # GetObject seen on two buckets, granted on one
    assert {u["action"] for u in gh["used"]} == {"s3:GetObject", "s3:ListBucket"}
    statements = {tuple(s["Action"]): s["Resource"] for s in gh["suggested_policy"]["Statement"]}
    assert statements == {("s3:GetObject",): "arn:aws:s3:::acme-artifacts/*",
                          ("s3:ListBucket",): "arn:aws:s3:::acme-artifacts"}
    assert gh["not_suggested"] == [{"action": "s3:GetObject", "resources": ["arn:aws:s3:::partner-drop/*"],
                                    "reason": "used on these resources, which its policies do not grant it on"}]

    denied = _usage(store, "lambda-iam-denied")  # iam:* with a Deny of iam:Create*: CreateUser is not suggested
    assert _used(denied) == {"iam:ListUsers", "iam:CreateUser"} and _suggested(denied) == {"iam:ListUsers"}
    assert [n["action"] for n in denied["not_suggested"]] == ["iam:CreateUser"]
    bounded = _usage(store, "lambda-iam-bounded")  # the boundary allows iam:Get*, iam:List* only
    assert _suggested(bounded) == {"iam:GetRole"}
    deployer = _usage(store, "ci-deployer")
    assert _suggested(deployer) == {"cloudformation:DescribeStacks", "s3:PutObject"}
    assert deployer["used_not_granted"] == ["lambda:UpdateFunctionCode"]
    # granted only on itself, used without an ARN in the event: suggested on the granted ARN, not on *
    escalator = _usage(store, "self-escalator")
    assert [(s["Action"], s["Resource"]) for s in escalator["suggested_policy"]["Statement"]] == [
        (["iam:PutUserPolicy"], f"arn:aws:iam::{ACCOUNT}:user/self-escalator")]
    assert _suggested(_usage(store, "alice")) == {"ec2:DescribeInstances"}
    root = _usage(store, "root")  # no IAM policy known: an empty suggestion with a reason, not the used set
    assert _used(root) == {"iam:GetAccountSummary"} and root["suggested_policy"]["Statement"] == []
    assert "no identity policy is known" in root["suggested_policy_reason"]


def test_a_suggestion_carries_the_denies_it_needs(poisoned):
    """iam:* minus a Deny: the suggestion names iam:ListUsers; a Deny statement covering it would be carried."""
    store, _, _ = poisoned
    denied = _usage(store, "lambda-iam-denied")
    # the Deny (iam:Put*, iam:Create*, ...) does not match iam:ListUsers, so nothing is carried
    assert [s["Effect"] for s in denied["suggested_policy"]["Statement"]] == ["Allow"]
    from nhiwatch.inventory.policy import statements_of
    from nhiwatch.inventory.usage import ActionUse, suggest_policy

    perms = PermissionSet(statements_of({"Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*"}]}, "inline t"))
    use = ActionUse("s3:GetObject", 3, 0, "2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z", [], False)
    policy, left_out = suggest_policy([use], perms)
    assert left_out == []
    assert policy["Statement"][1] == {"Effect": "Deny", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::vault/*"}


def test_a_new_users_flow_inventory_load_then_analyze_keeps_the_attack_out(store, tmp_path):
    """`inventory load` first, then `analyze` without --iam, as a new user runs it: the detection run
    itself holds the attacker's calls out of the usage it leaves behind."""
    from nhiwatch.pipeline import analyze

    save_sources(store, [read_source(HAND_MADE / "authorization-details.json"),
                         read_source(HAND_MADE / "credential-report.csv")], "test")
    rebuild(store, AS_OF)
    trail = Trail()
    task = _role("ecs-api-task")
    for n in range(3):
        trail.add(task, "secretsmanager.amazonaws.com", "GetSecretValue", f"2026-05-2{n}T08:00:00Z", {"secretId": SECRET})
    pacu = {"agent": "pacu/1.0 (attacker)", "ip": "203.0.113.66"}
    trail.add(task, "ssm.amazonaws.com", "GetParametersByPath", "2026-05-28T03:00:00Z", {"path": "/"}, **pacu)
    trail.add(task, "iam.amazonaws.com", "ListRoles", "2026-05-28T03:02:00Z", **pacu)
    (tmp_path / "trail.json").write_text(json.dumps({"Records": trail.records}))
    result = analyze(store, [str(tmp_path / "trail.json")])
    assert any(f.severity in ("high", "critical") and f.identity["arn"].endswith(":role/ecs-api-task")
               for f in result.findings)
    usage = get_identity(store, "ecs-api-task").usage
    used = {u["action"] for u in usage["used"]}
    assert "secretsmanager:GetSecretValue" in used
    assert not used & {"ssm:GetParametersByPath", "iam:ListRoles"} and usage["held_out_calls"] == 2

"""Response actions and their undo, through boto3 against moto's server mode (real HTTP, reached with
the standard AWS_ENDPOINT_URL): the IAM state is read back before and after every change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from conftest import REPO
from moto_server import aws_live, aws_live_with_aws_policies, enforce_iam, moto_endpoint, moto_endpoint_with_aws_policies  # noqa: F401
from nhiwatch.respond.actions import ACTIONS, QUARANTINE_POLICY, REVOKE_POLICY, ActionError, Target
from nhiwatch.respond.executor import Refused, Responder, get_action
from nhiwatch.respond.policy import PolicyError, load_policy
from nhiwatch.store.db import Store

GITHUB = "token.actions.githubusercontent.com"


def _trust(principal: dict, action: str = "sts:AssumeRole", condition: dict | None = None) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": action}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def org(aws_live):
    """A small account: a workload role, a CI/CD OIDC role, an NHI user with a key and a console password."""
    iam = boto3.client("iam")
    account = boto3.client("sts").get_caller_identity()["Account"]
    role = iam.create_role(RoleName="orders-worker-role", Path="/service-role/",
                           AssumeRolePolicyDocument=_trust({"Service": "lambda.amazonaws.com"}))["Role"]
    oidc_trust = _trust({"Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB}"},
                        "sts:AssumeRoleWithWebIdentity",
                        {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"},
                         "StringLike": {f"{GITHUB}:sub": "repo:acme/*"}})
    ci = iam.create_role(RoleName="github-deploy", AssumeRolePolicyDocument=oidc_trust)["Role"]
    user = iam.create_user(UserName="svc-backup-bot")["User"]
    key = iam.create_access_key(UserName="svc-backup-bot")["AccessKey"]["AccessKeyId"]
    iam.create_login_profile(UserName="svc-backup-bot", Password="Initial-Passw0rd!")
    return {"iam": iam, "account": account, "role": role, "ci": ci, "ci_trust": oidc_trust, "user": user, "key": key}


@pytest.fixture
def responder(tmp_path, aws_live):
    store = Store(tmp_path / "home")
    session = boto3.Session()
    own = boto3.client("sts").get_caller_identity()["Arn"]
    yield Responder(store, lambda _account: session, own_arn=own)
    store.close()


def _role_target(role: dict) -> Target:
    return Target.from_arn(role["Arn"], role["RoleId"])


def _inline(iam, role_name: str) -> list[str]:
    return iam.list_role_policies(RoleName=role_name)["PolicyNames"]


def test_revoke_sessions_adds_the_token_issue_time_deny_and_undo_removes_it(org, responder):
    iam, role = org["iam"], org["role"]
    plan = ACTIONS["revoke-sessions"].plan(_role_target(role), {})
    assert _inline(iam, role["RoleName"]) == []
    record = responder.execute(plan, reason="test").record
    assert record["status"] == "executed" and record["before"] == {"policy": None}
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=REVOKE_POLICY)["PolicyDocument"]
    statement = document["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*"
    assert statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == plan.options["issued_before"]
    undone = responder.undo(record["id"]).record
    assert undone["status"] == "undone"
    assert _inline(iam, role["RoleName"]) == []
    assert get_action(responder.store, record["id"])["status"] == "undone"


def test_undo_restores_a_policy_that_was_there_before(org, responder):
    iam, role = org["iam"], org["role"]
    first = responder.execute(ACTIONS["revoke-sessions"].plan(_role_target(role),
                                                              {"issued_before": "2026-01-01T00:00:00Z"}), reason="one")
    second = responder.execute(ACTIONS["revoke-sessions"].plan(_role_target(role), {}), reason="two")
    assert second.record["before"]["policy"] is not None
    responder.undo(second.record["id"])
    kept = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=REVOKE_POLICY)["PolicyDocument"]
    assert kept["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == "2026-01-01T00:00:00Z"
    assert first.record["status"] == "executed"


def test_revoke_one_session_denies_by_userid(org, responder):
    iam, role = org["iam"], org["role"]
    plan = ACTIONS["revoke-session"].plan(_role_target(role), {"session": "i-0abc123"})
    record = responder.execute(plan, reason="test").record
    name = plan.options["policy_name"]
    condition = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]["Statement"][0][
        "Condition"]
    assert condition == {"StringLike": {"aws:userid": f"{role['RoleId']}:i-0abc123"}}
    responder.undo(record["id"])
    assert name not in _inline(iam, role["RoleName"])


def test_deactivate_key_never_deletes_and_undo_reactivates(org, responder):
    iam, user, key = org["iam"], org["user"], org["key"]

    def status() -> str:
        return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user["UserName"])[
            "AccessKeyMetadata"]}[key]

    assert status() == "Active"
    record = responder.execute(ACTIONS["deactivate-key"].plan(Target.from_arn(user["Arn"]), {"key": key}),
                               reason="leaked").record
    assert record["status"] == "executed" and record["before"] == {"status": "Active"}
    assert status() == "Inactive"  # still listed: deactivated, not deleted
    responder.undo(record["id"])
    assert status() == "Active"


def test_disable_console_and_undo_with_a_one_time_password(org, responder):
    iam, user = org["iam"], org["user"]
    record = responder.execute(ACTIONS["disable-console"].plan(Target.from_arn(user["Arn"]), {}), reason="nhi").record
    assert record["before"]["login_profile"] is True
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName=user["UserName"])
    outcome = responder.undo(record["id"])
    assert outcome.record["status"] == "undone" and outcome.secret and len(outcome.secret) >= 20
    assert iam.get_login_profile(UserName=user["UserName"])["LoginProfile"]["UserName"] == user["UserName"]
    # moto does not keep the flag; the recorded call shows it was asked for
    assert outcome.record["undo"]["done"][0]["params"]["PasswordResetRequired"] is True
    assert outcome.secret not in json.dumps(get_action(responder.store, record["id"]))  # never stored


def test_quarantine_attaches_the_aws_policy_and_undo_detaches_it(aws_live_with_aws_policies, tmp_path):
    iam = boto3.client("iam")
    user = iam.create_user(UserName="svc-report-sync")["User"]
    with Store(tmp_path / "home") as store:
        responder = Responder(store, lambda _a: boto3.Session(), own_arn="arn:aws:iam::123456789012:user/someone")
        record = responder.execute(ACTIONS["quarantine"].plan(Target.from_arn(user["Arn"]), {}), reason="t").record
        attached = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="svc-report-sync")[
            "AttachedPolicies"]]
        assert record["status"] == "executed" and attached == [QUARANTINE_POLICY]
        responder.undo(record["id"])
        assert iam.list_attached_user_policies(UserName="svc-report-sync")["AttachedPolicies"] == []


def test_a_failed_call_is_recorded_and_changes_nothing(org, responder):
    # plain moto has no AWS managed policies: attaching the quarantine policy fails like a wrong partition would
    iam, role = org["iam"], org["role"]
    record = responder.execute(ACTIONS["quarantine"].plan(_role_target(role), {}), reason="t").record
    assert record["status"] == "failed" and "NoSuchEntity" in record["error"]
    assert record["done"] == [] and record["before"] == {"attached": False}
    assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []
    assert get_action(responder.store, record["id"])["status"] == "failed"
    with pytest.raises(ActionError):
        responder.undo(record["id"])
    # reading the state before fails too: a key the user does not have
    bad = responder.execute(ACTIONS["deactivate-key"].plan(Target.from_arn(org["user"]["Arn"]),
                                                           {"key": "AKIAEXAMPLENOTAKEY00"}), reason="t").record
    assert bad["status"] == "failed" and "no access key" in bad["error"]


def test_network_fence_and_oidc_trust_are_reversible(org, responder):
    iam, role, ci = org["iam"], org["role"], org["ci"]
    fence = ACTIONS["network-fence"].plan(_role_target(role), {"cidrs": ["203.0.113.0/24"],
                                                               "vpc_endpoints": ["vpce-0a1b2c3d"]})
    record = responder.execute(fence, reason="t").record
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="nhiwatch-network-fence")["PolicyDocument"]
    condition = document["Statement"][0]["Condition"]
    assert condition["NotIpAddress"] == {"aws:SourceIp": ["203.0.113.0/24"]}
    assert condition["StringNotEqualsIfExists"] == {"aws:SourceVpce": ["vpce-0a1b2c3d"]}
    assert condition["Bool"] == {"aws:ViaAWSService": "false"}
    responder.undo(record["id"])
    assert _inline(iam, role["RoleName"]) == []

    subjects = ["repo:acme/orders-service:ref:refs/heads/main"]
    trust = ACTIONS["tighten-oidc-trust"].plan(_role_target(ci), {"subjects": subjects, "trust": org["ci_trust"]})
    record = responder.execute(trust, reason="t").record
    now = iam.get_role(RoleName="github-deploy")["Role"]["AssumeRolePolicyDocument"]
    condition = now["Statement"][0]["Condition"]
    assert condition["StringEquals"][f"{GITHUB}:sub"] == subjects[0]
    assert "StringLike" not in condition and condition["StringEquals"][f"{GITHUB}:aud"] == "sts.amazonaws.com"
    responder.undo(record["id"])
    restored = iam.get_role(RoleName="github-deploy")["Role"]["AssumeRolePolicyDocument"]
    assert restored == json.loads(org["ci_trust"])


def test_guard_refuses_service_linked_roles_itself_and_protected_identities(org, responder):
    iam = org["iam"]
    linked = Target.from_arn(f"arn:aws:iam::{org['account']}:role/aws-service-role/ecs.amazonaws.com/"
                             "AWSServiceRoleForECS", "AROAEXAMPLE")
    with pytest.raises(Refused):
        responder.execute(ACTIONS["revoke-sessions"].plan(linked, {}), reason="t")
    responder.own_arn = org["user"]["Arn"]  # as if nhiwatch ran with this user's key
    with pytest.raises(Refused, match="nhiwatch itself"):
        responder.execute(ACTIONS["quarantine"].plan(Target.from_arn(org["user"]["Arn"]), {}), reason="t")
    responder.own_arn = f"arn:aws:sts::{org['account']}:assumed-role/orders-worker-role/nhiwatch"
    with pytest.raises(Refused, match="nhiwatch itself"):
        responder.execute(ACTIONS["revoke-sessions"].plan(_role_target(org["role"]), {}), reason="t")
    responder.own_arn, responder.protected = None, ["arn:aws:iam::*:role/service-role/orders-*"]
    with pytest.raises(Refused, match="protected"):
        responder.execute(ACTIONS["revoke-sessions"].plan(_role_target(org["role"]), {}), reason="t")
    assert _inline(iam, org["role"]["RoleName"]) == []
    assert responder.store.con.execute("SELECT count(*) FROM actions").fetchone()[0] == 0


def test_the_documented_response_policy_is_enough(aws_live, enforce_iam, tmp_path):
    """With moto checking IAM, a responder holding only policies/nhiwatch-respond.json can act and undo."""
    iam = boto3.client("iam")
    iam.create_role(RoleName="etl-batch-role", AssumeRolePolicyDocument=_trust({"Service": "ecs-tasks.amazonaws.com"}))
    victim = iam.create_user(UserName="svc-etl-sync")["User"]
    victim_key = iam.create_access_key(UserName="svc-etl-sync")["AccessKey"]["AccessKeyId"]
    iam.create_user(UserName="nhiwatch-responder")
    # moto authorizes every IAM call against the resource "*", so the documented ARN scoping and
    # conditions are widened here; the action list is what this test holds to account (the ARN
    # scoping is checked by test_the_response_policy_scopes_every_call_to_users_and_roles).
    documented = json.loads((REPO / "policies" / "nhiwatch-respond.json").read_text())
    for statement in documented["Statement"]:
        statement["Resource"] = "*"
        statement.pop("Condition", None)
    iam.put_user_policy(UserName="nhiwatch-responder", PolicyName="respond", PolicyDocument=json.dumps(documented))
    responder_key = iam.create_access_key(UserName="nhiwatch-responder")["AccessKey"]
    iam.create_user(UserName="nobody")
    nobody_key = iam.create_access_key(UserName="nobody")["AccessKey"]
    enforce_iam()

    def session(key: dict) -> boto3.Session:
        return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                             region_name="us-east-1")

    role = session(responder_key).client("iam").get_role(RoleName="etl-batch-role")["Role"]
    with Store(tmp_path / "home") as store:
        allowed = Responder(store, lambda _a: session(responder_key), own_arn="arn:aws:iam::123456789012:user/x")
        for plan in (ACTIONS["revoke-sessions"].plan(_role_target(role), {}),
                     ACTIONS["deactivate-key"].plan(Target.from_arn(victim["Arn"]), {"key": victim_key})):
            record = allowed.execute(plan, reason="t").record
            assert record["status"] == "executed", record["error"]
            assert allowed.undo(record["id"]).record["status"] == "undone"
        denied = Responder(store, lambda _a: session(nobody_key), own_arn="arn:aws:iam::123456789012:user/y")
        record = denied.execute(ACTIONS["revoke-sessions"].plan(_role_target(role), {}), reason="t").record
        assert record["status"] == "failed" and "AccessDenied" in record["error"]


def test_response_policy_file_is_validated(tmp_path):
    good = tmp_path / "policy.toml"
    good.write_text('protected = ["arn:aws:iam::*:role/break-glass"]\n[[allow]]\nactions = ["deactivate-key"]\n'
                    'min_severity = "high"\nidentities = ["arn:aws:iam::*:user/svc-*"]\n')
    policy = load_policy(good)
    assert policy.allowed("deactivate-key", "critical", "arn:aws:iam::1:user/svc-a", {"enumeration"})
    assert not policy.allowed("deactivate-key", "medium", "arn:aws:iam::1:user/svc-a", {"enumeration"})
    assert not policy.allowed("quarantine", "critical", "arn:aws:iam::1:user/svc-a", {"enumeration"})
    assert not policy.allowed("deactivate-key", "critical", "arn:aws:iam::1:user/alice", {"enumeration"})
    for text, message in (('[[allow]]\nactions = ["delete-everything"]\n', "unknown action"),
                          ('[[allow]]\nactions = ["notify"]\nmin_severity = "urgent"\n', "min_severity"),
                          ('protect = ["x"]\n', "unknown key"), ("[[allow]\n", "policy.toml")):
        bad = tmp_path / "policy.toml"
        bad.write_text(text)
        with pytest.raises(PolicyError, match=message):
            load_policy(bad)


def test_cli_is_a_dry_run_until_told_and_undo_is_recorded(org, tmp_path):
    iam, role = org["iam"], org["role"]
    home = tmp_path / "home"
    base = [sys.executable, "-m", "nhiwatch", "respond"]
    dry = subprocess.run([*base, "run", "revoke-sessions", "--identity", role["Arn"], "--home", str(home), "--json"],
                         capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    shown = json.loads(dry.stdout)
    assert shown["dry_run"] and shown["calls"][0]["method"] == "put_role_policy"
    assert "aws iam put-role-policy --role-name orders-worker-role" in shown["cli"][0]
    assert shown["cli"][0].endswith(f"# account {org['account']}")  # the account is named in what is printed
    assert _inline(iam, role["RoleName"]) == []  # nothing changed
    done = subprocess.run([*base, "run", "revoke-sessions", "--identity", role["Arn"], "--reason", "incident 7",
                           "--execute", "--home", str(home), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    action = json.loads(done.stdout)
    assert action["status"] == "executed" and action["reason"] == "incident 7"
    assert _inline(iam, role["RoleName"]) == [REVOKE_POLICY]
    listed = json.loads(subprocess.run([*base, "list", "--home", str(home), "--json"], capture_output=True,
                                       text=True).stdout)
    assert [a["id"] for a in listed["actions"]] == [action["id"]]
    assert subprocess.run([*base, "undo", action["id"], "--home", str(home)], capture_output=True).returncode == 0
    assert _inline(iam, role["RoleName"]) == [REVOKE_POLICY]  # undo is a dry-run too until --execute
    undo_plan = json.loads(subprocess.run([*base, "undo", action["id"], "--home", str(home), "--json"],
                                          capture_output=True, text=True).stdout)
    assert undo_plan["cli"] and all(c.endswith(f"# account {org['account']}") for c in undo_plan["cli"])
    undone = subprocess.run([*base, "undo", action["id"], "--execute", "--home", str(home), "--json"],
                            capture_output=True, text=True)
    assert undone.returncode == 0, undone.stderr
    assert json.loads(undone.stdout)["status"] == "undone" and _inline(iam, role["RoleName"]) == []
    bad = subprocess.run([*base, "run", "deactivate-key", "--identity", role["Arn"], "--home", str(home)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "applies to users" in bad.stderr


def test_the_response_policy_scopes_every_call_to_users_and_roles():
    """Every call an action, its state snapshot or its undo makes is allowed by the documented policy on
    the user or role it targets, judged by nhiwatch's own policy evaluator."""
    from nhiwatch.inventory.policy import statements_of

    statements = statements_of(json.loads((REPO / "policies" / "nhiwatch-respond.json").read_text()), "respond")
    role = Target.from_arn("arn:aws:iam::111122223333:role/app-role", "AROAEXAMPLEROLEID000")
    user = Target.from_arn("arn:aws:iam::111122223333:user/svc-bot")
    options = {"key": "AKIAEXAMPLEKEY000000", "session": "s-1", "cidrs": ["203.0.113.0/24"],
               "subjects": ["repo:acme/app:ref:refs/heads/main"],
               "trust": _trust({"Federated": f"arn:aws:iam::111122223333:oidc-provider/{GITHUB}"},
                               "sts:AssumeRoleWithWebIdentity")}
    before = {"policy": None, "status": "Active", "login_profile": True, "attached": False, "trust": options["trust"]}
    snapshot_methods = {"get_role_policy", "get_user_policy", "get_login_profile", "list_access_keys",
                        "list_attached_role_policies", "list_attached_user_policies", "get_role"}
    checked = set()
    for action in ACTIONS.values():
        for target in (role, user):
            try:
                plan = action.plan(target, options)
            except ActionError:
                continue
            calls = plan.calls + action.undo(plan, before, plan.calls)
            for method in {c.method for c in calls} | snapshot_methods:
                name = "iam:" + "".join(part.title() for part in method.split("_"))
                allowed = [st for st in statements if st.effect == "Allow" and st.matches_action(name)
                           and st.covers(target.arn)]
                assert allowed, f"{name} on {target.arn} is not allowed by policies/nhiwatch-respond.json"
                checked.add(name)
    assert {"iam:PutRolePolicy", "iam:UpdateAccessKey", "iam:AttachUserPolicy", "iam:UpdateAssumeRolePolicy",
            "iam:CreateLoginProfile", "iam:DetachRolePolicy"} <= checked


def test_response_doc_is_generated_from_the_actions():
    from nhiwatch.respond.docs import response_markdown

    assert (REPO / "docs" / "response.md").read_text() == response_markdown()


# ---------------------------------------------------------------------------------------------------
# Blast radius: AWS-managed roles, identities without an alert of their own, the account in every command.

from nhiwatch.correlate.incidents import _save as save_incidents  # noqa: E402
from nhiwatch.core.finding import finding_id  # noqa: E402
from nhiwatch.respond.actions import Call  # noqa: E402
from nhiwatch.respond.executor import guard  # noqa: E402
from nhiwatch.respond.managed import aws_managed  # noqa: E402
from nhiwatch.respond.playbooks import plan_incident  # noqa: E402

ACCOUNT = "111122223333"
MANAGED = {
    "service-linked": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
    "Identity Center": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/us-west-2/"
                       "AWSReservedSSO_DevAdmin_635426549a280cc6",
    "Identity Center ": f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_ReadOnly_0123456789abcdef",  # path lost
    "Control Tower": f"arn:aws:iam::{ACCOUNT}:role/AWSControlTowerExecution",
    "Control Tower ": f"arn:aws:iam::{ACCOUNT}:role/aws-controltower-AdministratorExecutionRole",
    "StackSets": f"arn:aws:iam::{ACCOUNT}:role/AWSCloudFormationStackSetExecutionRole",
    "StackSets ": f"arn:aws:iam::{ACCOUNT}:role/AWSCloudFormationStackSetAdministrationRole",
    "StackSets  ": f"arn:aws:iam::{ACCOUNT}:role/stacksets-exec-0123456789abcdef0123456789abcdef",
    "Organizations access role": f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole",
}
ORG_ACCESS = MANAGED["Organizations access role"]
ORDINARY = f"arn:aws:iam::{ACCOUNT}:role/orders-worker-role"


@pytest.mark.parametrize("what", sorted(MANAGED))
def test_aws_managed_roles_are_refused_by_the_guard_and_the_executor(tmp_path, what):
    target = Target.from_arn(MANAGED[what], "AROAEXAMPLEROLEID000")
    reason = aws_managed(target)
    assert reason and what.strip().split()[0].lower() in reason.lower()
    with pytest.raises(Refused, match="is (a|an|the) "):
        guard(target, own_arn=None, protected=[])
    with Store(tmp_path / "home") as store:
        def no_aws(_account):  # refused before any session is asked for
            raise AssertionError("AWS was reached")

        responder = Responder(store, no_aws, own_arn="arn:aws:iam::123456789012:user/x")
        for kind in ("revoke-sessions", "quarantine"):
            with pytest.raises(Refused):
                responder.execute(ACTIONS[kind].plan(target, {}), reason="t")
        assert store.con.execute("SELECT count(*) FROM actions").fetchone()[0] == 0


def test_the_organization_access_role_only_when_allowed_explicitly():
    target = Target.from_arn(ORG_ACCESS, "AROAEXAMPLEROLEID000")
    assert aws_managed(target) and aws_managed(target, allow_org_access=True) is None
    guard(target, own_arn=None, protected=[], allow_org_access=True)  # no refusal
    for other in (k for k in MANAGED if "Organizations" not in k):  # the flag lifts nothing else
        assert aws_managed(Target.from_arn(MANAGED[other]), allow_org_access=True)
    for ordinary in (ORDINARY, f"arn:aws:iam::{ACCOUNT}:user/svc-bot", f"arn:aws:iam::{ACCOUNT}:role/MyStackSetRole",
                     f"arn:aws:iam::{ACCOUNT}:role/service-role/controltower-report-lambda"):
        assert aws_managed(Target.from_arn(ordinary)) is None, ordinary


def _finding(arn: str, severity: str = "high", detector: str = "unfamiliar-context") -> dict:
    return {"id": finding_id(detector, arn, severity), "detector": detector, "severity": severity,
            "identity": {"arn": arn, "account_id": arn.split(":")[4]}, "event_ids": ["e-" + arn[-8:]],
            "first_seen": "2026-03-01T12:00:00Z", "last_seen": "2026-03-01T12:00:00Z", "title": "t", "score": 70,
            "tactic": "discovery"}


def _incident(identities: list[str], findings: list[dict], pivots: list[str] | None = None) -> dict:
    return {"id": "inc-0123456789abcdef", "severity": "critical", "identities": identities, "pivots": pivots or [],
            "findings": findings, "finding_ids": [f["id"] for f in findings], "links": [], "tactics": ["discovery"],
            "first_seen": "2026-03-01T12:00:00Z", "last_seen": "2026-03-01T12:00:00Z"}


def test_a_playbook_skips_aws_managed_roles_and_identities_without_their_own_alert(tmp_path):
    low_only = f"arn:aws:iam::{ACCOUNT}:user/okta"  # joined, with nothing above low of its own
    pivot = f"arn:aws:iam::{ACCOUNT}:user/ci-key"  # only handed out credentials
    subject = "token.actions.githubusercontent.com:repo:acme/app:ref:refs/heads/main"
    identities = [ORDINARY, *MANAGED.values(), low_only, pivot, subject]
    findings = [_finding(arn) for arn in (ORDINARY, *MANAGED.values(), subject)] + [_finding(low_only, "low")]
    with Store(tmp_path / "home") as store:
        proposals = plan_incident(store, _incident(identities, findings, [pivot]))
        allowed = plan_incident(store, _incident(identities, findings, [pivot]), allow_org_access=True)
    by_identity: dict[str, list] = {}
    for p in proposals:
        by_identity.setdefault(p.identity, []).append(p)
    assert set(by_identity) == set(identities)  # nobody silently dropped
    for what, arn in MANAGED.items():
        (only,) = by_identity[arn]
        assert only.kind == "skip" and only.plan is None and only.skipped.startswith("AWS-managed: "), what
        assert only.refused == f"skipped: {only.skipped}" and only.to_dict()["skipped"] == only.skipped
        assert only.account == ACCOUNT
    for arn, reason in ((low_only, "no medium+ finding of its own"), (pivot, "handed out credentials"),
                        (subject, "not an IAM user or role")):
        (only,) = by_identity[arn]
        assert only.kind == "skip" and reason in only.skipped, (arn, only.skipped)
    assert {p.kind for p in by_identity[ORDINARY]} == {"revoke-sessions", "quarantine"}
    assert all(p.plan and p.plan.calls and p.refused is None for p in by_identity[ORDINARY])
    # allowed explicitly, the Organizations access role is acted on like any role; the rest stay skipped
    acted = {p.identity for p in allowed if p.plan is not None and p.plan.calls}
    assert acted == {ORDINARY, ORG_ACCESS}


def test_automatic_mode_never_runs_on_managed_roles_and_honours_the_org_access_flag(tmp_path):
    from nhiwatch.respond.service import auto_respond

    identities = [ORDINARY, *MANAGED.values()]
    incident = _incident(identities, [_finding(arn) for arn in identities])
    incident.update(score=90, status="open", accounts=[ACCOUNT])
    everything = '[[allow]]\nactions = ["revoke-sessions", "quarantine"]\nmin_severity = "low"\n'
    for allow_flag in (False, True):
        policy_file = tmp_path / f"policy-{allow_flag}.toml"
        policy_file.write_text(f"allow_organization_access_role = {str(allow_flag).lower()}\n" + everything)
        with Store(tmp_path / f"home-{allow_flag}") as store:
            for f in incident["findings"]:
                store.con.execute("""INSERT INTO findings (id, detector, severity, score, identity, account_id,
                                     first_seen, last_seen, status, finding)
                                     VALUES (?, ?, ?, 70, ?, ?, ?, ?, 'open', ?)""",
                                  [f["id"], f["detector"], f["severity"], f["identity"]["arn"], ACCOUNT,
                                   f["first_seen"], f["last_seen"], json.dumps(f)])
            save_incidents(store, [{k: v for k, v in incident.items() if k != "findings"}])
            decisions = [d.to_dict() for d in auto_respond(store, load_policy(policy_file), responder=None).decisions]
        would_run = {d["identity"] for d in decisions if d["allowed"] and not d["skipped"]}
        assert would_run == ({ORDINARY, ORG_ACCESS} if allow_flag else {ORDINARY})
        for d in decisions:
            if d["identity"] not in would_run:
                assert d["action"] == "skip" and d["skipped"].startswith("skipped: AWS-managed: ")


def test_the_org_access_flag_in_the_policy_file_is_validated(tmp_path):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text("allow_organization_access_role = true\n")
    assert load_policy(policy_file).allow_organization_access_role is True
    policy_file.write_text('protected = []\n')
    assert load_policy(policy_file).allow_organization_access_role is False
    policy_file.write_text('allow_organization_access_role = "yes"\n')
    with pytest.raises(PolicyError, match="true or false"):
        load_policy(policy_file)


def test_every_printed_command_names_its_account():
    role = Target.from_arn(f"arn:aws:iam::{ACCOUNT}:role/app-role", "AROAEXAMPLEROLEID000")
    user = Target.from_arn("arn:aws:iam::444455556666:user/svc-bot")
    options = {"key": "AKIAZ3HQ7MW2XK5PRT4N", "session": "s-1", "cidrs": ["203.0.113.0/24"],
               "subjects": ["repo:acme/app:ref:refs/heads/main"],
               "trust": _trust({"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}"},
                               "sts:AssumeRoleWithWebIdentity")}
    before = {"policy": "{}", "status": "Active", "login_profile": True, "attached": False, "trust": options["trust"]}
    printed = 0
    for action in ACTIONS.values():
        for target in (role, user):
            try:
                plan = action.plan(target, options)
            except ActionError:
                continue
            for call in plan.calls + action.undo(plan, before, plan.calls):
                for shown in (call, call.redacted(), Call.from_dict(call.to_dict())):
                    assert shown.account == target.account_id
                    assert shown.cli().endswith(f"  # account {target.account_id}"), shown.cli()
                    printed += 1
    assert printed >= 30
    assert Call("iam", "get_role", {"RoleName": "x"}).cli().endswith("# account UNKNOWN: check before running")


def test_the_command_line_refuses_an_identity_center_role_even_in_a_dry_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "nhiwatch", "respond", "run", "quarantine", "--identity",
                           MANAGED["Identity Center"], "--home", str(tmp_path / "home"), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Identity Center" in done.stdout + done.stderr

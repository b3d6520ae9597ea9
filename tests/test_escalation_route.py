"""The runtime link between the principal graph and detection (detect/routes.py and the
escalation-route-walked detector): which principal a call acts on, which hop of a route it takes, and the
order a route's hops must come in. The detector's end-to-end cases (CloudTrail through an inventory) run in
test_detector_cases.py."""

from __future__ import annotations

import json

from nhiwatch.detect.detectors.base import IdentityInfo
from nhiwatch.detect.engine import Context, step
from nhiwatch.detect.profile import Ev, Profile
from nhiwatch.detect.routes import (WALK_APIS, Principal, PrincipalIndex, Target, canonical_api, compile_walks,
                                    hop_matches, targets_of)
from nhiwatch.inventory.methods import BY_ID

ACCOUNT = "111122223333"
CALLER = f"arn:aws:iam::{ACCOUNT}:user/ci-deploy"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/batch-admin"
OPS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ops-role"
ADMIN_USER = f"arn:aws:iam::{ACCOUNT}:user/break-glass"

INDEX = PrincipalIndex([
    Principal(ADMIN_ROLE, "role", ACCOUNT, True, None, ("batch-admin-profile",)),
    Principal(ADMIN_USER, "user", ACCOUNT, True, None),
    Principal(OPS_ROLE, "role", ACCOUNT, False, None),
    Principal(CALLER, "user", ACCOUNT, False, None),
])


def test_lambda_event_names_carry_a_version_the_walk_ignores():
    assert canonical_api("lambda:CreateFunction20150331") == "lambda:CreateFunction"
    assert canonical_api("lambda:AddPermission20150331v2") == "lambda:AddPermission"
    assert canonical_api("s3:GetObject") == "s3:GetObject"
    assert "lambda:CreateFunction" in WALK_APIS and "iam:PassRole" not in WALK_APIS


def test_the_role_a_create_call_hands_over_is_found_however_the_service_names_it():
    def roles(api: str, params: dict) -> list[str]:
        return [t.ref for t in targets_of(api, json.dumps(params), None, CALLER, ACCOUNT, INDEX)]

    # Lambda names the role by ARN; EC2 by instance profile (name or ARN); Glue jobs by name
    assert roles("lambda:CreateFunction", {"functionName": "f", "role": ADMIN_ROLE}) == [ADMIN_ROLE]
    assert roles("ec2:RunInstances", {"instancesSet": {}, "iamInstanceProfile": {"name": "batch-admin-profile"}}) \
        == [ADMIN_ROLE]
    assert roles("ec2:AssociateIamInstanceProfile", {"iamInstanceProfile": {
        "arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/batch-admin-profile"}}) == [ADMIN_ROLE]
    assert roles("glue:CreateJob", {"name": "j", "role": "batch-admin"}) == [ADMIN_ROLE]
    # the task role is what the code runs as; ECS's execution role is the agent's
    assert roles("ecs:RegisterTaskDefinition", {"family": "x", "executionRoleArn": ADMIN_ROLE}) == []
    assert roles("ecs:RegisterTaskDefinition", {"family": "x", "taskRoleArn": ADMIN_ROLE,
                                                "containerDefinitions": [{"name": "c"}]}) == [ADMIN_ROLE]
    # an unknown role is still named (by what the call said), only not as a known principal
    found = targets_of("lambda:CreateFunction", json.dumps({"role": f"arn:aws:iam::{ACCOUNT}:role/other"}), None,
                       CALLER, ACCOUNT, INDEX)
    assert found == [Target("role", f"arn:aws:iam::{ACCOUNT}:role/other", None)]


def test_iam_calls_act_on_the_principal_they_name_or_on_the_caller():
    made = targets_of("iam:CreateAccessKey", json.dumps({"userName": "break-glass"}), None, CALLER, ACCOUNT, INDEX)
    assert [(t.kind, t.ref, t.principal is not None) for t in made] == [("user", ADMIN_USER, True)]
    own = targets_of("iam:CreateAccessKey", "{}", None, CALLER, ACCOUNT, INDEX)
    assert [t.ref for t in own] == [CALLER]
    assumed = targets_of("sts:AssumeRole", None, ADMIN_ROLE, CALLER, ACCOUNT, INDEX)
    assert assumed[0].principal is INDEX.by_arn[ADMIN_ROLE]
    # attacker-written parameters that are not JSON objects name nothing
    assert targets_of("iam:PutRolePolicy", "[1, 2]", None, CALLER, ACCOUNT, INDEX) == []
    assert targets_of("iam:PutRolePolicy", "not json", None, CALLER, ACCOUNT, INDEX) == []


def test_existing_functions_and_instances_are_taken_over_with_the_role_they_run_as():
    index = PrincipalIndex(INDEX.by_arn.values())
    index.runs_as = {(ACCOUNT, "function", "billing"): ADMIN_ROLE, (ACCOUNT, "instance", "i-0abc"): OPS_ROLE}

    def roles(api: str, params: dict) -> list[str]:
        return [t.ref for t in targets_of(api, json.dumps(params), None, CALLER, ACCOUNT, index)]

    assert roles("lambda:UpdateFunctionCode", {"functionName": "billing"}) == [ADMIN_ROLE]
    assert roles("lambda:UpdateFunctionCode", {
        "functionName": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:billing:live"}) == [ADMIN_ROLE]
    assert roles("ssm:SendCommand", {"instanceIds": ["i-0abc", "i-0unknown"], "documentName": "AWS-RunShellScript"}) \
        == [OPS_ROLE]
    assert roles("ssm:StartSession", {"target": "i-0abc"}) == [OPS_ROLE]
    # user data runs as the instance's role at the next boot; other attributes do not
    assert roles("ec2:ModifyInstanceAttribute", {"instanceId": "i-0abc", "userData": "<sensitiveDataRemoved>"}) \
        == [OPS_ROLE]
    assert roles("ec2:ModifyInstanceAttribute", {"instanceId": "i-0abc", "instanceType": {"value": "m5.large"}}) == []
    assert roles("lambda:UpdateFunctionCode", {"functionName": "unknown"}) == []


def _route(*hops: tuple[str, str, str], subject: str = "") -> dict:
    return {"methods": [h[2] for h in hops], "admin": hops[-1][1], "conditional": False,
            "hops": [{"from": f, "to": t, "method": m, **({"subject": subject} if subject else {})} for f, t, m in hops]}


def test_only_the_hops_the_identity_makes_itself_are_its_walk():
    chain = _route((CALLER, OPS_ROLE, "sts-001"), (OPS_ROLE, OPS_ROLE, "iam-005"))
    combo = _route((CALLER, OPS_ROLE, "iam-009"), (CALLER, OPS_ROLE, "sts-001"))
    walks = compile_walks(CALLER, [chain, combo])
    assert [len(w.hops) for w in walks] == [1, 2]
    assert [w.whole for w in walks] == [False, True]
    # a hop on an existing build project names no role in its event (nor do the events say which role runs
    # it): no walk starts with it; a function's code does, once the events say which role runs the function
    assert compile_walks(CALLER, [_route((CALLER, OPS_ROLE, "codebuild-002"))]) == ()
    assert len(compile_walks(CALLER, [_route((CALLER, OPS_ROLE, "lambda-003"))])) == 1
    # someone else's route (a group's, through another member) is not this identity's
    assert compile_walks(CALLER, [dict(chain, via_member=ADMIN_USER)]) == ()


def test_a_hop_matches_its_targeting_step_on_its_principal_group_or_policy():
    group_hop = compile_walks(CALLER, [_route((CALLER, CALLER, "iam-011"),
                                              subject=f"arn:aws:iam::{ACCOUNT}:group/deployers")])[0].hops[0]
    assert hop_matches(group_hop, "iam:PutGroupPolicy", Target("group", "deployers", None), CALLER)
    assert not hop_matches(group_hop, "iam:PutGroupPolicy", Target("group", "admins", None), CALLER)
    assert not hop_matches(group_hop, "iam:PutUserPolicy", Target("group", "deployers", None), CALLER)
    foothold = compile_walks(CALLER, [_route((CALLER, f"arn:aws:iam::{ACCOUNT}:role/*", "iam-005"))])[0].hops[0]
    assert hop_matches(foothold, "iam:PutRolePolicy", Target("role", OPS_ROLE, INDEX.by_arn[OPS_ROLE]), CALLER)
    assert not hop_matches(foothold, "iam:PutRolePolicy", Target("user", ADMIN_USER, None), CALLER)
    assert BY_ID["iam-013"].edge == "join"
    join = compile_walks(CALLER, [_route((CALLER, f"arn:aws:iam::{ACCOUNT}:group/admins", "iam-013"),
                                         subject=CALLER)])[0].hops[0]
    assert hop_matches(join, "iam:AddUserToGroup", Target("group", "admins", None), CALLER)


def _ev(t_s: int, api: str, params: dict | None = None, assumed: str | None = None, ip: str = "203.0.113.7") -> Ev:
    return Ev(CALLER, False, t_s * 1_000_000, f"u{t_s}{api}", f"e{t_s}{api}", api, api.split(":")[1], "us-east-1",
              ACCOUNT, ip, "public", None, "Boto3/1.28.57 md/Botocore#1.31.57", None, None, None, "AKIAEXAMPLE",
              CALLER, "IAMUser", assumed, None, json.dumps(params) if params is not None else None, None)


def _walked(events: list[Ev]) -> list[tuple[str, int, bool]]:
    combo = _route((CALLER, OPS_ROLE, "iam-009"), (CALLER, OPS_ROLE, "sts-001"))
    info = IdentityInfo(CALLER, "user", "non-human", 40, "medium", ACCOUNT, routes=(combo,))
    profile = Profile()
    findings = step(profile, events, Context(info, principals=INDEX))
    return [(f.severity, f.evidence["hop"], f.evidence["completes"]) for f in findings
            if f.detector == "escalation-route-walked"]


ATTACH_ADMIN = {"roleName": "ops-role", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}


def test_a_combined_route_is_walked_hop_after_hop_in_the_window():
    # attach AdministratorAccess to ops-role, then assume it a minute later: both hops, the second completing
    # the route (a continuation of the page the first raised from the same place: low, not a second page)
    assert _walked([_ev(0, "iam:AttachRolePolicy", ATTACH_ADMIN), _ev(60, "sts:AssumeRole", assumed=OPS_ROLE)]) \
        == [("high", 0, False), ("low", 1, True)]


def test_assuming_the_role_alone_or_long_after_the_write_is_not_the_route():
    assert _walked([_ev(0, "sts:AssumeRole", assumed=OPS_ROLE)]) == []
    late = _walked([_ev(0, "iam:AttachRolePolicy", ATTACH_ADMIN), _ev(3600, "sts:AssumeRole", assumed=OPS_ROLE)])
    assert late == [("high", 0, False)]


def test_a_write_that_grants_little_does_not_take_the_write_hop():
    scoped = {"roleName": "ops-role", "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/read-queues"}
    assert _walked([_ev(0, "iam:AttachRolePolicy", scoped), _ev(60, "sts:AssumeRole", assumed=OPS_ROLE)]) == []


def test_a_failed_call_takes_no_hop():
    denied = _ev(0, "iam:AttachRolePolicy", ATTACH_ADMIN)._replace(error="AccessDenied")
    assert _walked([denied]) == []


def test_a_combined_route_stands_for_every_principal_that_serves_the_same():
    # the graph keeps one route per method (through ops-role); the attacker writes on another role of the
    # account, one the caller may take over the same way: the same route walked
    other = {"roleName": "batch-admin", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}
    assert _walked([_ev(0, "iam:AttachRolePolicy", other)]) == [("high", 0, False)]
    # a role of another account is not one the route could use
    far = targets_of("iam:AttachRolePolicy", json.dumps({"roleName": "x"}), None, CALLER, "999988887777", INDEX)
    hop = compile_walks(CALLER, [_route((CALLER, OPS_ROLE, "iam-009"), (CALLER, OPS_ROLE, "sts-001"))])[0].hops[0]
    assert hop.loose and not hop_matches(hop, "iam:AttachRolePolicy", far[0], CALLER)
    # a mint names its principal: a key for another user than the route's admin is not the route
    mint = compile_walks(CALLER, [_route((CALLER, ADMIN_USER, "iam-002"))])[0].hops[0]
    assert not mint.loose
    assert not hop_matches(mint, "iam:CreateAccessKey", Target("user", f"arn:aws:iam::{ACCOUNT}:user/intern", None),
                           CALLER)

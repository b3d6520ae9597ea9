"""The principal graph on small hand-made accounts: each edge's two sides, conditions, Deny and
boundaries, writes followed by acts, groups, and the method catalogue against pathfinding.cloud."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import pathfinding_fixtures as pf
from nhiwatch.inventory.graph import POSSIBLE, SURE, PrincipalGraph, escalation_capabilities
from nhiwatch.inventory.methods import ALIASES, BY_ID, METHODS, method

ACCOUNT = "123456789012"
AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
FULL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"


def allow(action, resource="*", condition=None, effect="Allow") -> dict:
    statement = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def doc(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def user(name, *statements, groups=(), managed=(), boundary=None, tags=None) -> dict:
    entry = {"UserName": name, "Arn": arn("user", name), "UserId": "AIDA" + name.upper(), "Path": "/",
             "GroupList": list(groups), "AttachedManagedPolicies": [{"PolicyArn": m} for m in managed],
             "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": doc(*statements)}] if statements else [],
             "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
    if boundary:
        entry["PermissionsBoundary"] = {"PermissionsBoundaryArn": boundary}
    return entry


def role(name, trust, *statements, managed=(), profile=False) -> dict:
    return {"RoleName": name, "Arn": arn("role", name), "RoleId": "AROA" + name.upper(), "Path": "/",
            "AssumeRolePolicyDocument": trust, "AttachedManagedPolicies": [{"PolicyArn": m} for m in managed],
            "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": doc(*statements)}] if statements else [],
            "InstanceProfileList": [{"InstanceProfileName": name}] if profile else [], "Tags": []}


def trusts(principal: dict, condition=None) -> dict:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return doc(statement)


def policy(name, document) -> dict:
    return {"PolicyName": name, "Arn": arn("policy", name), "DefaultVersionId": "v1",
            "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": True, "Document": document}]}


def graph(users=(), roles=(), groups=(), policies=(), reports=()) -> PrincipalGraph:
    payload = {"UserDetailList": list(users), "RoleDetailList": list(roles), "GroupDetailList": list(groups),
               "Policies": [policy("admin-policy", FULL), *policies]}
    return PrincipalGraph.build({ACCOUNT: payload}, {ACCOUNT: list(reports)}, known_policies={ADMIN: FULL},
                                as_of=AS_OF)


ADMIN_ROLE_TRUSTING_ACCOUNT = role("ops-admin", trusts({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), managed=(ADMIN,))


def methods_of(g: PrincipalGraph, name: str, kind: str = "user", mode: str = SURE) -> list[tuple[str, ...]]:
    return [r.methods for r in g.routes(arn(kind, name), mode)]


# -- the catalogue ------------------------------------------------------------------------------------


def test_every_catalogue_path_is_a_method_with_its_permissions():
    catalogue = pf.load_paths()
    ours = {m.id: m for m in METHODS if m.catalogue}
    assert set(ours) == set(catalogue)
    for path_id, path in catalogue.items():
        assert {a.lower() for a in ours[path_id].actions} == {a.lower() for a in path.required}, path_id
        assert ours[path_id].category == path.category, path_id


def test_earlier_method_names_are_aliases():
    assert method("CreateAccessKey").id == "iam-002" and method("PassRoleToNewLambdaThenInvoke").id == "lambda-001"
    assert all(alias not in BY_ID for alias in ALIASES)


# -- assume: both sides -------------------------------------------------------------------------------


def test_assume_role_needs_the_permission_when_the_trust_names_the_account():
    g = graph([user("with", allow("sts:AssumeRole", arn("role", "ops-*"))), user("without")],
              [ADMIN_ROLE_TRUSTING_ACCOUNT])
    assert methods_of(g, "with") == [("sts-001",)]
    assert methods_of(g, "without") == []


def test_a_trust_naming_the_role_needs_no_permission_and_chains_are_followed():
    g = graph(roles=[role("start", trusts({"Service": "lambda.amazonaws.com"})),
                     role("middle", trusts({"AWS": arn("role", "start")})),
                     role("end", trusts({"AWS": arn("role", "middle")}), managed=(ADMIN,))])
    route = g.route(arn("role", "start"))
    assert route is not None and [h.target for h in route.hops] == [arn("role", "middle"), arn("role", "end")]
    assert route.methods == ("sts-001", "sts-001") and not route.conditional


def test_a_trust_condition_the_caller_cannot_meet():
    mfa_admin = role("mfa-admin", trusts({"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                         {"Bool": {"aws:MultiFactorAuthPresent": "true"}}), managed=(ADMIN,))
    g = graph([user("person", allow("sts:AssumeRole"))],
              [mfa_admin, role("lambda-job", trusts({"Service": "lambda.amazonaws.com"}), allow("sts:AssumeRole"))])
    # a user may have MFA (undecided: conditional); a role only Lambda assumes never has it
    assert methods_of(g, "person") == [] and methods_of(g, "person", mode=POSSIBLE) == [("sts-001",)]
    assert methods_of(g, "lambda-job", "role", POSSIBLE) == []


# -- resource-scoped grants, conditions, Deny, boundaries -----------------------------------------------


def test_passrole_scoped_to_the_target_and_passed_to_service():
    passer = [allow("iam:PassRole", arn("role", "fn-admin"),
                    {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}),
              allow(["lambda:CreateFunction", "lambda:InvokeFunction"], "arn:aws:lambda:*:*:function:app-*")]
    wrong_service = [allow("iam:PassRole", arn("role", "fn-admin"),
                           {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}), passer[1]]
    g = graph([user("deployer", *passer), user("other", *wrong_service)],
              [role("fn-admin", trusts({"Service": "lambda.amazonaws.com"}), managed=(ADMIN,))])
    route = g.route(arn("user", "deployer"))
    assert route is not None and route.methods == ("lambda-001",)
    resources = {c.action: c.resource for c in route.hops[0].checks}
    assert resources["iam:PassRole"] == arn("role", "fn-admin")
    assert resources["lambda:CreateFunction"] == "arn:aws:lambda:*:*:function:app-*"
    assert g.route(arn("user", "other"), POSSIBLE) is None


def test_an_undecidable_condition_makes_the_route_conditional():
    g = graph([user("ci", allow("iam:PutUserPolicy", arn("user", "ci"),
                                {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))])
    caps = escalation_capabilities(g, arn("user", "ci"))
    assert caps["privesc"] == [] and caps["privesc_conditional"] == ["iam-007"]
    assert caps["privesc_route"]["conditional"]
    assert "aws:SourceIp" in caps["privesc_route"]["hops"][0]["checks"][0]["undecided"]


def test_deny_and_boundary_cut_edges():
    boundary = policy("no-iam", doc(allow("s3:*")))
    g = graph([user("denied", allow("iam:*"), allow("iam:CreateAccessKey", effect="Deny")),
               user("bounded", allow("iam:CreateAccessKey"), boundary=boundary["Arn"]),
               user("free", allow("iam:CreateAccessKey")),
               user("root-like", managed=(ADMIN,))], policies=[boundary])
    assert "iam-002" not in [m[0] for m in methods_of(g, "denied")]
    assert methods_of(g, "bounded") == []
    assert methods_of(g, "free") == [("iam-002",)]


def test_policy_variables_resolve_to_the_caller():
    own = allow("iam:PutUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}")
    g = graph([user("self-service", own), user("target-admin", managed=(ADMIN,))])
    assert methods_of(g, "self-service") == [("iam-007",)]
    route = g.route(arn("user", "self-service"))
    assert route is not None and route.hops[0].target == arn("user", "self-service")


# -- writes, mints, groups -----------------------------------------------------------------------------


def test_a_write_then_an_act_on_the_same_user_is_the_combined_path():
    target = arn("user", "reports-bot")
    g = graph([user("ops", allow(["iam:AttachUserPolicy", "iam:CreateAccessKey"], target)), user("reports-bot")])
    route = g.route(arn("user", "ops"))
    assert route is not None and route.methods == ("iam-015",)
    assert [h.method for h in route.hops] == ["iam-008", "iam-002"]
    assert route.hops[0].checks[0].resource == target


def test_a_write_on_a_principal_it_cannot_act_as_is_no_escalation():
    g = graph(roles=[role("writer", trusts({"Service": "lambda.amazonaws.com"}),
                          allow("iam:AttachRolePolicy", arn("role", "batch"))),
                     role("batch", trusts({"Service": "ec2.amazonaws.com"}))])
    assert g.route(arn("role", "writer"), POSSIBLE) is None


def test_two_keys_need_a_delete_first():
    admin = user("legacy", managed=(ADMIN,))
    report = [{"arn": arn("user", "legacy"), "access_key_1_active": "true", "access_key_2_active": "true",
               "password_enabled": "false"}]
    g = graph([admin, user("create-only", allow("iam:CreateAccessKey", arn("user", "legacy"))),
               user("rotator", allow(["iam:CreateAccessKey", "iam:DeleteAccessKey"], arn("user", "legacy")))],
              reports=report)
    assert methods_of(g, "create-only") == []
    assert methods_of(g, "rotator") == [("iam-003",)]


def test_groups_stand_for_their_members_and_joining_an_admin_group():
    admins = {"GroupName": "admins", "Arn": arn("group", "admins"), "GroupPolicyList": [],
              "AttachedManagedPolicies": [{"PolicyArn": ADMIN}]}
    empty = {"GroupName": "writers", "Arn": arn("group", "writers"), "GroupPolicyList": [],
             "AttachedManagedPolicies": []}
    g = graph([user("joiner", allow("iam:AddUserToGroup", arn("group", "admins"))),
               user("writer", allow("iam:PutGroupPolicy"), groups=("writers",))], groups=[admins, empty])
    assert g.is_admin(arn("group", "admins"))
    assert methods_of(g, "joiner") == [("iam-013",)]
    caps = escalation_capabilities(g, arn("group", "writers"))
    assert caps["privesc"] == ["iam-011"] and caps["privesc_route"]["via_member"] == arn("user", "writer")


def test_existing_resources_of_a_service_may_run_as_any_role_trusting_it():
    g = graph([user("dev", allow("lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:123456789012:function:sync")),
               user("sandbox", allow(["lambda:CreateFunction", "lambda:UpdateFunctionCode"],
                                     "arn:aws:lambda:*:*:function:sandbox-*"))],
              [role("sync-exec", trusts({"Service": "lambda.amazonaws.com"}), managed=(ADMIN,))])
    route = g.route(arn("user", "dev"))
    assert route is not None and route.methods == ("lambda-003",) and "may run as sync-exec" in route.hops[0].note
    # functions under a name pattern it may create itself are taken to be its own
    assert g.route(arn("user", "sandbox"), POSSIBLE) is None


@pytest.mark.parametrize("kind", ["user", "role"])
def test_an_admin_has_no_route(kind):
    g = graph([user("admin", managed=(ADMIN,))], [role("admin", trusts({"Service": "ec2.amazonaws.com"}),
                                                       managed=(ADMIN,))])
    assert g.is_admin(arn(kind, "admin")) and g.routes(arn(kind, "admin")) == []
    assert escalation_capabilities(g, arn(kind, "admin"))["admin"] == ["managed AdministratorAccess"]


def test_odd_exports_still_build():
    """Entries without names, trust policies that are not policies, garbage in lists: the graph builds
    and judges what it can read."""
    nameless = user("x", allow("iam:PutUserPolicy", arn("user", "x")), groups=("missing", 5))
    del nameless["UserName"]
    odd_roles = [role("r1", "not json"), role("r2", {"Statement": "garbage"}),
                 role("r3", {"Statement": [{"Effect": "Allow", "Principal": ["x"], "Action": "sts:AssumeRole"}]})]
    del odd_roles[0]["RoleName"]
    group = {"Arn": arn("group", "g"), "GroupPolicyList": [], "AttachedManagedPolicies": [{"PolicyArn": None}, "x"]}
    g = graph([nameless], odd_roles, [group])
    assert g.nodes[arn("user", "x")].name == "x" and g.nodes[arn("role", "r1")].name == "r1"
    assert methods_of(g, "x") == [("iam-007",)]

"""The IAM authorization evaluator against AWS's documented evaluation logic, and on the IAM Vulnerable
account (Cloudsplaining's example export)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from nhiwatch.inventory.evaluate import (Decision, IdentityPolicies, Organization, Principal, Request, Resource,
                                         Verdict, compile_policy, evaluate, load_authorization_details)
from nhiwatch.inventory.policy import PermissionSet, PolicyError, statements_of

from conftest import SHARED_DATA

ACCOUNT = "111122223333"
OTHER = "444455556666"
EXAMPLE = SHARED_DATA / "iam" / "cloudsplaining" / "example.json"
VULNERABLE = "200611803367"
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)

ALLOWED, DENIED, CONDITIONAL, IMPLICIT = (Verdict.ALLOWED, Verdict.DENIED, Verdict.CONDITIONAL,
                                          Verdict.IMPLICIT_DENY)


def doc(*statements: dict, version: str = "2012-10-17") -> dict:
    return {"Version": version, "Statement": list(statements)}


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def user(name: str = "alice", account: str = ACCOUNT, **facts) -> Principal:
    return Principal.user(f"arn:aws:iam::{account}:user/{name}", unique_id="AIDAEXAMPLE", **facts)


def role(name: str = "app", account: str = ACCOUNT, **facts) -> Principal:
    return Principal.role(f"arn:aws:iam::{account}:role/{name}", unique_id="AROAEXAMPLE", **facts)


def check(principal: Principal, identity: list | None, action: str, resource: Resource | str = "*",
          context: dict | None = None, *, boundary=None, session=None, org=None, **request) -> Decision:
    policies = IdentityPolicies([("identity", d) for d in identity or []],
                                ("boundary", boundary) if boundary else None,
                                [("session", s) for s in session] if session is not None else None)
    return evaluate(Request(principal, action, resource, context, **request), policies, org)


def verdict(*args, **kwargs) -> Verdict:
    return check(*args, **kwargs).verdict


# -- actions ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,action,expected", [
    ("iam:GetUser", "iam:getuser", True),           # action names are case-insensitive
    ("IAM:Get*", "iam:GetUser", True),
    ("iam:?etUser", "iam:GetUser", True),
    ("iam:?etUser", "iam:SetsUser", False),
    ("iam:*AccessKey*", "iam:CreateAccessKey", True),
    ("iam:*AccessKey*", "iam:CreateUser", False),
    ("s3:*", "s3express:CreateSession", False),     # a wildcard never crosses the service prefix boundary
    ("*", "anything:AtAll", True),
])
def test_action_matching(pattern, action, expected):
    assert (verdict(user(), [doc(allow(pattern))], action) is ALLOWED) == expected


def test_not_action_allows_everything_else():
    policy = doc({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"})
    assert verdict(user(), [policy], "s3:GetObject", "arn:aws:s3:::b/k") is ALLOWED
    assert verdict(user(), [policy], "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x") is IMPLICIT


# -- resources -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,arn,expected", [
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c.txt", True),        # `*` crosses `/`
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
    ("arn:aws:s3:::*log*", "arn:aws:s3:::carlos-logs", True),
    (f"arn:aws:iam::{ACCOUNT}:user/accounting/*", f"arn:aws:iam::{ACCOUNT}:user/accounting/bob", True),
    (f"arn:aws:iam::{ACCOUNT}:user/Bob", f"arn:aws:iam::{ACCOUNT}:user/bob", False),  # case-sensitive
    ("arn:aws:iam::*:role/*", f"arn:aws:iam::{ACCOUNT}:role/service/app", True),
    ("arn:aws:sqs:us-e*1:*:queue1", f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue1", True),
    ("arn:aws:sqs:us-e?st-1:*:queue1", f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue1", True),
    # inside a segment `*` stays within it; a `*` ending a segment may expand beyond the colons
    ("arn:aws:sqs:us*2:queue1", f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue1", False),
    ("arn:aws:sqs:*", f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue1", True),
    ("arn:aws:lambda:us-east-1:*:function:app*", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:app:live", True),
    (f"arn:aws:iam::{ACCOUNT}:role/*", "*", False),  # a request without a resource ARN needs Resource "*"
])
def test_resource_matching(pattern, arn, expected):
    assert (verdict(user(), [doc(allow("svc:Act", pattern))], "svc:Act", arn) is ALLOWED) == expected


def test_not_resource_in_a_deny():
    # AWS's example: deny everything in S3 except the HR payroll folder
    policy = doc(allow("s3:*"), {"Effect": "Deny", "Action": "s3:*",
                                 "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]})
    assert verdict(user(), [policy], "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/jan.csv") is ALLOWED
    assert verdict(user(), [policy], "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x") is DENIED


def test_not_resource_in_an_allow():
    policy = doc({"Effect": "Allow", "Action": "iam:*", "NotResource": f"arn:aws:iam::{ACCOUNT}:role/admin"})
    assert verdict(user(), [policy], "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app") is ALLOWED
    assert verdict(user(), [policy], "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin") is IMPLICIT


# -- policy variables ------------------------------------------------------------------------------------

OWN_KEYS = doc(allow("iam:*AccessKey*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"))


def test_username_variable():
    assert verdict(user("david"), [OWN_KEYS], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/david") is ALLOWED
    assert verdict(user("david"), [OWN_KEYS], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/admin") is IMPLICIT
    # a role session has no aws:username: the statement cannot match
    assert verdict(role("david"), [OWN_KEYS], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/david") is IMPLICIT


def test_variable_of_an_unknown_principal_is_undecided_but_only_where_it_could_match():
    member = Principal.group_member(f"arn:aws:iam::{ACCOUNT}:group/devs")
    d = check(member, [OWN_KEYS], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/anyone")
    assert d.verdict is CONDITIONAL and d.undecided == {"aws:username"}
    assert verdict(member, [OWN_KEYS], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:role/x") is IMPLICIT


def test_variables_need_the_2012_version():
    old = doc(allow("iam:*AccessKey*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"), version="2008-10-17")
    assert verdict(user("david"), [old], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/david") is IMPLICIT
    assert verdict(user("david"), [old], "iam:CreateAccessKey",
                   f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}") is ALLOWED


def test_principal_tag_account_and_userid_variables():
    bucket = doc(allow("s3:*", "arn:aws:s3:::bucket/${aws:PrincipalTag/department}/*"),
                 allow("sqs:*", "arn:aws:sqs:*:${aws:PrincipalAccount}:*"),
                 allow("s3:PutObject", "arn:aws:s3:::home/${aws:userid}/*"))
    hr = user(tags={"Department": "hr"})  # tag keys are case-insensitive in policies
    assert verdict(hr, [bucket], "s3:GetObject", "arn:aws:s3:::bucket/hr/x") is ALLOWED
    assert verdict(hr, [bucket], "s3:GetObject", "arn:aws:s3:::bucket/finance/x") is IMPLICIT
    assert verdict(user(tags={}), [bucket], "s3:GetObject", "arn:aws:s3:::bucket/hr/x") is IMPLICIT
    d = check(user(), [bucket], "s3:GetObject", "arn:aws:s3:::bucket/hr/x")  # tags not known
    assert d.verdict is CONDITIONAL and d.undecided == {"aws:PrincipalTag/department"}
    assert verdict(hr, [bucket], "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:q") is ALLOWED
    assert verdict(hr, [bucket], "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{OTHER}:q") is IMPLICIT
    # a session's tags are all known only when its session tags are
    tagged = doc(allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:PrincipalTag/department}/*"))
    assert verdict(role(tags={}), [tagged], "s3:GetObject", "arn:aws:s3:::bucket/hr/x") is CONDITIONAL
    assert verdict(role(tags={}, session_tags={}), [tagged], "s3:GetObject", "arn:aws:s3:::bucket/hr/x") is IMPLICIT
    assert verdict(role(tags={"department": "it"}, session_tags={"department": "hr"}), [tagged], "s3:GetObject",
                   "arn:aws:s3:::bucket/hr/x") is ALLOWED   # session tags override the role's
    session = role("app", session_name="job-7")
    assert verdict(session, [bucket], "s3:PutObject", "arn:aws:s3:::home/AROAEXAMPLE:job-7/f") is ALLOWED
    assert verdict(session, [bucket], "s3:PutObject", "arn:aws:s3:::home/AROAEXAMPLE:job-8/f") is IMPLICIT


def test_default_values_and_special_characters():
    policy = doc(allow("s3:GetObject", "arn:aws:s3:::shared/${aws:username, 'anonymous'}/*"),
                 allow("s3:PutObject", "arn:aws:s3:::literal/${*}${?}${$}"))
    assert verdict(role(), [policy], "s3:GetObject", "arn:aws:s3:::shared/anonymous/x") is ALLOWED
    assert verdict(user("bo"), [policy], "s3:GetObject", "arn:aws:s3:::shared/bo/x") is ALLOWED
    assert verdict(user("bo"), [policy], "s3:GetObject", "arn:aws:s3:::shared/anonymous/x") is IMPLICIT
    assert verdict(user(), [policy], "s3:PutObject", "arn:aws:s3:::literal/*?$") is ALLOWED
    assert verdict(user(), [policy], "s3:PutObject", "arn:aws:s3:::literal/ab$") is IMPLICIT


def test_variables_in_conditions():
    home = doc(allow("s3:ListBucket", "arn:aws:s3:::bucket",
                     Condition={"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}))
    assert verdict(user("carol"), [home], "s3:ListBucket", "arn:aws:s3:::bucket", {"s3:prefix": "home/carol/a"}) \
        is ALLOWED
    assert verdict(user("carol"), [home], "s3:ListBucket", "arn:aws:s3:::bucket", {"s3:prefix": "home/dan/"}) \
        is IMPLICIT
    assert verdict(user("carol"), [home], "s3:ListBucket", "arn:aws:s3:::bucket", {"s3:prefix": ""}) is ALLOWED


# -- conditions ------------------------------------------------------------------------------------------

def cond(block: dict, context: dict | None = None, principal: Principal | None = None, **request) -> Verdict:
    return verdict(principal or user(), [doc(allow("svc:Act", Condition=block))], "svc:Act", "*", context, **request)


def test_string_operators_and_case_rules():
    assert cond({"StringEquals": {"aws:username": "alice"}}) is ALLOWED
    assert cond({"StringEquals": {"AWS:UserName": "alice"}}) is ALLOWED       # key names: any case
    assert cond({"StringEquals": {"aws:username": "Alice"}}) is IMPLICIT      # values: case-sensitive
    assert cond({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}) is ALLOWED
    assert cond({"StringNotEquals": {"aws:username": ["bob", "carol"]}}) is ALLOWED
    assert cond({"StringNotEquals": {"aws:username": ["bob", "alice"]}}) is IMPLICIT  # NOT (a OR b)
    assert cond({"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}) is IMPLICIT
    assert cond({"StringLike": {"aws:username": "al*"}}) is ALLOWED
    assert cond({"StringLike": {"aws:username": "?lice"}}) is ALLOWED
    assert cond({"StringLike": {"aws:username": "b*"}}) is IMPLICIT
    assert cond({"StringNotLike": {"aws:username": "b*"}}) is ALLOWED


def test_missing_keys_follow_the_documented_rule():
    closed = {"closed": True}
    assert cond({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, **closed) is IMPLICIT
    assert cond({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, **closed) is ALLOWED  # negated: true
    assert cond({"StringNotLike": {"aws:SourceVpc": "vpc-*"}}, **closed) is ALLOWED
    assert cond({"ArnNotLike": {"aws:SourceArn": "arn:*"}}, **closed) is ALLOWED
    assert cond({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, **closed) is ALLOWED
    assert cond({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, **closed) is ALLOWED
    assert cond({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-2"}) is IMPLICIT
    assert cond({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-1"}) is ALLOWED
    # a key listed as absent is absent, one simply not given is unknown
    assert cond({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, absent=["AWS:SourceVpc"]) is IMPLICIT
    assert cond({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": None}) is IMPLICIT
    d = check(user(), [doc(allow("svc:Act", Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}}))], "svc:Act")
    assert d.verdict is CONDITIONAL and d.undecided == {"aws:SourceVpc"}


def test_numeric_date_bool_binary():
    assert cond({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": 10}) is ALLOWED
    assert cond({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}) is IMPLICIT
    assert cond({"NumericGreaterThan": {"s3:max-keys": "1.5"}}, {"s3:max-keys": "2"}) is ALLOWED
    assert cond({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}) is IMPLICIT
    assert cond({"NumericNotEquals": {"s3:max-keys": ["1", "2"]}}, {"s3:max-keys": "3"}) is ALLOWED
    window = {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"},
              "DateLessThan": {"aws:CurrentTime": "2026-12-31T23:59:59Z"}}
    assert cond(window, at=NOW) is ALLOWED
    assert cond(window, at=datetime(2027, 1, 2, tzinfo=timezone.utc)) is IMPLICIT
    assert cond({"DateLessThanEquals": {"aws:EpochTime": "1780272000"}}, at=NOW) is ALLOWED  # epoch form
    assert cond({"DateEquals": {"aws:CurrentTime": "2026-06-01"}}, at=NOW) is ALLOWED
    assert cond({"DateNotEquals": {"aws:CurrentTime": "2026-06-01"}}, at=NOW) is IMPLICIT
    assert cond({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}) is ALLOWED
    assert cond({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "TRUE"}) is IMPLICIT
    assert cond({"BinaryEquals": {"svc:Blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
                {"svc:Blob": b"BinaryValueInBase64"}) is ALLOWED
    assert cond({"BinaryEquals": {"svc:Blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}, {"svc:Blob": b"other"}) is IMPLICIT


def test_ip_address_operators():
    block = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64", "198.51.100.7"]}}
    assert cond(block, {"aws:SourceIp": "203.0.113.9"}) is ALLOWED
    assert cond(block, {"aws:SourceIp": "2001:db8:1234:5678::1"}) is ALLOWED
    assert cond(block, {"aws:SourceIp": "198.51.100.7"}) is ALLOWED   # no prefix means /32
    assert cond(block, {"aws:SourceIp": "198.51.100.8"}) is IMPLICIT
    assert cond(block, {"aws:SourceIp": "not-an-address"}) is IMPLICIT
    assert cond({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}) is IMPLICIT
    assert cond({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, principal=user(source_ip="192.0.2.1")) is ALLOWED


def test_arn_operators_match_component_by_component():
    pattern = f"arn:aws:someservice:*:{ACCOUNT}:finance/*"
    value = f"arn:aws:someservice:us-east-2:999999999999:store/abc:{ACCOUNT}:finance/document.txt"
    assert cond({"StringLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value}) is ALLOWED
    assert cond({"ArnLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value}) is IMPLICIT
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:topic"
    assert cond({"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:*:{ACCOUNT}:top?c"}}, {"aws:SourceArn": topic}) \
        is ALLOWED  # ArnEquals takes wildcards like ArnLike
    assert cond({"ArnNotEquals": {"aws:SourceArn": topic}}, {"aws:SourceArn": topic}) is IMPLICIT
    assert cond({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"}}) is ALLOWED


def test_null_operator():
    assert cond({"Null": {"aws:TokenIssueTime": "true"}}, principal=user(credentials="long-term")) is ALLOWED
    assert cond({"Null": {"aws:TokenIssueTime": "true"}}, principal=role(token_issue_time=NOW)) is IMPLICIT
    assert cond({"Null": {"aws:TokenIssueTime": "false"}}, principal=role(token_issue_time=NOW)) is ALLOWED
    assert cond({"Null": {"aws:TokenIssueTime": "true"}}, principal=role()) is CONDITIONAL


def test_values_are_ored_keys_and_operators_anded():
    block = {"StringEquals": {"aws:username": ["bob", "alice"], "aws:PrincipalType": "User"},
             "Bool": {"aws:SecureTransport": "true"}}
    assert cond(block, {"aws:SecureTransport": "true"}) is ALLOWED
    assert cond(block, {"aws:SecureTransport": "false"}) is IMPLICIT
    assert cond({"StringEquals": {"aws:username": "alice", "aws:PrincipalType": "AssumedRole"}}) is IMPLICIT
    # one key False decides even when another is undecided
    d = check(user(), [doc(allow("svc:Act", Condition={"StringEquals": {"aws:SourceVpc": "v", "aws:username": "x"}}))],
              "svc:Act")
    assert d.verdict is IMPLICIT


def test_set_operators():
    only = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert cond(only, {"aws:TagKeys": ["environment"]}) is ALLOWED
    assert cond(only, {"aws:TagKeys": ["environment", "owner"]}) is IMPLICIT
    # the documented trap: ForAllValues is true when the key is missing or its set is empty
    assert cond(only, {"aws:TagKeys": []}) is ALLOWED
    assert cond(only, {"aws:TagKeys": ""}) is ALLOWED
    assert cond(only, closed=True) is ALLOWED
    any_of = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert cond(any_of, {"aws:TagKeys": ["owner", "cost-center"]}) is ALLOWED
    assert cond(any_of, {"aws:TagKeys": ["owner"]}) is IMPLICIT
    assert cond(any_of, {"aws:TagKeys": []}) is IMPLICIT
    assert cond(any_of, closed=True) is IMPLICIT
    assert cond({"ForAllValues:StringLike": {"dynamodb:Attributes": ["Post*", "Message"]}},
                {"dynamodb:Attributes": ["PostDateTime", "Message"]}) is ALLOWED
    assert cond({"ForAnyValue:StringNotEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["a", "b"]}) is ALLOWED
    assert cond({"ForAllValues:StringNotEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["a", "b"]}) is IMPLICIT
    assert cond({"ForAllValues:StringEquals": {"aws:TagKeys": "a"}}) is CONDITIONAL  # not known


def test_resource_and_request_tags():
    policy = doc(allow("ec2:StartInstances", Condition={"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/team}"}}),
                 allow("ec2:CreateTags", Condition={"StringEquals": {"aws:RequestTag/team": "blue"}}))
    blue = user(tags={"team": "blue"})
    instance = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-1"
    assert verdict(blue, [policy], "ec2:StartInstances", Resource(instance, tags={"team": "blue"})) is ALLOWED
    assert verdict(blue, [policy], "ec2:StartInstances", Resource(instance, tags={"team": "red"})) is IMPLICIT
    assert verdict(blue, [policy], "ec2:StartInstances", Resource(instance, tags={})) is IMPLICIT
    assert verdict(blue, [policy], "ec2:StartInstances", instance) is CONDITIONAL
    # a service's own ResourceTag key reads the same tags
    iam_tag = doc(allow("iam:PassRole", Condition={"StringEquals": {"iam:ResourceTag/tier": "app"}}))
    assert verdict(blue, [iam_tag], "iam:PassRole", Resource(f"arn:aws:iam::{ACCOUNT}:role/r", tags={"Tier": "app"})) \
        is ALLOWED
    assert verdict(blue, [policy], "ec2:CreateTags", instance, {"aws:RequestTag/team": "blue"}) is ALLOWED
    assert verdict(blue, [policy], "ec2:CreateTags", instance, {"aws:RequestTag/team": "red"}) is IMPLICIT


def test_a_variable_that_cannot_resolve_invalidates_the_condition():
    block = {"StringEquals": {"s3:prefix": "${aws:username}/"}}
    assert cond(block, {"s3:prefix": "x/"}, principal=role()) is IMPLICIT
    negated = {"StringNotEquals": {"s3:prefix": "${aws:username}/"}}
    assert cond(negated, {"s3:prefix": "x/"}, principal=role()) is IMPLICIT


def test_unsupported_operator_is_undecided():
    d = check(user(), [doc(allow("svc:Act", Condition={"StringSortOf": {"aws:username": "alice"}}))], "svc:Act")
    assert d.verdict is CONDITIONAL


# -- explicit and implicit deny ------------------------------------------------------------------------

def test_explicit_deny_wins_and_is_explained():
    policy = doc({"Sid": "AllowGetList", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
                 {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"})
    assert verdict(user(), [policy], "iam:GetUser", "*") is ALLOWED
    d = check(user(), [policy], "iam:GetCredentialReport")
    assert d.verdict is DENIED and d.statements == ("identity (DenyReports)",)
    d = check(user(), [policy], "iam:CreateUser")
    assert d.verdict is IMPLICIT and d.reason.startswith("no identity-based Allow")
    assert not d.possible


def test_deny_with_not_action_unless_mfa():
    # AWS's example: without MFA deny everything but managing one's own MFA
    policy = doc(allow("*"), {"Sid": "DenyAllExceptListedIfNoMFA", "Effect": "Deny",
                              "NotAction": ["iam:CreateVirtualMFADevice", "iam:EnableMFADevice", "iam:ListMFADevices",
                                            "sts:GetSessionToken"],
                              "Resource": "*", "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}})
    keys = user(credentials="long-term")        # long-term keys: the key is absent, IfExists makes it true
    assert verdict(keys, [policy], "s3:ListAllMyBuckets") is DENIED
    assert verdict(keys, [policy], "iam:EnableMFADevice") is ALLOWED
    assert verdict(user(credentials="temporary", mfa=True), [policy], "s3:ListAllMyBuckets") is ALLOWED
    assert verdict(user(credentials="temporary", mfa=False), [policy], "s3:ListAllMyBuckets") is DENIED
    d = check(user(), [policy], "s3:ListAllMyBuckets")   # how the user signs in is not known
    assert d.verdict is CONDITIONAL and d.reason == "an explicit Deny may apply"
    assert d.undecided == {"aws:MultiFactorAuthPresent"}
    assert "identity (DenyAllExceptListedIfNoMFA)" in d.statements


def test_undecided_deny_without_allow_is_an_implicit_deny():
    policy = doc(deny("s3:*", Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}}))
    assert verdict(user(), [policy], "s3:GetObject", "arn:aws:s3:::b/k") is IMPLICIT


# -- permissions boundaries and session policies -------------------------------------------------------

def test_boundary_intersects_identity_policies():
    identity = [doc(allow(["s3:*", "iam:*", "cloudwatch:*"]))]
    boundary = doc(allow(["s3:*", "cloudwatch:*", "ec2:*"]), deny("cloudwatch:DeleteAlarms"))
    assert verdict(user(), identity, "s3:GetObject", "arn:aws:s3:::b/k", boundary=boundary) is ALLOWED
    d = check(user(), identity, "iam:CreateUser", boundary=boundary)
    assert d.verdict is IMPLICIT and "boundary" in d.reason
    assert verdict(user(), identity, "ec2:RunInstances", boundary=boundary) is IMPLICIT  # boundary alone grants nothing
    assert verdict(user(), identity, "cloudwatch:DeleteAlarms", boundary=boundary) is DENIED


def test_session_policies():
    identity = [doc(allow(["s3:*", "iam:*"]))]
    session = [doc(allow("s3:GetObject"))]
    assert verdict(role(), identity, "s3:GetObject", "arn:aws:s3:::b/k", session=session) is ALLOWED
    assert verdict(role(), identity, "s3:PutObject", "arn:aws:s3:::b/k", session=session) is IMPLICIT
    assert verdict(role(), identity, "s3:PutObject", "arn:aws:s3:::b/k") is ALLOWED
    fed = Principal.federated_user(f"arn:aws:iam::{ACCOUNT}:user/broker", "visitor")
    assert verdict(fed, identity, "s3:GetObject", "arn:aws:s3:::b/k") is IMPLICIT  # no session policy: nothing
    assert verdict(fed, identity, "s3:GetObject", "arn:aws:s3:::b/k", session=session) is ALLOWED


# -- resource-based policies -----------------------------------------------------------------------------

def bucket(statement_principal, name="shared", **extra) -> Resource:
    policy = doc({"Effect": "Allow", "Principal": statement_principal, "Action": "s3:GetObject",
                  "Resource": f"arn:aws:s3:::{name}/*", **extra})
    return Resource.of(f"arn:aws:s3:::{name}/report.csv", policy, account=ACCOUNT)


def test_same_account_resource_policy_naming_the_user_is_enough():
    alice = user()
    assert verdict(alice, [], "s3:GetObject", bucket({"AWS": alice.arn})) is ALLOWED
    # not limited by an implicit deny in the boundary either
    assert verdict(alice, [], "s3:GetObject", bucket({"AWS": alice.arn}), boundary=doc(allow("ec2:*"))) is ALLOWED
    # but an explicit deny anywhere wins
    assert verdict(alice, [doc(deny("s3:*"))], "s3:GetObject", bucket({"AWS": alice.arn})) is DENIED
    # naming the account delegates to the identity policies
    assert verdict(alice, [], "s3:GetObject", bucket({"AWS": ACCOUNT})) is IMPLICIT
    assert verdict(alice, [doc(allow("s3:GetObject"))], "s3:GetObject", bucket({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})) \
        is ALLOWED
    d = check(user("bob"), [], "s3:GetObject", bucket({"AWS": alice.arn}))
    assert d.verdict is IMPLICIT


def test_resource_policy_naming_a_role_or_a_session():
    session = role("app", session_name="s1")
    by_role = bucket({"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"})
    by_session = bucket({"AWS": session.arn})
    tight = doc(allow("ec2:*"))
    assert verdict(session, [], "s3:GetObject", by_role) is ALLOWED
    # a grant to the role ARN is limited by the boundary and the session policy...
    assert verdict(session, [], "s3:GetObject", by_role, boundary=tight) is IMPLICIT
    assert verdict(session, [], "s3:GetObject", by_role, session=[tight]) is IMPLICIT
    # ...one to the session itself is not
    assert verdict(session, [], "s3:GetObject", by_session, boundary=tight, session=[tight]) is ALLOWED
    # a session whose name is not known may or may not be the one named
    assert verdict(role("app"), [], "s3:GetObject", by_session, boundary=tight) is CONDITIONAL


def test_cross_account_needs_both_sides():
    outsider = user("ext", account=OTHER)
    to_account = bucket({"AWS": f"arn:aws:iam::{OTHER}:root"})
    to_user = bucket({"AWS": outsider.arn})
    grants = [doc(allow("s3:GetObject", "arn:aws:s3:::shared/*"))]
    assert verdict(outsider, grants, "s3:GetObject", to_account) is ALLOWED
    assert verdict(outsider, grants, "s3:GetObject", to_user) is ALLOWED
    d = check(outsider, [], "s3:GetObject", to_user)          # the resource side alone is not enough
    assert d.verdict is IMPLICIT and d.reason.startswith("no identity-based Allow")
    d = check(outsider, grants, "s3:GetObject", Resource.of("arn:aws:s3:::shared/report.csv", account=ACCOUNT))
    assert d.verdict is IMPLICIT and d.reason.startswith("cross-account")
    assert verdict(outsider, grants, "s3:GetObject", bucket({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})) is IMPLICIT


def test_public_and_service_principals():
    public = bucket("*")
    assert verdict(Principal.anonymous(), [], "s3:GetObject", public) is ALLOWED
    assert verdict(user("ext", account=OTHER), [], "s3:GetObject", public) is IMPLICIT  # cross-account: identity too
    assert verdict(Principal.anonymous(), [], "s3:GetObject", bucket({"AWS": ACCOUNT})) is IMPLICIT
    function = Resource.of(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f", doc(
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "lambda:InvokeFunction",
         "Resource": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f",
         "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::uploads"}}}))
    s3 = Principal.service("s3.amazonaws.com")
    assert verdict(s3, [], "lambda:InvokeFunction", function, {"aws:SourceArn": "arn:aws:s3:::uploads"}) is ALLOWED
    assert verdict(s3, [], "lambda:InvokeFunction", function, {"aws:SourceArn": "arn:aws:s3:::other"}) is IMPLICIT
    assert verdict(Principal.service("sns.amazonaws.com"), [], "lambda:InvokeFunction", function) is IMPLICIT


def test_not_principal_with_deny():
    bob = user("Bob", account=OTHER)
    def guarded(*names):
        return Resource.of("arn:aws:s3:::b/k", doc(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": list(names)}, "Action": "s3:*", "Resource": "*"}),
            account=ACCOUNT)
    grants = [doc(allow("s3:*"))]
    both = guarded(bob.arn, f"arn:aws:iam::{OTHER}:root")
    assert verdict(bob, grants, "s3:GetObject", both) is ALLOWED
    assert verdict(user("Eve", account=OTHER), grants, "s3:GetObject", both) is DENIED
    # the user without its account: AWS may check the account first and deny
    assert verdict(bob, grants, "s3:GetObject", guarded(bob.arn)) is DENIED
    # a principal with a permissions boundary is always denied by Deny + NotPrincipal
    assert verdict(bob, grants, "s3:GetObject", both, boundary=doc(allow("*"))) is DENIED


# -- role trust policies -------------------------------------------------------------------------------

def trusting(principal, role_name="target", account=ACCOUNT, condition=None) -> Resource:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return Resource.of(f"arn:aws:iam::{account}:role/{role_name}", doc(statement))


def test_trust_policy_is_required_and_can_be_enough():
    alice = user()
    assume = [doc(allow("sts:AssumeRole"))]
    assert verdict(alice, [], "sts:AssumeRole", trusting({"AWS": alice.arn})) is ALLOWED   # named: no identity grant
    assert verdict(alice, [], "sts:AssumeRole", trusting({"AWS": ACCOUNT})) is IMPLICIT    # account: delegates
    assert verdict(alice, assume, "sts:AssumeRole", trusting({"AWS": ACCOUNT})) is ALLOWED
    d = check(alice, assume, "sts:AssumeRole", trusting({"Service": "ec2.amazonaws.com"}))
    assert d.verdict is IMPLICIT and d.reason == "the role's trust policy does not allow this principal"
    assert verdict(alice, assume, "sts:AssumeRole", Resource.of(f"arn:aws:iam::{ACCOUNT}:role/none")) is IMPLICIT
    assert verdict(Principal.service("ec2.amazonaws.com"), [], "sts:AssumeRole",
                   trusting({"Service": "ec2.amazonaws.com"})) is ALLOWED
    # the trust policy may name a role with its path, a session names the role without it
    chained = Principal.role(f"arn:aws:iam::{ACCOUNT}:role/team/runner")
    assert verdict(chained, [], "sts:AssumeRole", trusting({"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/runner"})) \
        is ALLOWED


def test_cross_account_trust_with_external_id_and_mfa():
    partner = role("vendor", account=OTHER)
    assume = [doc(allow("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/*"))]
    target = trusting({"AWS": f"arn:aws:iam::{OTHER}:root"},
                      condition={"StringEquals": {"sts:ExternalId": "Unique-42"}})
    assert verdict(partner, assume, "sts:AssumeRole", target, {"sts:ExternalId": "Unique-42"}) is ALLOWED
    assert verdict(partner, assume, "sts:AssumeRole", target, {"sts:ExternalId": "guess"}) is IMPLICIT
    d = check(partner, assume, "sts:AssumeRole", target)
    assert d.verdict is CONDITIONAL and d.undecided == {"sts:ExternalId"}
    assert verdict(partner, [], "sts:AssumeRole", target, {"sts:ExternalId": "Unique-42"}) is IMPLICIT
    mfa_only = trusting({"AWS": f"arn:aws:iam::{OTHER}:root"},
                        condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    assert verdict(role("vendor", account=OTHER, mfa=False), assume, "sts:AssumeRole", mfa_only) is IMPLICIT
    assert verdict(role("vendor", account=OTHER, mfa=True), assume, "sts:AssumeRole", mfa_only) is ALLOWED
    assert verdict(user("kim", account=OTHER, credentials="long-term"), assume, "sts:AssumeRole", mfa_only) is IMPLICIT


# -- KMS key policies ----------------------------------------------------------------------------------

def test_kms_key_policy_must_allow():
    key_arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    decrypt = [doc(allow("kms:Decrypt"))]
    enable_iam = Resource.of(key_arn, doc({"Sid": "Enable IAM policies", "Effect": "Allow",
                                           "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                           "Action": "kms:*", "Resource": "*"}))
    admins_only = Resource.of(key_arn, doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"},
                                            "Action": "kms:*", "Resource": "*"}))
    assert verdict(user(), decrypt, "kms:Decrypt", enable_iam) is ALLOWED
    assert verdict(user(), [], "kms:Decrypt", enable_iam) is IMPLICIT
    d = check(user(), decrypt, "kms:Decrypt", admins_only)
    assert d.verdict is IMPLICIT and d.reason == "the key policy does not allow this principal"
    assert verdict(user(), decrypt, "kms:Decrypt", key_arn) is IMPLICIT       # no key policy known: no access
    assert verdict(role("admin"), [], "kms:Decrypt", admins_only) is ALLOWED


# -- iam:PassRole --------------------------------------------------------------------------------------

def test_passed_to_service_on_pass_role():
    policy = doc(allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/ec2-*",
                       Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))
    target = f"arn:aws:iam::{ACCOUNT}:role/ec2-admin"
    assert verdict(user(), [policy], "iam:PassRole", target, {"iam:PassedToService": "ec2.amazonaws.com"}) is ALLOWED
    assert verdict(user(), [policy], "iam:PassRole", target, {"iam:PassedToService": "lambda.amazonaws.com"}) \
        is IMPLICIT
    assert verdict(user(), [policy], "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin",
                   {"iam:PassedToService": "ec2.amazonaws.com"}) is IMPLICIT
    d = check(user(), [policy], "iam:PassRole", target)
    assert d.verdict is CONDITIONAL and d.undecided == {"iam:PassedToService"}


# -- Organizations ---------------------------------------------------------------------------------------

FULL = doc(allow("*"))


def test_scps():
    member = "222233334444"
    org = Organization(scps={member: [[FULL], ("ou-sandbox", [doc(allow(["s3:*", "ec2:*"]))]),
                                      [FULL, doc(deny("iam:*"))]],
                             ACCOUNT: [[FULL]]},
                       management_account=ACCOUNT)
    admin = [doc(allow("*"))]
    worker = user("w", account=member)
    assert verdict(worker, admin, "s3:GetObject", "arn:aws:s3:::b/k", org=org) is ALLOWED
    d = check(worker, admin, "lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{member}:function:f", org=org)
    assert d.verdict is IMPLICIT and d.reason == "no Allow in ou-sandbox"
    assert verdict(worker, admin, "iam:CreateUser", org=org) is DENIED
    # SCPs cut the root user of a member account too, but not the management account nor service-linked roles
    assert verdict(Principal.root(member), [], "iam:CreateUser", org=org) is DENIED
    assert verdict(Principal.root(member), [], "s3:GetObject", "arn:aws:s3:::b/k", org=org) is ALLOWED
    assert verdict(user("boss"), admin, "lambda:InvokeFunction", org=org) is ALLOWED
    linked = Principal.role(f"arn:aws:iam::{member}:role/aws-service-role/support.amazonaws.com/AWSServiceRoleForSupport")
    assert linked.service_linked
    assert verdict(linked, admin, "iam:CreateUser", org=org) is ALLOWED
    # an SCP never grants: without an identity Allow nothing is allowed
    assert verdict(worker, [], "s3:GetObject", "arn:aws:s3:::b/k", org=org) is IMPLICIT


def test_rcps_and_org_keys():
    member = "222233334444"
    perimeter = doc({"Effect": "Deny", "Principal": "*", "Action": ["s3:*", "sqs:*"], "Resource": "*",
                     "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-abc"},
                                   "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}})
    org = Organization(rcps={member: [[FULL, perimeter]]}, org_id="o-abc", accounts=[member, ACCOUNT])
    data = Resource.of("arn:aws:s3:::data/x", doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                   "Resource": "*"}), account=member)
    reader = [doc(allow("s3:GetObject"))]
    assert verdict(user("in", account=ACCOUNT), reader, "s3:GetObject", data, org=org) is ALLOWED
    assert verdict(user("out", account=OTHER), reader, "s3:GetObject", data, org=org) is DENIED
    # RCPs cover a set of services only
    topic = Resource.of(f"arn:aws:sns:us-east-1:{member}:t", doc({"Effect": "Allow", "Principal": "*",
                                                               "Action": "sns:Publish", "Resource": "*"}))
    assert verdict(user("out", account=OTHER), [doc(allow("sns:Publish"))], "sns:Publish", topic, org=org) is ALLOWED
    # the org id comes from the organization: a condition on it is decided
    gate = doc(allow("s3:GetObject", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}))
    assert verdict(user("in", account=ACCOUNT), [gate], "s3:GetObject", "arn:aws:s3:::b/k", org=org) is ALLOWED
    assert verdict(user("in", account=ACCOUNT), [gate], "s3:GetObject", "arn:aws:s3:::b/k") is CONDITIONAL


# -- parsing ---------------------------------------------------------------------------------------------

def test_bad_documents_raise_policy_errors():
    for bad in ({"Statement": [{"Effect": "Maybe", "Action": "*"}]}, {"Version": "2012-10-17"},
                {"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "not json",
                {"Statement": [{"Effect": "Allow", "Action": "*", "Condition": []}]}):
        with pytest.raises(PolicyError):
            compile_policy(bad, "bad")
    # URL-encoded JSON, as the raw IAM API returns it, and single statements
    encoded = "%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%7D"
    assert verdict(user(), [encoded], "s3:GetObject", "arn:aws:s3:::b/k") is ALLOWED


def test_decision_text():
    d = check(user(), [doc(allow("svc:Act", Condition={"StringEquals": {"aws:SourceVpc": "v"}}))], "svc:Act")
    assert str(d) == ("conditional: allowed only if conditions hold (depends on aws:SourceVpc) "
                      "[identity [statement 0]]")


# -- IAM Vulnerable (Cloudsplaining's example account) ---------------------------------------------------

@pytest.fixture(scope="module")
def vulnerable():
    return load_authorization_details(json.loads(EXAMPLE.read_text()))


def judge(snapshot, name: str, action: str, target: str = "*", context: dict | None = None, **facts) -> Decision:
    subject = snapshot.subjects[name] if name.startswith("arn:") else snapshot.by_name(name)
    principal = subject.principal
    if facts:
        principal = (Principal.role(principal.role_arn, unique_id=principal.unique_id, tags=principal.tags, **facts)
                     if subject.kind == "role" else
                     Principal.user(principal.arn, unique_id=principal.unique_id, tags=principal.tags, **facts))
    holder = snapshot.subjects.get(target)
    resource = holder.resource if holder is not None and holder.resource is not None else target
    return evaluate(Request(principal, action, resource, context), subject.policies)


def test_every_principal_of_the_export_is_compiled(vulnerable):
    kinds = [s.kind for s in vulnerable.subjects.values()]
    assert (kinds.count("user"), kinds.count("role"), kinds.count("group")) == (44, 78, 5)
    assert vulnerable.problems == []


@pytest.mark.parametrize("kind", ["user", "role"])
def test_fp5_condition_it_cannot_meet(vulnerable, kind):
    name = f"fp5-nonExploitableConditionConstraint-{kind}"
    policy = f"arn:aws:iam::{VULNERABLE}:policy/any"
    d = judge(vulnerable, name, "iam:CreatePolicyVersion", policy)
    assert d.verdict is CONDITIONAL and d.undecided == {"aws:TokenIssueTime"}
    # credentials issued now are not older than 2020: the grant does not hold
    fresh = {"credentials": "temporary", "token_issue_time": NOW} if kind == "user" else {"token_issue_time": NOW}
    assert judge(vulnerable, name, "iam:CreatePolicyVersion", policy, **fresh).verdict is IMPLICIT
    if kind == "user":  # long-term access keys carry no aws:TokenIssueTime at all
        assert judge(vulnerable, name, "iam:CreatePolicyVersion", policy, credentials="long-term").verdict is IMPLICIT
    # the exploitable twin (DateGreaterThan 2020) holds for the same fresh credentials
    twin = name.replace("fp5-nonExploitableConditionConstraint", "fn3-exploitableConditionConstraint")
    assert judge(vulnerable, twin, "iam:CreatePolicyVersion", policy, **fresh).verdict is ALLOWED


@pytest.mark.parametrize("kind", ["user", "role"])
def test_fp_deny_cases(vulnerable, kind):
    admin_policy = f"arn:aws:iam::{VULNERABLE}:policy/privesc-AssumeRole-high-priv-policy"
    for name in ("fp1-allow-and-deny", "fp2-allow-and-deny-multiple-policies", "fp3-deny-iam"):
        d = judge(vulnerable, f"{name}-{kind}", "iam:CreatePolicyVersion", admin_policy)
        assert d.verdict is DENIED, name
    assert judge(vulnerable, f"fp2-allow-and-deny-multiple-policies-{kind}", "s3:GetObject",
                 "arn:aws:s3:::any/x").verdict is DENIED
    d = judge(vulnerable, f"fp4-nonExploitableResourceConstraint-{kind}", "iam:CreatePolicyVersion", admin_policy)
    assert d.verdict is IMPLICIT   # granted only on AWS-managed policies named fp4-*
    assert judge(vulnerable, f"fn2-exploitableResourceConstraint-{kind}", "iam:CreatePolicyVersion",
                 f"arn:aws:iam::{VULNERABLE}:policy/fn2-target").verdict is ALLOWED
    assert judge(vulnerable, f"fn2-exploitableResourceConstraint-{kind}", "iam:CreatePolicyVersion",
                 admin_policy).verdict is IMPLICIT
    # NotAction iam:Create*: CreatePolicyVersion is out, PutUserPolicy is in
    assert judge(vulnerable, f"fn4-exploitableNotAction-{kind}", "iam:CreatePolicyVersion", admin_policy).verdict \
        is IMPLICIT
    assert judge(vulnerable, f"fn4-exploitableNotAction-{kind}", "iam:PutUserPolicy",
                 f"arn:aws:iam::{VULNERABLE}:user/fn4-exploitableNotAction-user").verdict is ALLOWED


ADMIN_USER = f"arn:aws:iam::{VULNERABLE}:user/privesc-sre-user"
HIGH_ROLE = f"arn:aws:iam::{VULNERABLE}:role/privesc-high-priv-service-role"
KEY_ACTIONS = [
    ("privesc1-CreateNewPolicyVersion", ["iam:CreatePolicyVersion"], f"arn:aws:iam::{VULNERABLE}:policy/p"),
    ("privesc2-SetExistingDefaultPolicyVersion", ["iam:SetDefaultPolicyVersion"], f"arn:aws:iam::{VULNERABLE}:policy/p"),
    ("privesc3-CreateEC2WithExistingInstanceProfile", ["iam:PassRole"], HIGH_ROLE),
    ("privesc4-CreateAccessKey", ["iam:CreateAccessKey"], ADMIN_USER),
    ("privesc5-CreateLoginProfile", ["iam:CreateLoginProfile"], ADMIN_USER),
    ("privesc6-UpdateLoginProfile", ["iam:UpdateLoginProfile"], ADMIN_USER),
    ("privesc7-AttachUserPolicy", ["iam:AttachUserPolicy"], ADMIN_USER),
    ("privesc8-AttachGroupPolicy", ["iam:AttachGroupPolicy"], f"arn:aws:iam::{VULNERABLE}:group/privesc8-AttachGroupPolicy-group"),
    ("privesc9-AttachRolePolicy", ["iam:AttachRolePolicy"], HIGH_ROLE),
    ("privesc10-PutUserPolicy", ["iam:PutUserPolicy"], ADMIN_USER),
    ("privesc11-PutGroupPolicy", ["iam:PutGroupPolicy"], f"arn:aws:iam::{VULNERABLE}:group/privesc-sre-group"),
    ("privesc12-PutRolePolicy", ["iam:PutRolePolicy"], HIGH_ROLE),
    ("privesc13-AddUserToGroup", ["iam:AddUserToGroup"], f"arn:aws:iam::{VULNERABLE}:group/privesc-sre-group"),
    ("privesc14-UpdatingAssumeRolePolicy", ["iam:UpdateAssumeRolePolicy"], HIGH_ROLE),
    ("privesc15-PassExistingRoleToNewLambdaThenInvoke", ["iam:PassRole", "lambda:CreateFunction",
                                                         "lambda:InvokeFunction"], HIGH_ROLE),
    ("privesc16-PassRoleToNewLambdaThenTriggerWithNewDynamo", ["iam:PassRole", "lambda:CreateEventSourceMapping"],
     HIGH_ROLE),
    ("privesc17-EditExistingLambdaFunctionWithRole", ["lambda:UpdateFunctionCode"],
     f"arn:aws:lambda:us-east-1:{VULNERABLE}:function:f"),
    ("privesc18-PassExistingRoleToNewGlueDevEndpoint", ["iam:PassRole", "glue:CreateDevEndpoint"], HIGH_ROLE),
    ("privesc19-UpdateExistingGlueDevEndpoint", ["glue:UpdateDevEndpoint"],
     f"arn:aws:glue:us-east-1:{VULNERABLE}:devEndpoint/e"),
    ("privesc20-PassExistingRoleToCloudFormation", ["iam:PassRole", "cloudformation:CreateStack"], HIGH_ROLE),
    ("privesc21-PassExistingRoleToNewDataPipeline", ["iam:PassRole", "datapipeline:CreatePipeline"], HIGH_ROLE),
    ("privesc-CloudFormationUpdateStack", ["cloudformation:UpdateStack"],
     f"arn:aws:cloudformation:us-east-1:{VULNERABLE}:stack/s/1"),
    ("privesc-codeBuildCreateProjectPassRole", ["iam:PassRole", "codebuild:CreateProject"], HIGH_ROLE),
    ("privesc-sageMakerCreateNotebookPassRole", ["iam:PassRole", "sagemaker:CreateNotebookInstance"], HIGH_ROLE),
    ("privesc-ssmSendCommand", ["ssm:SendCommand"], f"arn:aws:ec2:us-east-1:{VULNERABLE}:instance/i-1"),
    ("privesc-ssmStartSession", ["ssm:StartSession"], f"arn:aws:ec2:us-east-1:{VULNERABLE}:instance/i-1"),
]


@pytest.mark.parametrize("kind", ["user", "role"])
@pytest.mark.parametrize("name,actions,target", KEY_ACTIONS, ids=[k[0] for k in KEY_ACTIONS])
def test_privesc_principals_hold_their_key_actions(vulnerable, kind, name, actions, target):
    for action in actions:
        d = judge(vulnerable, f"{name}-{kind}", action, target)
        assert d.verdict is ALLOWED, (action, str(d))
        assert d.statements and all(s.startswith("managed ") for s in d.statements)
    assert judge(vulnerable, f"{name}-{kind}", "organizations:LeaveOrganization").verdict is IMPLICIT


def test_groups_and_their_members(vulnerable):
    sre_group = vulnerable.by_name("privesc-sre-group")
    assert sre_group.kind == "group"
    assert judge(vulnerable, "privesc-sre-group", "iam:AttachUserPolicy", ADMIN_USER).verdict is ALLOWED
    d = judge(vulnerable, "privesc-sre-user", "iam:CreateAccessKey", ADMIN_USER)
    assert d.verdict is ALLOWED and d.statements == ("group privesc-sre-group managed privesc-sre-admin-policy"
                                                     " [statement 0]",)
    assert judge(vulnerable, "privesc-sre-user", "lambda:CreateFunction").verdict is IMPLICIT


def test_assume_role_chain(vulnerable):
    arn = f"arn:aws:iam::{VULNERABLE}:role/privesc-AssumeRole-"
    assert judge(vulnerable, "privesc-AssumeRole-starting-role", "sts:AssumeRole", arn + "intermediate-role").verdict \
        is ALLOWED
    assert judge(vulnerable, "privesc-AssumeRole-intermediate-role", "sts:AssumeRole", arn + "ending-role").verdict \
        is ALLOWED
    assert judge(vulnerable, "privesc-AssumeRole-starting-role", "sts:AssumeRole", arn + "ending-role").verdict \
        is IMPLICIT
    assert judge(vulnerable, "privesc-AssumeRole-ending-role", "iam:CreateUser").verdict is ALLOWED
    # the starting role trusts one SSO session; the start user holds no policy and is not trusted
    assert judge(vulnerable, "privesc-AssumeRole-start-user", "sts:AssumeRole", arn + "starting-role").verdict \
        is IMPLICIT
    # a trust of the account root lets anyone with sts:AssumeRole in the account in
    permissive = f"arn:aws:iam::{VULNERABLE}:role/privesc-permissive-role-trust"
    assert judge(vulnerable, "privesc14-UpdatingAssumeRolePolicy-user", "sts:AssumeRole", permissive).verdict is ALLOWED
    assert judge(vulnerable, "privesc4-CreateAccessKey-user", "sts:AssumeRole", permissive).verdict is IMPLICIT


PRIVESC_ACTIONS = ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:PassRole", "iam:CreateAccessKey",
                   "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:AttachUserPolicy", "iam:AttachGroupPolicy",
                   "iam:AttachRolePolicy", "iam:PutUserPolicy", "iam:PutGroupPolicy", "iam:PutRolePolicy",
                   "iam:AddUserToGroup", "iam:UpdateAssumeRolePolicy", "sts:AssumeRole", "lambda:CreateFunction",
                   "lambda:UpdateFunctionCode", "glue:UpdateDevEndpoint", "ec2:RunInstances", "s3:GetObject",
                   "cloudformation:CreateStack", "ssm:SendCommand", "kms:Decrypt", "secretsmanager:GetSecretValue"]


def test_agrees_with_the_static_reader_on_broad_grants(vulnerable):
    """Where the static reader (policy.py) and the evaluator both apply — unconditional grants on every
    resource — they agree for every principal of the export and every escalation action."""
    data = json.loads(EXAMPLE.read_text())
    managed = {p["Arn"]: next(v["Document"] for v in p["PolicyVersionList"] if v["IsDefaultVersion"])
               for p in data["Policies"]}
    from nhiwatch.inventory.build import KNOWN_AWS_POLICIES
    managed.update({k: v for k, v in KNOWN_AWS_POLICIES.items() if k not in managed})
    groups = {g["GroupName"]: g for g in data["GroupDetailList"]}
    compared = 0
    for entry in data["UserDetailList"] + data["RoleDetailList"]:
        statements = []
        sources = [entry] + [groups[g] for g in entry.get("GroupList", [])]
        for source in sources:
            for inline in source.get("UserPolicyList", []) + source.get("RolePolicyList", []) + \
                    source.get("GroupPolicyList", []):
                statements += statements_of(inline["PolicyDocument"], "inline")
            for ref in source.get("AttachedManagedPolicies", []):
                if ref["PolicyArn"] in managed:
                    statements += statements_of(managed[ref["PolicyArn"]], ref["PolicyName"])
        static = PermissionSet(statements)
        name = entry["Arn"]
        for action in PRIVESC_ACTIONS:
            if action == "sts:AssumeRole":
                continue  # a trust policy decides it, which the static reader does not read
            grant = static.grant(action)
            d = judge(vulnerable, name, action)
            expected = ALLOWED if grant is not None and not grant.conditional else None
            if expected is ALLOWED:
                assert d.verdict is ALLOWED, (name, action, str(d))
            elif grant is None:
                assert d.verdict in (IMPLICIT, DENIED), (name, action, str(d))
            else:
                assert d.verdict is CONDITIONAL, (name, action, str(d))
            compared += 1
    assert compared == 122 * (len(PRIVESC_ACTIONS) - 1)


# -- the hand-made account: web identities, vendors, boundaries ----------------------------------------

HAND_MADE = __import__("pathlib").Path(__file__).parent / "fixtures" / "iam" / "hand-made" / "authorization-details.json"
GITHUB = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def hand_made():
    return load_authorization_details(json.loads(HAND_MADE.read_text()))


def trust_of(snapshot, name: str) -> Resource:
    resource = snapshot.by_name(name, "role").resource
    assert resource is not None
    return resource


def test_web_identity_trust(hand_made):
    github = Principal.web_identity(GITHUB)
    aud = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    org_wide = trust_of(hand_made, "gh-org-wildcard")
    assert verdict(github, None, "sts:AssumeRoleWithWebIdentity", org_wide,
                   {**aud, "token.actions.githubusercontent.com:sub": "repo:acme/api:ref:refs/heads/main"}) is ALLOWED
    assert verdict(github, None, "sts:AssumeRoleWithWebIdentity", org_wide,
                   {**aud, "token.actions.githubusercontent.com:sub": "repo:evil/api:ref:refs/heads/main"}) is IMPLICIT
    d = check(github, None, "sts:AssumeRoleWithWebIdentity", org_wide, aud)
    assert d.verdict is CONDITIONAL and d.undecided == {"token.actions.githubusercontent.com:sub"}
    # ForAllValues on a key that is missing is true: any repository gets in
    assert verdict(github, None, "sts:AssumeRoleWithWebIdentity", trust_of(hand_made, "gh-forallvalues"), aud,
                   absent=["token.actions.githubusercontent.com:sub"]) is ALLOWED
    assert verdict(Principal.web_identity(f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.com"), None,
                   "sts:AssumeRoleWithWebIdentity", org_wide, aud) is IMPLICIT
    # the trust policy allows the web-identity action, not plain AssumeRole
    assert verdict(user(), [doc(allow("sts:*"))], "sts:AssumeRole", org_wide) is IMPLICIT


def test_vendor_and_public_trusts(hand_made):
    vendor = role("integration", account="999988887777")
    assume = [doc(allow("sts:AssumeRole"))]
    guarded = trust_of(hand_made, "vendor-with-external-id")
    assert verdict(vendor, assume, "sts:AssumeRole", guarded, {"sts:ExternalId": "a1b2c3"}) is ALLOWED
    assert verdict(vendor, assume, "sts:AssumeRole", guarded, {"sts:ExternalId": None}) is IMPLICIT
    assert verdict(vendor, assume, "sts:AssumeRole", trust_of(hand_made, "vendor-no-external-id")) is ALLOWED
    assert verdict(role("x", account=OTHER), assume, "sts:AssumeRole", trust_of(hand_made, "vendor-no-external-id")) \
        is IMPLICIT
    anyone = role("x", account="123412341234")
    assert verdict(anyone, assume, "sts:AssumeRole", trust_of(hand_made, "public-role")) is ALLOWED
    org = Organization(org_id="o-abc123", accounts=[ACCOUNT, OTHER])
    fenced = trust_of(hand_made, "org-guarded-public")
    assert verdict(anyone, assume, "sts:AssumeRole", fenced, org=org) is IMPLICIT
    assert verdict(role("x", account=OTHER), assume, "sts:AssumeRole", fenced, org=org) is ALLOWED
    assert verdict(role("x", account=OTHER), assume, "sts:AssumeRole", fenced) is CONDITIONAL  # no org known


def test_hand_made_boundaries_denies_and_chains(hand_made):
    def ask(name, action, target="*", **request):
        subject = hand_made.by_name(name)
        return evaluate(Request(subject.principal, action, target, **request), subject.policies)
    admin_role = f"arn:aws:iam::{ACCOUNT}:role/stale-admin-automation"
    d = ask("lambda-iam-bounded", "iam:AttachRolePolicy", admin_role)
    assert d.verdict is IMPLICIT and d.reason == "the permissions boundary does not allow it"
    assert ask("lambda-iam-bounded", "iam:ListRoles").verdict is ALLOWED
    assert ask("lambda-iam-denied", "iam:PassRole", admin_role).verdict is DENIED
    assert ask("lambda-iam-denied", "iam:DeleteRole", admin_role).verdict is ALLOWED
    assert ask("lambda-passrole", "iam:PassRole", admin_role, context={"iam:PassedToService": "lambda.amazonaws.com"}) \
        .verdict is ALLOWED  # its policy is URL-encoded in the export
    assert ask("chained-worker", "s3:GetObject", "arn:aws:s3:::acme-artifacts/build.zip").verdict is ALLOWED
    assert ask("chained-worker", "s3:GetObject", "arn:aws:s3:::other/x").verdict is IMPLICIT
    ecs = hand_made.by_name("ecs-api-task")
    chained = trust_of(hand_made, "chained-worker")
    assert evaluate(Request(ecs.principal, "sts:AssumeRole", chained), ecs.policies).verdict is ALLOWED
    assert evaluate(Request(Principal.service("lambda.amazonaws.com"), "sts:AssumeRole",
                            trust_of(hand_made, "lambda-passrole"))).verdict is ALLOWED


def test_if_exists_with_a_set_operator():
    assert cond({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "a"}}, closed=True) is ALLOWED
    assert cond({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["b"]}) is IMPLICIT


def test_loader_reports_what_it_cannot_read():
    payload = {"UserDetailList": [{"UserName": "u", "Arn": f"arn:aws:iam::{ACCOUNT}:user/u", "GroupList": ["gone"],
                                   "AttachedManagedPolicies": [{"PolicyName": "missing",
                                                                "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/missing"}],
                                   "UserPolicyList": [{"PolicyName": "broken", "PolicyDocument": "{not json"}],
                                   "PermissionsBoundary": {"PermissionsBoundaryArn": "arn:aws:iam::aws:policy/ReadOnly"}}]}
    snapshot = load_authorization_details(payload, {"arn:aws:iam::aws:policy/ReadOnly": doc(allow("s3:Get*"))})
    assert len(snapshot.problems) == 3
    subject = snapshot.by_name("u")
    assert subject.policies.boundary is not None and subject.policies.identity == ()

"""The live inventory source against a real moto server (see moto_server.py)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable

import boto3
import pytest

from nhiwatch.inventory.live import account_sessions, fetch_account, read_account_list

# The fixtures aws_live, aws_live_with_aws_policies and enforce_iam, from tests/moto_server.py.
pytest_plugins = ["moto_server"]

ACCOUNT = "123456789012"  # moto's default account
OTHER_ACCOUNT = "111111111111"
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
GITHUB = "token.actions.githubusercontent.com"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_EVERYTHING = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
DEPLOY_V1 = doc({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::artifacts/*"})
DEPLOY_V2 = doc({"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::artifacts/*"})
BOUNDARY = doc({"Effect": "Allow", "Action": ["s3:*", "cloudformation:*"], "Resource": "*"})
READ_LOGS = doc({"Effect": "Allow", "Action": ["logs:GetLogEvents", "logs:FilterLogEvents"], "Resource": "*"})
AUDIT = doc({"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"})
LAMBDA_TRUST = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
PARTNER_TRUST = doc({
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"sts:ExternalId": "partner-7f3a"}},
})


def github_trust(provider_arn: str) -> dict:
    return doc({
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"},
            "StringLike": {f"{GITHUB}:sub": "repo:example-org/app:ref:refs/heads/main"},
        },
    })


def by_name(entries: list[dict], key: str) -> dict[str, dict]:
    return {entry[key]: entry for entry in entries}


@pytest.fixture
def estate(aws_live_with_aws_policies: str) -> dict[str, str]:
    """A small account: two users, a group, customer managed policies, three kinds of role."""
    iam = boto3.client("iam")
    iam.create_user(UserName="ci-deployer", Path="/service/", Tags=[{"Key": "owner", "Value": "platform"}])
    iam.create_access_key(UserName="ci-deployer")
    second = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="ci-deployer", AccessKeyId=second, Status="Inactive")
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Correct-horse-9!")

    iam.create_group(GroupName="developers")
    iam.put_group_policy(GroupName="developers", PolicyName="read-logs", PolicyDocument=json.dumps(READ_LOGS))
    iam.add_user_to_group(GroupName="developers", UserName="alice")

    deploy = iam.create_policy(PolicyName="deploy-artifacts", PolicyDocument=json.dumps(DEPLOY_V1))["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=deploy, PolicyDocument=json.dumps(DEPLOY_V2), SetAsDefault=True)
    iam.attach_user_policy(UserName="ci-deployer", PolicyArn=deploy)
    boundary = iam.create_policy(PolicyName="nhi-boundary", PolicyDocument=json.dumps(BOUNDARY))["Policy"]["Arn"]

    iam.create_role(RoleName="lambda-exec", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                    Tags=[{"Key": "app", "Value": "thumbnails"}])
    iam.attach_role_policy(RoleName="lambda-exec", PolicyArn=LAMBDA_BASIC)
    iam.create_role(RoleName="partner-audit", AssumeRolePolicyDocument=json.dumps(PARTNER_TRUST))
    iam.put_role_policy(RoleName="partner-audit", PolicyName="audit", PolicyDocument=json.dumps(AUDIT))
    provider = iam.create_open_id_connect_provider(
        Url=f"https://{GITHUB}", ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"])["OpenIDConnectProviderArn"]
    iam.create_role(RoleName="github-deploy", Path="/ci/", AssumeRolePolicyDocument=json.dumps(github_trust(provider)),
                    PermissionsBoundary=boundary, Tags=[{"Key": "repo", "Value": "example-org/app"}])
    return {"deploy": deploy, "boundary": boundary, "provider": provider}


def test_fetch_account_reads_identities_policies_and_report(estate: dict[str, str]) -> None:
    account = fetch_account(boto3.Session())

    assert account.problems == []
    assert account.account_id == ACCOUNT
    details = account.authorization_details
    assert sorted(details) == ["GroupDetailList", "Policies", "RoleDetailList", "UserDetailList"]
    json.dumps(details)  # plain JSON, as the CLI prints it: no datetimes left

    users = by_name(details["UserDetailList"], "UserName")
    assert sorted(users) == ["alice", "ci-deployer"]
    assert users["ci-deployer"]["Path"] == "/service/"
    assert users["ci-deployer"]["Tags"] == [{"Key": "owner", "Value": "platform"}]
    assert users["ci-deployer"]["AttachedManagedPolicies"] == [
        {"PolicyName": "deploy-artifacts", "PolicyArn": estate["deploy"]}]
    assert users["alice"]["GroupList"] == ["developers"]
    assert ISO_UTC.fullmatch(users["alice"]["CreateDate"])

    groups = by_name(details["GroupDetailList"], "GroupName")
    assert list(groups) == ["developers"]
    assert groups["developers"]["GroupPolicyList"] == [{"PolicyName": "read-logs", "PolicyDocument": READ_LOGS}]

    roles = by_name(details["RoleDetailList"], "RoleName")
    assert sorted(roles) == ["github-deploy", "lambda-exec", "partner-audit"]
    assert roles["lambda-exec"]["AssumeRolePolicyDocument"] == LAMBDA_TRUST
    assert roles["lambda-exec"]["AttachedManagedPolicies"] == [
        {"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": LAMBDA_BASIC}]
    assert roles["lambda-exec"]["Tags"] == [{"Key": "app", "Value": "thumbnails"}]
    assert roles["partner-audit"]["AssumeRolePolicyDocument"] == PARTNER_TRUST
    assert roles["partner-audit"]["RolePolicyList"] == [{"PolicyName": "audit", "PolicyDocument": AUDIT}]
    github = roles["github-deploy"]
    assert github["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/ci/github-deploy"
    assert github["AssumeRolePolicyDocument"] == github_trust(estate["provider"])
    assert estate["provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}"
    assert github["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": estate["boundary"]}
    assert github["Tags"] == [{"Key": "repo", "Value": "example-org/app"}]
    assert "PermissionsBoundary" not in roles["lambda-exec"]

    # This moto lists all ~1,500 AWS managed policies, as AWS does; only the attached one is kept.
    policies = by_name(details["Policies"], "Arn")
    assert sorted(policies) == sorted([estate["deploy"], estate["boundary"], LAMBDA_BASIC])
    deploy = policies[estate["deploy"]]
    assert deploy["DefaultVersionId"] == "v2"
    assert deploy["AttachmentCount"] == 1
    default = [v for v in deploy["PolicyVersionList"] if v["IsDefaultVersion"]]
    assert [(v["VersionId"], v["Document"]) for v in default] == [("v2", DEPLOY_V2)]
    assert ISO_UTC.fullmatch(default[0]["CreateDate"])

    report = account.credential_report
    assert report.startswith("user,arn,user_creation_time,")
    rows = {row["user"]: row for row in csv.DictReader(io.StringIO(report))}
    rows.pop("<root_account>", None)  # AWS writes one; moto does not
    assert sorted(rows) == ["alice", "ci-deployer"]
    assert rows["ci-deployer"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/service/ci-deployer"
    assert (rows["ci-deployer"]["access_key_1_active"], rows["ci-deployer"]["access_key_2_active"]) == ("true", "false")
    assert (rows["alice"]["access_key_1_active"], rows["alice"]["access_key_2_active"]) == ("false", "false")
    assert (rows["alice"]["password_enabled"], rows["ci-deployer"]["password_enabled"]) == ("true", "false")


def test_aws_managed_policy_used_only_as_a_boundary_is_kept(aws_live_with_aws_policies: str) -> None:
    # moto, like AWS, leaves AttachmentCount at 0 for a boundary; the reference from the role keeps it.
    read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam = boto3.client("iam")
    iam.create_role(RoleName="bounded", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
                    PermissionsBoundary=read_only)

    details = fetch_account(boto3.Session()).authorization_details

    assert [p["Arn"] for p in details["Policies"]] == [read_only]
    assert details["Policies"][0]["AttachmentCount"] == 0


def test_report_not_ready_in_time_is_a_problem(aws_live: str) -> None:
    boto3.client("iam").create_user(UserName="solo")

    # moto answers STARTED to the first request, COMPLETE to the next: no wait means no report.
    account = fetch_account(boto3.Session(), report_wait_seconds=0)

    assert account.credential_report == ""
    assert account.problems == ["iam:GenerateCredentialReport: report still STARTED after 0s"]
    assert [u["UserName"] for u in account.authorization_details["UserDetailList"]] == ["solo"]


def user_session(iam, name: str, policy: dict) -> boto3.Session:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="access", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                         region_name="us-east-1")


def test_access_denied_becomes_a_problem_not_an_exception(enforce_iam: Callable[[], None]) -> None:
    iam = boto3.client("iam")
    auditor = user_session(iam, "auditor", doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["iam:GenerateCredentialReport", "iam:GetCredentialReport"], "Resource": "*"},
    ))
    enforce_iam()

    account = fetch_account(auditor)

    assert account.account_id == ACCOUNT
    assert [u["UserName"] for u in account.authorization_details["UserDetailList"]] == ["auditor"]
    assert account.credential_report == ""
    assert len(account.problems) == 2
    assert account.problems[0].startswith("iam:GenerateCredentialReport failed with AccessDenied")
    assert account.problems[1].startswith("iam:GetCredentialReport failed with AccessDenied")


def test_default_credentials_give_one_session(aws_live: str) -> None:
    [(label, session, error)] = list(account_sessions())

    assert (label, error) == ("default", None)
    assert session is not None
    assert session.client("sts").get_caller_identity()["Account"] == ACCOUNT


def test_missing_profile_is_yielded_as_an_error(aws_live: str) -> None:
    assert list(account_sessions(profile="nope")) == [
        ("nope", None, "cannot open AWS profile 'nope': The config profile (nope) could not be found")]


def test_role_is_assumed_in_each_account(aws_live: str) -> None:
    # moto switches account by the ARN assumed, so setting up the member account goes through STS too.
    setup = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/setup", RoleSessionName="setup")["Credentials"]
    member = boto3.client("iam", aws_access_key_id=setup["AccessKeyId"],
                          aws_secret_access_key=setup["SecretAccessKey"], aws_session_token=setup["SessionToken"])
    member.create_role(RoleName="nhiwatch-read", AssumeRolePolicyDocument=json.dumps(doc({
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "nhi-123"}}})))
    member.create_user(UserName="member-service")

    [(label, session, error)] = list(account_sessions(
        role_name="nhiwatch-read", account_ids=[OTHER_ACCOUNT], external_id="nhi-123", session_name="inv"))

    assert (label, error) == (OTHER_ACCOUNT, None)
    assert session is not None
    identity = session.client("sts").get_caller_identity()
    assert identity["Account"] == OTHER_ACCOUNT
    assert identity["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/nhiwatch-read/inv"
    account = fetch_account(session)
    assert account.account_id == OTHER_ACCOUNT
    assert [u["UserName"] for u in account.authorization_details["UserDetailList"]] == ["member-service"]


def test_failed_assume_role_is_yielded_and_the_rest_continue(
        enforce_iam: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = f"arn:aws:iam::{OTHER_ACCOUNT}:role/nhiwatch-read"
    hub = user_session(boto3.client("iam"), "hub", doc({"Effect": "Allow", "Action": "sts:AssumeRole",
                                                        "Resource": allowed}))
    credentials = hub.get_credentials()
    # account_sessions builds its base session from the environment, as it would from an instance role.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    enforce_iam()

    results = list(account_sessions(role_name="nhiwatch-read", account_ids=["222222222222", OTHER_ACCOUNT, "12345"]))

    assert [label for label, _, _ in results] == ["222222222222", OTHER_ACCOUNT, "12345"]
    denied, granted, malformed = results
    assert denied[1] is None
    assert denied[2].startswith(
        "sts:AssumeRole arn:aws:iam::222222222222:role/nhiwatch-read failed with AccessDenied")
    assert granted[1] is not None and granted[2] is None
    assert malformed[1] is None and "12-digit" in malformed[2]


def test_role_name_and_accounts_go_together() -> None:
    with pytest.raises(ValueError):
        account_sessions(role_name="nhiwatch-read")
    with pytest.raises(ValueError):
        account_sessions(account_ids=[ACCOUNT])


def test_read_account_list_accepts_plain_and_csv(tmp_path) -> None:
    plain = tmp_path / "accounts.txt"
    plain.write_text("# production\n123456789012\n\n  210987654321  # payments\n123456789012\n")
    table = tmp_path / "accounts.csv"
    table.write_text("\ufeffaccount_id,name\n123456789012,prod\n\"012345678901\",\"sandbox, old\"\n", encoding="utf-8")

    assert read_account_list(plain) == ["123456789012", "210987654321"]
    assert read_account_list(table) == ["123456789012", "012345678901"]


def test_read_account_list_names_the_bad_line(tmp_path) -> None:
    path = tmp_path / "accounts.txt"
    path.write_text("# accounts\n123456789012\n\n12345678901\n")

    with pytest.raises(ValueError, match=r"line 4: '12345678901' is not a 12-digit AWS account id"):
        read_account_list(path)


def _nhiwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nhiwatch", *args], capture_output=True, text=True)


def test_live_load_equals_loading_the_exported_files(estate: dict[str, str], tmp_path) -> None:
    """`inventory load --live` and loading the same account's exported files give the same inventory."""
    as_of = "2026-12-01T00:00:00Z"
    live = _nhiwatch("inventory", "load", "--live", "--as-of", as_of, "--json", "--home", str(tmp_path / "live"))
    assert live.returncode == 0, live.stdout + live.stderr
    assert json.loads(live.stdout)["stored"]["authorization-details"] == [ACCOUNT]

    # Export as `aws iam get-account-authorization-details` prints it, split in two files as pages are
    # (moto answers in one page whatever MaxItems says), plus the credential report.
    iam = boto3.client("iam")
    export = tmp_path / "export"
    export.mkdir()
    page = iam.get_account_authorization_details(Filter=["User", "Role", "Group", "LocalManagedPolicy"])
    page.pop("ResponseMetadata", None)
    halves = ({k: page[k] for k in ("UserDetailList", "GroupDetailList")},
              {k: page[k] for k in ("RoleDetailList", "Policies")})
    for number, half in enumerate(halves):
        (export / f"authz-{number}.json").write_text(json.dumps(half, default=lambda d: d.isoformat()))
    attached = iam.get_policy(PolicyArn=LAMBDA_BASIC)["Policy"]
    version = iam.get_policy_version(PolicyArn=LAMBDA_BASIC, VersionId=attached["DefaultVersionId"])["PolicyVersion"]
    (export / "aws-policies.json").write_text(json.dumps({"Policies": [dict(
        attached, PolicyVersionList=[version])]}, default=lambda d: d.isoformat()))
    (export / "credential-report.csv").write_bytes(iam.get_credential_report()["Content"])
    files = _nhiwatch("inventory", "load", str(export), "--as-of", as_of, "--json", "--home", str(tmp_path / "files"))
    assert files.returncode == 0, files.stdout + files.stderr

    def view(home: str) -> tuple[list, list]:
        listed = json.loads(_nhiwatch("inventory", "list", "--json", "--home", str(tmp_path / home)).stdout)
        posture = json.loads(_nhiwatch("posture", "--json", "--min-severity", "info", "--home",
                                       str(tmp_path / home)).stdout)
        return listed["identities"], posture

    live_view, file_view = view("live"), view("files")
    assert live_view == file_view
    identities = {row["name"]: row for row in live_view[0]}
    # groups are identities too (a group stands for its members in the escalation graph)
    assert set(identities) == {"ci-deployer", "alice", "lambda-exec", "partner-audit", "github-deploy", "developers"}
    assert identities["developers"]["nhi_type"] == "group"
    assert identities["github-deploy"]["nhi_type"] == "oidc-role"
    assert identities["partner-audit"]["type_detail"] == "999988887777 (ExternalId)"
    assert (identities["ci-deployer"]["category"], identities["ci-deployer"]["nhi_type"]) == (
        "non-human", "user-with-keys")
    assert identities["alice"]["category"] == "human"

"""Organizations SCPs and RCPs and resource policies read live through a moto server (real HTTP; see
moto_server.py), and through the CLI: `inventory load --live` and `inventory org-export`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from nhiwatch.inventory.capabilities import POSSIBLE, capability_reach
from nhiwatch.inventory.graph import PrincipalGraph
from nhiwatch.inventory.live import fetch_account
from nhiwatch.inventory.organization import fetch_organization, organization_of, read_organization
from nhiwatch.inventory.resource_policies import fetch_resource_policies, resources_of
from test_org_policies import AS_OF, DATA_PERIMETER, REGION, allow, doc, export, role, trusts

# The fixtures aws_live and enforce_iam, from tests/moto_server.py.
pytest_plugins = ["moto_server"]

MOTO_ACCOUNT = "123456789012"  # moto's default account: the management account of the organization made here


def _session_in(account: str) -> boto3.Session:
    # moto switches account by the ARN assumed (the role need not exist for setting up)
    credentials = boto3.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/setup",
                                                  RoleSessionName="setup")["Credentials"]
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"], region_name=REGION)


@pytest.fixture
def live_org(aws_live: str) -> dict[str, str]:
    """An organization: a member account in an OU whose SCP denies iam:*, an RCP perimeter at the root, and
    in the member account a user that can write its own inline policy (a route to admin without the SCP)."""
    orgs = boto3.client("organizations")
    org_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root = orgs.list_roots()["Roots"][0]["Id"]
    for kind in ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"):
        orgs.enable_policy_type(RootId=root, PolicyType=kind)
    ou = orgs.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    member = orgs.create_account(AccountName="member", Email="member@example.com")["CreateAccountStatus"]["AccountId"]
    orgs.move_account(AccountId=member, SourceParentId=root, DestinationParentId=ou)
    deny_iam = orgs.create_policy(Name="deny-iam", Description="", Type="SERVICE_CONTROL_POLICY",
                                  Content=json.dumps(doc(allow("iam:*", effect="Deny"))))["Policy"]["PolicySummary"]
    orgs.attach_policy(PolicyId=deny_iam["Id"], TargetId=ou)
    perimeter = orgs.create_policy(Name="perimeter", Description="", Type="RESOURCE_CONTROL_POLICY",
                                   Content=json.dumps(DATA_PERIMETER))["Policy"]["PolicySummary"]
    orgs.attach_policy(PolicyId=perimeter["Id"], TargetId=root)

    iam = _session_in(member).client("iam")
    iam.create_role(RoleName="nhiwatch-read", AssumeRolePolicyDocument=json.dumps(
        trusts(f"arn:aws:iam::{MOTO_ACCOUNT}:root")))
    iam.create_user(UserName="escalator")
    iam.put_user_policy(UserName="escalator", PolicyName="self", PolicyDocument=json.dumps(
        doc(allow("iam:PutUserPolicy", f"arn:aws:iam::{member}:user/escalator"))))
    return {"org": org_id, "root": root, "ou": ou, "member": member, "deny_iam": deny_iam["Id"],
            "perimeter": perimeter["Id"]}


def test_live_organization_is_read_and_its_scp_removes_the_route(live_org: dict[str, str]) -> None:
    document, problems, notes = fetch_organization(boto3.Session(region_name=REGION))
    assert (problems, notes) == ([], [])
    read_problems: list[str] = []
    normalized = read_organization(document, "live", read_problems)
    assert read_problems == []
    member = live_org["member"]
    assert normalized["Organization"] == {"Id": live_org["org"], "MasterAccountId": MOTO_ACCOUNT}
    assert normalized["Accounts"][member] == [live_org["root"], live_org["ou"]]
    assert live_org["deny_iam"] in normalized["Targets"][live_org["ou"]]
    assert live_org["perimeter"] in normalized["Targets"][live_org["root"]]
    org = organization_of(normalized)
    assert org.management_account == MOTO_ACCOUNT
    assert [name for name, _ in org.scps[member]] == [f"SCPs at {live_org['root']}", f"SCPs at {live_org['ou']}",
                                                      f"SCPs at {member}"]
    # AWS (and moto) attach RCPFullAWSAccess at every level; the perimeter sits at the root
    assert [name for name, _ in org.rcps[member]] == [f"RCPs at {live_org['root']}", f"RCPs at {live_org['ou']}",
                                                      f"RCPs at {member}"]
    assert any("perimeter" in policy.origin for policy in org.rcps[member][0][1])

    fetched = fetch_account(_session_in(member), report_wait_seconds=5)
    escalator = f"arn:aws:iam::{member}:user/escalator"
    exports = {member: fetched.authorization_details}
    assert [r.methods for r in PrincipalGraph.build(exports, as_of=AS_OF).routes(escalator)] == [("iam-007",)]
    assert PrincipalGraph.build(exports, as_of=AS_OF, org=org).routes(escalator, POSSIBLE) == []


def test_not_in_an_organization_is_a_note(aws_live: str) -> None:
    document, problems, notes = fetch_organization(boto3.Session(region_name=REGION))
    assert document is None and problems == []
    assert notes == ["the account is not in an AWS Organization: no SCP or RCP applies"]


def test_access_denied_on_organizations_is_a_problem(aws_live: str, enforce_iam) -> None:
    boto3.client("organizations").create_organization(FeatureSet="ALL")
    iam = boto3.client("iam")
    iam.create_user(UserName="iam-only")
    iam.put_user_policy(UserName="iam-only", PolicyName="p", PolicyDocument=json.dumps(doc(allow("iam:*"))))
    key = iam.create_access_key(UserName="iam-only")["AccessKey"]
    session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                            region_name=REGION)
    enforce_iam()
    document, problems, notes = fetch_organization(session)
    assert document is None and notes == []
    assert len(problems) == 1
    # moto's access check answers this JSON-protocol API in XML, which botocore reports as a bare 403 with
    # the body as the message; AWS says AccessDeniedException. Either way: a problem naming the call.
    assert problems[0].startswith("organizations:DescribeOrganization failed with ")
    assert "AccessDenied" in problems[0]
    assert problems[0].endswith("; SCPs and RCPs not applied")


def test_live_resource_policies_are_read(aws_live: str) -> None:
    reader = f"arn:aws:iam::{MOTO_ACCOUNT}:role/app"
    grant = doc({"Effect": "Allow", "Principal": {"AWS": reader}, "Action": "secretsmanager:GetSecretValue",
                 "Resource": "*"})
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secret = secrets.create_secret(Name="db-password", SecretString="hunter2")["ARN"]
    secrets.put_resource_policy(SecretId=secret, ResourcePolicy=json.dumps(grant))
    secrets.create_secret(Name="no-policy", SecretString="x")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="reports")
    bucket_policy = doc({"Effect": "Allow", "Principal": {"AWS": reader}, "Action": "s3:GetObject",
                         "Resource": "arn:aws:s3:::reports/*"})
    s3.put_bucket_policy(Bucket="reports", Policy=json.dumps(bucket_policy))
    s3.create_bucket(Bucket="plain")
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Policy=json.dumps(doc({"Effect": "Allow", "Principal": {"AWS": reader}, "Action": "kms:*",
                                                "Resource": "*"})))["KeyMetadata"]["Arn"]

    found = fetch_resource_policies(boto3.Session(region_name=REGION), MOTO_ACCOUNT)
    assert found.problems == []
    stored = found.policies[MOTO_ACCOUNT]
    assert set(stored) == {secret, "arn:aws:s3:::reports", key}
    assert stored[secret]["Policy"] == grant
    assert stored["arn:aws:s3:::reports"] == {"Policy": bucket_policy, "Account": MOTO_ACCOUNT}

    app = role("app", trusts(f"arn:aws:iam::{MOTO_ACCOUNT}:user/nobody"), allow("logs:PutLogEvents"),
               account=MOTO_ACCOUNT)
    graph = PrincipalGraph.build({MOTO_ACCOUNT: export(app)}, as_of=AS_OF, resources=resources_of(found.policies))
    reach = capability_reach(graph)
    assert reach.route(app["Arn"], "secrets").grant.check.resource == secret
    assert reach.route(app["Arn"], "data").grant.check.resource == "arn:aws:s3:::reports/*"
    assert reach.route(app["Arn"], "kms").grant.check.resource == key


def _nhiwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nhiwatch", *args], capture_output=True, text=True, timeout=300)


def test_cli_live_load_applies_the_scp_and_org_export_round_trips(live_org: dict[str, str], tmp_path: Path) -> None:
    member = live_org["member"]
    escalator = f"arn:aws:iam::{member}:user/escalator"
    home = str(tmp_path / "live")
    loaded = _nhiwatch("inventory", "load", "--live", "--role-name", "nhiwatch-read", "--account", member,
                       "--as-of", "2026-06-01T00:00:00Z", "--json", "--home", home)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["stored"]["organization"] == [live_org["org"]]
    assert summary["stored"]["resource-policies"] == [member]
    paths = json.loads(_nhiwatch("posture", "paths", escalator, "--json", "--home", home).stdout)
    assert paths["routes"] == [] and paths["methods"] == []

    # the exported file, loaded with the same account's export, gives the same answer; without it, a route
    exported = _nhiwatch("inventory", "org-export", "-o", str(tmp_path / "org.json"), "--json")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert json.loads(exported.stdout)["scps"] == 2 and json.loads(exported.stdout)["rcps"] == 2
    fetched = fetch_account(_session_in(member), report_wait_seconds=5)
    (tmp_path / "authz.json").write_text(json.dumps(fetched.authorization_details))
    for with_org, expected in ((True, []), (False, ["iam-007"])):
        home = str(tmp_path / f"files-{with_org}")
        files = [str(tmp_path / "authz.json")] + ([str(tmp_path / "org.json")] if with_org else [])
        assert _nhiwatch("inventory", "load", *files, "--as-of", "2026-06-01T00:00:00Z", "--home", home,
                         "--quiet").returncode == 0
        paths = json.loads(_nhiwatch("posture", "paths", escalator, "--json", "--home", home).stdout)
        assert paths["methods"] == expected

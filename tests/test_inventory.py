"""The inventory on real and hand-made IAM exports: classification, posture, risk, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nhiwatch.inventory.build import build_inventory
from nhiwatch.inventory.persist import get_identity, list_identities, posture_findings, rebuild, save_sources
from nhiwatch.inventory.policy import PermissionSet, statements_of
from nhiwatch.inventory.sources import SourceError, merge_authz, read_source
from nhiwatch.inventory.trust import analyze_trust

from conftest import SHARED_DATA

FIXTURES = Path(__file__).parent / "fixtures" / "iam"
CLOUDSPLAINING_EXAMPLE = SHARED_DATA / "iam" / "cloudsplaining" / "example.json"
HAND_MADE = FIXTURES / "hand-made"
HAND_AUTHZ = HAND_MADE / "authorization-details.json"
HAND_REPORT = HAND_MADE / "credential-report.csv"
AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)
ACCOUNT = "111122223333"


def inventory_of(*paths: Path, as_of: datetime = AS_OF):
    authz, reports = {}, {}
    for path in paths:
        source = read_source(path)
        target = authz if source.kind == "authorization-details" else reports
        for account, payload in source.accounts.items():
            target.setdefault(account, []).append(payload)
    merged = {a: merge_authz(pages) for a, pages in authz.items()}
    rows = {a: [r for page in pages for r in page] for a, pages in reports.items()}
    return {i.name if i.kind != "root" else "root": i for i in build_inventory(merged, rows, as_of)}


@pytest.fixture(scope="module")
def hand_made():
    return inventory_of(HAND_AUTHZ, HAND_REPORT)


def checks(identity) -> dict[str, str]:
    return {f.check: f.severity for f in identity.findings}


# -- Cloudsplaining's example account -------------------------------------------------------

def _cloudsplaining_privesc_principals(results: dict) -> set[str]:
    """Principals holding a policy (directly or through a group) that Cloudsplaining flags."""
    def flagged(section: str, ids) -> bool:
        return any(((results[section].get(pid) or {}).get("PrivilegeEscalation") or {}).get("findings")
                   for pid in ids)

    def policy_hits(principal: dict) -> bool:
        return (flagged("customer_managed_policies", principal.get("customer_managed_policies", {}))
                or flagged("aws_managed_policies", principal.get("aws_managed_policies", {}))
                or flagged("inline_policies", principal.get("inline_policies", {})))

    groups_by_name = {g["name"]: g for g in results["groups"].values()}
    found = set()
    for section in ("users", "roles"):
        for principal in results[section].values():
            hit = policy_hits(principal)
            for group in principal.get("groups", {}) if section == "users" else ():
                group_detail = results["groups"].get(group) or groups_by_name.get(group)
                hit = hit or bool(group_detail and policy_hits(group_detail))
            if hit:
                found.add(principal["arn"])
    return found


def test_privilege_escalation_agrees_with_cloudsplaining(tmp_path):
    executable = Path(sys.executable).parent / "cloudsplaining"
    if not executable.exists():
        pytest.fail("cloudsplaining is a test dependency: pip install -e '.[test]'")
    subprocess.run([str(executable), "scan", "--input-file", str(CLOUDSPLAINING_EXAMPLE), "--output",
                    str(tmp_path), "--skip-open-report"], check=True, capture_output=True, cwd=tmp_path)
    results = json.loads((tmp_path / "iam-results-example.json").read_text())
    theirs = _cloudsplaining_privesc_principals(results)
    inventory = build_inventory({a: merge_authz([p]) for a, p in read_source(CLOUDSPLAINING_EXAMPLE).accounts.items()},
                                {}, AS_OF)
    ours = {i.arn for i in inventory if i.capabilities["admin"] or i.capabilities["privesc"]}
    allowed = json.loads((FIXTURES / "cloudsplaining-differences.json").read_text())
    assert len(theirs) > 50, "Cloudsplaining's output changed shape: no principals found"
    assert theirs - ours == set(allowed["cloudsplaining_only"])
    assert ours - theirs == set(allowed["nhiwatch_only"])


def test_classification_of_every_cloudsplaining_identity():
    expected = json.loads((FIXTURES / "cloudsplaining-classification.json").read_text())["identities"]
    source = read_source(CLOUDSPLAINING_EXAMPLE)
    inventory = build_inventory({a: merge_authz([p]) for a, p in source.accounts.items()}, {}, AS_OF)
    got = {i.arn: [i.category, i.nhi_type] for i in inventory}
    raw = json.loads(CLOUDSPLAINING_EXAMPLE.read_text())
    assert len(got) == len(raw["UserDetailList"]) + len(raw["RoleDetailList"]) + len(raw["GroupDetailList"]) \
        == len(expected)
    assert got == expected
    for identity in inventory:
        assert identity.evidence, f"{identity.arn} has no evidence for its classification"


def test_cloudsplaining_example_highlights():
    inv = {i.name: i for i in build_inventory(
        {a: merge_authz([p]) for a, p in read_source(CLOUDSPLAINING_EXAMPLE).accounts.items()}, {}, AS_OF)}
    sso = inv["AWSReservedSSO_AdministratorAccess_dc6414f7f2ab04fc"]
    assert (sso.category, sso.nhi_type) == ("human", "saml-role")
    org = inv["OrganizationAccountAccessRole"]
    assert org.nhi_type == "cross-account-role" and "072528804237" in org.type_detail
    assert checks(org)["trust-cross-account-no-external-id"] == "high"  # admin role, no ExternalId
    # fp1: an Allow and a Deny in the same policy; fp3: Deny of iam: neither escalates
    assert not inv["fp1-allow-and-deny-role"].capabilities["privesc"]
    assert not inv["fp3-deny-iam-role"].capabilities["privesc"]
    # conditions are decided where the request tells: a fresh session's token is newer than 2020 (fn3 can,
    # fp5 cannot)
    assert checks(inv["fn3-exploitableConditionConstraint-role"])["privilege-escalation"] == "high"
    assert "privilege-escalation" not in checks(inv["fp5-nonExploitableConditionConstraint-role"])
    # a key for another user (catalogue id iam-002), then that user's own escalation: the route says how
    privesc4 = inv["privesc4-CreateAccessKey-role"].capabilities
    assert privesc4["privesc"][:1] == ["iam-002"] and privesc4["privesc_route"]["hops"][0]["method"] == "iam-002"
    # a chain of two sts:AssumeRole hops, each trust naming the previous role
    chain = inv["privesc-AssumeRole-starting-role"].capabilities["privesc_route"]
    assert [h["to"].rsplit("/", 1)[-1] for h in chain["hops"]] == ["privesc-AssumeRole-intermediate-role",
                                                                   "privesc-AssumeRole-ending-role"]
    # a group stands for its members: its member can write the group's policy
    group = inv["privesc11-PutGroupPolicy-group"]
    assert group.kind == "group" and group.capabilities["privesc"] == ["iam-011"]
    assert group.capabilities["privesc_route"]["via_member"].endswith("user/privesc11-PutGroupPolicy-user")
    slr = inv["AWSServiceRoleForAmazonSSM"]
    assert slr.nhi_type == "service-linked-role" and checks(slr)["privilege-escalation"] == "info"


# -- hand-made OIDC, cross-account and credential-report cases ----------------------------

@pytest.mark.parametrize("name, severity, words", [
    ("gh-no-sub", "critical", "no condition on the token's `sub`"),
    ("gh-owner-wildcard", "critical", "wildcards the owner"),
    ("gh-forallvalues", "critical", "ForAllValues"),
    ("gh-org-wildcard", "high", "every repository of acme"),
    ("gitlab-group-wildcard", "high", "every project of acme"),
    ("gh-any-branch", "medium", "any branch"),
])
def test_oidc_subject_weaknesses(hand_made, name, severity, words):
    identity = hand_made[name]
    assert (identity.category, identity.nhi_type) == ("non-human", "oidc-role")
    finding = next(f for f in identity.findings if f.check == "oidc-subject-too-broad")
    assert finding.severity == severity and words in finding.detail
    assert finding.owasp == ["NHI6"]


def test_pinned_oidc_roles_are_clean(hand_made):
    for name in ("gh-pinned", "eks-irsa-payments"):
        assert "oidc-subject-too-broad" not in checks(hand_made[name])
        assert "oidc-audience" not in checks(hand_made[name])
    assert hand_made["eks-irsa-payments"].type_detail.startswith("eks; sub system:serviceaccount:payments:api")
    assert checks(hand_made["gh-no-aud"])["oidc-audience"] == "medium"
    assert hand_made["gh-pinned"].owner == "platform@acme.example" and hand_made["gh-pinned"].team == "platform"


def test_cross_account_trust(hand_made):
    guarded, open_, admin = (hand_made[n] for n in ("vendor-with-external-id", "vendor-no-external-id",
                                                     "vendor-admin-no-external-id"))
    assert guarded.nhi_type == open_.nhi_type == admin.nhi_type == "cross-account-role"
    assert guarded.type_detail == "999988887777 (ExternalId)"
    assert "trust-cross-account-no-external-id" not in checks(guarded)
    assert checks(open_)["trust-cross-account-no-external-id"] == "medium"
    assert checks(admin)["trust-cross-account-no-external-id"] == "high"  # bare account id, admin rights
    assert checks(hand_made["public-role"])["trust-any-principal"] == "critical"
    assert checks(hand_made["org-guarded-public"])["trust-any-principal"] == "medium"


def test_credential_report_special_values(hand_made):
    root = hand_made["root"]
    assert (root.kind, root.category, root.nhi_type) == ("root", "human", "root")
    assert checks(root)["root-access-key"] == "critical"
    assert root.password_enabled is None  # not_supported
    shared = hand_made["shared-admin"]
    assert shared.category == "human-use-of-nhi" and shared.password_last_used is None  # no_information
    assert checks(shared)["human-use-of-nhi"] == "medium" and shared.owner is None
    ci = hand_made["ci-deployer"]
    assert (ci.category, ci.nhi_type) == ("non-human", "user-with-keys")
    assert ci.keys[0].last_used_service == "cloudformation" and len(ci.keys) == 1  # key 2 is all N/A
    assert (hand_made["alice"].category, hand_made["alice"].nhi_type) == ("human", "console-user")
    assert checks(hand_made["never-used-key"])["static-key-never-used"] == "medium"
    assert checks(hand_made["old-key-bot"])["static-key-old"] == "high"  # 426 days
    assert checks(hand_made["two-keys-bot"])["two-active-keys"] == "medium"
    dormant = hand_made["dormant-bot"]
    assert checks(dormant)["static-key-unused"] == "medium"
    assert [k.active for k in dormant.keys] == [True, False]


def test_boundaries_denies_and_self_targets(hand_made):
    assert not hand_made["lambda-iam-bounded"].capabilities["privesc"]  # boundary excludes iam
    denied = hand_made["lambda-iam-denied"].capabilities["privesc"]
    assert "iam-005" not in denied and "iam-008" not in denied  # PutRolePolicy, AttachUserPolicy denied
    # PutUserPolicy on itself escalates; CreateAccessKey on itself only mints a key it could already use
    assert hand_made["self-escalator"].capabilities["privesc"] == ["iam-007"]
    # URL-encoded policy; the role passed is stale-admin-automation, admin and trusting Lambda
    lambda_route = hand_made["lambda-passrole"].capabilities["privesc_route"]
    assert hand_made["lambda-passrole"].capabilities["privesc"] == ["lambda-001"]
    assert lambda_route["admin"].endswith("role/stale-admin-automation")
    assert checks(hand_made["alice"])["admin-access"] == "medium"  # through her group, human
    assert hand_made["alice"].policies[0].via == "admins"


def test_classification_of_hand_made_roles(hand_made):
    expected = {
        "batch-ec2": ("non-human", "instance-profile-role"), "ecs-api-task": ("non-human", "service-role"),
        "AWSServiceRoleForECS": ("non-human", "service-linked-role"),
        "AWSReservedSSO_ReadOnly_0123456789abcdef": ("human", "saml-role"),
        "break-glass-shared": ("human-use-of-nhi", "service-role"),
        "chained-worker": ("non-human", "internal-role"), "public-role": ("unknown", "internal-role"),
    }
    assert {n: (hand_made[n].category, hand_made[n].nhi_type) for n in expected} == expected
    assert hand_made["ecs-api-task"].type_detail == "ecs-tasks"


def test_unused_identities_and_risk_order(hand_made):
    stale = hand_made["stale-admin-automation"]
    assert checks(stale)["unused-identity"] == "medium"  # privileged and never used
    assert checks(hand_made["batch-ec2"])["unused-identity"] == "low"
    assert "unused-identity" not in checks(hand_made["gh-pinned"])
    # an admin-capable static key outranks a read-only workload role
    assert hand_made["shared-admin"].risk_score > hand_made["ecs-api-task"].risk_score > \
        hand_made["AWSServiceRoleForECS"].risk_score
    for identity in hand_made.values():
        counted = sum(r.counted for r in identity.risk_reasons)
        assert counted == identity.risk_score, identity.name
        assert identity.risk_level in ("critical", "high", "medium", "low")


# -- policy and trust units -------------------------------------------------------------------

def test_policy_documents_in_every_encoding():
    plain = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}}
    encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C" \
              "%22Action%22%3A%22s3%3AGet%2A%22%2C%22Resource%22%3A%22%2A%22%7D%7D"
    for document in (plain, json.dumps(plain), encoded):
        permissions = PermissionSet(statements_of(document, "p"))
        assert permissions.grant("s3:GetObject") and not permissions.grant("s3:PutObject")
    scoped = PermissionSet(statements_of({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                         "Resource": "arn:aws:s3:::bucket/*"}]}, "p"))
    assert scoped.grant("s3:GetObject") is None and scoped.allows_somewhere("s3:GetObject")


def test_trust_policy_reading():
    trust = analyze_trust({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:root",
                                                                                   "arn:aws:iam::111122223333:role/x"]},
                                          "Action": "sts:AssumeRole", "Condition": {"StringEquals": {
                                              "sts:ExternalId": "abc"}}}]}, ACCOUNT)
    assert [a.account_id for a in trust.external_accounts] == ["123456789012"]
    assert trust.external_accounts[0].external_id and trust.own_account_principals == [
        "arn:aws:iam::111122223333:role/x"]
    assert analyze_trust("not json", ACCOUNT).problems[0].startswith("trust policy: policy document is not JSON")


# -- damaged input --------------------------------------------------------------------------

def test_truncated_export_keeps_what_is_readable(tmp_path):
    text = HAND_AUTHZ.read_text()
    cut = text.index('"RoleName": "gh-any-branch"')
    (tmp_path / "cut.json").write_text(text[:cut])
    source = read_source(tmp_path / "cut.json")
    roles = source.accounts[ACCOUNT]["RoleDetailList"]
    assert [r["RoleName"] for r in roles] == ["gh-no-sub", "gh-org-wildcard", "gh-owner-wildcard"]
    assert len(source.accounts[ACCOUNT]["UserDetailList"]) == 8
    assert any("RoleDetailList[3] is cut off" in p and "line" in p for p in source.problems), source.problems


def test_bad_policy_document_and_unknown_fields(tmp_path):
    data = json.loads(HAND_AUTHZ.read_text())
    data["RoleDetailList"][0]["RolePolicyList"][0]["PolicyDocument"] = "{not json"
    data["RoleDetailList"][1]["FutureField"] = 1
    data["UserDetailList"][2] = "garbage"
    data["Extra"] = []
    (tmp_path / "bad.json").write_text(json.dumps(data))
    source = read_source(tmp_path / "bad.json")
    problems = "\n".join(source.problems)
    assert "RoleDetailList[0] (gh-no-sub): inline policy 'deploy': policy document is not JSON" in problems
    assert "unknown field 'FutureField' in RoleDetailList[1]" in problems
    assert "UserDetailList[2] is a str, not an object; skipped" in problems
    assert "unknown top-level field 'Extra'" in problems
    inventory = {i.name: i for i in build_inventory({a: merge_authz([p]) for a, p in source.accounts.items()}, {},
                                                    AS_OF)}
    assert len(inventory) == 32  # 24 roles + 7 users + 1 group: only the garbage entry is gone
    assert inventory["gh-no-sub"].policies[0].readable is False
    assert any("document unavailable" in p for p in inventory["gh-no-sub"].problems)


def test_fields_of_the_wrong_shape_lose_only_themselves(tmp_path):
    data = json.loads(HAND_AUTHZ.read_text())
    roles = data["RoleDetailList"]
    roles[0]["PermissionsBoundary"] = "arn:aws:iam::aws:policy/ReadOnlyAccess"  # a string, not an object
    roles[1]["InstanceProfileList"] = {"InstanceProfileName": "x"}             # an object, not a list
    roles[2]["AttachedManagedPolicies"] = [None, {"PolicyName": "p", "PolicyArn": None}, 7]
    roles[3]["Tags"] = [["team", "x"]]
    data["UserDetailList"][0]["GroupList"] = [{"GroupName": "admins"}]
    (tmp_path / "odd.json").write_text(json.dumps(data))
    source = read_source(tmp_path / "odd.json")
    problems = "\n".join(source.problems)
    assert "PermissionsBoundary is a str, not an object; ignored" in problems
    assert "InstanceProfileList is a dict, not a list; ignored" in problems
    assert "2 entries of AttachedManagedPolicies are not objects; left out" in problems
    assert "1 entries of Tags are not objects" in problems and "GroupList are not names" in problems
    inventory = build_inventory({a: merge_authz([p]) for a, p in source.accounts.items()}, {}, AS_OF)
    assert {i.name for i in inventory} >= {r["RoleName"] for r in roles}  # every role is still there


def test_not_an_export(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(SourceError, match="neither authorization details"):
        read_source(tmp_path / "x.json")
    (tmp_path / "r.csv").write_text("user,name\nx,y\n")
    with pytest.raises(SourceError, match="lacks arn"):
        read_source(tmp_path / "r.csv")


def test_get_credential_report_json_with_base64(tmp_path):
    import base64
    content = base64.b64encode(HAND_REPORT.read_bytes()).decode()
    (tmp_path / "report.json").write_text(json.dumps({"Content": content, "ReportFormat": "text/csv",
                                                       "GeneratedTime": "2026-06-01T00:00:00Z"}))
    source = read_source(tmp_path / "report.json")
    assert source.kind == "credential-report" and len(source.accounts[ACCOUNT]) == 9


# -- the store and the CLI -------------------------------------------------------------------

def test_store_round_trip_and_pages(store, tmp_path):
    data = json.loads(HAND_AUTHZ.read_text())
    first = dict(data, RoleDetailList=data["RoleDetailList"][:10], IsTruncated=True, Marker="m")
    second = dict(data, RoleDetailList=data["RoleDetailList"][10:], UserDetailList=[], IsTruncated=False)
    (tmp_path / "p1.json").write_text(json.dumps(first))
    (tmp_path / "p2.json").write_text(json.dumps(second))
    files = [read_source(tmp_path / "p1.json"), read_source(tmp_path / "p2.json"), read_source(HAND_REPORT)]
    stored = save_sources(store, files, "test")
    assert stored == {"authorization-details": [ACCOUNT], "credential-report": [ACCOUNT]}
    identities = rebuild(store, AS_OF)
    assert len(identities) == 34  # 24 roles + 8 users + 1 group + root, from two pages and the report
    total, rows = list_identities(store, types=["oidc-role"], sort="name")
    assert total == 9 and rows[0]["name"] == "eks-irsa-payments"
    assert get_identity(store, "gh-no-sub").arn == f"arn:aws:iam::{ACCOUNT}:role/gh-no-sub"
    nhi6 = posture_findings(store, owasp="NHI6", min_severity="medium")
    assert {r["arn"].rsplit("/", 1)[-1] for r in nhi6} >= {"gh-no-sub", "gh-org-wildcard", "gh-no-aud"}
    assert all(r["severity"] in ("medium", "high", "critical") for r in nhi6)


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nhiwatch", *args, "--home", str(home)], capture_output=True,
                          text=True)


def test_cli_inventory_commands(tmp_path):
    home = tmp_path / "home"
    missing = run_cli("inventory", "list", home=home)
    assert missing.returncode == 1 and "no store" in missing.stderr
    loaded = run_cli("inventory", "load", str(HAND_MADE), "--as-of", "2026-06-01T00:00:00Z", "--json", home=home)
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["identities"] == 34 and summary["by_category"]["human-use-of-nhi"] == 2
    listed = json.loads(run_cli("inventory", "list", "--type", "user-with-keys", "--json", home=home).stdout)
    assert listed["total"] == 7
    assert listed["identities"][0]["risk_score"] >= listed["identities"][-1]["risk_score"]
    csv_out = run_cli("inventory", "list", "--nhi", "--csv", "--sort", "key-age", home=home).stdout.splitlines()
    assert csv_out[0].startswith("risk_score,risk_level,nhi_type") and len(csv_out) > 20
    shown = run_cli("inventory", "show", f"arn:aws:iam::{ACCOUNT}:role/gh-no-sub", home=home)
    assert shown.returncode == 0 and "oidc-subject-too-broad" in shown.stdout and "NHI6" in shown.stdout
    posture = json.loads(run_cli("posture", "--json", "--min-severity", "critical", home=home).stdout)
    assert {r["check_id"] for r in posture} == {"root-access-key", "oidc-subject-too-broad", "trust-any-principal"}
    paths = json.loads(run_cli("posture", "paths", "--json", home=home).stdout)
    lambda_path = next(r for r in paths if r["name"] == "lambda-passrole")
    assert lambda_path["methods"] == ["lambda-001"] and lambda_path["route"]["hops"][0]["checks"]
    shown = run_cli("posture", "paths", "self-escalator", home=home)
    assert shown.returncode == 0 and "iam-007" in shown.stdout and "iam:PutUserPolicy on" in shown.stdout
    bad = run_cli("inventory", "list", "--type", "robot", home=home)
    assert bad.returncode == 2 and "unknown --type" in bad.stderr
    nothing = run_cli("inventory", "show", "nobody", home=home)
    assert nothing.returncode == 2 and "no identity" in nothing.stderr


def test_cli_load_reports_damaged_files_and_exits_3(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(HAND_REPORT, folder / "report.csv")
    (folder / "authz.json").write_text(HAND_AUTHZ.read_text()[:20000])
    (folder / "notes.json").write_text('{"a": 1}')
    result = run_cli("inventory", "load", str(folder), "--json", home=tmp_path / "home")
    assert result.returncode == 3
    summary = json.loads(result.stdout)
    assert any("notes.json" in p and "neither authorization details" in p for p in summary["problems"])
    assert any("authz.json" in p and "cut off" in p for p in summary["problems"])
    assert summary["identities"] > 5


def test_posture_doc_is_generated_from_the_code():
    from conftest import REPO
    from nhiwatch.inventory.docs import posture_markdown

    assert (REPO / "docs" / "posture.md").read_text() == posture_markdown(), \
        "regenerate: python -m nhiwatch.inventory.docs > docs/posture.md"


def _cloudtrail(name: str, source: str, when: str, identity: dict, request: dict | None = None,
                response: dict | None = None, error: str | None = None, number: int = 0) -> dict:
    record = {"eventVersion": "1.09", "userIdentity": identity, "eventTime": when, "eventSource": source,
              "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "10.1.2.3",
              "userAgent": "aws-sdk-go-v2/1.30", "requestParameters": request, "responseElements": response,
              "requestID": f"req-{name}-{number}", "eventID": f"00000000-0000-4000-8000-{number:012d}",
              "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
              "recipientAccountId": ACCOUNT}
    if error:
        record["errorCode"] = error
    return record


def test_origin_and_used_versus_granted_from_cloudtrail(store, tmp_path):
    from conftest import ingest

    admin = {"type": "IAMUser", "principalId": "AIDASHAREDADMINXXXXX", "arn": f"arn:aws:iam::{ACCOUNT}:user/shared-admin",
             "accountId": ACCOUNT, "accessKeyId": "AKIASHAREDADMIN00001", "userName": "shared-admin"}
    task = {"type": "AssumedRole", "principalId": "AROAECSAPITASKXXXXXX:task-1",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ecs-api-task/task-1", "accountId": ACCOUNT,
            "accessKeyId": "ASIATASK000000000001", "sessionContext": {"sessionIssuer": {
                "type": "Role", "principalId": "AROAECSAPITASKXXXXXX", "arn": f"arn:aws:iam::{ACCOUNT}:role/ecs-api-task",
                "accountId": ACCOUNT, "userName": "ecs-api-task"}}}
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-AbCdEf"
    records = [
        _cloudtrail("CreateRole", "iam.amazonaws.com", "2026-05-01T10:00:00Z", admin, {"roleName": "ecs-api-task"},
                    number=1),
        _cloudtrail("CreateAccessKey", "iam.amazonaws.com", "2026-05-02T10:00:00Z", admin, {"userName": "ci-deployer"},
                    {"accessKey": {"accessKeyId": "AKIACIDEPLOYER000001", "userName": "ci-deployer",
                                   "status": "Active"}}, number=2),
    ]
    records += [_cloudtrail("GetSecretValue", "secretsmanager.amazonaws.com", f"2026-05-2{n}T08:00:00Z", task,
                            {"secretId": secret}, number=10 + n) for n in range(3)]
    records += [_cloudtrail("GetParameter", "ssm.amazonaws.com", "2026-05-25T08:00:00Z", task, {"name": "/app/db"},
                            number=20),
                _cloudtrail("ListObjects", "s3.amazonaws.com", "2026-05-26T08:00:00Z", task,
                            {"bucketName": "acme-artifacts"}, number=21),
                _cloudtrail("Decrypt", "kms.amazonaws.com", "2026-05-27T08:00:00Z", task, error="AccessDenied",
                            number=22)]
    (tmp_path / "trail.json").write_text(json.dumps({"Records": records}))
    assert ingest(store, tmp_path / "trail.json").accepted == len(records)
    save_sources(store, [read_source(HAND_AUTHZ), read_source(HAND_REPORT)], "test")
    rebuild(store, AS_OF)

    task_role = get_identity(store, "ecs-api-task")
    assert task_role.origin["creator"] == f"arn:aws:iam::{ACCOUNT}:user/shared-admin"
    assert task_role.origin["created_at"] == "2026-05-01T10:00:00Z"
    usage = task_role.usage
    assert [u["action"] for u in usage["used"]] == ["kms:Decrypt", "s3:ListBucket", "secretsmanager:GetSecretValue",
                                                    "ssm:GetParameter"]
    assert usage["used_actions"] == 3 and usage["only_failed"] == ["kms:Decrypt"]
    assert usage["used_not_granted"] == ["s3:ListBucket"]  # e.g. allowed by a bucket policy
    statements = {tuple(s["Action"]): s["Resource"] for s in usage["suggested_policy"]["Statement"]}
    # Only what is granted is suggested: the bucket-policy grant stays out of the identity policy.
    assert statements == {("secretsmanager:GetSecretValue",): secret, ("ssm:GetParameter",): "*"}
    assert task_role.last_active == "2026-05-31T10:00:00Z"  # RoleLastUsed is later than CloudTrail here

    deployer = get_identity(store, "ci-deployer")
    assert deployer.origin["keys"][0]["key_id"] == "AKIACIDEPLOYER000001"
    assert deployer.origin["keys"][0]["creator"].endswith(":user/shared-admin")

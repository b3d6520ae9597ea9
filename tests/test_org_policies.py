"""Organizations SCPs and RCPs and resource policies fed to the principal graph, and reachability to a
capability (secrets, data, kms), from files; the live API and the CLI are in test_org_policies_live.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nhiwatch.inventory.build import build_inventory
from nhiwatch.inventory.capabilities import POSSIBLE, capability_reach
from nhiwatch.inventory.graph import PrincipalGraph, escalation_capabilities
from nhiwatch.inventory.organization import organization_of, read_organization
from nhiwatch.inventory.resource_policies import resources_of
from nhiwatch.inventory.sources import SourceError, read_source

MEMBER = "222222222222"
OTHER = "333333333333"
MANAGEMENT = "111111111111"
ORG_ID = "o-a1b2c3d4e5"
ROOT, OU = "r-ab12", "ou-ab12-11111111"
AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)
REGION = "us-east-1"


def arn(kind: str, name: str, account: str = MEMBER) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", effect="Allow", **extra) -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


def user(name: str, *statements: dict, account: str = MEMBER) -> dict:
    return {"UserName": name, "Arn": arn("user", name, account), "UserId": "AIDA" + name.upper(), "Path": "/",
            "GroupList": [], "AttachedManagedPolicies": [], "Tags": [],
            "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": doc(*statements)}] if statements else []}


def role(name: str, trust: dict, *statements: dict, account: str = MEMBER) -> dict:
    return {"RoleName": name, "Arn": arn("role", name, account), "RoleId": "AROA" + name.upper(), "Path": "/",
            "AssumeRolePolicyDocument": trust, "AttachedManagedPolicies": [], "InstanceProfileList": [], "Tags": [],
            "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": doc(*statements)}] if statements else []}


def trusts(principal: str) -> dict:
    return doc({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"})


def export(*entries: dict) -> dict:
    out: dict[str, list] = {"UserDetailList": [], "RoleDetailList": [], "GroupDetailList": [], "Policies": []}
    for entry in entries:
        out["UserDetailList" if "UserName" in entry else "RoleDetailList"].append(entry)
    return out


def organization(*, scps: dict | None = None, rcps: dict | None = None, accounts=(MEMBER,)) -> dict:
    """An organization file: `scps`/`rcps` map a target (root, OU, account) to documents attached there;
    FullAWSAccess sits at every level as AWS keeps it."""
    policies = [{"Id": "p-FullAWSAccess", "Name": "FullAWSAccess", "Type": "SERVICE_CONTROL_POLICY",
                 "Content": json.dumps(doc(allow("*")))}]
    targets: dict[str, list[str]] = {t: ["p-FullAWSAccess"] for t in (ROOT, OU, *accounts)}
    for kind, given in (("SERVICE_CONTROL_POLICY", scps or {}), ("RESOURCE_CONTROL_POLICY", rcps or {})):
        for target, documents in given.items():
            for n, document in enumerate(documents):
                policy_id = f"p-{kind[:3].lower()}{target[-4:]}{n}"
                policies.append({"Id": policy_id, "Name": policy_id, "Type": kind, "Content": document})
                targets.setdefault(target, []).append(policy_id)
                if kind == "SERVICE_CONTROL_POLICY" and target in targets and "p-FullAWSAccess" in targets[target] \
                        and document.get("replaces"):
                    targets[target].remove("p-FullAWSAccess")
    return {"Organization": {"Id": ORG_ID, "MasterAccountId": MANAGEMENT}, "Policies": policies,
            "Targets": targets, "Accounts": {a: [ROOT, OU] for a in accounts}}


def graph_of(payloads: dict[str, dict], org_file: dict | None = None, resources: dict | None = None) -> PrincipalGraph:
    problems: list[str] = []
    org = organization_of(read_organization(org_file, "org.json", problems)) if org_file else None
    assert problems == []
    stored = {}
    for resource_arn, policy in (resources or {}).items():
        stored.setdefault("any", {})[resource_arn] = policy if "Policy" in policy else {"Policy": policy,
                                                                                        "Account": None}
    return PrincipalGraph.build(payloads, as_of=AS_OF, org=org, resources=resources_of(stored))


# -- SCPs ---------------------------------------------------------------------------------------------------

ESCALATOR = user("escalator", allow("iam:PutUserPolicy", arn("user", "escalator")))


def test_scp_deny_on_iam_removes_the_route() -> None:
    without = graph_of({MEMBER: export(ESCALATOR)})
    assert [r.methods for r in without.routes(ESCALATOR["Arn"])] == [("iam-007",)]

    deny_iam = doc(allow("iam:*", effect="Deny"))
    with_scp = graph_of({MEMBER: export(ESCALATOR)}, organization(scps={OU: [deny_iam]}))
    assert with_scp.routes(ESCALATOR["Arn"]) == []
    assert with_scp.routes(ESCALATOR["Arn"], POSSIBLE) == []
    assert escalation_capabilities(with_scp, ESCALATOR["Arn"])["privesc"] == []


def test_scp_allow_list_without_the_action_removes_the_route() -> None:
    # FullAWSAccess replaced at the account by an allow-list: only what it names survives
    allow_list = {"Version": "2012-10-17", "replaces": True,
                  "Statement": [allow(["s3:*", "ec2:*", "sts:AssumeRole"])]}
    org_file = organization(scps={MEMBER: [allow_list]})
    assert org_file["Targets"][MEMBER] == ["p-ser22220"]
    graph = graph_of({MEMBER: export(ESCALATOR)}, org_file)
    assert graph.routes(ESCALATOR["Arn"]) == []
    # the same list with iam:PutUserPolicy keeps it
    allow_list["Statement"][0]["Action"].append("iam:PutUserPolicy")
    kept = graph_of({MEMBER: export(ESCALATOR)}, organization(scps={MEMBER: [allow_list]}))
    assert [r.methods for r in kept.routes(ESCALATOR["Arn"])] == [("iam-007",)]


def test_management_account_is_not_restricted() -> None:
    deny_iam = doc(allow("iam:*", effect="Deny"))
    in_management = user("escalator", allow("iam:PutUserPolicy", arn("user", "escalator", MANAGEMENT)),
                         account=MANAGEMENT)
    org_file = organization(scps={ROOT: [deny_iam]}, accounts=(MEMBER, MANAGEMENT))
    graph = graph_of({MANAGEMENT: export(in_management), MEMBER: export(ESCALATOR)}, org_file)
    assert [r.methods for r in graph.routes(in_management["Arn"])] == [("iam-007",)]
    assert graph.routes(ESCALATOR["Arn"]) == []


def test_scp_deny_on_assume_role_cuts_the_hop_to_an_admin() -> None:
    admin = role("admin", trusts(arn("user", "dev")), allow("*"))
    dev = user("dev", allow("sts:AssumeRole", admin["Arn"]))
    assert [r.methods for r in graph_of({MEMBER: export(admin, dev)}).routes(dev["Arn"])] == [("sts-001",)]
    no_admin_roles = doc(allow("sts:AssumeRole", arn("role", "admin*"), effect="Deny"))
    graph = graph_of({MEMBER: export(admin, dev)}, organization(scps={OU: [no_admin_roles]}))
    assert graph.routes(dev["Arn"]) == []


# -- RCPs ---------------------------------------------------------------------------------------------------

DATA_PERIMETER = doc({"Effect": "Deny", "Principal": "*", "Action": ["sts:AssumeRole", "s3:*"], "Resource": "*",
                      "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG_ID},
                                    "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}})


def test_rcp_denies_principals_outside_the_organization() -> None:
    """A role in the member account trusts an outside account; the RCP perimeter on sts cuts that hop, and
    the one from inside the organization still works."""
    target = role("deploy", doc({"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{OTHER}:root",
                                                                          f"arn:aws:iam::{MANAGEMENT}:root"]},
                                 "Action": "sts:AssumeRole"}), allow("*"))
    outsider = user("outsider", allow("sts:AssumeRole", target["Arn"]), account=OTHER)
    insider = user("insider", allow("sts:AssumeRole", target["Arn"]), account=MANAGEMENT)
    payloads = {MEMBER: export(target), OTHER: export(outsider), MANAGEMENT: export(insider)}
    assert graph_of(payloads).routes(outsider["Arn"])  # no RCP: the outsider gets in

    graph = graph_of(payloads, organization(rcps={ROOT: [DATA_PERIMETER]}, accounts=(MEMBER, MANAGEMENT)))
    assert graph.routes(outsider["Arn"]) == []
    assert graph.routes(outsider["Arn"], POSSIBLE) == []
    assert [r.methods for r in graph.routes(insider["Arn"])] == [("sts-001",)]


def test_rcp_perimeter_on_s3_stops_outside_data_reads() -> None:
    bucket = "arn:aws:s3:::member-reports"
    outsider = user("reader", allow("s3:GetObject", f"{bucket}/*"), account=OTHER)
    insider = user("analyst", allow("s3:GetObject", f"{bucket}/*"))
    bucket_policy = doc({"Effect": "Allow", "Principal": {"AWS": outsider["Arn"]}, "Action": "s3:GetObject",
                         "Resource": f"{bucket}/*"})
    resources = {bucket: {"Policy": bucket_policy, "Account": MEMBER}}
    payloads = {OTHER: export(outsider), MEMBER: export(insider)}
    open_reach = capability_reach(graph_of(payloads, resources=resources)).route(outsider["Arn"], "data")
    assert open_reach is not None and open_reach.grant.check.resource == f"{bucket}/*"
    assert open_reach.grant.check.statements == ("inline p [statement 0]",
                                                 f"resource policy of {bucket} [statement 0]")

    fenced = capability_reach(graph_of(payloads, organization(rcps={ROOT: [DATA_PERIMETER]}), resources))
    assert fenced.route(outsider["Arn"], "data", POSSIBLE) is None
    inside = fenced.route(insider["Arn"], "data")
    assert inside is not None and inside.grant.check.resource == f"{bucket}/*"


# -- capabilities -------------------------------------------------------------------------------------------

SECRET = f"arn:aws:secretsmanager:{REGION}:{MEMBER}:secret:db-password-AbCdEf"


def test_secret_policy_grants_a_role_without_identity_permission() -> None:
    app = role("app", trusts(arn("user", "nobody")), allow("logs:PutLogEvents"))
    secret_policy = doc({"Effect": "Allow", "Principal": {"AWS": app["Arn"]}, "Action": "secretsmanager:GetSecretValue",
                         "Resource": "*"})
    bare = capability_reach(graph_of({MEMBER: export(app)}))
    assert bare.route(app["Arn"], "secrets", POSSIBLE) is None

    reach = capability_reach(graph_of({MEMBER: export(app)}, resources={SECRET: secret_policy}))
    route = reach.route(app["Arn"], "secrets")
    assert route is not None and route.hops == () and not route.conditional
    grant = route.to_dict()["grant"]
    assert (grant["action"], grant["resource"], grant["verdict"]) == ("secretsmanager:getsecretvalue", SECRET,
                                                                      "allowed")
    assert grant["statements"] == [f"resource policy of {SECRET} [statement 0]"]


def test_secret_policy_deny_beats_the_identity_grant_on_that_secret() -> None:
    app = role("app", trusts(arn("user", "nobody")), allow("secretsmanager:GetSecretValue", SECRET))
    locked = doc({"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*"})
    assert capability_reach(graph_of({MEMBER: export(app)})).route(app["Arn"], "secrets") is not None
    reach = capability_reach(graph_of({MEMBER: export(app)}, resources={SECRET: locked}))
    assert reach.route(app["Arn"], "secrets", POSSIBLE) is None


def test_cross_account_secret_needs_both_sides() -> None:
    secret_policy = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                         "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    with_identity = user("reader", allow("secretsmanager:GetSecretValue", SECRET), account=OTHER)
    without = user("idle", allow("logs:PutLogEvents"), account=OTHER)
    reach = capability_reach(graph_of({OTHER: export(with_identity, without)}, resources={SECRET: secret_policy}))
    route = reach.route(with_identity["Arn"], "secrets")
    assert route is not None and route.grant.check.resource == SECRET
    assert reach.route(without["Arn"], "secrets", POSSIBLE) is None
    # the identity side alone: the secret's policy names another account
    other_policy = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
                        "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    scoped = user("scoped", allow("secretsmanager:GetSecretValue", SECRET), account=OTHER)
    reach = capability_reach(graph_of({OTHER: export(scoped)}, resources={SECRET: other_policy}))
    assert reach.route(scoped["Arn"], "secrets", POSSIBLE) is None


def test_route_through_assume_role_to_a_role_that_reads_secrets() -> None:
    vault = role("vault-reader", trusts(arn("user", "ci")), allow("secretsmanager:GetSecretValue", SECRET))
    ci = user("ci", allow("sts:AssumeRole", vault["Arn"]))
    graph = graph_of({MEMBER: export(vault, ci)})
    route = capability_reach(graph).route(ci["Arn"], "secrets")
    assert route is not None
    assert route.methods == ("sts-001",) and route.grant.principal == vault["Arn"]
    hop = route.to_dict()["hops"][0]
    assert (hop["from"], hop["to"], hop["checks"][0]["verdict"]) == (ci["Arn"], vault["Arn"], "allowed")
    assert capability_reach(graph).route(ci["Arn"], "kms", POSSIBLE) is None
    # an SCP denying secret reads in the OU leaves no way
    no_secrets = doc(allow("secretsmanager:GetSecretValue", effect="Deny"))
    fenced = graph_of({MEMBER: export(vault, ci)}, organization(scps={OU: [no_secrets]}))
    assert capability_reach(fenced).route(ci["Arn"], "secrets", POSSIBLE) is None


def test_escalation_reaches_secrets_unless_an_scp_still_denies_them() -> None:
    graph = graph_of({MEMBER: export(ESCALATOR)})
    route = capability_reach(graph).route(ESCALATOR["Arn"], "secrets")
    assert route is not None and route.methods == ("iam-007",) and route.grant.escalated
    assert route.grant.check.resource == "*"
    assert "AdministratorAccess (written by the escalation) [statement 0]" in route.grant.check.statements

    # admin after the write, but the OU's SCP still denies secret reads and parameters
    no_secrets = doc(allow(["secretsmanager:*", "ssm:GetParameter*"], effect="Deny"))
    fenced = graph_of({MEMBER: export(ESCALATOR)}, organization(scps={OU: [no_secrets]}))
    assert [r.methods for r in fenced.routes(ESCALATOR["Arn"])] == [("iam-007",)]
    assert capability_reach(fenced).route(ESCALATOR["Arn"], "secrets", POSSIBLE) is None
    assert capability_reach(fenced).route(ESCALATOR["Arn"], "kms") is not None


def test_kms_key_policy_decides_and_data_reads_dynamodb() -> None:
    key = f"arn:aws:kms:{REGION}:{MEMBER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    key_policy = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"}, "Action": "kms:*",
                      "Resource": "*"})
    table = f"arn:aws:dynamodb:{REGION}:{MEMBER}:table/orders"
    worker = role("worker", trusts(arn("user", "nobody")), allow(["kms:Decrypt"], key),
                  allow("dynamodb:Query", table))
    reach = capability_reach(graph_of({MEMBER: export(worker)}, resources={key: key_policy}))
    kms = reach.route(worker["Arn"], "kms")
    assert kms is not None and kms.grant.check.resource == key
    assert kms.grant.check.action == "kms:decrypt"
    data = reach.route(worker["Arn"], "data")
    assert data is not None and (data.grant.check.action, data.grant.check.resource) == ("dynamodb:query", table)
    # a key policy that does not delegate to the account: the identity grant alone is not enough
    closed = doc({"Effect": "Allow", "Principal": {"AWS": arn("role", "other")}, "Action": "kms:*", "Resource": "*"})
    assert capability_reach(graph_of({MEMBER: export(worker)}, resources={key: closed})).route(
        worker["Arn"], "kms", POSSIBLE) is None


# -- files --------------------------------------------------------------------------------------------------

def write(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_organization_file_is_recognised_and_bad_entries_are_problems(tmp_path: Path) -> None:
    good = organization(scps={OU: [doc(allow("iam:*", effect="Deny"))]})
    source = read_source(write(tmp_path, "org.json", good))
    assert source.kind == "organization" and source.problems == []
    assert source.entries == 2

    bad = organization()
    bad["Policies"].append({"Id": "p-broken", "Name": "broken", "Type": "SERVICE_CONTROL_POLICY",
                            "Content": "{not json"})
    bad["Policies"].append({"Id": "p-noeffect", "Type": "SERVICE_CONTROL_POLICY",
                            "Content": {"Statement": [{"Action": "*", "Resource": "*"}]}})
    bad["Targets"][OU] = ["p-broken", "p-missing"]
    bad["Targets"]["not-a-target"] = ["p-FullAWSAccess"]
    bad["Accounts"]["12345"] = [ROOT]
    bad["Accounts"][OTHER] = 7
    bad["Extra"] = 1
    source = read_source(write(tmp_path, "bad-org.json", bad))
    text = "\n".join(source.problems)
    assert "Policies[1] (broken): Content: policy document is not JSON" in text
    assert "Policies[2] (p-noeffect): Content: Statement[0] has Effect None" in text
    assert "names policy 'p-missing', which is not in Policies" in text
    assert "Targets key 'not-a-target' is not a root, OU or account id" in text
    assert "Accounts key '12345' is not a 12-digit account id" in text
    assert f"Accounts['{OTHER}'] is not a list of target ids" in text
    assert "unknown top-level field 'Extra'" in text
    org = organization_of(source.accounts["organization"])
    assert org.management_account == MANAGEMENT and OTHER in org.accounts

    with pytest.raises(SourceError, match="Organization must be an object"):
        read_source(write(tmp_path, "no-org.json", {"Organization": "x", "Targets": {}}))
    with pytest.raises(SourceError, match="not valid JSON"):
        read_source(write(tmp_path, "cut.json", '{"Organization": {"Id": '))
    with pytest.raises(SourceError, match="no usable policy or account"):
        read_source(write(tmp_path, "empty.json", {"Organization": {"Id": ORG_ID}, "Targets": {}}))


def test_describe_policy_shapes_and_paths_are_accepted(tmp_path: Path) -> None:
    deny = doc(allow("iam:*", effect="Deny"))
    file = {"Organization": {"Id": ORG_ID, "ManagementAccountId": MANAGEMENT},
            "Policies": [{"PolicySummary": {"Id": "p-denyiam1", "Name": "deny-iam", "Type": "SERVICE_CONTROL_POLICY"},
                          "Content": json.dumps(deny)},
                         {"PolicySummary": {"Id": "p-tags0001", "Name": "tags", "Type": "TAG_POLICY"},
                          "Content": "{}"}],
            "Targets": {OU: ["p-denyiam1", "p-tags0001"]},
            "Accounts": {MEMBER: f"{ORG_ID}/{ROOT}/{OU}/"}}
    source = read_source(write(tmp_path, "org.json", file))
    assert source.problems == []
    org = organization_of(source.accounts["organization"])
    assert [name for name, _ in org.scps[MEMBER]] == [f"SCPs at {OU}"]
    assert org.paths[MEMBER] == (f"{ORG_ID}/{ROOT}/{OU}/",)


def test_resource_policies_file_and_its_problems(tmp_path: Path) -> None:
    good = {"ResourcePolicies": {SECRET: json.dumps(doc({"Effect": "Allow", "Principal": "*",
                                                         "Action": "secretsmanager:GetSecretValue",
                                                         "Resource": "*"})),
                                 "arn:aws:s3:::reports": {"Account": MEMBER, "Policy": doc(
                                     {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"})}}}
    source = read_source(write(tmp_path, "resources.json", good))
    assert source.kind == "resource-policies" and source.problems == [] and source.entries == 2
    assert set(source.accounts[MEMBER]) == {SECRET, "arn:aws:s3:::reports"}

    bad = {"ResourcePolicies": {"not-an-arn": {}, SECRET: "{oops",
                                "arn:aws:s3:::b": {"Account": "me", "Policy": doc(allow("s3:*"))},
                                "arn:aws:kms:us-east-1:222222222222:key/k": {"Statement": [{"Effect": "Allow"}]}}}
    source = read_source(write(tmp_path, "bad-resources.json", bad))
    text = "\n".join(source.problems)
    assert "['not-an-arn']: not an ARN" in text
    assert f"['{SECRET}']: policy document is not JSON" in text
    assert "Account 'me' is not a 12-digit account id" in text
    assert "has no Action or NotAction" in text
    assert source.entries == 1  # the bucket, under no known owner
    assert list(source.accounts) == ["unknown-account"]
    not_a_map = read_source(write(tmp_path, "list.json", {"ResourcePolicies": [1, 2]}))
    assert not_a_map.problems == [f"{tmp_path / 'list.json'}: ResourcePolicies must be an object of ARN -> policy; "
                                  "nothing read"]


def test_inventory_stores_capability_routes_next_to_the_admin_keys() -> None:
    vault = role("vault-reader", trusts(arn("user", "ci")), allow("secretsmanager:GetSecretValue", SECRET))
    ci = user("ci", allow("sts:AssumeRole", vault["Arn"]))
    identities = {i.name: i for i in build_inventory({MEMBER: export(vault, ci)}, {}, AS_OF)}
    caps = identities["ci"].capabilities
    assert {"admin", "privesc", "privesc_routes", "privesc_route", "data_access"} <= set(caps)
    assert caps["capability_routes"]["secrets"]["methods"] == ["sts-001"]
    assert caps["capability_routes"]["secrets"]["holder"] == vault["Arn"]
    assert caps["capability_routes"]["kms"] is None


def test_cli_posture_paths_to_a_capability(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nhiwatch.cli.app import app

    def run(*args: str):
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    vault = role("vault-reader", trusts(arn("user", "ci")), allow("secretsmanager:GetSecretValue", SECRET))
    ci = user("ci", allow("sts:AssumeRole", vault["Arn"]))
    files = [str(write(tmp_path, "authz.json", export(vault, ci, ESCALATOR))),
             str(write(tmp_path, "org.json", organization(scps={OU: [doc(allow("iam:*", effect="Deny"))]})))]
    home = str(tmp_path / "home")
    loaded = run("inventory", "load", *files, "--as-of", "2026-06-01T00:00:00Z", "--json", "--home", home)
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["stored"]["organization"] == [ORG_ID]

    one = json.loads(run("posture", "paths", ci["Arn"], "--to", "secrets", "--json", "--home", home).output)
    assert one["route"]["methods"] == ["sts-001"] and one["route"]["holder"] == vault["Arn"]
    assert one["route"]["grant"]["resource"] == SECRET
    assert json.loads(run("posture", "paths", ci["Arn"], "--to", "kms", "--json", "--home", home).output)[
        "route"] is None
    listed = json.loads(run("posture", "paths", "--to", "secrets", "--json", "--home", home).output)
    assert sorted(row["name"] for row in listed) == ["ci", "vault-reader"]  # the holder too, with no hop
    # the SCP removed the escalator's route to admin
    admin = json.loads(run("posture", "paths", ESCALATOR["Arn"], "--json", "--home", home).output)
    assert admin["methods"] == [] and admin["routes"] == []
    human = run("posture", "paths", "ci", "--to", "secrets", "--home", home)
    assert "hop 1: ci --sts-001" in human.output and "grant: " + vault["Arn"] in human.output

    bad_to = run("posture", "paths", "--to", "everything", "--home", home)
    assert bad_to.exit_code == 2 and "--to must be one of admin, secrets, data, kms" in bad_to.output

    broken = organization()
    broken["Targets"][OU] = ["p-gone"]
    partial = run("inventory", "load", files[0], str(write(tmp_path, "broken.json", broken)), "--json",
                  "--home", str(tmp_path / "home2"))
    assert partial.exit_code == 3
    assert any("names policy 'p-gone', which is not in Policies" in p
               for p in json.loads(partial.output)["problems"])

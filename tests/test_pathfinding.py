"""Privilege escalation measured on a test account built from the 65 pathfinding.cloud paths
(tests/pathfinding_fixtures.py builds it from ../shared/data/pathfinding): one principal that can
exploit each path, one look-alike that cannot, chains of one and two sts:AssumeRole hops, and the
bystanders they need. Also IAM Vulnerable (Cloudsplaining's example account).

The fixture's own integrity is asserted outright. nhiwatch's verdicts are asserted per principal,
with any wrong verdict still expected marked xfail(strict=True) and its reason (none since the
principal graph landed: each case must stay right). The figures (recall and false positives, overall
and per category) may only improve on the floor below.
"""

from __future__ import annotations

import fnmatch
import json
import time

import pytest

import pathfinding_fixtures as pf

if not pf.PATHS_DIR.is_dir():  # pragma: no cover - the shared samples sit beside the checkout
    pytest.fail(f"the shared samples are missing: expected {pf.PATHS_DIR}", pytrace=False)

FIXTURE = pf.build()
MANIFEST = FIXTURE.manifest
CATALOGUE = pf.load_paths()

# Wrong verdicts still expected: "can:<path>" missed, "cannot:<path>" flagged, "chain:<name>" missed, each
# with its reason. Empty since the principal graph (inventory/graph.py) judges every principal right.
FAILS_TODAY: dict[str, str] = {}

# The figures, a floor: found may only go up, false positives only down.
FLOOR = {  # category: (exploitable found at least, false positives at most)
    "self-escalation": (8, 0),
    "principal-access": (14, 0),
    "new-passrole": (27, 0),
    "existing-passrole": (16, 0),
    "multi-hop": (7, 0),
    "environment": (0, 0),
    "total": (72, 0),
}
IAM_VULNERABLE_FLOOR = (77, 0)  # of 79 exploitable principals (the groups count), of 10 safe ones
# The two IAM Vulnerable principals no export-based analysis can find: the export holds no policy for the
# start user (its AssumeRole grant is missing) and no permission for the role with the permissive trust.


def case_id(label: dict) -> str:
    if label["role"] in ("can", "cannot"):
        return f"{label['role']}:{label['path']}"
    return f"chain:{label['name']}"


CASES = [label for label in MANIFEST["principals"] if label["role"] in ("can", "cannot", "chain", "chain-cannot")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return FIXTURE.write(tmp_path_factory.mktemp("pathfinding"))


@pytest.fixture(scope="module")
def identities(files):
    return {i.arn: i for i in pf.inventory(files["authz"], files["report"])}


@pytest.fixture(scope="module")
def verdicts(identities):
    return {v.arn: v for v in pf.judge(identities.values(), MANIFEST)}


# -- the fixture itself --------------------------------------------------------------------------


def policies_of(authz: dict, arn: str) -> list[dict]:
    """Every policy document that applies to a user or role (inline, managed, its groups'), read
    straight from the export: independent of nhiwatch's reading."""
    managed = {p["Arn"]: next(v["Document"] for v in p["PolicyVersionList"] if v["IsDefaultVersion"])
               for p in authz["Policies"]}
    groups = {g["GroupName"]: g for g in authz["GroupDetailList"]}
    entry = next(e for e in authz["UserDetailList"] + authz["RoleDetailList"] if e["Arn"] == arn)
    holders = [entry] + [groups[g] for g in entry.get("GroupList", [])]
    docs = []
    for holder in holders:
        for key in ("UserPolicyList", "RolePolicyList", "GroupPolicyList"):
            docs += [p["PolicyDocument"] for p in holder.get(key, [])]
        docs += [managed[a["PolicyArn"]] for a in holder["AttachedManagedPolicies"]]
    return docs


def allowed_patterns(docs: list[dict]) -> list[str]:
    patterns = []
    for doc in docs:
        for statement in doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]:
            if statement["Effect"] == "Allow" and "Action" in statement:
                action = statement["Action"]
                patterns += [action] if isinstance(action, str) else action
    return patterns


def test_every_path_has_a_can_and_a_cannot_principal():
    assert len(CATALOGUE) == 65
    assert set(MANIFEST["paths"]) == set(CATALOGUE)
    labels = {p["arn"]: p for p in MANIFEST["principals"]}
    for path_id, entry in MANIFEST["paths"].items():
        can, cannot = labels[entry["can"]], labels[entry["cannot"]]
        assert can["role"] == "can" and path_id in can["expected"], path_id
        assert cannot["role"] == "cannot" and cannot["expected"] == [], path_id
        assert can["category"] == cannot["category"] == CATALOGUE[path_id].category
        assert cannot["blocker"] in pf.LOOK_WORDS and cannot["why"], path_id
        assert can["kind"] == cannot["kind"], path_id


def test_can_principals_hold_every_required_action():
    for path_id, entry in MANIFEST["paths"].items():
        patterns = allowed_patterns(policies_of(FIXTURE.authz, entry["can"]))
        for action in CATALOGUE[path_id].required:
            assert any(fnmatch.fnmatch(action.lower(), p.lower()) for p in patterns), \
                f"{path_id}: {entry['can']} is not allowed {action}"


def test_missing_look_alikes_lack_exactly_one_required_action():
    for path_id, entry in MANIFEST["paths"].items():
        label = next(p for p in MANIFEST["principals"] if p["arn"] == entry["cannot"])
        patterns = allowed_patterns(policies_of(FIXTURE.authz, entry["cannot"]))
        lacking = [a for a in CATALOGUE[path_id].required
                   if not any(fnmatch.fnmatch(a.lower(), p.lower()) for p in patterns)]
        assert len(lacking) == (1 if label["blocker"] == "missing" else 0), (path_id, lacking)


def test_forms_rotate():
    """The can-principals use every form the catalogue allows, and the look-alikes every blocker."""
    forms = [p["form"] for p in MANIFEST["principals"] if p["role"] == "can"]
    assert {f["attach"] for f in forms} == {"inline", "managed", "group", "group-managed"}
    assert sum(bool(f["scoped"]) for f in forms) >= 20
    assert sum(not f["scoped"] for f in forms) >= 15
    assert sum(bool(f["wildcards"]) for f in forms) >= 5
    assert sum(f["variables"] for f in forms) >= 2
    assert sum(bool(f["conditions"]) for f in forms) >= 3
    blockers = [p["blocker"] for p in MANIFEST["principals"] if p["role"] == "cannot"]
    assert set(blockers) == set(pf.LOOK_WORDS)
    assert min(blockers.count(b) for b in pf.LOOK_WORDS) >= 2


def test_names_do_not_reveal_the_answer():
    authz = FIXTURE.authz
    names = ([e["UserName"] for e in authz["UserDetailList"]] + [e["RoleName"] for e in authz["RoleDetailList"]]
             + [e["GroupName"] for e in authz["GroupDetailList"]] + [e["PolicyName"] for e in authz["Policies"]])
    assert len(set(names)) == len(names)
    for name in names:
        assert not any(word in name.lower() for word in pf.FORBIDDEN_WORDS), name


def test_every_identity_is_labelled(identities):
    labelled = {p["arn"] for p in MANIFEST["principals"]}
    assert {arn for arn, i in identities.items() if i.kind not in ("root", "group")} == labelled
    assert {i.name for i in identities.values() if i.kind == "group"} == set(MANIFEST["groups"])
    assert not [i.problems for i in identities.values() if i.problems]


def test_chains_of_one_and_two_hops():
    """Each chain hop has both sides: the caller may call sts:AssumeRole on the next role, and that
    role's trust policy lets the caller in (by ARN, or the account with a condition it meets)."""
    roles = {e["Arn"]: e for e in FIXTURE.authz["RoleDetailList"]}
    chains = [p for p in MANIFEST["principals"] if p["role"] == "chain"]
    assert {p["hops"] for p in chains} == {1, 2}
    assert sum(p["hops"] == 2 for p in chains) >= 2
    cannot = [p for p in MANIFEST["principals"] if p["role"] == "chain-cannot"]
    assert len(cannot) >= 5
    for label in chains + cannot:
        patterns = allowed_patterns(policies_of(FIXTURE.authz, label["arn"]))
        assert any(fnmatch.fnmatch("sts:assumerole", p.lower()) for p in patterns), label["name"]
    trusted = {arn: json.dumps(e["AssumeRolePolicyDocument"]) for arn, e in roles.items()}
    for label in chains:
        if label["hops"] == 1 and label["name"] != "gh-release":
            assert any(label["arn"] in trust and "AdministratorAccess" in json.dumps(roles[arn]["AttachedManagedPolicies"])
                       for arn, trust in trusted.items()), label["name"]


def test_build_is_deterministic():
    again = pf.build()
    assert json.dumps(again.authz, sort_keys=True) == json.dumps(FIXTURE.authz, sort_keys=True)
    assert again.report == FIXTURE.report
    assert json.dumps(again.manifest, sort_keys=True) == json.dumps(MANIFEST, sort_keys=True)


# -- nhiwatch's verdicts -------------------------------------------------------------------------


def _param(label: dict):
    key = case_id(label)
    marks = [pytest.mark.xfail(strict=True, reason=FAILS_TODAY[key])] if key in FAILS_TODAY else []
    return pytest.param(label, id=key, marks=marks)


@pytest.mark.parametrize("label", [_param(label) for label in CASES])
def test_verdict(label, verdicts):
    verdict = verdicts[label["arn"]]
    assert verdict.flagged == bool(label["expected"]), (
        f"{label['name']} ({label.get('path', label['category'])}): expected "
        f"{'exploitable' if label['expected'] else 'not exploitable'}"
        f" ({label.get('why') or label.get('note') or label.get('form')})")


def test_routes_name_the_path(identities):
    """Each principal that can exploit a path has a route to admin named by the path's id (chains: sts-001),
    with every hop's evidence; the look-alikes have none that rests on no condition."""
    for label in MANIFEST["principals"]:
        caps = identities[label["arn"]].capabilities
        if label["role"] in ("can", "chain"):
            assert set(label["expected"]) <= set(caps["privesc"]), (label["name"], caps["privesc"])
            route = caps["privesc_route"]
            assert route and not route["conditional"] and all(hop["checks"] for hop in route["hops"])
        elif label["role"] in ("cannot", "chain-cannot"):
            assert not caps["privesc"] and not caps["admin"], label["name"]


def test_chains_are_followed_hop_by_hop(identities):
    for label in MANIFEST["principals"]:
        if label["role"] == "chain":
            hops = identities[label["arn"]].capabilities["privesc_route"]["hops"]
            assert [h["method"] for h in hops] == ["sts-001"] * label["hops"], label["name"]


def test_fails_today_names_real_cases():
    assert set(FAILS_TODAY) <= {case_id(label) for label in CASES}


def test_bystanders_are_not_flagged(verdicts):
    flagged = [v.name for v in verdicts.values() if v.category == "environment" and v.flagged]
    assert not flagged


def test_recall_and_false_positives_only_improve(identities, capsys):
    started = time.perf_counter()
    summary = pf.summarise(pf.judge(identities.values(), MANIFEST))
    with capsys.disabled():
        print("\n" + pf.format_table(summary, f"nhiwatch on the pathfinding.cloud account ({len(CATALOGUE)} paths)"))
    for category, (found, false_positives) in FLOOR.items():
        row = summary[category]
        assert row["found"] >= found, f"{category}: {row['found']} found, today {found}"
        assert row["false_positives"] <= false_positives, f"{category}: {row['false_positives']} false positives"
    assert time.perf_counter() - started < 10


def test_iam_vulnerable_only_improves(capsys):
    labels = pf.iam_vulnerable_labels()
    verdicts = pf.judge_iam_vulnerable(pf.inventory(pf.IAM_VULNERABLE), labels)
    summary = pf.summarise(verdicts, ("user", "role", "group"))
    with capsys.disabled():
        print("\n" + pf.format_table(summary, "nhiwatch on IAM Vulnerable (groups count as principals)"))
    assert summary["total"]["exploitable"] == 79 and summary["total"]["safe"] == 10
    found, false_positives = IAM_VULNERABLE_FLOOR
    assert summary["total"]["found"] >= found
    assert summary["total"]["false_positives"] <= false_positives

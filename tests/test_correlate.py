"""Correlation on linked attacks from the simulator: a leaked CI key that assumes two roles (one in
another account), and an ECS task role chained into another account. The incidents must hold the
right identities, in the right order, with a severity raised by the links."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nhiwatch.correlate.graph import edges_touching, key_origins
from nhiwatch.correlate.incidents import TACTIC_ORDER, correlate, get_incident, list_incidents
from nhiwatch.pipeline import analyze
from nhiwatch.core.severity import severity_rank
from nhiwatch.respond.playbooks import plan_incident
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store

START = "2026-03-01"
LINKED = ("ci-key-two-roles", "role-chain-cross-account", "bulk-secret-retrieval")


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("linked")
    data, home = tmp / "data", tmp / "home"
    simulate(data, SimConfig(seed=5, accounts=2, days=16, scale=0.6, start=START, scenarios=LINKED))
    labels = {s["id"]: s for s in json.loads((data / "labels.json").read_text())["scenarios"]}
    with Store(home) as store:
        result = analyze(store, [str(data / "cloudtrail")], iam=[str(data / "iam")],
                         learn_until=datetime.fromisoformat(START).replace(tzinfo=timezone.utc) + timedelta(days=7))
    return labels, result, home


def _incident_of(store: Store, principal: str) -> dict:
    found = [i for i in list_incidents(store, min_severity="medium") if principal in i["identities"]]
    assert len(found) == 1, (principal, [i["identities"] for i in found])
    return get_incident(store, found[0]["id"])


def test_a_leaked_key_that_assumes_two_roles_is_one_incident(linked):
    labels, _, home = linked
    attack = labels["ci-key-two-roles"]
    user = attack["principal"]
    roles = [p for p in attack["related_principals"] if ":role/" in p]
    assert len(roles) == 2 and len({r.split(":")[4] for r in roles}) == 2  # one role here, one in another account
    with Store(home) as store:
        incident = _incident_of(store, user)
        assert set(incident["identities"]) == {user, *roles}
        # every finding of the incident is on one of its identities, and the roles' sessions trace back to the key
        assert {f["identity"]["arn"] for f in incident["findings"]} <= set(incident["identities"])
        lineage = [link for link in incident["links"] if link["kind"] == "key-lineage"]
        assert {link["from"] for link in lineage} == {user} and {link["to"] for link in lineage} == set(roles)
        # tactics in the order they happened: discovery by the key before what the roles did
        tactics = incident["tactics"]
        assert tactics.index("discovery") < tactics.index("credential-access") < tactics.index("persistence")
        times = [e["time"] for e in incident["timeline"]]
        assert times == sorted(times)
        assert severity_rank(incident["severity"]) >= severity_rank("high")
        assert any("linked identities" in r for r in incident["severity_reasons"])
        top = max(severity_rank(f["severity"]) for f in incident["findings"])
        assert severity_rank(incident["severity"]) > top  # raised by the links, not just inherited
        assert all(f["incident_id"] == incident["id"] for f in incident["findings"])


def test_cross_account_chaining_joins_the_task_role_and_the_target_role(linked):
    labels, _, home = linked
    attack = labels["role-chain-cross-account"]
    victim, target = attack["principal"], attack["related_principals"][0]
    assert victim.split(":")[4] != target.split(":")[4]
    with Store(home) as store:
        incident = _incident_of(store, victim)
        assert target in incident["identities"]
        kinds = {link["kind"] for link in incident["links"]}
        assert kinds & {"key-lineage", "cross-account"}
        assert incident["accounts"] == sorted({victim.split(":")[4], target.split(":")[4]})
        order = [t for t in TACTIC_ORDER if t in incident["tactics"]]
        assert "persistence" in order  # the backdoor role created in the other account


def test_a_single_identity_attack_stays_its_own_incident(linked):
    labels, _, home = linked
    victim = labels["bulk-secret-retrieval"]["principal"]
    with Store(home) as store:
        incident = _incident_of(store, victim)
        assert incident["identities"] == [victim]
        assert not any(labels[s]["principal"] in incident["identities"] for s in ("ci-key-two-roles",
                                                                                  "role-chain-cross-account"))


def test_findings_carry_their_incident_and_ids_survive_a_rebuild(linked):
    _, result, home = linked
    with Store(home) as store:
        before = {i["id"]: sorted(i["finding_ids"]) for i in list_incidents(store, min_severity="info", status=None)}
        linked_ids = dict(store.con.execute("SELECT id, incident_id FROM findings WHERE incident_id IS NOT NULL"
                                            ).fetchall())
        assert linked_ids and set(linked_ids.values()) == set(before)
        for incident_id, finding_ids in before.items():
            assert all(linked_ids[f] == incident_id for f in finding_ids)
        assert {f.incident_id for f in result.findings} - {None} == set(before)
        store.con.execute("UPDATE incidents SET status = 'resolved' WHERE id = ?", [next(iter(before))])
        correlate(store)
        after = {i["id"]: sorted(i["finding_ids"]) for i in list_incidents(store, min_severity="info", status=None)}
        assert after == before
        assert store.con.execute("SELECT status FROM incidents WHERE id = ?", [next(iter(before))]).fetchone()[0] \
            == "resolved"
        store.con.execute("UPDATE incidents SET status = 'open'")  # the other tests expect open incidents


def test_graph_edges_and_key_lineage_come_from_the_events(linked):
    labels, _, home = linked
    attack = labels["ci-key-two-roles"]
    user = attack["principal"]
    with Store(home) as store:
        lower = int(datetime.fromisoformat(attack["start"].replace("Z", "+00:00")).timestamp() * 1e6) - 1
        upper = int(datetime.fromisoformat(attack["end"].replace("Z", "+00:00")).timestamp() * 1e6) + 1
        edges = edges_touching(store, [user], lower, upper)
        assumed = {e.dst: e.kind for e in edges if e.src == user}
        roles = [p for p in attack["related_principals"] if ":role/" in p]
        assert set(assumed) >= set(roles)
        assert sorted(assumed[r] for r in roles) == ["assumes", "cross-account"]
        keys = [k for (k,) in store.con.execute(
            "SELECT DISTINCT access_key_id FROM events WHERE principal IN (SELECT unnest(?)) AND event_id IN "
            "(SELECT unnest(?))", [roles, attack["event_ids"]]).fetchall()]
        origins = key_origins(store, keys)
        assert {o.issuer for o in origins.values()} == {user}
        assert {o.holder for o in origins.values()} == set(roles)


def test_the_playbook_contains_the_leaked_key_and_both_roles(linked):
    labels, _, home = linked
    attack = labels["ci-key-two-roles"]
    with Store(home) as store:
        incident = _incident_of(store, attack["principal"])
        proposals = plan_incident(store, incident)
    by_identity: dict[str, set[str]] = {}
    for p in proposals:
        by_identity.setdefault(p.identity, set()).add(p.kind)
    key_actions = [p for p in proposals if p.kind == "deactivate-key"]
    assert key_actions and all(p.plan.options["key"].startswith("AKIA") for p in key_actions)
    assert {p.identity for p in key_actions} == {attack["principal"]}
    for role in (p for p in attack["related_principals"] if ":role/" in p):
        assert by_identity[role] & {"revoke-sessions", "revoke-session"}
    assert all(p.plan is not None and p.plan.calls for p in proposals if p.kind != "notify" and not p.refused)


def test_incidents_cli(linked):
    labels, _, home = linked
    run = [sys.executable, "-m", "nhiwatch"]
    listed = subprocess.run([*run, "incidents", "list", "--home", str(home), "--json"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    incidents = json.loads(listed.stdout)["incidents"]
    ranks = [severity_rank(i["severity"]) for i in incidents]
    assert ranks and ranks == sorted(ranks, reverse=True)
    first = incidents[0]["id"]
    shown = subprocess.run([*run, "incidents", "show", first, "--home", str(home)], capture_output=True, text=True)
    assert shown.returncode == 0 and first not in shown.stderr and "blast radius" in shown.stdout
    plan = subprocess.run([*run, "respond", "plan", first, "--home", str(home), "--json"], capture_output=True,
                          text=True)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["dry_run"] is True
    missing = subprocess.run([*run, "incidents", "show", "inc-0000000000000000", "--home", str(home)],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no incident" in missing.stderr


def test_automatic_mode_does_only_what_the_policy_allows(linked, tmp_path):
    from nhiwatch.respond.policy import load_policy
    from nhiwatch.respond.service import auto_respond

    labels, _, home = linked
    user = labels["ci-key-two-roles"]["principal"]
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text('protected = ["arn:aws:iam::*:role/org-ops-*"]\n'
                           '[[allow]]\nactions = ["deactivate-key", "revoke-sessions", "revoke-session"]\n'
                           'min_severity = "high"\nidentities = ["arn:aws:iam::*:user/svc-*"]\n')
    with Store(home) as store:
        result = auto_respond(store, load_policy(policy_file), responder=None)  # dry-run
    decisions = [d.to_dict() for d in result.decisions]
    allowed = [d for d in decisions if d["allowed"] and not d["skipped"]]
    assert allowed and {d["action"] for d in allowed} == {"deactivate-key"}
    assert user in {d["identity"] for d in allowed}
    assert all(d["status"] is None for d in decisions)  # nothing was executed
    org_ops = [d for d in decisions if "org-ops-access" in d["identity"] and d["action"] != "notify"]
    assert org_ops and all("protected" in (d["skipped"] or "") for d in org_ops)
    assert all(d["skipped"] for d in decisions if not d["allowed"])


# ---------------------------------------------------------------------------------------------------
# Evidence strangers share never links: hand-made events, findings inserted as detection would.

from nhiwatch.correlate.evidence import common_client, placeholder_key, unlinkable_address  # noqa: E402
from nhiwatch.core.finding import finding_id  # noqa: E402

ACCOUNT = "111122223333"
ATTACKER_IP = "185.220.101.7"  # a public address no provider publishes
PLAIN_CLI = "aws-cli/2.13.5 Python/3.11.4"
OWN_CLIENT = ("Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#6.5.0 lang/python#3.11.5 Botocore/1.31.57 "
              "exfil-kit/0.3")
REAL_KEY = "ASIAQ7MZK3PX2W5RTB4N"


def _who(name: str, key: str) -> dict:
    if name.startswith("role/"):
        role = name.split("/", 1)[1]
        return {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{role.upper()[:9]}:s1",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s1", "accountId": ACCOUNT, "accessKeyId": key,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROAEXAMPLE{role.upper()[:9]}",
                                                     "arn": f"arn:aws:iam::{ACCOUNT}:{name}", "accountId": ACCOUNT,
                                                     "userName": role}}}
    user = name.split("/", 1)[1]
    return {"type": "IAMUser", "principalId": f"AIDAEXAMPLE{user.upper()[:9]}", "arn": f"arn:aws:iam::{ACCOUNT}:{name}",
            "accountId": ACCOUNT, "accessKeyId": key, "userName": user}


def _call(event_id: str, name: str, minute: int, ip: str, agent: str = PLAIN_CLI, key: str = "AKIAZ3HQ7MW2XK5PRT4N",
          event: str = "ListBuckets", source: str = "s3.amazonaws.com", response: dict | None = None) -> dict:
    return {"eventVersion": "1.08", "userIdentity": _who(name, key), "eventTime": f"2026-03-01T12:{minute:02d}:00Z",
            "eventSource": source, "eventName": event, "awsRegion": "us-east-1", "sourceIPAddress": ip,
            "userAgent": agent, "requestParameters": None, "responseElements": response, "requestID": event_id,
            "eventID": event_id, "readOnly": event.startswith("List"), "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCOUNT}


def _incidents(tmp_path: Path, records: list[dict], alerts: dict[str, list[str]]) -> list[dict]:
    """Ingest the records, raise a high finding per identity on the given event ids, correlate."""
    from conftest import ingest

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "trail.json").write_text(json.dumps({"Records": records}))
    with Store(tmp_path / "home") as store:
        assert ingest(store, tmp_path / "trail.json").accepted == len(records)
        for name, event_ids in alerts.items():
            _raise(store, name, event_ids)
        correlate(store)
        return list_incidents(store, min_severity="info", status=None)


def _raise(store: Store, name: str, event_ids: list[str], stamp: str = "2026-03-01T12:00:00Z") -> None:
    """A high finding on the identity, stored as detection stores it."""
    arn = f"arn:aws:iam::{ACCOUNT}:{name}"
    finding = {"id": finding_id("unfamiliar-context", arn, event_ids[0]), "detector": "unfamiliar-context",
               "title": "test", "severity": "high", "score": 70,
               "identity": {"arn": arn, "type": name.split("/")[0], "account_id": ACCOUNT}, "session": None,
               "first_seen": stamp, "last_seen": stamp, "event_ids": event_ids, "mitre": [], "stratus": [],
               "explanation": "", "evidence": {}, "tactic": "discovery", "incident_id": None,
               "schema_version": 1}
    store.con.execute("""INSERT INTO findings (id, detector, severity, score, identity, account_id, first_seen,
                         last_seen, status, finding) VALUES (?, ?, 'high', 70, ?, ?, ?, ?, 'open', ?)""",
                      [finding["id"], finding["detector"], arn, ACCOUNT, stamp, stamp, json.dumps(finding)])


def test_an_incident_that_grows_keeps_its_id(tmp_path):
    """A finding judged later but earlier in time joins a known incident: the incident keeps the id
    sinks and tickets already have, though its first finding (which names new incidents) changed."""
    from conftest import ingest

    pair = [_call("a1", "user/ci-bot", 0, ATTACKER_IP), _call("b1", "role/app", 5, ATTACKER_IP)]
    (tmp_path / "trail.json").write_text(json.dumps({"Records": pair}))
    with Store(tmp_path / "home") as store:
        ingest(store, tmp_path / "trail.json")
        _raise(store, "role/app", ["b1"], "2026-03-01T12:05:00Z")
        correlate(store)
        (first,) = list_incidents(store, min_severity="info", status=None)
        store.con.execute("UPDATE incidents SET status = 'benign' WHERE id = ?", [first["id"]])
        _raise(store, "user/ci-bot", ["a1"], "2026-03-01T12:00:00Z")
        correlate(store)
        (grown,) = list_incidents(store, min_severity="info", status=None)
        assert len(grown["identities"]) == 2 and grown["timeline"][0]["identity"].endswith("user/ci-bot")
        assert (grown["id"], grown["status"]) == (first["id"], "benign")
        assert {i for (i,) in store.con.execute("SELECT incident_id FROM findings").fetchall()} == {first["id"]}


def _groups(incidents: list[dict]) -> list[set[str]]:
    return sorted(({i.rsplit(":", 1)[1] for i in x["identities"]} for x in incidents), key=len, reverse=True)


def test_a_rare_public_address_links_two_identities(tmp_path):
    pair = [_call("a1", "user/ci-bot", 0, ATTACKER_IP), _call("b1", "role/app", 5, ATTACKER_IP)]
    incidents = _incidents(tmp_path, pair, {"user/ci-bot": ["a1"], "role/app": ["b1"]})
    assert _groups(incidents) == [{"user/ci-bot", "role/app"}]
    assert {link["kind"] for link in incidents[0]["links"]} == {"shared-address"}  # the plain CLI did not link


@pytest.mark.parametrize("address", ["3.80.0.10",  # an AWS EC2 pool
                                     "10.1.2.3", "100.64.3.4",  # private, carrier-grade NAT
                                     "203.0.113.50", "2001:db8::7",  # documentation
                                     "1.2.3.4", "111.111.111.111"])  # placeholders
def test_a_cloud_private_or_placeholder_address_links_nobody(tmp_path, address):
    incidents = _incidents(tmp_path, [_call("a1", "user/ci-bot", 0, address), _call("b1", "role/app", 5, address)],
                           {"user/ci-bot": ["a1"], "role/app": ["b1"]})
    assert _groups(incidents) == [{"user/ci-bot"}, {"role/app"}]
    assert unlinkable_address(address)


def test_an_address_the_crowd_uses_in_normal_traffic_is_a_nat(tmp_path):
    crowd = [_call(f"c{n}", f"user/person-{n}", 10 + n, ATTACKER_IP) for n in range(2)]  # no findings of their own
    pair = [_call("a1", "user/ci-bot", 0, ATTACKER_IP), _call("b1", "role/app", 5, ATTACKER_IP)]
    incidents = _incidents(tmp_path, pair + crowd, {"user/ci-bot": ["a1"], "role/app": ["b1"]})
    assert _groups(incidents) == [{"user/ci-bot"}, {"role/app"}]


def test_a_client_of_its_own_links_and_a_common_client_does_not(tmp_path):
    # cloud addresses (not evidence), so only the client can link
    own = _incidents(tmp_path / "own", [_call("a1", "user/ci-bot", 0, "3.80.0.10", OWN_CLIENT),
                                        _call("b1", "role/app", 5, "3.80.0.11", OWN_CLIENT)],
                     {"user/ci-bot": ["a1"], "role/app": ["b1"]})
    assert _groups(own) == [{"user/ci-bot", "role/app"}] and own[0]["links"][0]["kind"] == "shared-client"
    for n, agent in enumerate((PLAIN_CLI, "aws-sdk-go/1.44.298 (go1.20.5; linux; amd64)", "console.amazonaws.com",
                               "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/125.0",
                               "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#6.5.0 lang/python#3.11.5 "
                               "Botocore/1.31.57", "SampleUserAgent")):
        common = _incidents(tmp_path / str(n), [_call("a1", "user/ci-bot", 0, "3.80.0.10", agent),
                                                _call("b1", "role/app", 5, "3.80.0.11", agent)],
                            {"user/ci-bot": ["a1"], "role/app": ["b1"]})
        assert _groups(common) == [{"user/ci-bot"}, {"role/app"}], agent
        assert common_client(agent), agent


def _handout(key: str) -> list[dict]:
    """A user obtains session credentials (the AssumeRole names no role, so no graph edge) that a role uses."""
    creds = {"credentials": {"accessKeyId": key, "sessionToken": "x", "expiration": "Mar 1, 2026 1:00:00 PM"}}
    return [_call("a1", "user/ci-bot", 0, "3.80.0.10", event="AssumeRole", source="sts.amazonaws.com",
                  response=creds),
            _call("b1", "role/app", 5, "3.80.0.11", key=key)]


def test_key_lineage_links_through_a_real_key_only(tmp_path):
    real = _incidents(tmp_path / "real", _handout(REAL_KEY), {"user/ci-bot": ["a1"], "role/app": ["b1"]})
    assert _groups(real) == [{"user/ci-bot", "role/app"}]
    assert [link["kind"] for link in real[0]["links"]] == ["key-lineage"]
    for n, key in enumerate(("1111", "ASIA1111111111111111", "ASIAIOSFODNN7EXAMPLE", "ASIAQWERQWERQWERQWER",
                             "SAMPLE_ACCESS_KEY")):
        fake = _incidents(tmp_path / str(n), _handout(key), {"user/ci-bot": ["a1"], "role/app": ["b1"]})
        assert _groups(fake) == [{"user/ci-bot"}, {"role/app"}], key
        assert placeholder_key(key), key


def test_a_key_id_many_identities_sign_with_is_no_lineage(tmp_path):
    others = [_call(f"c{n}", f"role/other-{n}", 10 + n, "3.80.0.12", key=REAL_KEY) for n in range(2)]
    incidents = _incidents(tmp_path, _handout(REAL_KEY) + others, {"user/ci-bot": ["a1"], "role/app": ["b1"]})
    assert _groups(incidents) == [{"user/ci-bot"}, {"role/app"}]


def test_another_identitys_event_with_the_same_id_is_not_evidence(tmp_path):
    # Test data reuses event ids: role/app's finding names "1", and so does an unrelated event of user/other
    # from the attacker's address that user/ci-bot also called from.
    records = [_call("1", "role/app", 0, "45.134.26.9"), _call("1", "user/other", 1, ATTACKER_IP),
               _call("2", "user/ci-bot", 5, ATTACKER_IP)]
    incidents = _incidents(tmp_path, records, {"role/app": ["1"], "user/ci-bot": ["2"]})
    assert _groups(incidents) == [{"role/app"}, {"user/ci-bot"}]


def test_placeholder_and_synthetic_values_are_recognised():
    for key in ("AKIAIOSFODNN7EXAMPLE", "AKIAI123456789EXAMPLE", "ASIA-MOCKACCESSKEYID-1", "REDACTED",
                "AKIAABCDEFGH23456789", "ASIA0000000000000000"):
        assert placeholder_key(key), key
    for key in (REAL_KEY, "AKIAZ3HQ7MW2XK5PRT4N", "ASIA57JLR4M2ZZDJUXY3"):
        assert placeholder_key(key) is None, key
    for address in ("12.12.12.12", "4.3.2.1", "192.168.1.10", "127.0.0.1", "fd00::1", "not-an-ip"):
        assert unlinkable_address(address), address
    assert "cloud" in unlinkable_address("3.80.0.10")
    assert unlinkable_address(ATTACKER_IP) is None
    assert common_client("aws-cli/2.13.5 Python/3.11.4 Linux/6.3.0-kali1-amd64 exe/x86_64.kali.2023") is None
    assert common_client("Boto3/1.26.0 Python/3.9 app/payroll-etl") is None  # an app id of its own
    assert common_client("acme-inventory-sync/1.4") is None
    assert common_client("python-requests/2.28.0") and common_client("aws-cli/2.13.0 Python/3.11.4 Linux/5.10.0 "
                                                                      "exe/x86_64.ubuntu.22 prompt/off "
                                                                      "command/s3.ls")


def test_analyze_output_files_carry_each_findings_incident(tmp_path):
    """`analyze --out` writes after correlation: a finding in an incident names it, in both formats."""
    from test_store_and_cli import run

    samples = Path(__file__).resolve().parents[2] / "shared" / "data" / "cloudtrail"
    home = tmp_path / "home"
    done = run("analyze", str(samples), "--out", str(tmp_path / "findings.jsonl"), "--json", home=home)
    assert done.returncode == 0, done.stderr
    with Store(home, read_only=True) as store:
        in_store = dict(store.con.execute("SELECT id, incident_id FROM findings").fetchall())
    written = [json.loads(line) for line in (tmp_path / "findings.jsonl").read_text().splitlines()]
    assert len(written) == len(in_store) and sum(1 for i in in_store.values() if i) >= 10
    assert {f["id"]: f["incident_id"] for f in written} == in_store
    ocsf = tmp_path / "findings.ocsf.jsonl"
    # a fresh store over the same files (a re-run has no new finding to write); incident ids are stable
    fresh = tmp_path / "fresh"
    done = run("analyze", str(samples), "--out", str(ocsf), "--format", "ocsf", "--json", home=fresh)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in ocsf.read_text().splitlines()]
    assert {r["finding_info"]["uid"]: r["metadata"].get("correlation_uid") for r in records} == in_store

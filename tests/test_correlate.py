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
from nhiwatch.detect.analyze import analyze
from nhiwatch.detect.finding import severity_rank
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

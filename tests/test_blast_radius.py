"""Blast radius on real data: Panther's CloudTrail rule tests, through the real command line.

The test events reuse placeholder values everywhere (event id "1", key "1111", AKIAIOSFODNN7EXAMPLE,
1.2.3.4, 111.111.111.111, documentation addresses, the plain aws-cli agent). Correlation once joined
unrelated tests into one critical incident through them, and the playbook would have quarantined an
Identity Center role. Here: every join stands on evidence a stranger could not share, and no playbook
touches an AWS-managed role or an identity without a medium+ finding of its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from conftest import CLOUDTRAIL
from nhiwatch.correlate.evidence import common_client, placeholder_key, unlinkable_address
from nhiwatch.core.severity import severity_rank
from nhiwatch.respond.actions import ActionError, Target
from nhiwatch.respond.managed import aws_managed

PANTHER = CLOUDTRAIL / "panther-rule-tests" / "DERIVED_panther_cloudtrail_tests.jsonl"
pytestmark = pytest.mark.skipif(not PANTHER.is_file(), reason=f"../shared is missing: expected {PANTHER}")
CLI = [sys.executable, "-m", "nhiwatch"]
GRAPH_LINKS = {"assumes", "cross-account", "external-account", "web-identity", "saml", "creates-key", "modifies",
               "passes-role"}


def _cli(*args: str) -> dict:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (args, done.stderr[-2000:])
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def panther(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("panther")
    records = [json.loads(line)["event"] for line in PANTHER.read_text().splitlines() if line.strip()]
    (tmp / "panther.json").write_text(json.dumps({"Records": records}))
    home = str(tmp / "home")
    _cli("analyze", str(tmp / "panther.json"), "--home", home, "--workers", "1", "--json", "-q")
    incidents = _cli("incidents", "list", "--home", home, "--min-severity", "info", "--status", "all",
                     "--json")["incidents"]
    findings = _cli("findings", "list", "--home", home, "--min-severity", "info", "--status", "all", "--limit", "0",
                    "--json")["findings"]
    plans = {i["id"]: _cli("respond", "plan", i["id"], "--home", home, "--json") for i in incidents}
    return {"home": home, "tmp": tmp, "incidents": incidents, "findings": findings, "plans": plans}


def _managed(arn: str) -> str | None:
    try:
        return aws_managed(Target.from_arn(arn))
    except ActionError:
        return None  # a federated subject: not an IAM role at all


def _linkable(link: dict) -> bool:
    """Whether a link stands on evidence only the same hands would leave."""
    kind, detail = link["kind"], link["detail"]
    if kind in GRAPH_LINKS:
        return True  # an event says one identity acted on the other
    if kind == "key-lineage":
        key = re.search(r" returned (\S+), used by ", detail)
        return key is not None and placeholder_key(key.group(1)) is None
    if kind == "shared-address":
        return unlinkable_address(detail) is None
    if kind == "shared-client":
        return common_client(detail) is None
    return False


def test_no_incident_joins_identities_through_placeholders_or_shared_addresses(panther):
    incidents = panther["incidents"]
    assert incidents and sum(len(i["finding_ids"]) for i in incidents) >= 20  # the data did raise alerts
    for incident in incidents:
        identities = incident["identities"]
        for link in incident["links"]:
            assert _linkable(link), (incident["id"], link)
        # every member is reachable from the first through sound links alone (not only through a placeholder)
        neighbours = defaultdict(set)
        for link in incident["links"]:
            if _linkable(link):
                neighbours[link["from"]].add(link["to"])
                neighbours[link["to"]].add(link["from"])
        reached, todo = {identities[0]}, [identities[0]]
        while todo:
            for other in neighbours[todo.pop()] - reached:
                reached.add(other)
                todo.append(other)
        assert reached >= set(identities), (incident["id"], identities, incident["links"])
    # the tests once joined through key "1111", 111.111.111.111, 203.0.113.50 and the plain aws-cli agent
    once_joined = ("role/tester", "root", "role/example-role")
    for incident in incidents:
        assert sum(any(i.endswith(":" + name) for i in incident["identities"]) for name in once_joined) <= 1


def test_no_playbook_touches_an_aws_managed_role_or_an_identity_without_its_own_alert(panther):
    alerting = defaultdict(set)  # incident -> identities with a medium+ finding in it
    for finding in panther["findings"]:
        if finding.get("incident_id") and severity_rank(finding["severity"]) >= severity_rank("medium"):
            alerting[finding["incident_id"]].add(finding["identity"]["arn"])
    managed_seen, acted, skipped = set(), 0, 0
    for incident in panther["incidents"]:
        plan = panther["plans"][incident["id"]]
        assert plan["dry_run"] is True
        # every identity is listed: acted on, notified, or skipped with a reason (never silently dropped)
        assert {a["identity"] for a in plan["actions"]} == set(incident["identities"])
        for action in plan["actions"]:
            managed = _managed(action["identity"])
            changes = bool(action.get("calls")) and not action["refused"]
            if action["action"] == "skip":
                skipped += 1
                assert action["skipped"] and action["refused"] == f"skipped: {action['skipped']}"
            if managed:
                managed_seen.add(action["identity"])
                assert action["action"] == "skip" and not changes, action
                assert action["skipped"].startswith("AWS-managed: "), action
            if changes:
                acted += 1
                assert action["identity"] in alerting[incident["id"]], action
                account = Target.from_arn(action["identity"]).account_id
                assert action["account"] == account
                assert all(line.endswith(f"# account {account}") for line in action["cli"]), action["cli"]
    # not vacuous: the data holds Identity Center roles that alerted, and other identities that are acted on
    assert any("AWSReservedSSO_DevAdmin" in arn for arn in managed_seen), managed_seen
    assert acted >= 5 and skipped >= len(managed_seen)


def test_automatic_mode_skips_aws_managed_roles_even_when_the_policy_allows_everything(panther):
    policy = panther["tmp"] / "allow-all.toml"
    policy.write_text('[[allow]]\nactions = ["revoke-sessions", "revoke-session", "deactivate-key", "disable-console", '
                      '"quarantine", "network-fence", "tighten-oidc-trust", "notify"]\nmin_severity = "low"\n')
    decisions = _cli("respond", "auto", "--policy", str(policy), "--home", panther["home"], "--json")["decisions"]
    assert decisions
    managed = [d for d in decisions if _managed(d["identity"])]
    assert managed and all(d["action"] == "skip" and (d["skipped"] or "").startswith("skipped: AWS-managed")
                           for d in managed)
    would_run = [d for d in decisions if d["allowed"] and not d["skipped"]]
    assert would_run and not any(_managed(d["identity"]) for d in would_run)
    assert all(line.endswith(f"# account {d['account']}") for d in would_run for line in d.get("cli", []))

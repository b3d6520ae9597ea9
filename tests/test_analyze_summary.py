"""`nhiwatch analyze` ends with a summary a person can read, and --json carries it: counts that agree
with the store, the most severe findings in order, and event text printed as text, never as markup."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nhiwatch.core.severity import SEVERITIES
from nhiwatch.store.db import Store

STRATUS = Path(__file__).parents[1].parent / "shared" / "data" / "cloudtrail" / "stratus-detonations"
FILES = ("aws.credential-access.secretsmanager-retrieve-secrets.json", "aws.persistence.iam-create-admin-user.json",
         "aws.exfiltration.ec2-share-ebs-snapshot.json", "aws.credential-access.ec2-steal-instance-credentials.json",
         "aws.defense-evasion.cloudtrail-stop.json", "aws.persistence.iam-backdoor-role.json")
# What an attacker can put in a user agent: markup, and a terminal control sequence
AGENT = "\x1b[2J[bold]evil[/bold] [red]x"
ALERTING = ("critical", "high", "medium")

pytestmark = pytest.mark.skipif(not STRATUS.is_dir(), reason="needs ../shared")


def nhiwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nhiwatch", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trails(tmp_path_factory) -> Path:
    """Real Stratus detonations; in one the secrets are read with a hostile user agent from a short address,
    in another the caller's ARN carries markup."""
    folder = tmp_path_factory.mktemp("stratus")
    for name in FILES:
        shutil.copy(STRATUS / name, folder / name)
    for hostile in (folder / FILES[0], folder / FILES[4]):  # secrets read, then the trail stopped (high)
        records = json.loads(hostile.read_text())
        for record in records:
            record["userAgent"] = AGENT
            record["sourceIPAddress"] = "1.2.3.4"
        hostile.write_text(json.dumps(records))
    admin = folder / FILES[1]
    records = json.loads(admin.read_text())
    for record in records:
        record["userIdentity"]["arn"] = record["userIdentity"]["arn"].replace("user/christophe", "user/[red]mallory")
        record["userIdentity"]["userName"] = "[red]mallory"
    admin.write_text(json.dumps(records))
    return folder


def _store_counts(home: Path) -> tuple[dict, dict, list[tuple], dict]:
    with Store(home, read_only=True) as store:
        rows = store.con.execute("SELECT detector, severity, count(*) FROM findings WHERE status = 'open' "
                                 "GROUP BY ALL").fetchall()
        ranked = store.con.execute("SELECT id, severity, score FROM findings WHERE status = 'open'").fetchall()
        incidents = dict(store.con.execute("SELECT severity, count(*) FROM incidents WHERE status = 'open' "
                                           "GROUP BY ALL").fetchall())
    by_severity: dict[str, int] = {}
    by_detector: dict[str, dict[str, int]] = {}
    for detector, severity, count in rows:
        by_severity[severity] = by_severity.get(severity, 0) + count
        by_detector.setdefault(detector, {})[severity] = count
    return by_severity, by_detector, ranked, incidents


def _order_key(severity: str, score: int) -> tuple[int, int]:
    return (-SEVERITIES.index(severity), -score)


def test_json_summary_agrees_with_the_store(trails, tmp_path):
    home = tmp_path / "home"
    run = nhiwatch("analyze", str(trails), "--json", "--home", str(home))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    for key in ("ingest", "events_judged", "findings", "by_severity", "by_detector", "incidents", "problems"):
        assert key in report  # the keys that were there before stay
    summary = report["summary"]
    by_severity, by_detector, ranked, incidents = _store_counts(home)
    assert sum(by_severity.values()) == summary["open_findings"] == report["findings"] > 0
    assert {s: n for s, n in summary["by_severity"].items() if n} == by_severity
    assert summary["by_detector_all"] == by_detector
    alerting = {d: sum(n for s, n in c.items() if s in ALERTING) for d, c in by_detector.items()}
    alerting = {d: n for d, n in alerting.items() if n}
    top = summary["by_detector"]
    assert [d["count"] for d in top] == sorted((d["count"] for d in top), reverse=True)
    assert {d["detector"]: d["count"] for d in top} == dict(sorted(alerting.items(), key=lambda x: -x[1])[:10])
    assert sum(d["count"] for d in top) + summary["other_detectors"]["findings"] == sum(alerting.values())
    assert summary["low_and_info"] == by_severity.get("low", 0) + by_severity.get("info", 0)

    shown = summary["top_findings"]
    medium_up = sorted((_order_key(s, score), fid) for fid, s, score in ranked if s in ALERTING)
    assert len(shown) == min(10, len(medium_up)) >= 5
    keys = [_order_key(f["severity"], f["score"]) for f in shown]
    assert keys == sorted(keys) and keys[0] == medium_up[0][0]  # ordered, and starts with the most severe
    assert all(f["severity"] in ALERTING for f in shown)

    assert summary["incidents"]["open"] == sum(incidents.values()) > 0
    assert {s: n for s, n in summary["incidents"]["by_severity"].items() if n} == incidents
    incident_keys = [_order_key(i["severity"], i["score"]) for i in summary["incidents"]["top"]]
    assert incident_keys == sorted(incident_keys) and len(incident_keys) == min(5, sum(incidents.values()))
    assert all(i["title"] and i["identities"] and isinstance(i["tactics"], list) for i in summary["incidents"]["top"])
    assert summary["see_all"]["findings"].startswith(f"nhiwatch findings list --home {home}")

    again = json.loads(nhiwatch("analyze", "--json", "--home", str(home)).stdout)  # nothing new, same open set
    assert again["findings"] == 0 and again["summary"]["new_findings"] == 0
    assert again["summary"]["by_severity"] == summary["by_severity"]


def test_printed_summary_is_ordered_and_event_text_is_literal(trails, tmp_path):
    home = tmp_path / "home"
    run = nhiwatch("analyze", str(trails), "--home", str(home))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    by_severity, by_detector, ranked, _ = _store_counts(home)
    summary_part = out[out.index("Summary"):]
    assert f"{sum(by_severity.values())} open findings in the store" in summary_part
    for severity in SEVERITIES:
        assert f"{by_severity.get(severity, 0)} {severity}" in summary_part
    # the top list: the printed ids are the store's most severe findings, in severity-then-score order
    top_part = summary_part[summary_part.index("top findings"):]
    printed = [word for word in top_part.split() if word.startswith("nw-")]
    score_of = {fid: (severity, score) for fid, severity, score in ranked}
    keys = [_order_key(*score_of[fid]) for fid in printed]
    assert len(printed) == min(10, sum(1 for _, s, _ in ranked if s in ALERTING)) and keys == sorted(keys)
    assert keys[0] == min(_order_key(s, score) for _, s, score in ranked)
    # what came from the events prints as written: markup is not applied, control characters are shown
    assert "[bold]evil[" in top_part  # the user agent, in the stopped trail's explanation
    assert "user/[red]mallory" in top_part
    assert "\x1b" not in out and "\\x1b[2j[bold]evil[" in out
    assert f"nhiwatch findings list --home {home}" in out
    # every detector with alerting findings is named with its count
    for detector, counts in by_detector.items():
        alerting = sum(n for s, n in counts.items() if s in ALERTING)
        if alerting:
            assert any(line.split()[:2] == [detector, str(alerting)] for line in summary_part.splitlines()), detector

    listed = nhiwatch("findings", "list", "--home", str(home))  # the findings table prints the ARN as written too
    assert listed.returncode == 0 and "[red]mallory" in listed.stdout

"""Scoring findings against simulator labels: what counts as caught, and what is noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.table import Table

from nhiwatch.evaluation.scoring import (
    EvalReport,
    load_findings,
    render_table,
    score,
    severity_at_least,
    summary_lines,
)

ROLE_A = "arn:aws:iam::111122223333:role/ci-deployer"
ROLE_B = "arn:aws:iam::111122223333:role/batch-worker"
ROLE_C = "arn:aws:iam::111122223333:role/reporting"


def make_labels(**overrides) -> dict:
    """Two attack scenarios on two roles, one benign change on a third."""
    labels = {
        "seed": 7, "start": "2026-03-01T00:00:00Z", "end": "2026-03-08T00:00:00Z", "days": 7,
        "identities": 3, "identity_days": 2000,
        "scenarios": [
            {"id": "s1", "title": "Secrets dump", "stratus": ["aws.credential-access.secretsmanager-retrieve-secrets"],
             "mitre": ["T1555"], "account_id": "111122223333", "principal": ROLE_A,
             "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:30:00Z", "event_ids": ["a1", "a2", "a3"]},
            {"id": "s2", "title": "Backdoor role", "stratus": ["aws.persistence.iam-backdoor-role"],
             "mitre": ["T1098"], "account_id": "111122223333", "principal": ROLE_B,
             "start": "2026-03-04T08:00:00Z", "end": "2026-03-04T08:10:00Z", "event_ids": ["b1", "b2"]},
        ],
        "changes": [{"id": "c1", "kind": "new_region", "principal": ROLE_C,
                     "start": "2026-03-05T12:00:00Z", "event_ids": ["c1-e1", "c1-e2"]}],
    }
    labels.update(overrides)
    return labels


def finding(fid: str, principal: str, time: str, event_ids: list[str] | None = None,
            severity: str = "high", detector: str = "rare_api") -> dict:
    f = {"finding_id": fid, "detector": detector, "severity": severity, "principal": principal, "time": time}
    if event_ids is not None:
        f["event_ids"] = event_ids
    return f


def by_id(report: EvalReport) -> dict:
    return {r.id: r for r in report.scenarios}


def test_every_scenario_found_gives_full_recall():
    report = score(make_labels(), [
        finding("f1", ROLE_A, "2026-03-02T10:02:00Z", ["a1"], detector="secrets_burst"),
        finding("f2", ROLE_B, "2026-03-04T08:01:00Z", ["b2"], severity="critical", detector="iam_persistence"),
    ])
    assert report.recall == 1.0
    assert report.precision == 1.0
    assert report.false_alerts == 0
    assert by_id(report)["s1"].detectors == ["secrets_burst"]
    assert by_id(report)["s2"].max_severity == "critical"


def test_no_findings_gives_zero_recall_and_no_precision():
    report = score(make_labels(), [])
    assert report.recall == 0.0
    assert report.precision is None
    assert report.mean_time_to_alert_seconds is None
    assert all(not r.detected and r.time_to_first_alert_seconds is None for r in report.scenarios)


def test_no_scenarios_gives_no_recall():
    assert score(make_labels(scenarios=[]), []).recall is None


def test_benign_finding_is_one_false_alert_per_identity_days():
    report = score(make_labels(), [finding("f1", ROLE_C, "2026-03-06T09:00:00Z", ["benign-1"], severity="medium")])
    assert report.false_alerts == 1
    assert report.false_alerts_on_change == 0
    assert report.false_alerts_per_1000_identity_days == pytest.approx(0.5)  # 1 * 1000 / 2000
    assert report.precision == 0.0


def test_false_alert_rate_needs_identity_days():
    report = score(make_labels(identity_days=0), [finding("f1", ROLE_C, "2026-03-06T09:00:00Z", ["x"])])
    assert report.false_alerts == 1
    assert report.false_alerts_per_1000_identity_days is None


def test_false_alert_on_a_legitimate_change_is_counted_separately():
    report = score(make_labels(), [finding("f1", ROLE_C, "2026-03-05T12:00:05Z", ["c1-e1"])])
    assert (report.false_alerts, report.false_alerts_on_change) == (1, 1)


def test_low_severity_on_the_attack_does_not_detect():
    report = score(make_labels(), [
        finding("f1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"], severity="low"),
        finding("f2", ROLE_A, "2026-03-02T10:01:00Z", ["a2"], severity="info"),
    ])
    assert not by_id(report)["s1"].detected
    assert report.findings_below_medium == 2
    assert report.findings_counted == 0
    assert report.precision is None
    assert report.false_alerts == 0  # below medium never counts against the detector either


def test_right_events_wrong_principal_is_wrong_identity():
    report = score(make_labels(), [finding("f1", ROLE_C, "2026-03-02T10:01:00Z", ["a1", "a2"])])
    assert not by_id(report)["s1"].detected
    assert report.wrong_identity == 1
    assert report.false_alerts == 0
    assert report.true_positive_findings == 0
    assert report.precision == 0.0


def test_time_to_alert_is_measured_from_the_first_event():
    report = score(make_labels(), [
        finding("late", ROLE_A, "2026-03-02T10:20:00Z", ["a3"]),
        finding("first", ROLE_A, "2026-03-02T11:05:00+01:00", ["a2"]),  # 10:05 UTC, written with an offset
    ])
    s1 = by_id(report)["s1"]
    assert s1.findings == 2
    assert s1.time_to_first_alert_seconds == 300.0
    assert report.mean_time_to_alert_seconds == 300.0
    assert report.median_time_to_alert_seconds == 300.0


def test_time_to_alert_is_floored_at_zero():
    # Shares an attack event but carries an earlier timestamp (e.g. the session start).
    report = score(make_labels(), [finding("f1", ROLE_A, "2026-03-02T09:59:00Z", ["a1"])])
    assert by_id(report)["s1"].time_to_first_alert_seconds == 0.0


def test_mean_and_median_over_detected_scenarios():
    report = score(make_labels(), [
        finding("f1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"]),   # 60 s
        finding("f2", ROLE_B, "2026-03-04T08:05:00Z", ["b1"]),   # 300 s
    ])
    assert report.mean_time_to_alert_seconds == pytest.approx(180.0)
    assert report.median_time_to_alert_seconds == pytest.approx(180.0)


def test_finding_in_window_without_shared_ids_still_detects():
    # 50 minutes after the scenario's end: inside the one-hour grace.
    report = score(make_labels(), [finding("f1", ROLE_A, "2026-03-02T11:20:00Z")])
    assert by_id(report)["s1"].detected
    assert by_id(report)["s1"].time_to_first_alert_seconds == 80 * 60
    assert report.true_positive_findings == 1


def test_finding_after_grace_without_shared_ids_does_not_detect():
    report = score(make_labels(), [finding("f1", ROLE_A, "2026-03-02T11:30:01Z", ["other"])])
    assert not by_id(report)["s1"].detected
    assert report.false_alerts == 1


def test_finding_before_start_without_shared_ids_does_not_detect():
    report = score(make_labels(), [finding("f1", ROLE_A, "2026-03-02T09:59:59Z")])
    assert not by_id(report)["s1"].detected


def test_precision_three_true_one_false():
    report = score(make_labels(), [
        finding("t1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"]),
        finding("t2", ROLE_A, "2026-03-02T10:02:00Z", ["a2"]),
        finding("t3", ROLE_B, "2026-03-04T08:03:00Z", ["b1"]),
        finding("f1", ROLE_C, "2026-03-06T00:00:00Z", ["benign"]),
        finding("ignored", ROLE_C, "2026-03-06T00:00:00Z", ["benign"], severity="low"),
    ])
    assert report.precision == pytest.approx(0.75)
    assert (report.findings_total, report.findings_counted, report.findings_below_medium) == (5, 4, 1)
    assert report.true_positive_findings == 3


def test_severity_is_case_insensitive_and_unknown_is_a_problem():
    assert severity_at_least("HIGH") and severity_at_least("Medium")
    assert not severity_at_least("low") and not severity_at_least("bogus")
    report = score(make_labels(), [
        finding("f1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"], severity="CRITICAL"),
        finding("f2", ROLE_B, "2026-03-04T08:01:00Z", ["b1"], severity="severe"),
    ])
    assert by_id(report)["s1"].detected
    assert not by_id(report)["s2"].detected
    assert report.findings_below_medium == 1
    assert any("f2" in p and "severe" in p for p in report.problems)


def test_report_serialises_to_json():
    report = score(make_labels(), [finding("f1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"])])
    data = json.loads(json.dumps(report.as_dict()))
    assert list(data)[:2] == ["scenarios", "recall"]
    assert data["scenarios"][0]["id"] == "s1" and data["scenarios"][0]["detected"] is True


def test_load_findings_jsonl_with_a_malformed_line(tmp_path: Path):
    path = tmp_path / "findings.jsonl"
    good = [finding("f1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"]), finding("f2", ROLE_B, "2026-03-04T08:01:00Z")]
    path.write_text(json.dumps(good[0]) + "\n\n{not json\n" + json.dumps(good[1]) + "\n", encoding="utf-8")
    findings, problems = load_findings(path)
    assert [f["finding_id"] for f in findings] == ["f1", "f2"]
    assert len(problems) == 1 and "line 3" in problems[0]


def test_load_findings_json_array(tmp_path: Path):
    path = tmp_path / "findings.json"
    path.write_text(json.dumps([finding("f1", ROLE_A, "2026-03-02T10:01:00Z"), 42]), encoding="utf-8")
    findings, problems = load_findings(path)
    assert [f["finding_id"] for f in findings] == ["f1"]
    assert len(problems) == 1


def test_render_table_has_one_row_per_scenario():
    report = score(make_labels(), [finding("f1", ROLE_A, "2026-03-02T10:03:12Z", ["a1"])])
    table = render_table(report)
    assert isinstance(table, Table)
    assert table.row_count == 2
    assert list(table.columns[3].cells) == ["3m 12s", "—"]


def test_summary_lines_mention_the_headline_metrics():
    report = score(make_labels(), [
        finding("f1", ROLE_A, "2026-03-02T10:03:12Z", ["a1"]),
        finding("f2", ROLE_C, "2026-03-06T00:00:00Z", ["benign"]),
    ])
    text = "\n".join(summary_lines(report))
    assert "Recall: 50.0%" in text
    assert "Precision: 50.0%" in text
    assert "False alerts per 1,000 identity-days: 0.50" in text
    assert "Mean time to alert: 3m 12s" in text

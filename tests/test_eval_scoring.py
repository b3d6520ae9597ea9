"""Scoring findings against simulator labels: what counts as caught, and what is noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.table import Table

from nhiwatch.evaluation.scoring import (
    EvalReport,
    load_findings,
    nhi_days_by_day,
    render_noise_tables,
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


# -- noise per NHI-day, legitimate change, recall by origin ----------------------------------------------

ROLE_D = "arn:aws:iam::111122223333:role/etl-loader"
NHI_DAYS = {"2026-03-01": 10, "2026-03-02": 40, "2026-03-03": 50}  # 100 NHI-days, 10 on day one


def change_labels(**overrides) -> dict:
    labels = make_labels(changes=[
        {"id": "c1", "kind": "new_region", "principal": ROLE_C, "start": "2026-03-05T12:00:00Z",
         "event_ids": ["c1-e1", "c1-e2"]},
        {"id": "c2", "kind": "key_rotation", "principal": ROLE_D, "start": "2026-03-06T09:00:00Z",
         "event_ids": ["c2-e1"]},
        {"id": "c3", "kind": "key_rotation", "principal": ROLE_D, "start": "2026-03-07T09:00:00Z",
         "event_ids": ["c3-e1", "c3-e2", "c3-e3"]},
    ])
    labels.update(overrides)
    return labels


def kinds(report: EvalReport) -> dict:
    return {k.kind: k for k in report.false_alerts_by_change_kind}


def test_false_alert_on_a_change_event_is_counted_under_its_kind():
    report = score(change_labels(), [
        finding("f1", ROLE_D, "2026-03-06T09:05:00Z", ["c2-e1", "other"], detector="novel_api"),
        finding("f2", ROLE_C, "2026-03-07T00:00:00Z", ["benign"], detector="novel_api"),  # not on a change
        finding("f3", ROLE_D, "2026-03-07T09:01:00Z", ["c3-e2"], severity="low"),  # low: not an alert
    ], nhi_days=NHI_DAYS)
    assert report.false_alerts == 2 and report.false_alerts_on_change == 1
    rotation, region = kinds(report)["key_rotation"], kinds(report)["new_region"]
    assert (rotation.changes, rotation.events) == (2, 4)
    assert (rotation.false_alerts, rotation.findings_medium_plus, rotation.findings_below_medium) == (1, 1, 1)
    assert (region.false_alerts, region.findings_medium_plus, region.findings_below_medium) == (0, 0, 0)
    assert report.false_alerts_by_change_kind[0].kind == "key_rotation"  # the noisiest kind first
    assert [s.change_kinds for s in report.false_alert_samples if s.id == "f1"] == [["key_rotation"]]


def test_a_finding_on_the_attack_is_not_noise_on_a_change_that_shares_no_event():
    labels = change_labels()
    report = score(labels, [finding("t1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"])], nhi_days=NHI_DAYS)
    assert report.false_alerts == 0 and report.change_findings == 0
    assert all(k.findings_medium_plus == 0 for k in report.false_alerts_by_change_kind)


def test_false_alerts_per_nhi_day_split_day_one_from_the_rest():
    report = score(change_labels(), [
        finding("d1", ROLE_C, "2026-03-01T23:59:59Z", ["x1"], detector="novel_api"),   # day one (UTC)
        finding("d2", ROLE_C, "2026-03-02T00:30:00+01:00", ["x2"], detector="novel_api"),  # 23:30 UTC: day one
        finding("n1", ROLE_D, "2026-03-02T00:00:00Z", ["x3"], detector="unusual_region"),
        finding("n2", ROLE_D, "2026-03-03T12:00:00Z", ["x4"], detector="novel_api"),
        finding("low", ROLE_D, "2026-03-01T12:00:00Z", ["x5"], severity="low"),
    ], nhi_days=NHI_DAYS)
    assert report.first_day == "2026-03-01"
    assert (report.nhi_days, report.day_one_nhis) == (100, 10)
    assert report.false_alerts_per_1000_nhi_days == pytest.approx(40.0)  # 4 * 1000 / 100
    assert report.day_one_false_alerts == 2
    assert report.day_one_false_alerts_per_1000_nhi_days == pytest.approx(200.0)  # 2 * 1000 / 10
    assert report.after_day_one_false_alerts == 2
    assert report.after_day_one_false_alerts_per_1000_nhi_days == pytest.approx(2000 / 90)
    detectors = {d.detector: d for d in report.false_alerts_by_detector}
    assert [d.detector for d in report.false_alerts_by_detector] == ["novel_api", "unusual_region"]
    assert (detectors["novel_api"].false_alerts, detectors["novel_api"].day_one) == (3, 2)
    assert detectors["unusual_region"].per_1000_nhi_days == pytest.approx(10.0)
    # two each: ties go by name
    assert [(i.identity, i.false_alerts) for i in report.false_alerts_by_identity] == [(ROLE_D, 2), (ROLE_C, 2)]
    assert report.low_noise_findings == 1
    assert report.low_noise_per_1000_nhi_days == pytest.approx(10.0)


def test_without_nhi_days_the_rates_are_unknown():
    report = score(change_labels(), [finding("f1", ROLE_C, "2026-03-06T09:00:00Z", ["x"])])
    assert report.false_alerts == 1
    assert report.nhi_days is None and report.day_one_nhis is None
    assert report.false_alerts_per_1000_nhi_days is None
    assert report.day_one_false_alerts_per_1000_nhi_days is None
    assert report.low_noise_per_1000_nhi_days is None
    assert report.false_alerts_by_detector[0].per_1000_nhi_days is None


def test_low_noise_leaves_out_low_findings_on_an_attack():
    report = score(change_labels(), [
        finding("on-attack", ROLE_A, "2026-03-02T10:01:00Z", ["a1"], severity="low"),
        finding("on-attack-events", ROLE_C, "2026-03-04T08:01:00Z", ["b1"], severity="info"),
        finding("noise", ROLE_C, "2026-03-06T00:00:00Z", ["benign"], severity="info"),
    ], nhi_days=NHI_DAYS)
    assert report.low_noise_findings == 1
    assert report.findings_below_medium == 3


def test_explained_share_counts_findings_on_change_events_carrying_expected_change():
    explained = finding("e1", ROLE_D, "2026-03-06T09:01:00Z", ["c2-e1"], severity="info")
    explained["evidence"] = {"expected_change": {"event_id": "c2-e0", "what": "a deploy", "at": "2026-03-06T08:59:00Z"}}
    unexplained_low = finding("u1", ROLE_D, "2026-03-07T09:02:00Z", ["c3-e1"], severity="low")
    unexplained_low["evidence"] = {"new_apis": ["iam:ListKeys"]}
    unexplained_alert = finding("u2", ROLE_C, "2026-03-05T12:00:05Z", ["c1-e2"])
    not_on_change = finding("o1", ROLE_C, "2026-03-06T00:00:00Z", ["benign"], severity="low")
    not_on_change["evidence"] = {"expected_change": {"event_id": "z"}}  # explained, but not a labelled change
    on_attack = finding("t1", ROLE_A, "2026-03-02T10:01:00Z", ["a1", "c1-e1"])
    on_attack["evidence"] = {"expected_change": {"event_id": "z"}}
    report = score(change_labels(), [explained, unexplained_low, unexplained_alert, not_on_change, on_attack],
                   nhi_days=NHI_DAYS)
    assert (report.change_findings, report.change_findings_explained) == (3, 1)
    assert report.explained_share == pytest.approx(1 / 3)
    assert kinds(report)["key_rotation"].explained == 1
    assert kinds(report)["new_region"].explained == 0
    assert (kinds(report)["new_region"].false_alerts, kinds(report)["new_region"].findings_medium_plus) == (1, 1)


def test_explained_share_is_unknown_without_findings_on_change():
    assert score(change_labels(), [], nhi_days=NHI_DAYS).explained_share is None


def test_recall_is_split_between_library_scenarios_and_replays():
    labels = make_labels()
    labels["scenarios"].append(
        {"id": "replay:aws.defense-evasion.cloudtrail-stop", "title": "replayed", "principal": ROLE_C,
         "start": "2026-03-05T08:00:00Z", "end": "2026-03-05T08:01:00Z", "event_ids": ["r1"]})
    labels["scenarios"].append(
        {"id": "replay:aws.persistence.iam-backdoor-user", "title": "replayed", "principal": ROLE_D,
         "start": "2026-03-06T08:00:00Z", "end": "2026-03-06T08:01:00Z", "event_ids": ["r2"]})
    report = score(labels, [
        finding("f1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"]),
        finding("f2", ROLE_C, "2026-03-05T08:00:30Z", ["r1"], severity="critical"),
        finding("f3", ROLE_D, "2026-03-06T08:00:30Z", ["r2"], severity="low"),
        finding("f4", ROLE_D, "2026-03-06T08:00:40Z", ["r2"], severity="info"),
    ])
    assert (report.scenarios_library, report.scenarios_replays) == (2, 2)
    assert report.recall_library == pytest.approx(0.5)
    assert report.recall_replays == pytest.approx(0.5)
    assert by_id(report)["replay:aws.defense-evasion.cloudtrail-stop"].kind == "replay"
    assert by_id(report)["s1"].kind == "library"
    assert {m["id"]: m["best_severity"] for m in report.missed} == {
        "s2": None, "replay:aws.persistence.iam-backdoor-user": "low"}
    assert {m["id"]: m["kind"] for m in report.missed}["s2"] == "library"


def test_top_identities_are_capped_at_ten():
    found = [finding(f"f{n}", f"arn:aws:iam::111122223333:role/r{n:02d}", "2026-03-06T00:00:00Z", [f"x{n}"])
             for n in range(12)]
    found += [finding("again", "arn:aws:iam::111122223333:role/r11", "2026-03-06T01:00:00Z", ["y"])]
    report = score(change_labels(), found, nhi_days=NHI_DAYS)
    assert len(report.false_alerts_by_identity) == 10
    assert report.false_alerts_by_identity[0].identity.endswith("/r11")
    assert report.false_alerts_by_identity[0].false_alerts == 2


def test_false_alert_samples_most_severe_first_with_a_short_explanation():
    noisy = finding("crit", ROLE_C, "2026-03-06T00:00:00Z", ["x1"], severity="critical")
    noisy["explanation"] = "y" * 500
    report = score(change_labels(), [finding("med", ROLE_C, "2026-03-06T00:00:00Z", ["x2"], severity="medium"),
                                     noisy], nhi_days=NHI_DAYS)
    assert [s.id for s in report.false_alert_samples] == ["crit", "med"]
    assert len(report.false_alert_samples[0].explanation) == 200


def test_nhi_days_by_day_counts_distinct_non_human_principals_per_utc_day():
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # the day is the UTC day whatever the session says
    con.execute("CREATE TABLE identities (arn VARCHAR, category VARCHAR, nhi_type VARCHAR)")
    con.execute("CREATE TABLE events (principal VARCHAR, event_time TIMESTAMPTZ)")
    con.executemany("INSERT INTO identities VALUES (?, ?, ?)", [
        ("role/worker", "non-human", "service-role"),
        ("user/ci", "human-use-of-nhi", "user-with-keys"),
        ("role/chained", "unknown", "internal-role"),
        ("role/sso", "human", "saml-role"),
        ("user/root", "human", "root"),
        ("role/odd", "unknown", "saml-role"),
    ])
    con.executemany("INSERT INTO events VALUES (?, ?::TIMESTAMPTZ)", [
        ("role/worker", "2026-03-01 01:00:00+00"),
        ("role/worker", "2026-03-01 22:00:00+00"),   # same identity, same day: one NHI-day
        ("role/worker", "2026-03-01 23:30:00-05"),   # 04:30 UTC on the 2nd
        ("user/ci", "2026-03-01 10:00:00+00"),
        ("role/chained", "2026-03-02 10:00:00+00"),
        ("role/sso", "2026-03-01 10:00:00+00"),      # people are not counted
        ("user/root", "2026-03-02 10:00:00+00"),
        ("role/odd", "2026-03-02 10:00:00+00"),
        ("unknown-to-inventory", "2026-03-01 10:00:00+00"),
    ])
    assert nhi_days_by_day(con) == {"2026-03-01": 2, "2026-03-02": 2}


def test_summary_lines_carry_the_nhi_figures():
    labels = make_labels()
    labels["scenarios"].append({"id": "replay:aws.defense-evasion.cloudtrail-stop", "title": "replayed",
                                "principal": ROLE_C, "start": "2026-03-05T08:00:00Z",
                                "end": "2026-03-05T08:01:00Z", "event_ids": ["r1"]})
    report = score(labels, [finding("f1", ROLE_A, "2026-03-02T10:01:00Z", ["a1"]),
                            finding("fa", ROLE_D, "2026-03-01T10:00:00Z", ["x"], detector="novel_api")],
                   nhi_days=NHI_DAYS)
    text = "\n".join(summary_lines(report))
    assert "Recall by origin: library 50.0% (1/2), Stratus replays 0.0% (0/1)" in text
    assert "False alerts per 1,000 NHI-days: 10.00 (1 over 100 NHI-days); day one (2026-03-01): 100.00" in text
    assert "Missed: s2 (best nothing), replay:aws.defense-evasion.cloudtrail-stop (best nothing)" in text
    tables = render_noise_tables(report)
    assert [t.title for t in tables][0] == "False alerts by detector"
    assert tables[0].row_count == 1

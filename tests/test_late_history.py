"""History that arrives after later events were judged (a backfill read out of order, SQS messages
redelivered after a crash): the identity is judged again with it, so an attack first judged on an
identity that looked brand new is raised to the severity its real baseline gives."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ingest
from nhiwatch.detect.runner import DetectSession
from test_formats import make_event

ROLE = "arn:aws:iam::123456789012:role/service/app-server"
AGENT = "aws-sdk-go-v2/1.26.19 os/linux lang/go#1.22.2 exec-env/AWS_ECS_FARGATE"


def _secret_read(i: int, when: str, secret: str, ip: str, agent: str = AGENT) -> dict:
    return make_event(i, eventTime=when, eventSource="secretsmanager.amazonaws.com", eventName="GetSecretValue",
                      awsRegion="us-east-1", sourceIPAddress=ip, userAgent=agent, managementEvent=True,
                      requestParameters={"secretId": secret},
                      resources=[{"ARN": secret, "type": "AWS::SecretsManager::Secret"}])


def _history() -> list[dict]:
    # four days of the workload reading its one secret every hour from its usual address
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
    return [_secret_read(d * 24 + h, f"2026-03-0{1 + d}T{h:02d}:15:00Z", secret, "3.209.238.232")
            for d in range(4) for h in range(24)]


def _bulk_read() -> list[dict]:
    # then, from a stranger's address and client, 20 different secrets in 40 seconds
    return [_secret_read(10_000 + i, f"2026-03-05T14:17:{i * 2:02d}Z",
                         f"arn:aws:secretsmanager:us-east-1:123456789012:secret:team/s{i}-XyZ123", "5.188.206.167",
                         "python-requests/2.31.0") for i in range(20)]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps({"Records": records}))
    return path


def _medium_up(store, detector: str) -> list[str]:
    return [s for (s,) in store.con.execute(
        "SELECT severity FROM findings WHERE identity = ? AND detector = ? AND severity IN ('medium', 'high', 'critical')",
        [ROLE, detector]).fetchall()]


def test_history_arriving_after_the_attack_raises_its_severity(store, tmp_path):
    session = DetectSession(store)
    ingest(store, _write(tmp_path / "attack.json", _bulk_read()))
    _, first = session.process()
    # judged alone, the identity looks new: its first reads are how a fresh workload starts up
    assert not _medium_up(store, "bulk-secret-access")
    ingest(store, _write(tmp_path / "history.json", _history()))
    _, second = session.process()
    assert _medium_up(store, "bulk-secret-access") == ["high"]
    upgraded = [f for f in second if f.detector == "bulk-secret-access" and f.severity == "high"]
    assert upgraded, "the upgrade is handed on (to the watcher's outbox) like a new finding"
    # judged again, never twice: the same finding id, now high
    ids = [i for (i,) in store.con.execute("SELECT id FROM findings WHERE detector = 'bulk-secret-access'").fetchall()]
    assert len(ids) == len(set(ids))


def test_the_same_events_in_time_order_give_the_same_verdict(store, tmp_path):
    session = DetectSession(store)
    ingest(store, _write(tmp_path / "history.json", _history()))
    session.process()
    ingest(store, _write(tmp_path / "attack.json", _bulk_read()))
    session.process()
    assert _medium_up(store, "bulk-secret-access") == ["high"]


def test_late_history_without_findings_after_it_is_just_learned(store, tmp_path):
    session = DetectSession(store)
    ingest(store, _write(tmp_path / "recent.json", _history()[72:]))
    session.process()
    before = store.con.execute("SELECT count(*) FROM findings").fetchone()[0]
    ingest(store, _write(tmp_path / "older.json", _history()[:72]))
    session.process()
    assert store.con.execute("SELECT count(*) FROM findings").fetchone()[0] == before

"""`nhiwatch watch` end to end: a simulated organisation's trail in a moto S3 bucket (moto's server
mode, reached through AWS_ENDPOINT_URL), notifications through SQS, findings to a JSON lines file,
OCSF, Security Hub and local webhook receivers. The process is killed with SIGKILL mid-stream and
restarted; every sink must then hold each finding once and the store each event once. Security Hub
takes each finding in its own account (moto keeps accounts apart), reached through a role there."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from moto_server import aws_live, moto_endpoint  # noqa: F401
from nhiwatch.simulate.pack import pack_trail
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store
from nhiwatch.watch.config import ConfigError, load_config
from nhiwatch.watch.sources import objects_in_message

START = "2026-03-01"
LEARN_UNTIL = "2026-03-04T00:00:00Z"
SCENARIOS = ("role-chain-cross-account", "bulk-secret-retrieval")
MEDIUM_UP = ("medium", "high", "critical")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A simulated trail, packed into one object per account, region and six hours (the simulator
    writes many small files; fewer objects keep the test quick), and how many events it holds."""
    tmp = tmp_path_factory.mktemp("watch")
    data = tmp / "data"
    simulate(data, SimConfig(seed=5, accounts=2, days=9, scale=0.3, start=START, scenarios=SCENARIOS))
    labels = json.loads((data / "labels.json").read_text())
    objects = pack_trail(data / "cloudtrail")
    events = {r["eventID"] for body in objects.values() for r in json.loads(gzip.decompress(body))["Records"]}
    return {"objects": objects, "event_ids": events, "labels": labels, "tmp": tmp}


class Receiver:
    """A local webhook endpoint that records every request; it can fail the first few on purpose."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        self.fail_first = fail_first
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(receiver.status)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


def _nhiwatch(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nhiwatch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _upload(s3, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _store_findings(home: Path) -> dict[str, dict]:
    with Store(home, read_only=True) as store:
        rows = store.con.execute("SELECT id, finding FROM findings WHERE severity IN ('medium', 'high', 'critical')"
                                 ).fetchall()
    return {i: json.loads(f) for i, f in rows}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _attacked(labels: dict) -> set[str]:
    return {s["principal"] for s in labels["scenarios"]}


def _hub_config(tmp_path: Path) -> Path:
    """A Security Hub sink that imports each finding in its own account through a role there (moto lets
    any role be assumed; tests/test_securityhub_accounts.py applies AWS's trust and account rules)."""
    config = tmp_path / "hub.toml"
    # correlating at every cycle, so findings are sent naming their incident
    config.write_text('correlate_interval = 0\n[[sinks]]\ntype = "securityhub"\n'
                      'role_arn = "arn:aws:iam::{account}:role/NhiwatchImport"\n')
    return config


def _hub_findings(findings: dict[str, dict]) -> list[dict]:
    """What Security Hub holds in each account the findings belong to, read in that account."""
    held = []
    for account in sorted({f["identity"]["account_id"] for f in findings.values()}):
        credentials = boto3.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/reader",
                                                      RoleSessionName="test")["Credentials"]
        hub = boto3.client("securityhub", aws_access_key_id=credentials["AccessKeyId"],
                           aws_secret_access_key=credentials["SecretAccessKey"],
                           aws_session_token=credentials["SessionToken"])
        answer = hub.get_findings(MaxResults=100)
        assert not answer.get("NextToken")
        assert {h["AwsAccountId"] for h in answer["Findings"]} <= {account}
        held += answer["Findings"]
    return held


def test_s3_trail_once_reaches_every_sink_and_catches_the_attacks(corpus, aws_live, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="org-trail")
    _upload(s3, "org-trail", corpus["objects"])
    stray = sorted(corpus["objects"])[0].rsplit("/", 1)[0] + "/notes.txt"  # inside a trail's folder
    s3.put_object(Bucket="org-trail", Key=stray, Body=b"not a trail file")
    home, out = tmp_path / "home", tmp_path / "out"
    hook = Receiver(fail_first=2)  # the webhook is down at first: retried with backoff
    gone = Receiver(status=410)     # this one refuses for good: its findings go to the dead-letter file
    try:
        run = _nhiwatch("watch", "--once", "--s3", "s3://org-trail/AWSLogs/", "--learn-until", LEARN_UNTIL,
                        "--sink", f"jsonl:{out}/findings.jsonl", "--sink", f"ocsf:{out}/findings.ocsf.jsonl",
                        "--config", str(_hub_config(tmp_path)), "--sink", f"webhook:{hook.url}/hook",
                        "--sink", f"webhook:{gone.url}/gone", "--min-severity", "medium",
                        "--home", str(home), "--json")
        stdout, stderr = run.communicate(timeout=600)
    finally:
        hook.close()
        gone.close()
    assert run.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    expected = _store_findings(home)
    assert expected, "the attacks raise findings at medium or above"
    with Store(home, read_only=True) as store:
        events = {e for (e,) in store.con.execute("SELECT event_id FROM events").fetchall()}
        every = store.con.execute("SELECT severity, detector, identity FROM findings ORDER BY 3, 2").fetchall()
    # every object was read: the judgement below is on the whole trail
    assert events == corpus["event_ids"], (len(events), len(corpus["event_ids"]), stderr[-3000:])
    # every attacked identity has a finding that reached a person
    assert _attacked(corpus["labels"]) <= {f["identity"]["arn"] for f in expected.values()}, (
        [f for f in every if any(a in f[2] for a in _attacked(corpus["labels"]))], stderr[-3000:])
    lines = _lines(out / "findings.jsonl")
    assert sorted(f["id"] for f in lines) == sorted(expected)  # each once
    with Store(home, read_only=True) as store:
        incident_of = dict(store.con.execute("SELECT id, incident_id FROM findings").fetchall())
    named = [f for f in lines if f["incident_id"]]
    assert named, "findings go out naming their incident"
    assert all(f["incident_id"] == incident_of[f["id"]] for f in named)  # incidents keep their ids as they grow
    ocsf = _lines(out / "findings.ocsf.jsonl")
    assert sorted(o["finding_info"]["uid"] for o in ocsf) == sorted(expected)
    assert {o["class_uid"] for o in ocsf} == {2004}
    hub = _hub_findings(expected)
    assert sorted(h["Id"] for h in hub) == sorted(expected)
    assert all(h["FindingProviderFields"]["Severity"]["Label"] in ("MEDIUM", "HIGH", "CRITICAL")
               and h["Resources"][0]["Id"].startswith("arn:aws:iam::") for h in hub)
    assert sorted(body["finding"]["id"] for _, _, body in hook.requests) == sorted(expected)
    assert summary["sinks"]["securityhub"]["delivered"] == len(expected)
    assert summary["sinks"]["webhook-cli-2"]["delivered"] == len(expected)
    assert summary["sinks"]["webhook-cli-3"]["dead"] == len(expected)
    dead = _lines(home / "dead-letter" / "webhook-cli-3.jsonl")
    assert sorted(d["finding"]["id"] for d in dead) == sorted(expected)
    assert all("HTTP 410" in d["error"] for d in dead)
    # the store holds every event once, and the text object is quarantined with its reason
    with Store(home, read_only=True) as store:
        objects = store.con.execute("SELECT count(*) FROM watch_objects").fetchone()[0]
        quarantined = store.con.execute("SELECT reason FROM quarantine").fetchall()
    assert objects == len(corpus["objects"]) + 1
    assert any("no CloudTrail" in r for (r,) in quarantined)
    progress = [json.loads(line) for line in stderr.splitlines() if '"progress"' in line]
    assert progress and progress[-1]["events"] == len(corpus["event_ids"]) and "lag_seconds" in progress[-1]

    # a second run finds nothing new and sends nothing again
    again = _nhiwatch("watch", "--once", "--s3", "s3://org-trail/AWSLogs/", "--sink", f"jsonl:{out}/findings.jsonl",
                      "--min-severity", "medium", "--home", str(home), "--json")
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-2000:]
    assert json.loads(stdout)["events"] == 0
    assert len(_lines(out / "findings.jsonl")) == len(expected)


def test_sqs_notifications_survive_sigkill_exactly_once(corpus, aws_live, tmp_path):
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket="trail-live")
    # a short visibility timeout brings back, soon, the messages the killed process had received
    queue_url = sqs.create_queue(QueueName="trail-objects", Attributes={"VisibilityTimeout": "3"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket="trail-live", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]})
    keys = sorted(corpus["objects"])
    home, out = tmp_path / "home", tmp_path / "out"
    hook, slack = Receiver(), Receiver()
    common = ["--sqs", queue_url, "--learn-until", LEARN_UNTIL, "--sink", f"jsonl:{out}/findings.jsonl",
              "--config", str(_hub_config(tmp_path)), "--sink", f"webhook:{hook.url}/hook",
              "--sink", f"slack:{slack.url}/slack",
              "--min-severity", "medium", "--home", str(home)]
    try:
        first = _nhiwatch("watch", *common)
        _upload(s3, "trail-live", {k: corpus["objects"][k] for k in keys[: len(keys) // 2]})
        deadline = time.monotonic() + 300
        while not _lines(out / "findings.jsonl") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _lines(out / "findings.jsonl"), "findings arrive while the watcher runs"
        _upload(s3, "trail-live", {k: corpus["objects"][k] for k in keys[len(keys) // 2:]})
        time.sleep(0.3)  # mid-stream: objects are being read, judged and delivered
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL
        before = len(_lines(out / "findings.jsonl"))
        with Store(home, read_only=True) as store:  # killed part-way: some events stored, not all
            stored_at_kill = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
        assert 0 < stored_at_kill < len(corpus["event_ids"])

        second = _nhiwatch("watch", "--once", *common, "--json")
        stdout, stderr = second.communicate(timeout=600)
    finally:
        hook.close()
        slack.close()
    assert second.returncode == 0, stderr[-3000:]
    expected = _store_findings(home)
    lines = _lines(out / "findings.jsonl")
    assert len(lines) >= before and sorted(f["id"] for f in lines) == sorted(expected)  # each exactly once
    assert _attacked(corpus["labels"]) <= {f["identity"]["arn"] for f in expected.values()}
    assert sorted(h["Id"] for h in _hub_findings(expected)) == sorted(expected)
    for receiver in (hook, slack):
        seen: dict[str, int] = defaultdict(int)
        for _, headers, _ in receiver.requests:
            finding_id = headers["X-Nhiwatch-Finding-Id"]
            seen[finding_id] += 1
            if seen[finding_id] > 1:  # a repeat is only ever a flagged redelivery of an interrupted send
                assert headers["X-Nhiwatch-Redelivery"] == "true"
        assert set(seen) == set(expected)
    assert all(body["blocks"][0]["text"]["text"] for _, _, body in slack.requests)
    with Store(home, read_only=True) as store:
        stored = store.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        left = store.con.execute("SELECT count(*) FROM outbox WHERE state <> 'delivered'").fetchone()[0]
    assert stored == (len(corpus["event_ids"]), len(corpus["event_ids"]))
    assert left == 0
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def _eventbridge(record: dict) -> dict:
    return {"version": "0", "id": record["eventID"], "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + record["eventSource"].split(".")[0], "account": record["recipientAccountId"],
            "time": record["eventTime"], "region": record["awsRegion"], "resources": [], "detail": record}


def test_intake_authenticates_stores_and_alerts_within_seconds(corpus, tmp_path, monkeypatch):
    home, out = tmp_path / "home", tmp_path / "out"
    # history first (a batch bootstrap), then the live intake on the same store
    folder = tmp_path / "history"
    for key, body in corpus["objects"].items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(body)
    subprocess.run([sys.executable, "-m", "nhiwatch", "analyze", str(folder), "--learn-until", LEARN_UNTIL,
                    "--home", str(home), "-q"], check=True, timeout=600)
    with Store(home, read_only=True) as store:
        template, = store.con.execute(
            """SELECT e.event_id FROM events e JOIN profiles p ON p.identity = e.principal
               WHERE e.principal LIKE '%:role/%' AND e.principal_type = 'role' AND e.event_name = 'GetCallerIdentity'
                 AND p.mature ORDER BY e.event_time DESC LIMIT 1""").fetchone()
        last_us = store.con.execute("SELECT max(epoch_us(event_time)) FROM events").fetchone()[0]
    last = datetime.fromtimestamp(last_us / 1e6, timezone.utc)
    records = {}
    for body in corpus["objects"].values():
        for record in json.loads(gzip.decompress(body))["Records"]:
            records[record["eventID"]] = record
    attack = dict(records[template])
    attack.update(eventID="0b5e7c1e-0000-4000-8000-00000000feed", eventSource="iam.amazonaws.com",
                  eventName="CreateUser", readOnly=False, sourceIPAddress="203.0.113.77",
                  userAgent="aws-cli/2.15.0 Python/3.11", requestParameters={"userName": "backdoor"},
                  responseElements=None, eventTime=(last + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    port = _free_port()
    monkeypatch.setenv("NHIWATCH_INTAKE_SECRET", "s3cret-s3cret-s3cret")
    watcher = _nhiwatch("watch", "--intake", f"127.0.0.1:{port}", "--sink", f"jsonl:{out}/findings.jsonl",
                        "--min-severity", "medium", "--home", str(home), env=dict(os.environ))
    try:
        _wait_listening(port)
        url = f"http://127.0.0.1:{port}/events"
        assert _post(url, b"{}", {})[0] == 401
        assert _post(url, b"[1, 2", {"X-Nhiwatch-Secret": "s3cret-s3cret-s3cret"})[0] == 400
        sent = time.monotonic()
        status, answer = _post(url, json.dumps(_eventbridge(attack)).encode(),
                               {"X-Nhiwatch-Secret": "s3cret-s3cret-s3cret"})
        assert status == 200 and answer["events"] == 1
        deadline = sent + 30
        found = []
        while time.monotonic() < deadline and not found:
            found = [f for f in _lines(out / "findings.jsonl") if attack["eventID"] in f["event_ids"]]
            time.sleep(0.05)
        delay = time.monotonic() - sent
        assert found, "the backdoor user raises a finding"
        assert delay < 10  # the benchmark measures the figure; this only guards against a stall
        # the same event again is recognised, not stored or alerted twice
        status, answer = _post(url, json.dumps(_eventbridge(attack)).encode(),
                               {"X-Nhiwatch-Secret": "s3cret-s3cret-s3cret"})
        assert status == 200
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.communicate(timeout=60)
    assert watcher.returncode == 0
    with Store(home, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM events WHERE event_id = ?", [attack["eventID"]]).fetchone()[0] == 1
        assert store.con.execute("SELECT count(*) FROM quarantine WHERE source_file LIKE 'intake:%'").fetchone()[0] >= 1
    assert len([f for f in _lines(out / "findings.jsonl") if attack["eventID"] in f["event_ids"]]) == len(found)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError("the intake did not start")


def _post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class LookupEventsEndpoint:
    """CloudTrail's LookupEvents over its JSON protocol, for the events given; moto does not serve
    LookupEvents. It pages by 50 and throttles the first calls, as CloudTrail does past 2 calls/s."""

    def __init__(self, records: list[dict], throttle_first: int = 2) -> None:
        self.records = sorted(records, key=lambda r: r["eventTime"], reverse=True)  # newest first, as AWS
        self.throttle = throttle_first
        self.calls = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                endpoint.calls += 1
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if endpoint.throttle > 0:
                    endpoint.throttle -= 1
                    return self._send(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                start, end = request["StartTime"], request["EndTime"]
                chosen = [r for r in endpoint.records
                          if start <= datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")).timestamp() <= end]
                offset = int(request.get("NextToken", 0))
                page = chosen[offset:offset + request.get("MaxResults", 50)]
                answer = {"Events": [{"EventId": r["eventID"], "EventName": r["eventName"],
                                      "CloudTrailEvent": json.dumps(r)} for r in page]}
                if offset + len(page) < len(chosen):
                    answer["NextToken"] = str(offset + len(page))
                self._send(200, answer)

            def _send(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_lookup_events_bootstrap_pages_and_waits_out_throttling(corpus, tmp_path):
    now = datetime.now(timezone.utc)
    records = []
    for body in list(corpus["objects"].values())[:6]:
        records += json.loads(gzip.decompress(body))["Records"]
    for number, record in enumerate(records):  # the last days, as LookupEvents would hold them
        record["eventTime"] = (now - timedelta(hours=30, seconds=-number * 7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    endpoint = LookupEventsEndpoint(records)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    home = tmp_path / "home"
    run = _nhiwatch("watch", "--once", "--lookup-events", "us-east-1", "--lookup-days", "3", "--home", str(home),
                    "--json", env=env)
    stdout, stderr = run.communicate(timeout=300)
    endpoint.server.shutdown()
    assert run.returncode == 0, stderr[-3000:]
    assert json.loads(stdout)["events"] == len({r["eventID"] for r in records})
    assert endpoint.calls > len(records) // 50 + 2  # paged, and the throttled calls were made again
    with Store(home, read_only=True) as store:
        checkpoint = json.loads(store.con.execute("SELECT value FROM watch_checkpoints").fetchone()[0])
    assert datetime.fromisoformat(checkpoint["done_until"]) > now - timedelta(minutes=5)


def test_config_check_lists_every_problem(tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text("""
interval = -1
[[sources]]
type = "s3"
bucket = "s3://trail/AWSLogs"
[[sources]]
type = "intake"
listen = "nowhere"
secret_env = "NHIWATCH_TEST_MISSING_SECRET"
[[sinks]]
type = "webhook"
[[sinks]]
type = "jsonl"
path = "a.jsonl"
min_severity = "urgent"
""")
    monkeypatch.delenv("NHIWATCH_TEST_MISSING_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    problems = "\n".join(caught.value.problems)
    for fragment in ("interval", "bucket name, not a URL", "HOST:PORT", "NHIWATCH_TEST_MISSING_SECRET is not set",
                     "sinks[0].url", "min_severity"):
        assert fragment in problems
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "config", "check", str(bad), "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and json.loads(run.stdout)["valid"] is False
    good = tmp_path / "good.toml"
    good.write_text(f"""
[[sources]]
type = "s3"
bucket = "trail"
prefix = "AWSLogs/"
[[sinks]]
type = "jsonl"
path = "{tmp_path / 'f.jsonl'}"
min_severity = "high"
""")
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "config", "check", str(good), "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["config"]["sinks"][0]["min_severity"] == "high"
    # a watch with nothing to watch, or a bucket that does not exist, stops with a clear message
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "watch", "--home", str(tmp_path / "h")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "nothing to watch" in run.stderr


def test_missing_bucket_is_a_fatal_misconfiguration(aws_live, tmp_path):
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "watch", "--once", "--s3", "s3://no-such-trail/",
                          "--home", str(tmp_path / "h")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "NoSuchBucket" in run.stderr


def test_queue_messages_in_every_shape():
    s3_event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},
                                                                       "object": {"key": "AWSLogs/a+b%3D.json.gz"}}}]}
    assert objects_in_message(json.dumps(s3_event)) == ([("b", "AWSLogs/a b=.json.gz")], [], None)
    sns = {"Type": "Notification", "Message": json.dumps(s3_event)}
    assert objects_in_message(json.dumps(sns))[0] == [("b", "AWSLogs/a b=.json.gz")]
    created = {"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}}
    assert objects_in_message(json.dumps(created))[0] == [("b", "k")]
    api_call = {"detail-type": "AWS API Call via CloudTrail", "detail": {"eventVersion": "1.09"}}
    assert objects_in_message(json.dumps(api_call))[1] == [json.dumps(api_call).encode()]
    assert objects_in_message(json.dumps({"Event": "s3:TestEvent"})) == ([], [], None)
    assert objects_in_message("not json")[2].startswith("not JSON")
    assert objects_in_message(json.dumps({"hello": 1}))[2] is not None


class FlakyProxy:
    """An HTTP proxy in front of moto that answers 503 to the first `failures` reads of one object:
    more than botocore's own retries outlast, as S3 does in a bad minute."""

    def __init__(self, upstream: str, failures: int, key: str) -> None:
        proxy = self
        self.failures = failures
        self.refused = 0
        self.key = urllib.parse.quote(key)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "GET" and self.path.split("?")[0].endswith(proxy.key) and proxy.failures > 0:
                    proxy.failures -= 1
                    proxy.refused += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream + self.path, data=body, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        status, answer_headers, data = answer.status, answer.headers.items(), answer.read()
                except urllib.error.HTTPError as error:
                    status, answer_headers, data = error.code, error.headers.items(), error.read()
                self.send_response(status)
                for name, value in answer_headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


def test_s3_errors_that_outlast_botocore_retries_are_retried_not_fatal(corpus, aws_live, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="flaky-trail")
    keys = sorted(corpus["objects"])[:40]
    _upload(s3, "flaky-trail", {k: corpus["objects"][k] for k in keys})
    expected = {r["eventID"] for k in keys for r in json.loads(gzip.decompress(corpus["objects"][k]))["Records"]}
    proxy = FlakyProxy(aws_live, failures=12, key=keys[7])  # 8 attempts each: one failed pass, then read
    try:
        run = subprocess.run([sys.executable, "-m", "nhiwatch", "watch", "--once", "--s3", "s3://flaky-trail/AWSLogs/",
                              "--home", str(tmp_path / "h"), "--json"], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.close()
    assert proxy.refused == 12
    assert run.returncode == 0, run.stderr[-3000:]
    assert '"event":"source-retrying"' in run.stderr  # the log said what it was outlasting
    with Store(tmp_path / "h", read_only=True) as store:
        stored = {e for (e,) in store.con.execute("SELECT event_id FROM events").fetchall()}
    assert stored == expected

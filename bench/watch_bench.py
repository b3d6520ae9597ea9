"""Watch benchmark: how long from an event's arrival to its finding in a sink, and sustained throughput.

    python bench/watch_bench.py [--alerts 20] [--throughput-accounts 4 --throughput-days 10]

1. A simulated organisation's history is analyzed (the baseline), then `nhiwatch watch` runs with the
   EventBridge intake and an SQS queue fed by the bucket's notifications (moto's server mode, started
   here), writing findings to a JSON lines sink.
2. Latency: for each of --alerts mature roles, one attack call (iam:CreateUser from a new network)
   is POSTed to the intake, or put in the bucket as a CloudTrail object; the time until its finding
   is in the sink file is measured (median, 95th percentile, worst).
3. Throughput: a larger simulated trail is put in a second bucket and `nhiwatch watch --once`
   follows it into an empty store; events/s is compared with `nhiwatch ingest` (no detection) and
   `nhiwatch analyze` (every event judged) of the same objects from local disk, in the same run, with
   the CPU time each used (the S3 server's too: on one machine it takes its share of the cores).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

NHIWATCH = [sys.executable, "-m", "nhiwatch"]
SECRET = "bench-secret-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer")


def simulate(out: Path, accounts: int, days: int, scale: float) -> None:
    if not (out / "labels.json").exists():
        subprocess.run([*NHIWATCH, "simulate", "--out", str(out), "--accounts", str(accounts), "--days", str(days),
                        "--scale", str(scale), "--seed", "11", "--scenario", "bulk-secret-retrieval", "-q"],
                       check=True)


def upload(s3, bucket: str, objects: dict[str, bytes]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))


def attack_events(home: Path, folder: Path, count: int) -> list[dict]:
    """One CreateUser call from a new network for each of `count` mature roles, five minutes after history."""
    import duckdb

    con = duckdb.connect(str(home / "nhiwatch.duckdb"), read_only=True)
    rows = con.execute("""
        SELECT DISTINCT ON (e.principal) e.event_id, e.source_file FROM events e JOIN profiles p ON p.identity = e.principal
        WHERE e.principal_type = 'role' AND p.mature AND e.event_source <> 'sts.amazonaws.com'
          AND e.principal NOT LIKE '%AWSReservedSSO%' AND e.principal NOT LIKE '%aws-service-role%'
          AND e.source_file NOT LIKE 's3://%' AND e.source_file NOT LIKE 'intake:%'  -- a rerun's earlier attacks
        ORDER BY e.principal, e.event_time DESC LIMIT ?""", [count]).fetchall()
    last = con.execute("SELECT max(epoch_us(event_time)) FROM events").fetchone()[0]
    con.close()
    records = {}
    for path in {Path(f) for _, f in rows}:
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
            records[record["eventID"]] = record
    events = []
    when = datetime.fromtimestamp(last / 1e6, timezone.utc) + timedelta(minutes=5)
    for number, (event_id, _) in enumerate(rows):
        event = dict(records[event_id])
        event.update(eventID=str(uuid.uuid4()), eventSource="iam.amazonaws.com", eventName="CreateUser",
                     readOnly=False, sourceIPAddress=f"198.51.100.{number + 1}", userAgent="aws-cli/2.15.0",
                     requestParameters={"userName": f"backdoor-{number}"}, responseElements=None, errorCode=None,
                     eventTime=(when + timedelta(seconds=number)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        event.pop("errorCode")
        events.append(event)
    return events


def wait_finding(sink: Path, event_id: str, started: float, timeout: float = 60) -> float | None:
    while time.monotonic() - started < timeout:
        if sink.exists() and event_id in sink.read_text():
            return time.monotonic() - started
        time.sleep(0.005)
    return None


def summary(label: str, delays: list[float | None]) -> None:
    got = sorted(d for d in delays if d is not None)
    if not got:
        print(f"{label:<24} no finding arrived")
        return
    p95 = got[min(len(got) - 1, int(round(0.95 * (len(got) - 1))))]
    print(f"{label:<24} {len(got)}/{len(delays)} alerts; median {statistics.median(got):.2f} s, "
          f"p95 {p95:.2f} s, worst {got[-1]:.2f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (the S3 server's share of a run)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str], env: dict, server_pid: int) -> dict:
    """Wall time, CPU time (the command and its worker processes) and the S3 server's CPU time of a run."""
    import resource

    before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(server_pid)
    started = time.monotonic()
    run = subprocess.run([*NHIWATCH, *command, "--json", "-q"] if command[0] != "watch" else
                         [*NHIWATCH, *command, "--json"], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(run.stderr[-3000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(run.stdout)
    events = result.get("accepted", result.get("events"))
    if events is None:
        events = result["ingest"]["accepted"]
    return {"seconds": seconds, "events": events,
            "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "server_cpu": cpu_seconds(server_pid) - server_before}


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20)
    parser.add_argument("--throughput-accounts", type=int, default=4)
    parser.add_argument("--throughput-days", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nhiwatch-watch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    from nhiwatch.simulate.pack import pack_trail

    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1", NHIWATCH_INTAKE_SECRET=SECRET)
    os.environ.update(env)
    watcher = None
    try:
        wait_for(f"{endpoint}/moto-api/data.json")
        import boto3

        s3, sqs = boto3.client("s3"), boto3.client("sqs")

        # -- latency ----------------------------------------------------------------------------
        history = work / "history"
        simulate(history, 2, 10, 0.4)
        home, sink = work / "home", work / "findings.jsonl"
        # A fresh baseline each run: a store that has seen an earlier run's attacks would not flag them again.
        subprocess.run(["rm", "-rf", str(home)], check=True)
        subprocess.run([*NHIWATCH, "analyze", str(history / "cloudtrail"), "--learn-until", "2026-03-01T00:00:00Z",
                        "--home", str(home), "-q"], check=True)
        attacks = attack_events(home, history / "cloudtrail", 2 * args.alerts)
        s3.create_bucket(Bucket="live-trail")
        queue_url = sqs.create_queue(QueueName="live-trail-objects")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(Bucket="live-trail", NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        intake = free_port()
        sink.unlink(missing_ok=True)
        watcher = subprocess.Popen([*NHIWATCH, "watch", "--intake", f"127.0.0.1:{intake}", "--sqs", queue_url,
                                    "--sink", f"jsonl:{sink}", "--min-severity", "medium", "--home", str(home)],
                                   stdout=subprocess.DEVNULL, stderr=open(work / "watch.log", "w"), env=env)
        wait_for(f"http://127.0.0.1:{intake}/health")
        time.sleep(2)
        at_intake, via_s3 = [], []
        for event in attacks[: args.alerts]:
            body = json.dumps({"version": "0", "id": event["eventID"], "detail-type": "AWS API Call via CloudTrail",
                               "source": "aws.iam", "account": event["recipientAccountId"], "time": event["eventTime"],
                               "region": event["awsRegion"], "resources": [], "detail": event}).encode()
            started = time.monotonic()
            request = urllib.request.Request(f"http://127.0.0.1:{intake}/events", data=body, method="POST",
                                             headers={"X-Nhiwatch-Secret": SECRET, "Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=60).read()
            at_intake.append(wait_finding(sink, event["eventID"], started))
            time.sleep(0.3)
        for event in attacks[args.alerts:]:
            account, region = event["recipientAccountId"], event["awsRegion"]
            stamp = datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
            key = (f"AWSLogs/{account}/CloudTrail/{region}/{stamp:%Y/%m/%d}/"
                   f"{account}_CloudTrail_{region}_{stamp:%Y%m%dT%H%M}Z_{uuid.uuid4().hex[:16]}.json.gz")
            started = time.monotonic()
            s3.put_object(Bucket="live-trail", Key=key, Body=gzip.compress(json.dumps({"Records": [event]}).encode()))
            via_s3.append(wait_finding(sink, event["eventID"], started))
            time.sleep(0.3)
        watcher.terminate()
        watcher.wait(timeout=60)
        watcher = None
        print(f"latency, {args.alerts} attack calls each (baseline: {history.name}, 2 accounts x 10 days)")
        summary("  POST to the intake", at_intake)
        summary("  object in the bucket", via_s3)

        # -- throughput ---------------------------------------------------------------------------
        big = work / "throughput"
        simulate(big, args.throughput_accounts, args.throughput_days, 1.0)
        objects = pack_trail(big / "cloudtrail", hours=1)
        local = work / "throughput-objects"
        if not local.exists():
            for key, body in objects.items():
                (local / key).parent.mkdir(parents=True, exist_ok=True)
                (local / key).write_bytes(body)
        s3.create_bucket(Bucket="big-trail")
        started = time.monotonic()
        upload(s3, "big-trail", objects)
        print(f"throughput corpus: {len(objects):,} objects, uploaded in {time.monotonic() - started:.0f} s")
        ingest_home, analyze_home, watch_home = work / "ingest-home", work / "analyze-home", work / "watch-home"
        for folder in (ingest_home, analyze_home, watch_home):
            subprocess.run(["rm", "-rf", str(folder)], check=True)
        runs = {}
        for label, command in (
                ("nhiwatch ingest (local disk, no detection)", ["ingest", str(local), "--home", str(ingest_home)]),
                ("nhiwatch analyze (local disk, every event judged)",
                 ["analyze", str(local), "--home", str(analyze_home)]),
                ("nhiwatch watch --once (S3, every event judged)",
                 ["watch", "--once", "--s3", "s3://big-trail/", "--home", str(watch_home)])):
            runs[label] = timed(command, env, moto.pid)
        base = runs["nhiwatch ingest (local disk, no detection)"]
        for label, run in runs.items():
            print(f"{label:<52} {run['events']:,} events in {run['seconds']:.1f} s, {run['events'] / run['seconds']:,.0f} "
                  f"events/s ({base['seconds'] / run['seconds']:.2f}x the ingest's speed); CPU {run['cpu']:.1f} s"
                  + (f" + {run['server_cpu']:.1f} s in the S3 server" if run["server_cpu"] >= 0.5 else ""))
        print(f"data kept in {work}")
    finally:
        if watcher is not None:
            watcher.kill()
        moto.terminate()


if __name__ == "__main__":
    main()

"""`kill -9` at random moments of `ingest` and of `watch`: afterwards no nhiwatch process is alive
(parser workers and multiprocessing's resource tracker included), and once the command is run again
to the end, every event is stored exactly once and every finding reaches its sink exactly once."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from moto_server import aws_live, moto_endpoint  # noqa: F401
from nhiwatch.store.db import Store
from test_formats import make_event

ROUNDS = 20



def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_at_random(args: list[str], rng: random.Random, earliest: float, latest: float,
                    after_workers: bool = False) -> tuple[set[int], bool]:
    """Start the command, SIGKILL it after a random delay; returns the processes it had started and
    whether it was still running when killed (False: it had already finished). With `after_workers`
    the delay counts from the moment its worker processes appear, so the kill lands inside the pool
    however fast the machine is."""
    process = subprocess.Popen([sys.executable, "-m", "nhiwatch", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    started: set[int] = set()
    if after_workers:
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up and process.poll() is None and len(started) < 2:
            started |= _descendants(process.pid)
            time.sleep(0.02)
    deadline = time.monotonic() + rng.uniform(earliest, latest)
    while time.monotonic() < deadline and process.poll() is None:
        started |= _descendants(process.pid)
        time.sleep(0.05)
    running = process.poll() is None
    if running:
        started |= _descendants(process.pid)
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return started, running


def _assert_all_gone(pids: set[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "processes outlived a killed nhiwatch"


def _corpus(folder: Path, files: int, per_file: int) -> int:
    """JSON files big enough that ingest parses them in its worker pool (over 16 MB in all)."""
    folder.mkdir()
    for f in range(files):
        records = [make_event(f * per_file + i, userAgent=f"agent-{f}", eventTime=f"2026-03-01T{f % 24:02d}:00:{i % 60:02d}Z")
                   for i in range(per_file)]
        (folder / f"part-{f:03d}.json").write_text(json.dumps({"Records": records}, indent=1))
    return files * per_file


def test_ingest_killed_at_random_moments_leaves_no_process_and_loses_nothing(tmp_path):
    data = tmp_path / "data"
    total = _corpus(data, files=64, per_file=900)
    assert sum(p.stat().st_size for p in data.iterdir()) > 16 << 20
    rng = random.Random(17)
    killed_with_workers = 0
    # Four stores, five kills each: a store killed many times over keeps less and less left to do.
    for group in range(4):
        home = tmp_path / f"home{group}"
        for kill in range(ROUNDS // 4):
            # The first two kills of a store land inside its worker pool; the rest at any moment.
            inside_pool = kill < 2
            started, running = _kill_at_random(["ingest", str(data), "--home", str(home), "--workers", "2"],
                                               rng, *((0.05, 0.6) if inside_pool else (0.8, 5.0)),
                                               after_workers=inside_pool)
            killed_with_workers += running and len(started) >= 2
            _assert_all_gone(started)
        finished = subprocess.run([sys.executable, "-m", "nhiwatch", "ingest", str(data), "--home", str(home), "--json"],
                                  capture_output=True, text=True, timeout=600)
        assert finished.returncode == 0, finished.stderr[-3000:]
        with Store(home, read_only=True) as store:
            stored = store.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        assert stored == (total, total)
    assert killed_with_workers >= 2 * 4, "at least two kills per store land while its worker pool is running"


def _trail_objects(count: int, per_object: int) -> dict[str, bytes]:
    objects = {}
    for n in range(count):
        hour = n % 24
        records = [make_event(n * per_object + i, eventTime=f"2026-03-{1 + n // 24:02d}T{hour:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
                   for i in range(per_object)]
        key = (f"AWSLogs/123456789012/CloudTrail/eu-west-1/2026/03/{1 + n // 24:02d}/"
               f"123456789012_CloudTrail_eu-west-1_2026030{1 + n // 24}T{hour:02d}00Z_{n:04d}.json.gz")
        objects[key] = gzip.compress(json.dumps({"Records": records}).encode(), 1)
    return objects


def test_watch_killed_at_random_moments_leaves_no_process_and_sends_each_finding_once(aws_live, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="crash-trail")
    objects = _trail_objects(96, 600)
    for key, body in objects.items():
        s3.put_object(Bucket="crash-trail", Key=key, Body=body)
    # a stranger's burst on day 3: an identity with two days of history reaching for IAM
    attack = [make_event(10_000_000 + i, eventTime=f"2026-03-03T12:00:{i:02d}Z", eventSource="iam.amazonaws.com",
                         eventName=name, sourceIPAddress="203.0.113.50", userAgent="python-requests/2.31",
                         requestParameters={"userName": f"backdoor{i}"}, readOnly=False, managementEvent=True)
              for i, name in enumerate(["CreateUser", "CreateAccessKey", "AttachUserPolicy", "ListUsers", "ListRoles"])]
    s3.put_object(Bucket="crash-trail", Key="AWSLogs/123456789012/CloudTrail/eu-west-1/2026/03/03/"
                  "123456789012_CloudTrail_eu-west-1_20260303T1200Z_attack.json.gz",
                  Body=gzip.compress(json.dumps({"Records": attack}).encode()))
    total = 96 * 600 + len(attack)
    home, out = tmp_path / "home", tmp_path / "out"
    args = ["watch", "--s3", "s3://crash-trail/AWSLogs/", "--learn-until", "2026-03-02T00:00:00Z",
            "--sink", f"jsonl:{out}/findings.jsonl", "--min-severity", "low", "--home", str(home)]
    rng = random.Random(29)
    killed = 0
    for _ in range(ROUNDS):
        started, running = _kill_at_random(args, rng, 0.5, 6.0)
        killed += running
        _assert_all_gone(started)
    assert killed == ROUNDS  # without --once the watcher never ends by itself
    finished = subprocess.run([sys.executable, "-m", "nhiwatch", *args, "--once", "--json"],
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    with Store(home, read_only=True) as store:
        stored = store.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        findings = {i for (i,) in store.con.execute("SELECT id FROM findings").fetchall()}
        left = store.con.execute("SELECT count(*) FROM outbox WHERE state <> 'delivered'").fetchone()[0]
    assert stored == (total, total)
    assert findings, "the burst raises findings"
    sent = [json.loads(line)["id"] for line in (out / "findings.jsonl").read_text().splitlines()]
    assert sorted(sent) == sorted(findings)  # each finding in the file exactly once
    assert left == 0

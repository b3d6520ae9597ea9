"""The Spark engine against the embedded one: the simulator's corpus (with two linked attacks, and a
damaged object) through `nhiwatch analyze` and through `nhiwatch spark analyze` on real PySpark in
local mode (local[2]); the findings must be the same, id for id, with the same identities and event
ids, and so must every identity's learned baseline."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from nhiwatch.pipeline import analyze
from nhiwatch.simulate.pack import pack_trail
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store

START = "2026-03-01"
LEARN_UNTIL = datetime.fromisoformat(START).replace(tzinfo=timezone.utc) + timedelta(days=7)
SCENARIOS = ("role-chain-cross-account", "ci-key-two-roles")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.fail("Spark needs Java: scripts/setup-tests.sh installs openjdk-17-jre-headless")
    tmp = tmp_path_factory.mktemp("spark")
    data, trail, home, out = tmp / "data", tmp / "trail", tmp / "home", tmp / "out"
    simulate(data, SimConfig(seed=5, accounts=2, days=16, scale=0.6, start=START, scenarios=SCENARIOS))
    # Objects of six hours each (fewer, larger files, as a trail's bucket holds after compaction),
    # one of them truncated and one that is not CloudTrail: both engines must say so, not stop.
    for key, body in pack_trail(data / "cloudtrail", hours=6).items():
        (trail / key).parent.mkdir(parents=True, exist_ok=True)
        (trail / key).write_bytes(body)
    victim = sorted(trail.rglob("*.json.gz"))[3]
    record = json.loads(gzip.decompress(victim.read_bytes()))["Records"][0]
    (trail / "damaged.json").write_text(json.dumps({"Records": [record, {"eventTime": "yesterday"}]}))
    (trail / "notes.json").write_text(json.dumps({"hello": "not CloudTrail"}))
    with Store(home) as store:
        analyze(store, [str(trail)], iam=[str(data / "iam")], learn_until=LEARN_UNTIL)
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "spark", "analyze", str(trail), "--out", str(out),
                          "--inventory", str(home), "--learn-until", LEARN_UNTIL.isoformat(), "--master", "local[2]",
                          "--partitions", "4", "--json"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return home, out, json.loads(run.stdout)


def test_spark_finds_exactly_what_the_embedded_engine_finds(runs):
    home, out, summary = runs
    with Store(home, read_only=True) as store:
        embedded = {fid: (identity, json.loads(text)["event_ids"], severity) for fid, identity, text, severity in
                    store.con.execute("SELECT id, identity, finding, severity FROM findings").fetchall()}
        events = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
    spark = {}
    for line in (out / "findings.jsonl").read_text().splitlines():
        finding = json.loads(line)
        spark[finding["id"]] = (finding["identity"]["arn"], finding["event_ids"], finding["severity"])
    assert summary["events"] == events
    assert len([f for f in embedded.values() if f[2] in ("medium", "high", "critical")]) >= 3  # real attacks in it
    assert spark == embedded
    assert summary["findings"] == len(embedded)


def test_every_identity_learns_the_same_baseline(runs):
    home, out, _ = runs
    with Store(home, read_only=True) as store:
        embedded = dict(store.con.execute("SELECT identity, state FROM profiles").fetchall())
    spark = dict(duckdb.sql(f"SELECT identity, state FROM read_parquet('{out}/state/*.parquet')").fetchall())
    assert set(spark) == set(embedded)
    differing = [i for i in embedded if json.loads(embedded[i]) != json.loads(spark[i])]
    assert not differing, differing[:3]


def test_damaged_records_are_quarantined_by_both(runs):
    home, out, summary = runs
    with Store(home, read_only=True) as store:
        embedded = store.con.execute("SELECT count(*) FROM quarantine WHERE source_file LIKE '%damaged.json'"
                                     ).fetchone()[0]
    rows = duckdb.sql(f"SELECT source_file, quarantine_reason FROM read_parquet('{out}/quarantine/*.parquet')"
                      ).fetchall()
    damaged = [reason for path, reason in rows if path.endswith("damaged.json")]
    assert len(damaged) == embedded == 1 and "eventTime" in damaged[0]
    assert any(path.endswith("notes.json") and "CloudTrail" in reason for path, reason in rows)
    assert summary["quarantined"] == len(rows)


def test_the_store_loads_a_spark_run(runs, tmp_path: Path):
    home, out, summary = runs
    fresh = tmp_path / "store"
    load = subprocess.run([sys.executable, "-m", "nhiwatch", "spark", "load", str(out), "--home", str(fresh),
                           "--no-correlate", "--json"], capture_output=True, text=True, timeout=300)
    assert load.returncode == 0, load.stderr
    result = json.loads(load.stdout)
    assert result["findings_added"] == summary["findings"] and result["profiles"] == summary["identities"]
    again = subprocess.run([sys.executable, "-m", "nhiwatch", "spark", "load", str(out), "--home", str(fresh),
                            "--no-correlate", "--json"], capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout)["findings_added"] == 0  # loading twice adds nothing
    listed = subprocess.run([sys.executable, "-m", "nhiwatch", "findings", "list", "--home", str(fresh), "--json",
                             "--min-severity", "low"], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert str(summary["findings"]) in listed.stdout


def test_spark_analyze_says_what_is_wrong(tmp_path: Path):
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "spark", "analyze", str(tmp_path / "missing"), "--out",
                          str(tmp_path / "out"), "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "no such path" in " ".join(run.stderr.split())
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "spark", "load", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "not the output" in " ".join(run.stderr.split())


def test_streaming_resumes_where_it_stopped_and_finds_what_a_batch_finds(runs, tmp_path: Path):
    """Objects arriving in two rounds, `spark watch --once` after each (a restart in between): the
    findings are the embedded engine's on all objects at once, and no object is judged twice."""
    home, out, _ = runs
    trail = out.parent / "trail"
    objects = sorted((p for p in trail.rglob("*.json.gz")), key=lambda p: p.name.split("_")[3])
    reference = tmp_path / "reference"
    with Store(reference) as store:
        analyze(store, [str(p) for p in objects], iam=None)
        expected = {fid: (identity, json.loads(text)["event_ids"]) for fid, identity, text in
                    store.con.execute("SELECT id, identity, finding FROM findings").fetchall()}
    live, stream_out, checkpoint = tmp_path / "live", tmp_path / "stream", tmp_path / "checkpoint"
    cut = len(objects) * 6 // 10
    for part in (objects[:cut], objects[cut:]):
        for source in part:
            target = live / source.relative_to(trail)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        run = subprocess.run([sys.executable, "-m", "nhiwatch", "spark", "watch", str(live), "--out", str(stream_out),
                              "--checkpoint", str(checkpoint), "--once", "--master", "local[2]",
                              # as the batch run above: 4 identity partitions, not Spark's default 200 per batch
                              "--partitions", "4", "--json"],
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
    got = {}
    for path in sorted((stream_out / "findings-jsonl").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            finding = json.loads(line)
            assert finding["id"] not in got  # judged once, across the restart
            got[finding["id"]] = (finding["identity"]["arn"], finding["event_ids"])
    assert len(list((stream_out / "findings-jsonl").glob("*.jsonl"))) >= 2  # two rounds, at least two batches
    assert got == expected and len(expected) > 0
    with Store(reference, read_only=True) as store:
        events = dict(store.con.execute("SELECT identity, events FROM profiles").fetchall())
    from nhiwatch.spark.stream import latest_states

    states = {identity: json.loads(text)["n"] for identity, text in latest_states(stream_out).items()}
    assert states == events

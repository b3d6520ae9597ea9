"""Ingest benchmark: nhiwatch ingest against DuckDB's own read_json scan of the same files.

Builds a corpus by replaying the real samples in ../shared/data/cloudtrail into gzipped S3
objects laid out as CloudTrail writes them (AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/
<acct>_CloudTrail_<region>_<time>_<id>.json.gz, one object per account, region and 5 minutes),
with fresh event ids and times spread over the period. Then, in the same run:

  bare scan : SELECT count(*) FROM (SELECT unnest(Records) FROM read_json(<files>,
              columns={'Records': 'JSON[]'}))
              (read_json's schema auto-detection fails on real CloudTrail: resources[] holds both
              "ARN" and "arn" keys, a duplicate struct name to DuckDB; so each record is read as JSON)
  ingest    : nhiwatch ingest <corpus> into an empty store (a subprocess)

and prints events/s for both, their ratio, and the peak RSS of the ingest (its process tree).

  python bench/ingest_bench.py --events 1000000
  python bench/ingest_bench.py --events 10000000 --keep   # the memory target
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "cloudtrail"
ACCOUNTS = ["111111111111", "222222222222", "333333333333", "444444444444"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def sample_records() -> list[dict]:
    """The real records in the shared samples, as CloudTrail would write them."""
    records: list[dict] = []
    for path in sorted(SHARED.glob("stratus-detonations/*.json")):
        records += json.loads(path.read_text())
    records += json.loads((SHARED / "cribl-benign/DERIVED_zyNWSr_records.json").read_text())["Records"]
    for line in (SHARED / "panther-rule-tests/DERIVED_panther_cloudtrail_tests.jsonl").read_text().splitlines():
        event = json.loads(line)["event"]
        if isinstance(event.get("userIdentity"), dict) and event.get("eventTime") and event.get("eventSource"):
            records.append(event)
    for path in sorted(SHARED.glob("permiso-console/Tests/Sessions/*/InputEvents.json"))[:10]:
        records += json.loads(path.read_text())
    return [r for r in records if isinstance(r, dict)]


def build_corpus(out: Path, events: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    pool = sample_records()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    per_object = 500  # a busy account's 5-minute file
    written = files = 0
    slot = 0
    while written < events:
        when = start + timedelta(minutes=5 * (slot // (len(ACCOUNTS) * len(REGIONS))))
        account = ACCOUNTS[slot % len(ACCOUNTS)]
        region = REGIONS[(slot // len(ACCOUNTS)) % len(REGIONS)]
        slot += 1
        count = min(per_object, events - written)
        batch = []
        for i in range(count):
            record = dict(rng.choice(pool))
            record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            record["eventTime"] = (when + timedelta(seconds=300 * i / count)).strftime("%Y-%m-%dT%H:%M:%SZ")
            record["recipientAccountId"] = account
            record["awsRegion"] = region
            batch.append(record)
        folder = out / "AWSLogs" / account / "CloudTrail" / region / when.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_{when.strftime('%Y%m%dT%H%MZ')}_{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}.json.gz"
        with gzip.open(folder / name, "wb", compresslevel=6) as fh:
            fh.write(json.dumps({"Records": batch}, separators=(",", ":")).encode())
        written += count
        files += 1
    return files


def bare_scan(corpus: Path) -> tuple[int, float]:
    import duckdb

    con = duckdb.connect()
    pattern = str(corpus / "AWSLogs" / "**" / "*.json.gz")
    started = time.perf_counter()
    count = con.execute(
        f"SELECT count(*) FROM (SELECT unnest(Records) FROM read_json('{pattern}', "
        "columns={'Records': 'JSON[]'}, maximum_object_size=268435456))"
    ).fetchone()[0]
    return count, time.perf_counter() - started


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its children, in bytes (Linux /proc)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        pids += [int(p) for p in children.read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run_ingest(corpus: Path, home: Path, workers: int | None) -> tuple[dict, float, int]:
    cmd = [sys.executable, "-m", "nhiwatch", "ingest", str(corpus), "--home", str(home), "--json", "--quiet"]
    if workers:
        cmd += ["--workers", str(workers)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    if proc.returncode not in (0, 3):
        raise SystemExit(f"ingest failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    summary = json.loads(stdout)
    return summary, elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the corpus for another run")
    args = parser.parse_args()

    corpus = args.workdir / f"corpus-{args.events}"
    if not corpus.exists():
        started = time.perf_counter()
        files = build_corpus(corpus, args.events)
        print(f"corpus: {args.events} events in {files} gzipped S3 objects, built in "
              f"{time.perf_counter() - started:.1f} s")
    size = sum(os.path.getsize(p) for p in glob.glob(str(corpus / "**" / "*.gz"), recursive=True))
    print(f"corpus size: {size / 1e6:.1f} MB compressed, {os.cpu_count()} cores")

    count, scan_s = bare_scan(corpus)
    print(f"duckdb read_json bare scan: {count} events in {scan_s:.2f} s = {count / scan_s:,.0f} events/s")

    home = args.workdir / "store"
    shutil.rmtree(home, ignore_errors=True)
    summary, ingest_s, peak = run_ingest(corpus, home, args.workers)
    accepted = summary["accepted"]
    print(f"nhiwatch ingest: {accepted} accepted, {summary['duplicate']} duplicate, "
          f"{summary['quarantined']} quarantined in {ingest_s:.2f} s = {summary['records'] / ingest_s:,.0f} events/s")
    print(f"ratio ingest/bare scan: {scan_s / ingest_s:.2f}x (target >= 0.5x)")
    print(f"peak RSS of the ingest process tree: {peak / 2**20:,.0f} MiB (target <= 1536 MiB at 10M events)")
    db = home / "nhiwatch.duckdb"
    print(f"store size: {db.stat().st_size / 1e6:.1f} MB")

    _, again_s, _ = run_ingest(corpus, home, args.workers)
    print(f"re-ingest (all duplicates): {again_s:.2f} s")
    if not args.keep:
        shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

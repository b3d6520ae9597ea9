"""Detection benchmark: `nhiwatch analyze` (ingest + learn + detect) against DuckDB's bare read_json
scan of the same gzipped CloudTrail files, measured in the same run; peak RSS; stored state size.

    python bench/detect_bench.py [--accounts 50 --days 12 --scale 1.0]   # ~11M events, ~5,250 identities

Prints events, identities, seconds and events/s of each stage, the ratio to the DuckDB scan, the
peak RSS of the analyze process, and profile state bytes per identity and per event.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--days", type=int, default=12)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the data here (default: a temp dir)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nhiwatch-detect-bench-"))
    data, home = work / "data", work / "home"
    nhiwatch = [sys.executable, "-m", "nhiwatch"]
    if not (data / "labels.json").exists():
        subprocess.run([*nhiwatch, "simulate", "--out", str(data), "--accounts", str(args.accounts), "--days",
                        str(args.days), "--scale", str(args.scale), "--seed", "3", "-q"], check=True)
    labels = json.loads((data / "labels.json").read_text())

    started = time.perf_counter()
    # the same bare scan as bench/ingest_bench.py: every record read as JSON from the gzipped objects
    scanned = duckdb.connect().execute(
        f"SELECT count(*) FROM (SELECT unnest(Records) FROM read_json('{data}/cloudtrail/**/*.json.gz', "
        "columns={'Records': 'JSON[]'}))").fetchall()[0][0]
    scan_seconds = time.perf_counter() - started

    learn_until = labels["start"][:10] + "T00:00:00Z"  # judge everything: the worst case for the engine
    started = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "%M", *nhiwatch, "analyze", str(data / "cloudtrail"), "--iam",
                          str(data / "iam"), "--learn-until", learn_until, "--home", str(home), "--json", "-q"],
                         capture_output=True, text=True)
    analyze_seconds = time.perf_counter() - started
    if run.returncode not in (0, 3):
        sys.exit(run.stderr)
    report = json.loads(run.stdout)
    peak_mib = int(run.stderr.strip().splitlines()[-1]) / 1024
    con = duckdb.connect(str(home / "nhiwatch.duckdb"), read_only=True)
    events, identities, state = con.execute(
        "SELECT (SELECT count(*) FROM events), count(*), sum(length(state)) FROM profiles").fetchone()
    print(f"events                {events:,} ({identities:,} identities with a profile)")
    print(f"DuckDB read_json scan {scan_seconds:.1f} s, {scanned / scan_seconds:,.0f} records/s")
    print(f"nhiwatch analyze      {analyze_seconds:.1f} s, {events / analyze_seconds:,.0f} events/s "
          f"(ingest + inventory + learn + detect), {scan_seconds / analyze_seconds:.2f}x the scan's speed")
    print(f"  of which detection  {report['seconds']:.1f} s, {report['events_judged'] / report['seconds']:,.0f} "
          f"events/s")
    print(f"peak RSS              {peak_mib:,.0f} MiB")
    print(f"profile state         {state / identities:,.0f} bytes per identity, {state / events:.2f} bytes per event")
    print(f"findings              {report['findings']} ({report['by_severity']})")
    print(f"data kept in          {work}")


if __name__ == "__main__":
    main()

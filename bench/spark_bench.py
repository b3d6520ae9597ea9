"""Spark benchmark: events/s per core of `nhiwatch spark analyze` (PySpark local mode) against the
embedded engine (`nhiwatch analyze`) on the same objects, and how Spark scales from one core to two.

    python bench/spark_bench.py [--accounts 4 --days 10] [--workdir DIR]

The corpus is a simulated organisation's trail packed into hourly objects. Both engines judge every
event after the first three days (learn_until) and must produce the same findings; the benchmark
checks that too.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

NHIWATCH = [sys.executable, "-m", "nhiwatch"]


def timed(command: list[str]) -> tuple[float, float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(run.stderr[-3000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, json.loads(run.stdout)


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nhiwatch-spark-bench-"))
    data, trail = work / "data", work / "trail"
    if not (data / "labels.json").exists():
        subprocess.run([*NHIWATCH, "simulate", "--out", str(data), "--accounts", str(args.accounts), "--days",
                        str(args.days), "--seed", "11", "--scenario", "bulk-secret-retrieval", "-q"], check=True)
    if not trail.exists():
        from nhiwatch.simulate.pack import pack_trail

        for key, body in pack_trail(data / "cloudtrail", hours=1).items():
            (trail / key).parent.mkdir(parents=True, exist_ok=True)
            (trail / key).write_bytes(body)
    start = json.loads((data / "labels.json").read_text()).get("start") or "2026-03-01"
    learn_until = (datetime.fromisoformat(start[:10]).replace(tzinfo=timezone.utc) + timedelta(days=3)).isoformat()
    home = work / "home"
    subprocess.run(["rm", "-rf", str(home)], check=True)
    seconds, cpu, result = timed([*NHIWATCH, "analyze", str(trail), "--iam", str(data / "iam"), "--home", str(home),
                                  "--learn-until", learn_until, "--json", "-q"])
    events = result["ingest"]["accepted"]
    print(f"corpus: {events:,} events, {sum(1 for p in trail.rglob('*') if p.is_file()):,} objects "
          f"({args.accounts} accounts x {args.days} days)")
    rows = [("embedded `nhiwatch analyze` (2 worker processes)", 2, seconds, cpu)]
    import duckdb

    con = duckdb.connect(str(home / "nhiwatch.duckdb"), read_only=True)
    embedded_findings = {r[0] for r in con.execute("SELECT id FROM findings").fetchall()}
    con.close()
    for cores in (1, 2):
        out = work / f"spark-out-{cores}"
        seconds, cpu, summary = timed([*NHIWATCH, "spark", "analyze", str(trail), "--out", str(out), "--inventory",
                                       str(home), "--learn-until", learn_until, "--master", f"local[{cores}]",
                                       "--partitions", str(4 * cores), "--json"])
        spark_findings = {json.loads(line)["id"] for line in (out / "findings.jsonl").read_text().splitlines()}
        same = "same findings" if spark_findings == embedded_findings else "FINDINGS DIFFER"
        rows.append((f"Spark local[{cores}] ({same}; stages {summary['seconds']})", cores, seconds, cpu))
    for label, cores, seconds, cpu in rows:
        # Spark's JVM is not a waited-for child: its CPU time is not counted, so none is shown for it.
        print(f"{label}\n    {seconds:7.1f} s, {events / seconds:8,.0f} events/s, {events / seconds / cores:8,.0f} "
              f"events/s per core" + (f"; CPU {cpu:.1f} s" if not label.startswith("Spark") else ""))
    print(f"data kept in {work}")


if __name__ == "__main__":
    main()

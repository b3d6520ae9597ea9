"""Simulator benchmark: generation speed at benchmark scale (>= 10M events, >= 5,000 identities).

  python bench/simulate_bench.py                      # 100 accounts x 2.0 scale x 7 days
  python bench/simulate_bench.py --accounts 10 --days 2   # a quick look

Prints events, identities, files, seconds and events/s (written to disk as gzipped S3 objects).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from nhiwatch.simulate.runner import SimConfig, simulate

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "sim")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    started = time.perf_counter()
    summary = simulate(args.out, SimConfig(seed=42, accounts=args.accounts, days=args.days, scale=args.scale),
                       workers=args.workers)
    elapsed = time.perf_counter() - started
    size = sum(p.stat().st_size for p in (args.out / "cloudtrail").rglob("*.gz"))
    print(f"simulated {summary.events:,} events, {summary.identities:,} identities ({summary.nhis:,} non-human), "
          f"{summary.accounts} accounts x {args.days} days, {summary.scenarios} attacks")
    print(f"{summary.files:,} files, {size / 1e6:,.0f} MB gzipped, in {elapsed:.1f} s = "
          f"{summary.events / elapsed:,.0f} events/s (target >= 100,000)")
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()

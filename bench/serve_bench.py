"""Dashboard benchmark: the inventory page of an organisation with about 10,000 identities.

    python bench/serve_bench.py [--accounts 96 --scale 2.0] [--workdir DIR]

A simulated organisation's IAM exports (one day of traffic, enough for last-active dates) are
loaded into an inventory; `nhiwatch serve` runs on it. Reported:
- the JSON API behind the inventory page: median and 95th percentile over repeated calls, for the
  first page, a deep page, every sort, a search and a filter;
- the page itself in headless Chromium: from navigation to the first 50 rows drawn, and from a
  keystroke in the search box to the filtered rows drawn.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

NHIWATCH = [sys.executable, "-m", "nhiwatch"]
REPEAT = 15


def timed_get(url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.loads(response.read())
    return time.perf_counter() - started, body


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms, p95 {p95 * 1000:7.1f} ms"


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=96)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nhiwatch-serve-bench-"))
    data, home = work / "data", work / "home"
    if not (data / "labels.json").exists():
        subprocess.run([*NHIWATCH, "simulate", "--out", str(data), "--accounts", str(args.accounts), "--days", "1",
                        "--scale", str(args.scale), "--seed", "3", "-q"], check=True)
    if not (home / "nhiwatch.duckdb").exists():
        subprocess.run([*NHIWATCH, "inventory", "load", str(data / "iam"), "--home", str(home), "-q"], check=True)
    served = subprocess.Popen([*NHIWATCH, "serve", "--home", str(home), "--port", "0", "--json"],
                              stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(served.stdout.readline())
        url = info["url"]
        total = timed_get(f"{url}api/identities?limit=1")[1]["total"]
        print(f"inventory: {total:,} identities ({args.accounts} simulated accounts)")
        queries = {"first page (risk)": "limit=50",
                   "deep page (offset total-50)": f"limit=50&offset={max(0, total - 50)}",
                   **{f"sort by {key}": f"limit=50&sort={key}" for key in
                      ("name", "type", "account", "last_active", "key_age", "findings")},
                   "search 'deploy'": "limit=50&search=deploy",
                   "filter type + risk": "limit=50&type=service-role&risk=medium",
                   "500 rows at once": "limit=500"}
        for label, query in queries.items():
            samples = [timed_get(f"{url}api/identities?{query}")[0] for _ in range(REPEAT)]
            print(f"  GET /api/identities {label:<28} {percentiles(samples)}")

        from playwright.sync_api import expect, sync_playwright

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            loads, searches = [], []
            for n in range(REPEAT):
                page.goto("about:blank")
                started = time.perf_counter()
                page.goto(f"{url}#/inventory")
                expect(page.locator("#inventory-table tr.identity-row")).to_have_count(50, timeout=60_000)
                loads.append(time.perf_counter() - started)
                term = ("deploy", "cron", "task")[n % 3]
                started = time.perf_counter()
                page.fill("#inventory-search", term)
                expect(page.locator("#inventory-table tr.identity-row").first).to_contain_text(term, timeout=60_000)
                searches.append(time.perf_counter() - started)  # includes the page's 250 ms typing pause
            browser.close()
        print(f"  Chromium: open the inventory page, 50 rows drawn   {percentiles(loads)}")
        print(f"  Chromium: type a search, filtered rows drawn        {percentiles(searches)} "
              "(includes the 250 ms typing pause)")
    finally:
        served.terminate()
        served.wait(timeout=30)
    print(f"data kept in {work}")


if __name__ == "__main__":
    main()

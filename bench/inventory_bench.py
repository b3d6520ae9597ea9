"""Inventory benchmark: load and rebuild an inventory of about 10,000 identities.

The accounts are copies of the hand-made test account (tests/fixtures/iam/hand-made: OIDC, cross-account,
service, SSO roles and key users), each under its own account id, written as one export and one
credential report per account. Prints files, identities, seconds per stage and peak RSS.

    python bench/inventory_bench.py [--accounts 300]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "iam" / "hand-made"
TEMPLATE_ACCOUNT = "111122223333"


def write_accounts(folder: Path, accounts: int) -> None:
    authz = (FIXTURE / "authorization-details.json").read_text()
    report = (FIXTURE / "credential-report.csv").read_text()
    for n in range(accounts):
        account = f"{500000000000 + n:012d}"
        target = folder / account
        target.mkdir(parents=True)
        (target / "authorization-details.json").write_text(authz.replace(TEMPLATE_ACCOUNT, account))
        (target / "credential-report.csv").write_text(report.replace(TEMPLATE_ACCOUNT, account))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, home = Path(tmp) / "iam", Path(tmp) / "home"
        write_accounts(folder, args.accounts)
        nhiwatch = [sys.executable, "-m", "nhiwatch"]
        started = time.perf_counter()
        load = subprocess.run([*nhiwatch, "inventory", "load", str(folder), "--as-of", "2026-06-01T00:00:00Z",
                               "--json", "--home", str(home)], capture_output=True, text=True)
        load_seconds = time.perf_counter() - started
        if load.returncode != 0:
            sys.exit(f"load failed: {load.stderr}")
        identities = __import__("json").loads(load.stdout)["identities"]
        started = time.perf_counter()
        subprocess.run([*nhiwatch, "inventory", "list", "--limit", "50", "--home", str(home)], capture_output=True,
                       check=True)
        list_seconds = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([*nhiwatch, "posture", "--json", "--home", str(home)], capture_output=True, check=True)
        posture_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"accounts            {args.accounts}")
    print(f"identities          {identities:,}")
    print(f"inventory load      {load_seconds:.2f} s ({identities / load_seconds:,.0f} identities/s, read + "
          f"evaluate + store)")
    print(f"inventory list      {list_seconds:.2f} s (first 50 rows, including start-up)")
    print(f"posture --json      {posture_seconds:.2f} s (every finding)")
    print(f"peak RSS            {peak:,.0f} MiB (largest child process)")


if __name__ == "__main__":
    main()

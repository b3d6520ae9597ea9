"""Principal-graph benchmark: the escalation graph of about 10,000 principals, built from scratch.

The accounts are copies of the IAM Vulnerable export (../shared/data/iam/cloudsplaining/example.json:
44 users, 78 roles, 5 groups), each under its own account ids, so 80 copies hold 10,160 principals;
with --one-account the copies are merged into one account (names prefixed per copy), the harder case:
every principal may then reach every other. Timed: reading the exports and compiling every policy
into graph nodes, then the graph itself (admin decisions, act edges, escalations, shortest routes),
then asking every principal for its routes.

    python bench/graph_bench.py [--accounts 80] [--one-account] [--budget 30] [--capabilities]

With --capabilities, also times every principal's shortest route to each capability (secrets, data,
kms), as the inventory stores them; that work is lazy and not part of the build total.

Prints the figures and exits 1 when the whole build (nodes and graph) takes longer than --budget seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from nhiwatch.inventory.build import KNOWN_AWS_POLICIES  # noqa: E402
from nhiwatch.inventory.graph import POSSIBLE, PrincipalGraph, SURE, nodes_of  # noqa: E402

EXAMPLE = REPO.parent / "shared" / "data" / "iam" / "cloudsplaining" / "example.json"
TEMPLATE_ACCOUNTS = ("200611803367", "012345678901")  # IAM Vulnerable's account and the example's second one
AS_OF = datetime(2026, 6, 1, tzinfo=timezone.utc)


def copies(count: int) -> list[dict]:
    """`count` copies of the example, each under account ids of its own."""
    text = EXAMPLE.read_text()
    out = []
    for n in range(count):
        copy = text
        for k, account in enumerate(TEMPLATE_ACCOUNTS):
            copy = copy.replace(account, f"{500000000000 + 2 * n + k:012d}")
        out.append(json.loads(copy))
    return out


def one_account(count: int) -> dict:
    """`count` copies of the example merged into one export: every name and ARN prefixed per copy."""
    base = EXAMPLE.read_text()
    merged: dict[str, list] = {"UserDetailList": [], "RoleDetailList": [], "GroupDetailList": [], "Policies": []}
    for n in range(count):
        copy = json.loads(re.sub(r"(arn:aws:iam::\d{12}:(?:user|role|group|policy|instance-profile)/)",
                                 lambda m: f"{m.group(1)}c{n}-", base))
        for key, name in (("UserDetailList", "UserName"), ("RoleDetailList", "RoleName"),
                          ("GroupDetailList", "GroupName")):
            for entry in copy[key]:
                entry[name] = f"c{n}-{entry[name]}"
        for user in copy["UserDetailList"]:
            user["GroupList"] = [f"c{n}-{g}" for g in user.get("GroupList") or []]
        for key in merged:
            merged[key] += copy[key]
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=80, help="copies of IAM Vulnerable")
    parser.add_argument("--one-account", action="store_true", help="merge the copies into one account")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds the build may take")
    parser.add_argument("--capabilities", action="store_true", help="also time every capability route")
    args = parser.parse_args()
    payloads = [one_account(args.accounts)] if args.one_account else copies(args.accounts)

    started = time.perf_counter()
    nodes = {}
    for payload in payloads:
        nodes.update(nodes_of(payload, (), KNOWN_AWS_POLICIES, AS_OF))
    compiled = time.perf_counter() - started
    started = time.perf_counter()
    graph = PrincipalGraph(nodes, as_of=AS_OF, hidden_versions=True)
    built = time.perf_counter() - started
    started = time.perf_counter()
    verdicts: Counter = Counter()
    for arn in graph.nodes:
        if graph.is_admin(arn):
            verdicts["admin"] += 1
        elif graph.routes(arn, SURE):
            verdicts["exploitable"] += 1
        elif graph.routes(arn, POSSIBLE):
            verdicts["conditional"] += 1
        else:
            verdicts["no route"] += 1
    asked = time.perf_counter() - started

    reached: Counter = Counter()
    capabilities_time = 0.0
    if args.capabilities:
        from nhiwatch.inventory.capabilities import capability_routes

        started = time.perf_counter()
        for arn in graph.nodes:
            for name, route in capability_routes(graph, arn).items():
                reached[name] += route is not None
        capabilities_time = time.perf_counter() - started

    total = compiled + built
    kinds = Counter(node.kind for node in graph.nodes.values())
    print(f"principals          {len(graph.nodes):,} ({', '.join(f'{v:,} {k}s' for k, v in sorted(kinds.items()))};"
          f" {args.accounts} copies{' in one account' if args.one_account else ''})")
    print(f"nodes               {compiled:.2f} s (exports read, policies compiled)")
    print(f"graph               {built:.2f} s ({graph.edge_count:,} act edges, "
          f"{sum(len(v) for v in graph.escalations[SURE].values()):,} escalations)")
    print(f"build total         {total:.2f} s (budget {args.budget:.0f} s)")
    print(f"routes asked        {asked:.2f} s (every principal's routes, both modes)")
    print("verdicts            " + ", ".join(f"{k} {v:,}" for k, v in sorted(verdicts.items())))
    if args.capabilities:
        print(f"capability routes   {capabilities_time:.2f} s (every principal, secrets/data/kms; reached: "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(reached.items())) + ")")
    return 0 if total <= args.budget else 1


if __name__ == "__main__":
    raise SystemExit(main())

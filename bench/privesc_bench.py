"""Privilege-escalation benchmark: which identities could become admin, judged against labelled accounts.

    python bench/privesc_bench.py                  # both accounts, nhiwatch and Cloudsplaining
    python bench/privesc_bench.py --details        # and every miss and false positive with its reason
    python bench/privesc_bench.py --no-cloudsplaining --json out.json

Two accounts:

- the pathfinding.cloud account, built by tests/pathfinding_fixtures.py from the 65 paths of
  ../shared/data/pathfinding: per path a principal that can exploit it and a look-alike that cannot,
  chains of one and two sts:AssumeRole hops, and the bystanders they need (labels in its manifest);
- IAM Vulnerable (../shared/data/iam/cloudsplaining/example.json), labelled by the principals' names:
  privesc*/fn* exploitable, fp* not, the groups counted as principals.

For each: exploitable principals flagged / all exploitable (recall) and false positives / safe
principals, overall and per category (the path's category; user, role, group for IAM Vulnerable);
"conditional" counts the principals not flagged whose only routes to admin rest on a condition the
evaluation cannot decide. nhiwatch flags a principal when its inventory says it is admin or lists a
route to admin that rests on no condition (capabilities["admin"] or ["privesc"]). When Cloudsplaining's CLI is installed beside this Python, its figures on the same
files: a principal is flagged when a policy it holds (directly or through a group) has a
PrivilegeEscalation finding, and, as a second figure, any finding of any risk type.

It reports, it does not gate: the exit code is 0 whenever it ran (tests/test_pathfinding.py gates).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import pathfinding_fixtures as pf  # noqa: E402


def describe_form(form: dict) -> str:
    """How a can-principal holds its permissions, in words."""
    parts = [{"inline": "inline policy", "managed": "customer-managed policy", "group": "group's inline policy",
              "group-managed": "group's managed policy"}[form["attach"]]]
    if form["scoped"]:
        parts.append("scoped to the target: " + ", ".join(form["scoped"]))
    if form["wildcards"]:
        parts.append("written " + ", ".join(form["wildcards"]))
    if form["variables"]:
        parts.append("${aws:username}")
    if form["conditions"]:
        parts.append("condition it meets on " + ", ".join(form["conditions"]))
    return "; ".join(parts)


def details(verdicts, labels_by_arn: dict) -> list[str]:
    lines = []
    for v in verdicts:
        if v.right:
            continue
        label = labels_by_arn.get(v.arn, {})
        what = "missed" if v.exploitable else "false positive"
        context = label.get("path") or label.get("category") or v.category
        reason = label.get("why") or label.get("note") or (describe_form(label["form"]) if "form" in label else "")
        lines.append(f"  {what:<15} {context:<24} {v.name:<32} {reason}")
    return lines


def cloudsplaining_tables(authz: Path, workdir: Path, labels: dict, categories: tuple[str, ...] | None,
                          title: str) -> tuple[list[str], dict]:
    started = time.perf_counter()
    results = pf.run_cloudsplaining(authz, workdir)
    if results is None:
        return [f"{title}: Cloudsplaining's CLI is not installed beside {sys.executable}; skipped"], {}
    seconds = time.perf_counter() - started
    out, figures = [], {}
    for name, risks in (("privilege escalation", ("PrivilegeEscalation",)), ("any risk", pf.CLOUDSPLAINING_RISKS)):
        summary = pf.summarise(pf.verdicts_from_set(pf.cloudsplaining_principals(results, risks), labels), categories)
        out.append(pf.format_table(summary, f"{title}, Cloudsplaining ({name} findings)"))
        figures[name] = summary
    out.append(f"  Cloudsplaining scan: {seconds:.1f} s")
    return out, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="list every miss and false positive")
    parser.add_argument("--no-cloudsplaining", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep the built account and Cloudsplaining's output here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)

        # the pathfinding.cloud account
        started = time.perf_counter()
        fixture = pf.build()
        files = fixture.write(work / "pathfinding")
        built = time.perf_counter() - started
        started = time.perf_counter()
        identities = pf.inventory(files["authz"], files["report"])
        inventoried = time.perf_counter() - started
        verdicts = pf.judge(identities, fixture.manifest)
        summary = pf.summarise(verdicts)
        paths = len(fixture.manifest["paths"])
        print(pf.format_table(summary, f"nhiwatch on the pathfinding.cloud account ({paths} paths, "
                                       f"{len(identities)} identities)"))
        print(f"  built in {built:.2f} s, inventory in {inventoried:.2f} s ({files['authz'].parent})")
        labels_by_arn = {p["arn"]: p for p in fixture.manifest["principals"]}
        if args.details:
            print("\n".join(details(verdicts, labels_by_arn)))
        figures["pathfinding"] = {"nhiwatch": summary}
        if not args.no_cloudsplaining:
            labels = {v.arn: (v.name, v.category, v.exploitable) for v in verdicts}
            lines, cs = cloudsplaining_tables(files["authz"], work / "cloudsplaining-pathfinding", labels, None,
                                              "the pathfinding.cloud account")
            print("\n" + "\n".join(lines))
            figures["pathfinding"]["cloudsplaining"] = cs

        # IAM Vulnerable
        print()
        iv_labels = pf.iam_vulnerable_labels()
        started = time.perf_counter()
        iv_identities = pf.inventory(pf.IAM_VULNERABLE)
        inventoried = time.perf_counter() - started
        iv_verdicts = pf.judge_iam_vulnerable(iv_identities, iv_labels)
        iv_summary = pf.summarise(iv_verdicts, ("user", "role", "group"))
        print(pf.format_table(iv_summary, "nhiwatch on IAM Vulnerable (privesc*/fn* exploitable, fp* not; groups "
                                          "count)"))
        print(f"  inventory in {inventoried:.2f} s")
        if args.details:
            print("\n".join(details(iv_verdicts, {})))
        figures["iam_vulnerable"] = {"nhiwatch": iv_summary}
        if not args.no_cloudsplaining:
            labels = {arn: (arn.rsplit("/", 1)[-1], arn.split(":", 5)[5].split("/", 1)[0], exploitable)
                      for arn, exploitable in iv_labels.items()}
            lines, cs = cloudsplaining_tables(pf.IAM_VULNERABLE, work / "cloudsplaining-iam-vulnerable", labels,
                                              ("user", "role", "group"), "IAM Vulnerable")
            print("\n" + "\n".join(lines))
            figures["iam_vulnerable"]["cloudsplaining"] = cs
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

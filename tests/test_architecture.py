"""The tree is the pipeline: each stage package imports only `core`, `store` and the stages before it,
so there is no cycle and a stage can be read without the ones after it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "nhiwatch"

# Lowest first. A package may import any package listed before it, never one after it.
LAYERS = (
    "core",         # the contracts every stage shares: event schema, severity, findings, times, text
    "store",        # the DuckDB file
    "knowledge",    # facts shipped with the tool: provider address ranges, vendors
    "ingest",       # CloudTrail in every shape -> events
    "inventory",    # IAM -> identities, posture, risk
    "detect",       # baselines and detectors -> findings
    "correlate",    # findings -> incidents
    "respond",      # incidents -> dry-run plans and audited actions
    "outputs",      # findings -> JSON lines, OCSF, Security Hub
    "evaluation",   # findings scored against labelled attacks
    "simulate",     # a synthetic organisation's CloudTrail and IAM
    "pipeline",     # the stages wired once (analyze, demo, eval, inventory load)
    "watch",        # the continuous pipeline over S3, SQS, EventBridge
    "spark",        # the same engine on Apache Spark
    "server",       # the dashboard
    "demo",         # the one-command demonstration
    "cli",          # the thin layer on top
)
ROOT_MODULES = {"__init__", "__main__", "__version__"}


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported stage package, line) for every import of nhiwatch code in a file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nhiwatch":
            parts = node.module.split(".")
            targets = [parts[1]] if len(parts) > 1 else [alias.name for alias in node.names]
            found += [(t, node.lineno) for t in targets]
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".")[1], node.lineno) for a in node.names
                      if a.name.startswith("nhiwatch.")]
    return found


def test_every_package_is_a_known_stage():
    packages = {_package(p) for p in SRC.rglob("*.py")} - ROOT_MODULES
    assert packages == set(LAYERS), f"unplaced: {packages - set(LAYERS)}; gone: {set(LAYERS) - packages}"


def test_stages_import_only_the_stages_before_them():
    rank = {name: n for n, name in enumerate(LAYERS)}
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        here = _package(path)
        if here in ROOT_MODULES:
            continue
        for target, line in _imports(path):
            if target in ROOT_MODULES or target == here:
                continue
            if rank[target] > rank[here]:
                wrong.append(f"{path.relative_to(SRC)}:{line} ({here}) imports {target}")
    assert not wrong, "a stage imports a later one:\n" + "\n".join(wrong)

"""Shared fixtures. The real samples live in ../shared/data beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from nhiwatch.ingest.pipeline import Ingestor
from nhiwatch.store.db import Store

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
CLOUDTRAIL = SHARED_DATA / "cloudtrail"


# The fast lane (`pytest -m "not slow"`) leaves these modules out: they run Spark, a browser, moto's
# server, simulated organisations or many subprocesses. CI runs everything.
SLOW_MODULES = frozenset({
    "test_spark", "test_serve", "test_hostile_output", "test_watch", "test_crash_safety", "test_hostile_input",
    "test_fuzz_pipeline", "test_detect", "test_golden", "test_respond", "test_inventory_live", "test_correlate",
    "test_simulate", "test_usage_poisoning", "test_typing", "test_ocsf_records", "test_securityhub_accounts",
    "test_org_policies_live", "test_detect_stratus",
})

# The suite runs on two workers (pytest-xdist, `--dist loadfile --no-loadscope-reorder` in pyproject.toml):
# each worker takes whole modules, in collection order. The longest modules come first, so that no long
# one is left to start when the other worker has nothing more to do; every other module keeps its place.
LONGEST_FIRST = (  # measured with --durations on two workers, longest first
    "test_spark", "test_detect", "test_watch", "test_detect_stratus", "test_security_lake", "test_ocsf_records",
    "test_serve", "test_crash_safety", "test_simulate", "test_securityhub_accounts", "test_correlate",
    "test_hostile_output", "test_fuzz_pipeline", "test_golden", "test_blast_radius", "test_inventory",
    "test_hostile_input",
)


def _module_name(item) -> str | None:
    return item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) is not None else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _module_name(item) in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module_name(item), len(rank)))  # stable: each module's order kept


@pytest.fixture(scope="session")
def cloudtrail_dir() -> Path:
    if not CLOUDTRAIL.is_dir():
        pytest.fail(f"the shared samples are missing: expected {CLOUDTRAIL} (clone with ../shared beside it)")
    return CLOUDTRAIL


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "home") as opened:
        yield opened


def ingest(store: Store, *paths: Path | str, workers: int = 1):
    return Ingestor(store, workers=workers).run([str(p) for p in paths])


def event_row(store: Store, event_id: str, **where: str) -> dict:
    """One stored event as a dict (times as ISO text), looked up by eventID."""
    clauses = " AND ".join(["event_id = ?"] + [f"{k} = ?" for k in where])
    cursor = store.con.execute(
        f"SELECT * REPLACE (strftime(event_time, '%Y-%m-%dT%H:%M:%S.%fZ') AS event_time, "
        f"strftime(session_created_at, '%Y-%m-%dT%H:%M:%SZ') AS session_created_at) FROM events WHERE {clauses}",
        [event_id, *where.values()])
    rows = cursor.fetchall()
    assert len(rows) == 1, f"expected one event {event_id}, found {len(rows)}"
    return dict(zip([d[0] for d in cursor.description], rows[0]))

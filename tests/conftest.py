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
    "test_org_policies_live",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


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

"""What detection finds on a fixed simulated organisation and on every real sample in ../shared,
written down so a refactor can prove it changed nothing (tests/test_golden.py).

Run `python tests/golden_findings.py --update` after a change that is meant to change findings, and
say why in the commit."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "findings.json"
SHARED = HERE.parent.parent / "shared" / "data" / "cloudtrail"
SIM = {"seed": 3, "accounts": 2, "days": 8, "scale": 0.3, "start": "2026-03-01"}
LEARN_UNTIL = datetime(2026, 3, 4, tzinfo=timezone.utc)


def _findings(home: Path, paths: list[str], learn_until: datetime | None) -> list[list[str]]:
    from nhiwatch.pipeline import analyze
    from nhiwatch.store.db import Store

    with Store(home) as store:
        analyze(store, paths, learn_until=learn_until, workers=1)
        rows = store.con.execute("SELECT id, detector, severity, identity, coalesce(incident_id, '') "
                                 "FROM findings ORDER BY id").fetchall()
    return [list(r) for r in rows]


def compute() -> dict:
    from nhiwatch.simulate.runner import SimConfig, simulate

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sim"
        simulate(data, SimConfig(**SIM), workers=1)
        out["simulated"] = _findings(Path(tmp) / "h1", [str(data / "cloudtrail")], LEARN_UNTIL)
        out["shared"] = _findings(Path(tmp) / "h2", [str(SHARED)], None)
    return out


if __name__ == "__main__":
    if "--update" not in sys.argv:
        sys.exit("usage: python tests/golden_findings.py --update")
    result = compute()
    GOLDEN.write_text(json.dumps(result, indent=0) + "\n")
    print({k: len(v) for k, v in result.items()}, "written to", GOLDEN)

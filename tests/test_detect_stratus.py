"""Every Stratus detonation in ../shared, replayed into a simulated organisation with its own legitimate
change, is caught on its identity (kept apart from test_detect.py, whose helpers it uses, so that a
parallel run can take it beside that module's library of attacks)."""

from __future__ import annotations

import pytest

from conftest import CLOUDTRAIL
from nhiwatch.evaluation.scoring import score
from nhiwatch.simulate.runner import SimConfig
from nhiwatch.simulate.scenarios import detonation_techniques
from test_detect import START, _run


@pytest.mark.skipif(not (CLOUDTRAIL / "stratus-detonations").is_dir(), reason="needs ../shared")
def test_every_stratus_detonation_is_caught_on_its_identity(tmp_path):
    techniques = detonation_techniques(CLOUDTRAIL / "stratus-detonations")
    assert len(techniques) >= 30
    config = SimConfig(seed=5, accounts=2, days=32, scale=1.5, start=START,
                       scenarios=tuple(f"replay:{t}" for t in techniques),
                       detonations=str(CLOUDTRAIL / "stratus-detonations"))
    labels, findings, _ = _run(tmp_path, config, learn_days=14)
    report = score(labels, findings)
    assert {s.id for s in report.scenarios} == {f"replay:{t}" for t in techniques}
    missed = [s.id for s in report.scenarios if not s.detected]
    assert not missed, f"missed {missed}"
    assert report.false_alerts_per_1000_identity_days <= 1.0

"""Behaviour unchanged: detection on a fixed simulated organisation and on every real sample finds
exactly what tests/golden/findings.json says (ids, detectors, severities, identities, incidents).

A change meant to change findings regenerates the file (`python tests/golden_findings.py --update`)
and says why; any other difference is a regression."""

from __future__ import annotations

import json

import pytest

from golden_findings import GOLDEN, SHARED, compute


def test_findings_are_exactly_the_recorded_ones():
    if not SHARED.is_dir():
        pytest.fail(f"the shared samples are missing: expected {SHARED}")
    expected = json.loads(GOLDEN.read_text())
    actual = compute()
    for corpus in ("simulated", "shared"):
        want = {tuple(r) for r in expected[corpus]}
        got = {tuple(r) for r in actual[corpus]}
        assert got == want, (corpus, {"missing": sorted(want - got)[:20], "new": sorted(got - want)[:20]})

"""The ATT&CK table (knowledge/attack.py) that outputs take each technique's tactics from: it knows every
technique a finding can carry (a detector's own, and those its hits add from the catalogue of sensitive
calls), every nhiwatch tactic, and files techniques as ATT&CK does."""

from __future__ import annotations

import re

from nhiwatch.detect.catalog import CATALOG, TACTIC_ORDER
from nhiwatch.detect.detectors import DETECTORS
from nhiwatch.knowledge.attack import TACTICS, TECHNIQUES, attacks, parent_of, tactics_of


def _techniques_findings_can_carry() -> set[str]:
    # A finding's techniques are its detector's plus its hits' (engine._close); hits add the catalogue's.
    return {t for d in DETECTORS for t in d.mitre} | {t for entry in CATALOG.values() for t in entry.mitre}


def test_every_technique_a_finding_can_carry_is_in_the_table():
    missing = sorted(_techniques_findings_can_carry() - set(TECHNIQUES))
    assert not missing, f"techniques with no ATT&CK tactic in knowledge/attack.py: {missing}"
    parents = sorted({parent_of(t) for t in TECHNIQUES} - set(TECHNIQUES))
    assert not parents, f"sub-techniques whose parent is not listed: {parents}"


def test_every_nhiwatch_tactic_is_an_attack_tactic():
    assert set(TACTIC_ORDER) <= set(TACTICS)
    assert all(re.fullmatch(r"TA\d{4}", t.uid) and t.name for t in TACTICS.values())
    assert len({t.uid for t in TACTICS.values()}) == len(TACTICS)


def test_techniques_are_filed_under_known_tactics_like_their_parents():
    for technique, entry in TECHNIQUES.items():
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", technique) and entry.name and entry.tactics, technique
        assert set(entry.tactics) <= set(TACTICS), technique
        assert set(entry.tactics) <= set(TECHNIQUES[parent_of(technique)].tactics), technique


def test_a_technique_keeps_its_own_tactic():
    # The mistakes the single finding-wide tactic made (issue 19).
    assert [t.name for t in tactics_of("T1530", "exfiltration")] == ["Collection"]
    assert [t.name for t in tactics_of("T1098", "exfiltration")] == ["Persistence", "Privilege Escalation"]
    # Where ATT&CK files a technique under several tactics, the finding's own says which one it served.
    assert [t.uid for t in tactics_of("T1078.004", "initial-access")] == ["TA0001"]
    assert [t.name for t in tactics_of("T1078.004", "lateral-movement")] == [
        "Initial Access", "Persistence", "Privilege Escalation", "Defense Evasion"]
    assert tactics_of("T9999", "impact") == ()


def test_attacks_split_sub_techniques_and_name_no_tactic_they_do_not_know():
    (cloud_accounts,) = attacks(["T1078.004"], "initial-access")
    assert (cloud_accounts.technique, cloud_accounts.sub_technique, cloud_accounts.tactic.uid) == (
        "T1078", "T1078.004", "TA0001")
    (unknown,) = attacks(["T9999"], None)
    assert unknown.tactic is None and unknown.sub_technique is None

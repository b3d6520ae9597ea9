"""MITRE ATT&CK (Enterprise, v16): the tactics and the techniques nhiwatch's detectors and its catalogue
of sensitive calls name, each technique with the tactics ATT&CK files it under.

A finding names one nhiwatch tactic and several techniques; outputs that speak ATT&CK (OCSF's attacks,
ASFF's types) look each technique's own tactics up here rather than give every technique the finding's
tactic (Data from Cloud Storage is Collection, not Exfiltration). `tests/test_attack.py` checks that
every technique a detector can put in a finding is listed."""

from __future__ import annotations

from typing import NamedTuple

ATTACK_VERSION = "16.1"


class Tactic(NamedTuple):
    uid: str       # TA0001 ...
    name: str


class Technique(NamedTuple):
    name: str
    tactics: tuple[str, ...]   # keys of TACTICS, in ATT&CK's order


# nhiwatch's tactic names (detect/catalog.TACTIC_ORDER) are ATT&CK's, in kebab case; execution and
# collection are here for techniques filed under them.
TACTICS: dict[str, Tactic] = {
    "initial-access": Tactic("TA0001", "Initial Access"),
    "execution": Tactic("TA0002", "Execution"),
    "persistence": Tactic("TA0003", "Persistence"),
    "privilege-escalation": Tactic("TA0004", "Privilege Escalation"),
    "defense-evasion": Tactic("TA0005", "Defense Evasion"),
    "credential-access": Tactic("TA0006", "Credential Access"),
    "discovery": Tactic("TA0007", "Discovery"),
    "lateral-movement": Tactic("TA0008", "Lateral Movement"),
    "collection": Tactic("TA0009", "Collection"),
    "exfiltration": Tactic("TA0010", "Exfiltration"),
    "impact": Tactic("TA0040", "Impact"),
}

_ESCALATE_OR_PERSIST = ("persistence", "privilege-escalation")

# Techniques and sub-techniques (a sub-technique's name is its own, without its parent's). Parents of
# listed sub-techniques are listed too, so both halves of an OCSF attack can be named.
TECHNIQUES: dict[str, Technique] = {
    "T1021": Technique("Remote Services", ("lateral-movement",)),
    "T1059": Technique("Command and Scripting Interpreter", ("execution",)),
    "T1059.009": Technique("Cloud API", ("execution",)),
    "T1069": Technique("Permission Groups Discovery", ("discovery",)),
    "T1069.003": Technique("Cloud Groups", ("discovery",)),
    "T1078": Technique("Valid Accounts", ("initial-access", "persistence", "privilege-escalation", "defense-evasion")),
    "T1078.004": Technique("Cloud Accounts",
                           ("initial-access", "persistence", "privilege-escalation", "defense-evasion")),
    "T1087": Technique("Account Discovery", ("discovery",)),
    "T1087.004": Technique("Cloud Account", ("discovery",)),
    "T1098": Technique("Account Manipulation", _ESCALATE_OR_PERSIST),
    "T1098.001": Technique("Additional Cloud Credentials", _ESCALATE_OR_PERSIST),
    "T1098.003": Technique("Additional Cloud Roles", _ESCALATE_OR_PERSIST),
    "T1098.004": Technique("SSH Authorized Keys", _ESCALATE_OR_PERSIST),
    "T1136": Technique("Create Account", ("persistence",)),
    "T1136.003": Technique("Cloud Account", ("persistence",)),
    "T1199": Technique("Trusted Relationship", ("initial-access",)),
    "T1484": Technique("Domain or Tenant Policy Modification", ("privilege-escalation", "defense-evasion")),
    "T1485": Technique("Data Destruction", ("impact",)),
    "T1490": Technique("Inhibit System Recovery", ("impact",)),
    "T1496": Technique("Resource Hijacking", ("impact",)),
    "T1525": Technique("Implant Internal Image", ("persistence",)),
    "T1526": Technique("Cloud Service Discovery", ("discovery",)),
    "T1530": Technique("Data from Cloud Storage", ("collection",)),
    "T1535": Technique("Unused/Unsupported Cloud Regions", ("defense-evasion",)),
    "T1537": Technique("Transfer Data to Cloud Account", ("exfiltration",)),
    "T1546": Technique("Event Triggered Execution", _ESCALATE_OR_PERSIST),
    "T1548": Technique("Abuse Elevation Control Mechanism", ("privilege-escalation", "defense-evasion")),
    "T1550": Technique("Use Alternate Authentication Material", ("defense-evasion", "lateral-movement")),
    "T1550.001": Technique("Application Access Token", ("defense-evasion", "lateral-movement")),
    "T1552": Technique("Unsecured Credentials", ("credential-access",)),
    "T1552.005": Technique("Cloud Instance Metadata API", ("credential-access",)),
    "T1555": Technique("Credentials from Password Stores", ("credential-access",)),
    "T1555.006": Technique("Cloud Secrets Management Stores", ("credential-access",)),
    "T1562": Technique("Impair Defenses", ("defense-evasion",)),
    "T1562.001": Technique("Disable or Modify Tools", ("defense-evasion",)),
    "T1562.007": Technique("Disable or Modify Cloud Firewall", ("defense-evasion",)),
    "T1562.008": Technique("Disable or Modify Cloud Logs", ("defense-evasion",)),
    "T1580": Technique("Cloud Infrastructure Discovery", ("discovery",)),
    "T1651": Technique("Cloud Administration Command", ("execution",)),
}


class Attack(NamedTuple):
    """One technique in one of its tactics, as a finding used it."""
    technique: str             # T1078 (the parent of a sub-technique)
    sub_technique: str | None  # T1078.004
    tactic: Tactic | None      # None only for a technique the table does not know


def parent_of(technique: str) -> str:
    return technique.split(".", 1)[0]


def tactics_of(technique: str, used_as: str | None = None) -> tuple[Tactic, ...]:
    """The tactics a technique served: the finding's own tactic when ATT&CK files the technique under
    it (a detector's tactic says which of several applies), otherwise every tactic ATT&CK gives it."""
    entry = TECHNIQUES.get(technique)
    if entry is None:
        return ()
    chosen = (used_as,) if used_as in entry.tactics else entry.tactics
    return tuple(TACTICS[t] for t in chosen)


def attacks(techniques: list[str] | tuple[str, ...], used_as: str | None = None) -> list[Attack]:
    """Each technique with each tactic it served, in the order given."""
    found: list[Attack] = []
    for technique in techniques:
        sub = technique if "." in technique else None
        tactics = tactics_of(technique, used_as) or (None,)
        found += [Attack(parent_of(technique), sub, tactic) for tactic in tactics]
    return found

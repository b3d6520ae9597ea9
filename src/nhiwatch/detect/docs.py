"""docs/detectors.md, generated from the detectors' own metadata (`nhiwatch findings detectors --markdown`)."""

from __future__ import annotations

from nhiwatch.detect.catalog import CATALOG, TACTIC_ORDER
from nhiwatch.detect.detectors import DETECTORS


def detector_rows() -> list[dict]:
    return [{"id": d.id, "title": d.title, "tactic": d.tactic, "mitre": list(d.mitre), "stratus": list(d.stratus),
             "guardduty": list(d.guardduty), "description": d.description,
             "softened_for_people": d.behavioural,
             "cases": [{"name": c.name, "kind": c.kind, "about": c.about, "severity": c.severity, "known_gap": c.xfail}
                       for c in d.cases]}
            for d in DETECTORS]


def _told(cases: list[dict], kind: str) -> str:
    """One detector's cases of a kind, as a table cell."""
    def floor(case: dict) -> str:
        if case["severity"] == "medium":
            return ""
        return f" ({case['severity']}+)" if kind == "positive" else f" (below {case['severity']})"
    return "; ".join(f"`{c['name']}`{floor(c)}: {c['about']}"
                     + (f" (*known gap*: {c['known_gap']})" if c["known_gap"] else "")
                     for c in cases if c["kind"] == kind)


def detectors_markdown() -> str:
    lines = ["# Detectors", "",
             "Generated from the detectors' metadata (`nhiwatch findings detectors --markdown`); a test keeps it in "
             "step.", "",
             "Every event is judged against its identity's profile learned from everything before it. Severity "
             "is the detector's, then adjusted by rules every detector shares (`detect/engine.py`):", "",
             "- **Who acted** (`detect/actor.py`): a call an AWS service made with the identity (`invokedBy`, a "
             "service host as source, the Lambda worker's log writes, the Lambda runtime decrypting its "
             "environment, each only from an AWS address) is capped at low, except for detectors that judge what "
             "the call does; such calls teach only which APIs services call for the identity.",
             "- **Whose network** (`knowledge/netranges.py`): an address in a provider's published ranges is its "
             "pool (`aws:EC2:us-east-1`), so Lambda's fleet or a NAT's next address is not a new network.",
             "- **Known third parties** (`knowledge/vendors.py`): AWS service-linked roles and roles trusting a "
             "known vendor's account sweep read-only APIs by design: discovery on them is capped at low.",
             "- **Deploys**: for a day after a deploy of the identity's workload (function code or configuration, "
             "task definition, stack change, trust update), a new call from its usual network and client is "
             "expected change: info, linked to the deploy event.",
             "- **Key tests**: a new access key used by its maker, from where it was made, within a day (a rotation "
             "job checking the key it made) raises nothing.",
             "- **Quiet context**: a hit that ends at info (a first call on an identity with no history or peers, "
             "a person's behaviour) is no finding; it still counts as a step of an attack sequence.",
             "- **People**: capped at low on behavioural detectors (nhiwatch watches workloads).",
             "- **Risk**: medium is raised to high on identities whose posture risk is high or critical.",
             "- **No poisoning**: an event behind a medium+ finding, and every later event from the same network "
             "and client while it is open, is judged but never learned; resolving the finding as benign teaches "
             "them.", "",
             "| id | tactic | ATT&CK | what raises it | Stratus | GuardDuty types covered |", "|---|---|---|---|---|---|"]
    for row in detector_rows():
        lines.append(f"| `{row['id']}` | {row['tactic']} | {', '.join(row['mitre'])} | {row['description']} | "
                     f"{', '.join(f'`{s}`' for s in row['stratus'])} | {', '.join(row['guardduty'])} |")
    lines += ["", "## Cases", "",
              "Each detector carries event streams it must alarm on (medium or above unless noted) and legitimate "
              "behaviour it must stay quiet on (below medium unless noted; `detect/cases.py`); "
              "`tests/test_detector_cases.py` runs every one through ingestion and detection. A *known gap* is a "
              "case the detector fails today, kept visible until it is mended.", "",
              "| id | catches | stays quiet on |", "|---|---|---|"]
    for row in detector_rows():
        lines.append(f"| `{row['id']}` | {_told(row['cases'], 'positive')} | {_told(row['cases'], 'negative')} |")
    lines += ["", "## Sensitive API catalogue", "",
              "Used by the `*-first-use` detectors. Weight 3: one call is an incident on an identity that never makes "
              "it; 2: worth a look when new; 1: notable only on stable identities.", "",
              "| tactic | weight | APIs |", "|---|---|---|"]
    for tactic in TACTIC_ORDER:
        for weight in (3, 2, 1):
            apis = sorted(api for api, s in CATALOG.items() if s.tactic == tactic and s.weight == weight)
            if apis:
                lines.append(f"| {tactic} | {weight} | {', '.join(f'`{a}`' for a in apis)} |")
    return "\n".join(lines) + "\n"

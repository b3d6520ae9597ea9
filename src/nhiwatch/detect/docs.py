"""docs/detectors.md, generated from the detectors' own metadata (`nhiwatch findings detectors --markdown`)."""

from __future__ import annotations

from nhiwatch.detect.catalog import CATALOG, TACTIC_ORDER
from nhiwatch.detect.detectors import DETECTORS


def detector_rows() -> list[dict]:
    return [{"id": d.id, "title": d.title, "tactic": d.tactic, "mitre": list(d.mitre), "stratus": list(d.stratus),
             "guardduty": list(d.guardduty), "description": d.description,
             "softened_for_people": d.behavioural} for d in DETECTORS]


def detectors_markdown() -> str:
    lines = ["# Detectors", "",
             "Generated from the detectors' metadata (`nhiwatch findings detectors --markdown`); a test keeps it in "
             "step.", "",
             "Every event is judged against its identity's profile learned from everything before it. Severity "
             "is the detector's, raised one level (medium to high) on identities whose posture risk is high or "
             "critical, and capped at low for people (human identities) on behavioural detectors.", "",
             "| id | tactic | ATT&CK | what raises it | Stratus | GuardDuty types covered |", "|---|---|---|---|---|---|"]
    for row in detector_rows():
        lines.append(f"| `{row['id']}` | {row['tactic']} | {', '.join(row['mitre'])} | {row['description']} | "
                     f"{', '.join(f'`{s}`' for s in row['stratus'])} | {', '.join(row['guardduty'])} |")
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

"""docs/posture.md, generated from the checks', risk weights' and escalation methods' own metadata.

Regenerate with: python -m nhiwatch.inventory.docs > docs/posture.md
"""

from __future__ import annotations

from nhiwatch.inventory import risk
from nhiwatch.inventory.posture import CHECKS, IDENTITY_UNUSED_DAYS, KEY_MAX_AGE_DAYS, KEY_UNUSED_DAYS
from nhiwatch.inventory.privesc import METHODS

TYPES = [
    ("service-role", "assumed by an AWS service (the trust names lambda, ecs-tasks, ssm...)"),
    ("service-linked-role", "path /aws-service-role/: created and used only by the AWS service"),
    ("instance-profile-role", "in an instance profile: EC2 instances run as it"),
    ("cross-account-role", "assumed from another AWS account (vendor, organisation); ExternalId noted"),
    ("oidc-role", "federated through OIDC: GitHub, GitLab, EKS IRSA, Cognito or other, with sub and aud"),
    ("saml-role", "SAML or IAM Identity Center (AWSReservedSSO_) role: people"),
    ("internal-role", "assumed by principals of its own account; human when they are SSO sessions, "
                      "non-human when they are roles, otherwise unknown"),
    ("user-with-keys", "IAM user with active access keys (non-human; human use of an NHI when it also has a "
                       "console password)"),
    ("console-user", "IAM user with a console password or MFA and no active keys: a person"),
    ("user", "IAM user with no active credentials, or no credential report to tell"),
    ("root", "the account root user (from the credential report)"),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def posture_markdown() -> str:
    lines = [
        "# Inventory and posture",
        "",
        "Generated from the code (`python -m nhiwatch.inventory.docs > docs/posture.md`); a test keeps it in step.",
        "",
        "`nhiwatch inventory load` reads `get-account-authorization-details` exports (pages merged, policy",
        "documents URL-encoded or not), credential reports (CSV, or `get-credential-report` JSON) or IAM live",
        "(`--live`, with `--role-name` and `--account`/`--accounts` to assume a role in each account). Each",
        "identity is classified with the evidence for the decision, its policies are evaluated together",
        "(Deny statements and the permission boundary honoured, conditions reported but not evaluated), the",
        "checks below run, and a risk score is computed. With CloudTrail in the store, the inventory also",
        "shows when each identity was last active, who created it and its keys, the actions it used versus",
        "those it is granted, and a least-privilege policy built from its successful calls.",
        "",
        "## Identity types",
        "",
        "| type | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_cell(text)} |" for name, text in TYPES]
    lines += [
        "",
        "Categories: `non-human`, `human`, `human-use-of-nhi` (both people and workloads use it: OWASP NHI10),",
        "`unknown` (IAM alone cannot tell; the evidence says why).",
        "",
        "## Posture checks",
        "",
        f"Thresholds: keys older than {KEY_MAX_AGE_DAYS} days, keys unused for {KEY_UNUSED_DAYS} days, identities "
        f"unused for {IDENTITY_UNUSED_DAYS} days. Ages are judged at `--as-of` (default: now). On service-linked",
        "roles, permission findings are lowered to info: only AWS can use those roles.",
        "",
        "| check | title | OWASP NHI | NIST CSF 2.0 | rule |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| `{c.id}` | {_cell(c.title)} | {', '.join(c.owasp)} | {', '.join(c.nist)} | {_cell(c.rule)} |"
              for c in CHECKS]
    lines += [
        "",
        "## Risk score",
        "",
        "```",
        "score = " + " + ".join(f"{factor} (<= {cap})" for factor, cap in risk.CAPS.items()),
        "```",
        "",
        "Within a factor the largest reason counts in full and each further reason adds half its points",
        "(rounded down) until the factor's cap; every reason is listed with what it added. Levels: " + ", ".join(
            f"{level} >= {threshold}" for threshold, level in risk.LEVELS if threshold) + ", otherwise low.",
        "",
        "| factor | points | when |",
        "|---|---|---|",
    ]
    lines += [f"| {factor} | {points} | {_cell(text)} |" for factor, points, text in risk.WEIGHTS.values()]
    lines += [
        "",
        "## Privilege-escalation methods",
        "",
        "A method counts when every action is granted on all resources, or, for methods marked *self*, on the",
        "identity's own ARN, groups or managed policies. Conditional grants count, and make the finding medium.",
        "`tests/fixtures/iam/cloudsplaining-differences.json` lists, with reasons, every principal of",
        "Cloudsplaining's example account on which nhiwatch and Cloudsplaining disagree.",
        "",
        "| method | actions | what it allows |",
        "|---|---|---|",
    ]
    lines += [f"| `{m.id}`{' (self)' if m.on_self else ''} | {', '.join(f'`{a}`' for a in m.actions)} | "
              f"{_cell(m.title)} |" for m in METHODS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(posture_markdown(), end="")

"""docs/posture.md, generated from the checks', risk weights' and escalation methods' own metadata.

Regenerate with: python -m nhiwatch.inventory.docs > docs/posture.md
"""

from __future__ import annotations

from nhiwatch.inventory import risk
from nhiwatch.inventory.posture import CHECKS, IDENTITY_UNUSED_DAYS, KEY_MAX_AGE_DAYS, KEY_UNUSED_DAYS
from nhiwatch.inventory.capabilities import CAPABILITIES
from nhiwatch.inventory.evaluate import RCP_SERVICES
from nhiwatch.inventory.methods import METHODS, Method

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
        "identity (user, role or group) is classified with the evidence for the decision, the principal graph",
        "finds which can become admin and by which route (every step decided by the IAM evaluator), the",
        "checks below run, and a risk score is computed. With CloudTrail in the store, the inventory also",
        "shows when each identity was last active, who created it and its keys, the actions it used versus",
        "those it is granted, and a least-privilege policy built from its successful calls.",
        "",
        "Two more inputs refine the principal graph, told apart by their content among the same files:",
        "an organization file (SCPs and RCPs) and a resource-policies file. With `--live` both are read",
        "through the API (`--no-org`, `--no-resource-policies` to skip); see below.",
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
        "## Privilege escalation: the principal graph",
        "",
        "Users, roles and groups are nodes (a group is a hypothetical member holding only its policies, and",
        "stands for its members). An edge says one principal can act as another by one of the methods below;",
        "each of its permissions is decided by the IAM evaluator (`inventory/evaluate.py`) on the concrete",
        "target, so grants scoped to the target's ARN count, policy variables resolve, and Deny statements,",
        "permissions boundaries and conditions apply. A principal can escalate when a route of edges leads to",
        "an admin (every probe action allowed on `*`) or to a principal that can write the permissions of one",
        "it can act as (itself included). Routes are kept shortest; the posture finding names each route's",
        "methods (a pathfinding.cloud path id where the catalogue has the path) and the hops. A route through a",
        "condition the evaluation cannot decide is conditional: shown, at medium, never counted as exploitable.",
        "",
        "Requests are judged as an attacker would make them: now, with fresh temporary credentials; MFA is",
        "absent for roles only services assume (and their session tags are known to be none), unknown",
        "otherwise; `sts:ExternalId` is absent; `iam:PassedToService` and `iam:PolicyARN` (AdministratorAccess)",
        "are what the method uses. Existing resources (functions, instances, stacks, projects...) are not in IAM",
        "exports: a method on an existing resource leads to every role that trusts its service (with an",
        "instance profile for EC2) when the principal may act on such a resource, except under a name pattern",
        "where it may create such resources itself. A write granted on every user, role, group or",
        "customer-managed policy of the account counts too: any foothold of that kind completes the route (it",
        "says so). `SetDefaultPolicyVersion` counts when the export lists another version, or lists default",
        "versions only. `tests/fixtures/iam/cloudsplaining-differences.json` lists, with reasons, every",
        "principal of Cloudsplaining's example account on which nhiwatch and Cloudsplaining disagree.",
        "",
        "Edges: `assume` (sts:AssumeRole: the caller's permission and the role's trust), `mint` (another user's",
        "credentials), `trust` (rewrite a role's trust to name the caller, then assume it), `pass` (pass a role",
        "to a new resource of a service that runs as it; the role must trust the service), `existing` (take",
        "over an existing resource of a service), `write` (write a principal's permissions), `join` (add a user",
        "to a group), `combo` (a write and an act on one principal, as the catalogue names the pair).",
        "",
        "At run time the routes meet CloudTrail: the detector `escalation-route-walked` (docs/detectors.md)",
        "raises a finding naming the route and its hops when an identity makes, successfully, the call that",
        "takes a hop of one of its own routes (the method's targeting step on the hop's principal: the user a",
        "key is minted for, the role named in `lambda:CreateFunction` or `ec2:RunInstances`, the role assumed),",
        "after the method's earlier steps in order within 15 minutes. `iam:PassRole` is never logged (it shows",
        "as the role the create call names) and data events such as `lambda:InvokeFunction` are off by default,",
        "so neither is required. Hops on existing resources count where the events tell which role runs the",
        "resource: a function (the Lambda service assumes its role with the function's name as the session",
        "name; CreateFunction names it) or an instance (EC2 assumes its role with the instance id), taken over",
        "by new code, commands (SSM), user data or an SSH key; other existing resources are left to the",
        "behavioural detectors.",
        "",
        "| method | edge | steps (action on resource) | what it does | earlier names |",
        "|---|---|---|---|---|",
    ]
    lines += [_method_row(m) for m in METHODS]
    lines += _policy_feeds_section()
    return "\n".join(lines) + "\n"


def _policy_feeds_section() -> list[str]:
    lines = [
        "",
        "## Organizations SCPs and RCPs",
        "",
        "Every request of the graph is decided with the organization's policies when they are known: an SCP",
        "Deny (or an SCP allow-list without the action) at the root, an OU or the account removes the edges",
        "and escalations that need it; RCPs do the same on the resource side for the services they cover:",
        f"{', '.join(sorted(RCP_SERVICES))}.",
        "The management account and service-linked roles are not restricted. `aws:PrincipalOrgID` and",
        "`aws:PrincipalOrgPaths` conditions are answered from the file.",
        "",
        "`nhiwatch inventory org-export [-o FILE]` writes the file from the Organizations API (management",
        "account or delegated administrator); `nhiwatch inventory load --live` reads the same with the base",
        "credentials (not being in an organization is a note; AccessDenied a problem, and the build goes on",
        "without SCPs and RCPs). The format:",
        "",
        "```json",
        '{"Organization": {"Id": "o-a1b2c3d4e5", "MasterAccountId": "111111111111"},',
        ' "Policies": [{"Id": "p-FullAWSAccess", "Name": "FullAWSAccess", "Type": "SERVICE_CONTROL_POLICY",',
        '               "Content": "{\\"Version\\": \\"2012-10-17\\", \\"Statement\\": [...]}"},',
        '              {"Id": "p-denyiam1", "Name": "deny-iam", "Type": "SERVICE_CONTROL_POLICY", "Content": {...}}],',
        ' "Targets": {"r-ab12": ["p-FullAWSAccess"], "ou-ab12-11111111": ["p-FullAWSAccess", "p-denyiam1"],',
        '             "222222222222": ["p-FullAWSAccess"]},',
        ' "Accounts": {"222222222222": ["r-ab12", "ou-ab12-11111111"]}}',
        "```",
        "",
        "- `Organization`: `aws organizations describe-organization`'s object (`ManagementAccountId` is read too).",
        "- `Policies`: flat objects, or `describe-policy`'s `Policy` (`PolicySummary` and `Content`); `Content`",
        "  is JSON text or an object. Only `SERVICE_CONTROL_POLICY` and `RESOURCE_CONTROL_POLICY` are used.",
        "- `Targets`: a root, OU or account id -> the ids of the policies attached to it",
        "  (`list-policies-for-target`).",
        "- `Accounts`: a member account -> the targets above it, root first, as a list or a path",
        "  (`r-ab12/ou-ab12-11111111`, or `aws:PrincipalOrgPaths`' `o-.../r-.../ou-.../`).",
        "",
        "Each account's levels are its root, its OUs and itself; every level must allow. A level listing no",
        "SCP is taken not to restrict (AWS keeps FullAWSAccess there unless it is replaced); RCPFullAWSAccess is",
        "taken to be at every level (AWS does not let it be detached). A broken entry (a policy that is not",
        "JSON or does not compile, a target naming a policy not in `Policies`, an id of the wrong form) is left",
        "out with a problem naming it; a file with nothing usable is refused.",
        "",
        "## Resource policies",
        "",
        "```json",
        '{"ResourcePolicies": {',
        '   "arn:aws:secretsmanager:us-east-1:222222222222:secret:db-AbCdEf": {"Version": "2012-10-17", ...},',
        '   "arn:aws:kms:us-east-1:222222222222:key/1234abcd-...": "{...the key policy as JSON text...}",',
        '   "arn:aws:s3:::reports": {"Account": "222222222222", "Policy": {...}}}}',
        "```",
        "",
        "ARN -> policy document (object or JSON text), or `{\"Policy\": ..., \"Account\": ...}` to name the owner",
        "of a resource whose ARN has none (an S3 bucket of unknown owner is taken to be in the requester's",
        "account). With `--live`, each account's KMS key policies (`kms:ListKeys`, `kms:GetKeyPolicy`), secret",
        "policies (`secretsmanager:ListSecrets`, `GetResourcePolicy`), bucket policies (`s3:ListBuckets`,",
        "`GetBucketPolicy`) and Lambda function policies (`lambda:ListFunctions`, `GetPolicy`) are read, in the",
        "session's region; a denied call is one problem per API, and those resources' policies are not applied.",
        "Lambda function policies are stored with the rest; no capability below reads them yet.",
        "",
        "## Reachability to a capability",
        "",
        "`nhiwatch posture paths ARN --to admin|secrets|data|kms` (default `admin`; without an ARN, every",
        "identity that reaches it) shows the shortest route and each hop's evidence, then the grant at its end.",
        "",
        "| capability | actions |",
        "|---|---|",
    ]
    lines += [f"| `{c.name}` | {', '.join(f'`{a}`' for a in c.actions)} |" for c in CAPABILITIES.values()]
    lines += [
        "",
        "A principal holds a capability when the evaluator allows it one of the actions: on `*` or on a",
        "resource its identity policies name (resources without a known resource policy), or on a resource of",
        "the resource-policies input, with that resource's policy in force: within an account the identity OR",
        "the resource policy may allow (a KMS key policy must allow, itself or by delegating to the account),",
        "across accounts both must; Deny, boundaries, SCPs and RCPs apply. A principal reaches a capability",
        "when it holds it, when it can act as one that does along the graph's edges (assume, mint, pass...), or",
        "when it can escalate: the principal made admin is asked again with AdministratorAccess added, its",
        "boundary, the SCPs and RCPs still in force. Each identity's shortest route to each capability is",
        "stored in the inventory (`capabilities.capability_routes`); they are computed once per capability in",
        "one pass over the graph's reversed edges, after the graph is built.",
    ]
    return lines


def _method_row(method: Method) -> str:
    steps = ", ".join(f"`{s.action}` on {s.on}" for s in method.steps)
    if method.services:
        steps += "; the role trusts " + " or ".join(f"`{s}`" for s in method.services)
    origin = "" if method.catalogue else " (nhiwatch)"
    return (f"| `{method.id}`{origin} | {method.edge} | {_cell(steps)} | {_cell(method.title)} | "
            f"{', '.join(f'`{a}`' for a in method.aliases)} |")


if __name__ == "__main__":
    print(posture_markdown(), end="")

"""docs/response.md, generated from the actions' own metadata: `python -m nhiwatch.respond.docs`."""

from __future__ import annotations

from nhiwatch.respond.actions import ACTIONS, QUARANTINE_POLICY, Target


def response_markdown() -> str:
    role = Target.from_arn("arn:aws:iam::111122223333:role/example-role", "AROAEXAMPLEROLEID000")
    user = Target.from_arn("arn:aws:iam::111122223333:user/example-user")
    options = {"key": "AKIAEXAMPLEKEY000000", "session": "i-0abc", "cidrs": ["203.0.113.0/24"],
               "issued_before": "2026-03-08T03:14:00Z", "subjects": ["repo:acme/app:ref:refs/heads/main"],
               "trust": {"Version": "2012-10-17", "Statement": [{
                   "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                   "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
                   "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}}}]}}
    lines = ["# Response actions", "",
             "Generated from `src/nhiwatch/respond/actions.py` (`python -m nhiwatch.respond.docs`); do not edit by "
             "hand.", "",
             "Every action is a dry-run until `--execute` (or `--approve`): the dry-run prints the exact calls. "
             "Before changing anything an action records the state it will change; undo "
             "(`nhiwatch respond undo ACTION_ID --execute`) writes that state back. Every printed command ends with "
             "`# account ...`: the account whose credentials must run it. AWS-managed roles (service-linked, "
             "`AWSReservedSSO_*`, Control Tower, StackSets, and `OrganizationAccountAccessRole` unless the policy "
             "sets `allow_organization_access_role`), identities with no medium+ finding of their own in the "
             "incident, the identity nhiwatch runs as and protected identities are listed as skipped or refused, "
             "never changed. The IAM permissions this needs are "
             "in `policies/nhiwatch-respond.json` (monitoring only: `policies/nhiwatch-monitor.json`).", "",
             "| action | applies to | what it does | example call | undo |", "|---|---|---|---|---|"]
    undo_text = {"revoke-sessions": "the inline policy is deleted, or the one it replaced is written back",
                 "revoke-session": "the inline policy is deleted, or the one it replaced is written back",
                 "deactivate-key": "the key's previous status is set again",
                 "disable-console": "a new one-time password (reset required) is set and shown once",
                 "quarantine": f"`{QUARANTINE_POLICY.rsplit('/', 1)[-1]}` is detached, unless it was attached before",
                 "network-fence": "the inline policy is deleted, or the one it replaced is written back",
                 "tighten-oidc-trust": "the previous trust policy is written back",
                 "notify": "nothing to undo"}
    for kind, action in ACTIONS.items():
        target = role if "role" in action.applies_to else user
        calls = action.plan(target, options).calls
        command, account = calls[0].cli().rsplit("  # ", 1) if calls else ("", "")
        # long documents are cut, the account never
        example = f"`{command[:140]}{'...' if len(command) > 140 else ''}  # {account}`" if calls else "(none)"
        lines.append(f"| `{kind}` | {', '.join(action.applies_to)} | {action.title} | {example} | {undo_text[kind]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(response_markdown(), end="")
